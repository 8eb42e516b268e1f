"""A query-capable index of an archive's DICOM headers (RadiologyNET thesis 2.2 and 2.3.2).

- :mod:`~radtl.dicom.index.header`: one file's header as one typed row.
- :mod:`~radtl.dicom.index.build`: ``radtl index``, an archive into a Parquet dataset, resumable, on Dask.
- :mod:`~radtl.dicom.index.store`: the dataset on disk and SQL over it with DuckDB (the table ``dicom``).
- :mod:`~radtl.dicom.index.body_part`: BodyPartExamined imputed from the protocol and descriptions, by rules kept as data.
- :mod:`~radtl.dicom.index.profile`: fill rates, distinct values and the study's tag selection rules.
- :mod:`~radtl.dicom.index.sql`: quoting for the SQL radtl writes.
"""

from radtl.lazy import lazy_exports

#: Each public name and the submodule that defines it, imported when the name is first read.
_HOMES = {
    "BodyPartRuleError": "body_part",
    "BodyPartRules": "body_part",
    "load_body_part_rules": "body_part",
    "IndexSummary": "build",
    "build_index": "build",
    "HeaderOptions": "header",
    "BodyPartReport": "profile",
    "body_part_report": "profile",
    "profile_columns": "profile",
    "selected_columns": "profile",
    "sql_identifier": "sql",
    "DicomIndex": "store",
    "IndexStoreError": "store",
    "connect": "store",
    "query": "store",
    "write_query": "store",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
