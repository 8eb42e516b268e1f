"""Deprecated: moved to :mod:`radtl.dicom.seg_preview` (issue 23); this path works for one release."""

from radtl.lazy import moved_module

moved_module(__name__, "radtl.dicom.seg_preview")
