"""Cohorts: from the PACS to a de-identified research archive (issue 25).

- :mod:`radtl.cohort.pull`: ``radtl pull``, a cohort retrieved from the PACS by query, resumable.
- :mod:`radtl.cohort.export`: ``radtl export``, a de-identified copy of the files an index query selects,
  with its provenance (the de-identification itself is :mod:`radtl.dicom.deidentifier`).
"""
