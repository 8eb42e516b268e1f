"""Deprecated package: the SEG object is :mod:`radtl.dicom.seg` (its preview :mod:`radtl.dicom.seg_preview`), the PACS
client :mod:`radtl.dicom.pacs` and ``radtl segment`` :mod:`radtl.segment` (issue 23). The modules here are shims
for one release."""
