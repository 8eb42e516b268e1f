"""Quoting for the SQL radtl writes for DuckDB: string literals and identifiers."""

from __future__ import annotations

import os

__all__ = ["sql_identifier", "sql_literal"]


def sql_literal(text: str | os.PathLike) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A SQL identifier, quoted (``"ProtocolName"``)."""
    return '"' + name.replace('"', '""') + '"'
