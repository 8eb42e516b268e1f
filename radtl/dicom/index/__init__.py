"""A query-capable index of an archive's DICOM headers (RadiologyNET thesis 2.2 and 2.3.2).

- :mod:`~radtl.dicom.index.header`: one file's header as one typed row.
- :mod:`~radtl.dicom.index.build`: ``radtl index``, an archive into a Parquet dataset, resumable, on Dask.
- :mod:`~radtl.dicom.index.store`: the dataset on disk and SQL over it with DuckDB (the table ``dicom``).
- :mod:`~radtl.dicom.index.body_part`: BodyPartExamined imputed from the protocol and descriptions, by rules kept as data.
- :mod:`~radtl.dicom.index.profile`: fill rates, distinct values and the study's tag selection rules.
- :mod:`~radtl.dicom.index.sql`: quoting for the SQL radtl writes.
"""

from radtl.dicom.index.body_part import BodyPartRuleError, BodyPartRules, load_body_part_rules
from radtl.dicom.index.build import IndexSummary, build_index
from radtl.dicom.index.header import HeaderOptions
from radtl.dicom.index.profile import BodyPartReport, body_part_report, profile_columns, selected_columns
from radtl.dicom.index.sql import sql_identifier
from radtl.dicom.index.store import DicomIndex, IndexStoreError, connect, query, write_query

__all__ = [
    "BodyPartReport",
    "BodyPartRuleError",
    "BodyPartRules",
    "DicomIndex",
    "HeaderOptions",
    "IndexStoreError",
    "IndexSummary",
    "body_part_report",
    "build_index",
    "connect",
    "load_body_part_rules",
    "profile_columns",
    "query",
    "selected_columns",
    "sql_identifier",
    "write_query",
]
