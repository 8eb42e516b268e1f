"""``radtl segment``: a CT series in, a DICOM-SEG out, optionally fetched from and sent back to a PACS.

The work is the segmentation bundle's own ``inference.json`` (load, slice-wise inference,
threshold, small-component removal, :class:`radtl.transforms.SaveDicomSegd`), run with the series
and the output as overrides, so the command and the bundle can never disagree. The SEG is written
to disk first; sending it is a separate step that retries and, if the PACS stays unreachable,
fails with the file still there.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from radtl.bundle import resolve_bundle, root_cause, run_workflow
from radtl.seg.pacs import fetch_series, send

__all__ = ["SegmentResult", "segment", "segment_series"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentResult:
    """What :func:`segment` did.

    Args:
        seg: the SEG file written.
        sent: the SOP Instance UIDs the PACS confirmed storing (empty when not sent).
    """

    seg: Path
    sent: tuple[str, ...] = ()


def segment_series(
    series_dir: str | os.PathLike,
    out: str | os.PathLike,
    bundle: str | os.PathLike = "luna_nodule_seg",
    checkpoint: str | os.PathLike | None = None,
    fractional: bool = False,
    **settings,
) -> Path:
    """Segment one DICOM series with ``bundle`` and write the DICOM-SEG to ``out``.

    Args:
        series_dir: the folder holding the series' instances.
        out: the SEG file to write.
        bundle: a segmentation bundle's folder or name.
        checkpoint: the trained weights (default: the bundle's ``models/model.pt``).
        fractional: write probabilities (FRACTIONAL) instead of the thresholded mask (BINARY).
        settings: any bundle setting, e.g. ``threshold=0.4``, ``min_nodule_volume_mm3=30``, ``device="cpu"``.

    Raises:
        FileNotFoundError: no trained checkpoint.
        radtl.dicom.series.SeriesError: the folder is not one complete CT series.
    """
    root = resolve_bundle(bundle)
    checkpoint = Path(checkpoint) if checkpoint else root / "models" / "model.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"{checkpoint}: no trained weights; train first (python -m monai.bundle run --config_file "
            f"{root / 'configs' / 'train.json'}) or pass --checkpoint"
        )
    series_dir, out = Path(series_dir), Path(out)
    if not series_dir.is_dir():
        raise FileNotFoundError(f"{series_dir}: no such series folder")
    if out.is_dir():
        raise IsADirectoryError(f"{out}: --out is a folder; give the SEG's file name")
    overrides = {
        "bundle_root": str(root),
        "input_series": str(series_dir.resolve()),
        "seg_output": str(out.resolve()),
        "ckpt_path": str(checkpoint.resolve()),
        "fractional": bool(fractional),
        **settings,
    }
    configs = root / "configs"
    try:
        run_workflow([configs / "train.json", configs / "inference.json"], overrides)
    except Exception as error:  # MONAI wraps every failure in its config layers: raise what really went wrong
        cause = root_cause(error)
        if cause is error:
            raise
        raise cause from None
    if not out.is_file():
        raise RuntimeError(f"{root.name}'s inference ran but wrote no SEG at {out}")
    return out


def segment(
    series_dir: str | os.PathLike | None,
    out: str | os.PathLike,
    bundle: str | os.PathLike = "luna_nodule_seg",
    send_to: str | None = None,
    fetch_from: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    **kwargs,
) -> SegmentResult:
    """The whole clinical loop: fetch a series (optional), segment it, write the SEG, send it (optional).

    Args:
        series_dir: the series folder; with ``fetch_from``, where the fetched instances go
            (None: a temporary folder, removed afterwards).
        out: the SEG file.
        bundle: the segmentation bundle.
        send_to: ``dicom://AET@host:port`` (C-STORE) or ``http://host:port/dicom-web`` (STOW-RS).
        fetch_from: a PACS URL to fetch the series from by ``study_uid`` and ``series_uid``.
        kwargs: :func:`segment_series`'s options.

    Raises:
        radtl.seg.pacs.PacsError: fetching or sending failed after retries; a written SEG stays on disk.
    """
    if fetch_from:
        if not (study_uid and series_uid):
            raise ValueError("fetching from a PACS needs --study and --series (Study and Series Instance UIDs)")
        with tempfile.TemporaryDirectory(prefix="radtl-series-") as scratch:
            folder = Path(series_dir) if series_dir else Path(scratch)
            files = fetch_series(fetch_from, study_uid, series_uid, folder)
            logger.info("fetched %d instance(s) of series %s from %s", len(files), series_uid, fetch_from)
            seg = segment_series(folder, out, bundle, **kwargs)
    else:
        if series_dir is None:
            raise ValueError("give a series folder, or --fetch URL with --study and --series")
        seg = segment_series(series_dir, out, bundle, **kwargs)
    if not send_to:
        return SegmentResult(seg)
    return SegmentResult(seg, tuple(send([seg], send_to)))
