"""Synthetic DICOM built from scratch: one builder for the sample corpus, the tests and the benchmarks.

- :mod:`~radtl.dicom.synthetic.modules`: one function per PS3.3 module (Patient, General Study, General
  Series, Frame of Reference, General Equipment, General Image, Image Plane, Image Pixel, Modality LUT,
  VOI LUT, SOP Common), deterministic UIDs and the Part 10 writer.
- :mod:`~radtl.dicom.synthetic.iods`: whole instances, one function per IOD (CR, DX, CT, MR, Enhanced CT/MR,
  Secondary Capture, Basic Text SR).
- :mod:`~radtl.dicom.synthetic.phantoms`: the numpy pictures (anatomy, body-part silhouettes, shapes).
- :mod:`~radtl.dicom.synthetic.sets`: the sets of ``dicom_samples/``, one module each, registered in
  :mod:`~radtl.dicom.synthetic.registry`; :func:`make_samples` writes them (``dicom_samples/make_samples.py``
  is its command line).
- :mod:`~radtl.dicom.synthetic.archive`: a hospital-like archive with the truth about each file, for tests and
  benchmarks of archive-scale steps (:func:`write_archive`, :func:`write_reports`).
"""

from radtl.lazy import lazy_exports

#: Each public name and the submodule that defines it, imported when the name is first read.
_HOMES = {
    "EXAMINATIONS": "archive",
    "REPORT_PHRASES": "archive",
    "ArchiveFile": "archive",
    "Examination": "archive",
    "write_archive": "archive",
    "write_reports": "archive",
    "phantom": "phantoms",
    "SAMPLE_SETS": "sets",
    "make_samples": "sets",
    "sample_set": "sets",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
