"""``radtl segment``: CT series in, one DICOM-SEG per series out, optionally fetched from and sent back to a PACS.

The work is the segmentation bundle's own ``inference.json`` (load, slice-wise inference,
threshold, small-component removal, :class:`radtl.transforms.SaveDicomSegd`), run with the series
and the output as overrides, so the command and the bundle can never disagree. The bundle reads a
folder of series folders as one item per series (:func:`radtl.data.series_datalist`), so before it
runs the command lists the same series, reads their headers and decides where each SEG goes: a
file ``--out`` takes exactly one series, a folder ``--out`` (ending in ``/``, or existing) takes
``<SeriesInstanceUID>.seg.dcm`` per series, and an existing SEG is only replaced with
``overwrite``. Afterwards every SEG promised must be on disk, newly written, and each gets a PNG
preview beside it (:func:`radtl.dicom.seg_preview.write_preview`: ``X.seg.dcm`` -> ``X.seg.png``), read
back from the SEG, so a person can check the result without a DICOM viewer. The SEGs are written
to disk first; sending them is a separate step that retries and, if the PACS stays unreachable,
fails with the files still there.

With ``sr``, the bundle also writes each series' nodule measurement report (a DICOM SR, TID 1500:
:func:`radtl.dicom.sr.write_nodule_report`, through the inference's
:class:`radtl.engines.handlers.MeasurementReportWriter`), measured from the SEG just written: a file
for one series, or ``<SeriesInstanceUID>.sr.dcm`` per series in a folder (the ``--out`` folder itself
when both are the same). ``send_to`` stores the SRs with the SEGs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from radtl.bundle import Bundle, BundleKind, root_cause, run_workflow
from radtl.data import series_datalist
from radtl.dicom.pacs import fetch_series, send
from radtl.dicom.seg import names_a_folder, seg_path
from radtl.dicom.seg_preview import resolve_window, write_preview
from radtl.dicom.series import SeriesError, read_series_headers
from radtl.dicom.sr import sr_path
from radtl.errors import RadtlError

__all__ = ["SegmentOutputError", "SegmentResult", "find_series", "segment", "segment_series"]

logger = logging.getLogger(__name__)

#: Series named in a message before "and N more".
LISTED_SERIES = 3


class SegmentOutputError(RadtlError, ValueError):
    """An ``--out`` that would lose a SEG: several series for one file, or a SEG already there."""


@dataclass(frozen=True)
class SegmentResult:
    """What :func:`segment` did.

    Args:
        segs: the SEG files written, one per series, each on disk.
        sent: the SOP Instance UIDs the PACS confirmed storing (empty when not sent).
        srs: the measurement reports written, one per series (empty when none was asked for).
    """

    segs: tuple[Path, ...]
    sent: tuple[str, ...] = ()
    srs: tuple[Path, ...] = ()


def find_series(series_dir: str | os.PathLike) -> dict[Path, str]:
    """The series a segmentation bundle will read from ``series_dir``: ``{folder: Series Instance UID}``.

    The folders are the bundle's own items (:func:`radtl.data.series_datalist`: the folder itself, or
    each series folder in it), each checked by :func:`radtl.dicom.series.read_series_headers`, so a bad
    series stops the run before anything is written.

    Raises:
        radtl.dicom.series.SeriesError: a folder that is not one complete CT series, or one series in two folders.
    """
    found: dict[Path, str] = {}
    for item in series_datalist(series_dir):
        folder = Path(item["image"])
        found[folder] = read_series_headers(folder).series_instance_uid
    folders_of: dict[str, list[Path]] = {}
    for folder, uid in found.items():
        folders_of.setdefault(uid, []).append(folder)
    repeated = {uid: folders for uid, folders in folders_of.items() if len(folders) > 1}
    if repeated:
        uid, folders = next(iter(repeated.items()))
        raise SeriesError(
            f"{series_dir}: series {uid} is in {len(folders)} folders ({', '.join(f.name for f in folders)}); "
            "keep one copy of each series"
        )
    return found


def _listing(found: dict[Path, str]) -> str:
    listed = [f"{folder.name} ({uid})" for folder, uid in list(found.items())[:LISTED_SERIES]]
    more = len(found) - len(listed)
    return ", ".join(listed) + (f" and {more} more" if more else "")


def _file_state(path: Path) -> tuple[int, int] | None:
    """``(inode, modification time)``: a SEG is replaced through a new file, so a rewritten SEG has a new state."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns


def segment_series(
    series_dir: str | os.PathLike,
    out: str | os.PathLike,
    bundle: str | os.PathLike = "luna_nodule_seg",
    checkpoint: str | os.PathLike | None = None,
    fractional: bool = False,
    overwrite: bool = False,
    preview: bool = True,
    preview_window: str = "lung",
    sr: str | os.PathLike | None = None,
    **settings,
) -> tuple[Path, ...]:
    """Segment the DICOM series in ``series_dir`` with ``bundle`` and write one DICOM-SEG per series.

    Args:
        series_dir: the folder holding one series' instances, or a folder of such series folders.
        out: the SEG file (one series only); or a folder, ending in ``/`` or existing, that gets
            ``<SeriesInstanceUID>.seg.dcm`` for each series.
        bundle: a segmentation bundle's folder or name.
        checkpoint: the trained weights (default: the bundle's ``models/model.pt``).
        fractional: write probabilities (FRACTIONAL) instead of the thresholded mask (BINARY).
        overwrite: replace SEGs already at the output paths (otherwise refused before anything runs).
        preview: write a PNG preview beside each SEG (:func:`radtl.dicom.seg_preview.write_preview`; a preview
            already there is replaced with its SEG).
        preview_window: the previews' window: ``"lung"`` or ``"series"`` (each slice's own).
        sr: also write each series' nodule measurement report (DICOM SR): a file (one series), or a folder
            (ending in ``/``, or existing) that gets ``<SeriesInstanceUID>.sr.dcm`` per series; None: none.
        settings: any bundle setting, e.g. ``threshold=0.4``, ``min_nodule_volume_mm3=30``, ``device="cpu"``.

    Returns:
        the SEGs written, in the order of the series folders, then (when ``sr`` is given) one SR per SEG in
        the same order; each is on disk, written by this run.

    Raises:
        FileNotFoundError: no trained checkpoint, or no series folder.
        radtl.bundle.BundleKindError: a bundle that is not a segmentation bundle.
        radtl.dicom.series.SeriesError: a folder that is not one complete CT series.
        SegmentOutputError: several series for one ``out`` (or ``sr``) file, or SEGs or SRs already there
            without ``overwrite``.
        radtl.errors.UsageError: an unknown ``preview_window``.
    """
    if preview:
        resolve_window(preview_window)  # an unknown window is refused before the model runs
    root = Bundle(bundle).require(BundleKind.SEGMENTATION, tool="radtl segment").root
    checkpoint = Path(checkpoint) if checkpoint else root / "models" / "model.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"{checkpoint}: no trained weights; train first (python -m monai.bundle run --config_file "
            f"{root / 'configs' / 'train.json'}) or pass --checkpoint"
        )
    if not Path(series_dir).is_dir():
        raise FileNotFoundError(f"{series_dir}: no such series folder")
    found = find_series(series_dir)
    to_folder = names_a_folder(out)
    if len(found) > 1 and not to_folder:
        raise SegmentOutputError(
            f"{series_dir} holds {len(found)} series ({_listing(found)}) but --out {out} is one file; "
            "give --out FOLDER/ for one <SeriesInstanceUID>.seg.dcm per series"
        )
    segs = [seg_path(out, uid).resolve() for uid in found.values()]
    srs = []
    if sr is not None:
        sr_to_folder = names_a_folder(sr)
        if len(found) > 1 and not sr_to_folder:
            raise SegmentOutputError(
                f"{series_dir} holds {len(found)} series ({_listing(found)}) but --sr {sr} is one file; "
                "give --sr FOLDER/ for one <SeriesInstanceUID>.sr.dcm per series"
            )
        srs = [(sr_path(sr, uid) if sr_to_folder else Path(sr)).resolve() for uid in found.values()]
    existing = [path for path in segs + srs if path.exists()]
    if existing and not overwrite:
        what = "SEG(s) and SR(s)" if srs else "SEG(s)"
        raise SegmentOutputError(
            f"{len(existing)} of {len(segs) + len(srs)} {what} already exist (e.g. {existing[0]}); "
            "pass --overwrite to replace them, or choose another --out" + (" or --sr" if srs else "")
        )
    outputs = segs + srs
    before = {path: _file_state(path) for path in outputs}
    overrides = {
        "bundle_root": str(root),
        "input_series": str(Path(series_dir).resolve()),
        "seg_output": str(Path(out).resolve()) + (os.sep if to_folder else ""),
        "ckpt_path": str(checkpoint.resolve()),
        "fractional": bool(fractional),
        **settings,
    }
    if sr is not None:
        overrides["sr_output"] = str(Path(sr).resolve()) + (os.sep if sr_to_folder else "")
    configs = root / "configs"
    try:
        run_workflow([configs / "train.json", configs / "inference.json"], overrides)
    except Exception as error:  # MONAI wraps every failure in its config layers: raise what really went wrong
        written = sum(_file_state(path) not in (None, before[path]) for path in outputs)
        if written:
            logger.warning("%d of %d SEG(s) and SR(s) were written before the failure", written, len(outputs))
        cause = root_cause(error)
        if cause is error:
            raise
        raise cause from None
    missing = [path for path in outputs if _file_state(path) in (None, before[path])]
    if missing:
        raise RuntimeError(
            f"{root.name}'s inference ran but wrote {len(outputs) - len(missing)} of {len(outputs)} "
            f"{'SEG(s) and SR(s)' if srs else 'SEG(s)'}; "
            f"not written: {', '.join(str(path) for path in missing[:LISTED_SERIES])}"
        )
    if preview:
        for folder, seg in zip(found, segs):
            logger.info("preview: %s", write_preview(seg, folder, window=preview_window))
    return tuple(outputs)


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
    """The whole clinical loop: fetch a series (optional), segment, write the SEGs, send them (optional).

    Args:
        series_dir: a series folder or a folder of series folders; with ``fetch_from``, where the
            fetched instances go (None: a temporary folder, removed afterwards).
        out: the SEG file, or a folder for one SEG per series (see :func:`segment_series`).
        bundle: the segmentation bundle.
        send_to: ``dicom://AET@host:port`` (C-STORE) or ``http://host:port/dicom-web`` (STOW-RS).
        fetch_from: a PACS URL to fetch the series from by ``study_uid`` and ``series_uid``.
        kwargs: :func:`segment_series`'s options (``sr``: the measurement reports, sent with the SEGs).

    Raises:
        radtl.dicom.pacs.PacsError: fetching or sending failed after retries; written SEGs stay on disk.
    """
    if fetch_from:
        if not (study_uid and series_uid):
            raise ValueError("fetching from a PACS needs --study and --series (Study and Series Instance UIDs)")
        with tempfile.TemporaryDirectory(prefix="radtl-series-") as scratch:
            folder = Path(series_dir) if series_dir else Path(scratch)
            files = fetch_series(fetch_from, study_uid, series_uid, folder)
            logger.info("fetched %d instance(s) of series %s from %s", len(files), series_uid, fetch_from)
            written = segment_series(folder, out, bundle, **kwargs)
    else:
        if series_dir is None:
            raise ValueError("give a series folder, or --fetch URL with --study and --series")
        written = segment_series(series_dir, out, bundle, **kwargs)
    count = len(written) // 2 if kwargs.get("sr") is not None else len(written)  # one SR per SEG, after the SEGs
    segs, srs = written[:count], written[count:]
    if not send_to:
        return SegmentResult(segs, srs=srs)
    return SegmentResult(segs, tuple(send(list(written), send_to)), srs)
