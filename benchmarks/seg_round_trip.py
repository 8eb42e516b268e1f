"""Seconds for ``radtl seg from-mask`` and ``to-mask`` on TotalSegmentator's real CT series and label map.

The series (20 Siemens CT slices of 512x512, JPEG 2000 lossless) ships with empty UIDs, so it is copied and its
UIDs filled in first (untimed), as the tests do; then each direction is timed ``--repeat`` times and the median
printed, with the SEG's size and segment count. The corpus comes from tests/support/real_data.py (fetched and
cached on first use).

Usage::

    python benchmarks/seg_round_trip.py                 # 3 repeats
    python benchmarks/seg_round_trip.py --repeat 5 --json round_trip.json
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import CTImageStorage, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model  # noqa: E402

from radtl.atomic import write_json_atomic  # noqa: E402
from radtl.dicom.labelmap import label_map_to_seg, seg_to_label_map  # noqa: E402
from tests.support.real_data import fetch  # noqa: E402


def series_with_uids(source: Path, out: Path) -> Path:
    """A copy of the series with its empty Study, Series, SOP Instance and SOP Class UIDs filled in."""
    out.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.save_as(out / path.name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    corpus = fetch("totalsegmentator")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        series = series_with_uids(corpus / "example_ct_dicom", scratch / "series")
        mask = corpus / "example_seg_dicom.nii.gz"
        to_seg, to_mask = [], []
        for run in range(args.repeat):
            start = time.perf_counter()
            written = label_map_to_seg(series, mask, scratch / f"seg{run}.dcm", labels="totalsegmentator")
            middle = time.perf_counter()
            seg_to_label_map(written.path, series, scratch / f"back{run}.nii.gz")
            to_seg.append(middle - start)
            to_mask.append(time.perf_counter() - middle)
        figures = {
            "machine": cpu_model(),
            "shape": list(written.shape),
            "segments": len(written.values),
            "seg_bytes": written.path.stat().st_size,
            "from_mask_s": statistics.median(to_seg),
            "to_mask_s": statistics.median(to_mask),
            "repeat": args.repeat,
        }
        shutil.rmtree(series)
    print(f"{figures['machine']}: {figures['shape']}, {figures['segments']} segments, SEG {figures['seg_bytes']:,} "
          f"bytes; from-mask {figures['from_mask_s']:.2f} s, to-mask {figures['to_mask_s']:.2f} s "
          f"(median of {args.repeat})")
    if args.json:
        write_json_atomic(args.json, figures)


if __name__ == "__main__":
    main()
