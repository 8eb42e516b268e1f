"""radtl.dicom.seg_preview: the PNG beside a DICOM-SEG, read back from the SEG and drawn over the series' own slices."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from radtl.dicom.lut import Window
from radtl.dicom.seg import SegmentationSourceError, write_segmentation
from radtl.dicom.seg_preview import (
    CAPTION_HEIGHT,
    GAP,
    OUTLINE_COLOUR,
    PANEL_SIZE,
    outline,
    preview_path,
    slices_to_show,
    write_preview,
)
from radtl.errors import UsageError
from tests.support.paths import SAMPLES

CASE = SAMPLES / "tasks" / "luna_nodule" / "case001"
GRID = (64, 64, 12)  # (X, Y, Z) of the sample series: 64 x 64, 12 slices
SCALE = PANEL_SIZE // 64  # the sample's slices are enlarged 4 times


def blocks() -> np.ndarray:
    """Blocks on slices 2, 5, 6 and 9 (0-based) of 4, 30, 20 and 12 voxels: slices 5, 6 and 9 have the most."""
    mask = np.zeros(GRID, dtype=np.uint8)
    mask[10:12, 20:22, 2] = 1
    mask[20:26, 30:35, 5] = 1  # columns 20-25, rows 30-34
    mask[20:25, 30:34, 6] = 1
    mask[40:44, 10:13, 9] = 1
    return mask


def test_the_preview_is_named_after_the_seg():
    assert preview_path("out/1.2.3.seg.dcm").name == "1.2.3.seg.png"
    assert preview_path("SEG.dcm").name == "SEG.png"
    assert preview_path("nodules").name == "nodules.png"
    assert preview_path("odd.png").name == "odd.png.png"  # never the SEG itself


def test_the_slices_shown_are_the_three_with_most_voxels_in_slice_order():
    assert slices_to_show(blocks().transpose(2, 1, 0) > 0) == [5, 6, 9]
    assert slices_to_show(np.zeros((4, 3, 3), bool)) == []


def test_an_outline_is_the_border_of_the_mask_and_just_outside_it():
    mask = np.zeros((7, 7), bool)
    mask[2:5, 2:5] = True
    line = outline(mask)
    assert line[2, 2] and line[1, 3] and line[4, 4] and not line[3, 3] and not line[0, 0]


def test_a_preview_shows_three_slices_side_by_side_with_the_segment_outlined(tmp_path):
    seg = write_segmentation(tmp_path / "x.seg.dcm", blocks(), CASE, algorithm=None)
    path = write_preview(seg, CASE)
    assert path == tmp_path / "x.seg.png"
    with Image.open(path) as image:
        assert image.size == (3 * PANEL_SIZE + 2 * GAP, PANEL_SIZE + CAPTION_HEIGHT)
        pixels = np.asarray(image.convert("RGB"))
    first = pixels[:PANEL_SIZE, :PANEL_SIZE]  # slice 5: the block's corner is voxel (column 20, row 30)
    assert tuple(first[30 * SCALE, 20 * SCALE]) == OUTLINE_COLOUR
    assert tuple(first[30 * SCALE - 1, 20 * SCALE]) == OUTLINE_COLOUR  # just outside, so the line is visible
    inside = first[32 * SCALE, 22 * SCALE]
    assert inside[0] == inside[1] == inside[2]  # the inside of the segment is the CT, uncovered
    assert (pixels[:PANEL_SIZE] == OUTLINE_COLOUR).all(axis=2).sum() > 0
    assert not (pixels[:PANEL_SIZE, :PANEL_SIZE][:, 40 * SCALE :] == OUTLINE_COLOUR).all(axis=2).any()


def test_an_empty_seg_previews_the_middle_slice_with_no_outline(tmp_path):
    seg = write_segmentation(tmp_path / "SEG.dcm", np.zeros(GRID, np.uint8), CASE, algorithm=None)
    with Image.open(write_preview(seg, CASE)) as image:
        assert image.size == (PANEL_SIZE, PANEL_SIZE + CAPTION_HEIGHT)
        pixels = np.asarray(image.convert("RGB"))
    assert not (pixels == OUTLINE_COLOUR).all(axis=2).any()
    assert pixels[PANEL_SIZE:].any()  # the caption ("nothing segmented") is written under the slice


def test_the_lung_window_and_the_series_own_window_render_differently(tmp_path):
    seg = write_segmentation(tmp_path / "x.seg.dcm", blocks(), CASE, algorithm=None)
    lung = np.asarray(Image.open(write_preview(seg, CASE, tmp_path / "lung.png")))
    own = np.asarray(Image.open(write_preview(seg, CASE, tmp_path / "own.png", window="series")))
    bone = np.asarray(Image.open(write_preview(seg, CASE, tmp_path / "bone.png", window=Window(400, 1800))))
    assert lung.shape == own.shape == bone.shape
    assert not np.array_equal(lung, own) and not np.array_equal(lung, bone)


def test_an_unknown_window_is_a_usage_error(tmp_path):
    seg = write_segmentation(tmp_path / "x.seg.dcm", blocks(), CASE, algorithm=None)
    with pytest.raises(UsageError, match="'brain'"):
        write_preview(seg, CASE, window="brain")


def test_a_seg_of_another_series_is_refused(tmp_path):
    seg = write_segmentation(tmp_path / "x.seg.dcm", blocks(), CASE, algorithm=None)
    with pytest.raises(SegmentationSourceError):
        write_preview(seg, CASE.parent / "case002")
