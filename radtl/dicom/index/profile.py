"""Column profiling and the study's tag selection rules (RadiologyNET thesis 2.3.2, "DICOM tags").

The study profiled its 653 indexed tags and kept 55 for clustering (28 continuous, 27
categorical) by these rules, which :func:`profile_columns` applies with the same defaults:

- a tag must be filled in at least 35% of the files (``min_fill_rate``);
- it must take at least 2 distinct values (``min_distinct``);
- no UIDs, and free-text tags are set aside (they feed the report-text and BodyPartExamined
  imputation instead);
- a categorical tag may have at most 50 levels (``max_levels``), since it is one-hot encoded.

radtl adds two exclusions the study's archive did not need spelled out: dates and times
(they identify a study, not its content) and the text attributes the Basic Application Level
Confidentiality Profile (PS3.15 E.1-1) removes or blanks (names, identifiers, institution
and station names, descriptions: features that encode who or where, not what). Patient sex
and age are kept as categorical and continuous.

Fill rates and distinct counts are over the files read without error (``status = 'ok'``);
a text value counts as filled when it is not empty.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd
from pydicom.datadict import tag_for_keyword

from radtl.dicom.deidentification import basic_profile_action
from radtl.dicom.index.header import BOOKKEEPING_COLUMNS, column_attribute
from radtl.dicom.index.sql import sql_identifier
from radtl.dicom.index.store import DicomIndex, connect

__all__ = ["PROFILE_COLUMNS", "BodyPartReport", "body_part_report", "column_kind", "profile_columns", "selected_columns"]

PROFILE_COLUMNS = ("column", "vr", "kind", "filled", "fill_rate", "distinct", "role", "selected", "reason")

_CONTINUOUS_VRS = {"IS", "DS", "FL", "FD", "US", "SS", "UL", "SL", "SV", "UV"}
_FREE_TEXT_VRS = {"LT", "ST", "UT", "UC", "UR", "PN"}
_SHORT_TEXT_VRS = {"LO", "SH", "AE"}
_DATE_TIME_VRS = {"DA", "TM", "DT"}
_DERIVED_KINDS = {"HasPixelData": "categorical", "IsRGB": "categorical", "NumberOfFrames": "continuous",
                  "PixelDataShape": "list"}


def column_kind(name: str, duckdb_type: str) -> tuple[str | None, str]:
    """``(VR, kind)`` of an index column before looking at its values.

    Kinds: ``continuous``, ``categorical``, ``short-text`` (categorical when it has few
    levels, free text otherwise), ``age`` (AS, continuous in years), ``free-text``, ``uid``,
    ``date-time``, ``identifying``, ``sequence`` (an item count), ``list`` (a multi-valued
    attribute; its split columns are the features), ``private``, ``bookkeeping``, ``other``.
    """
    if name in BOOKKEEPING_COLUMNS:
        return None, "bookkeeping"
    if name in _DERIVED_KINDS:
        return None, _DERIVED_KINDS[name]
    if duckdb_type.endswith("[]"):
        return column_attribute(name)[1], "list"
    if name.startswith(("Private_", "Tag_")):
        return None, "private"
    keyword, vr = column_attribute(name)
    if vr is None:
        return None, "other"
    if vr == "UI":
        return vr, "uid"
    action = basic_profile_action(tag_for_keyword(keyword))
    if action and vr in _FREE_TEXT_VRS | _SHORT_TEXT_VRS:
        return vr, "identifying"
    if vr in _DATE_TIME_VRS:
        return vr, "date-time"
    if vr == "SQ":
        return vr, "sequence"
    if vr == "AS":
        return vr, "age"
    if vr in _CONTINUOUS_VRS:
        return vr, "continuous"
    if vr == "CS":
        return vr, "categorical"
    if vr in _SHORT_TEXT_VRS:
        return vr, "short-text"
    if vr in _FREE_TEXT_VRS:
        return vr, "free-text"
    return vr, "other"


def profile_columns(
    db: str | os.PathLike | DicomIndex,
    min_fill_rate: float = 0.35,
    min_distinct: int = 2,
    max_levels: int = 50,
) -> pd.DataFrame:
    """One row per index column: its fill rate, distinct values, kind, and whether the study's rules select it.

    Args:
        db: the index folder.
        min_fill_rate: the least fraction of files a selected tag is filled in (the study: 0.35).
        min_distinct: the least number of distinct values of a selected tag (the study: 2).
        max_levels: the most levels of a selected categorical tag (the study: 50).

    Returns:
        A DataFrame with :data:`PROFILE_COLUMNS`: ``role`` is ``continuous`` or
        ``categorical`` for a selected column, ``reason`` says why another was not.
    """
    with connect(db) as con:
        described = con.execute("DESCRIBE dicom_current").fetchall()
        columns = [(name, str(kind)) for name, kind, *_ in described if name not in BOOKKEEPING_COLUMNS]
        files = con.execute("SELECT count(*) FROM dicom_current WHERE status = 'ok'").fetchone()[0]
        counts: list = []
        for start in range(0, len(columns), 200):  # one scan per 200 columns keeps the query plan small
            part = columns[start : start + 200]
            aggregates = ", ".join(f"count({sql_identifier(n)}), count(DISTINCT {sql_identifier(n)})" for n, _ in part)
            counts += con.execute(f"SELECT {aggregates} FROM dicom_current WHERE status = 'ok'").fetchone() if part else ()
    records = []
    for position, (name, duckdb_type) in enumerate(columns):
        filled, distinct = counts[2 * position], counts[2 * position + 1]
        vr, kind = column_kind(name, duckdb_type)
        fill_rate = filled / files if files else 0.0
        role, reason = _select(kind, fill_rate, distinct, min_fill_rate, min_distinct, max_levels)
        records.append((name, vr or "", kind, filled, fill_rate, distinct, role, bool(role), reason))
    return pd.DataFrame.from_records(records, columns=PROFILE_COLUMNS).sort_values(
        ["selected", "fill_rate", "column"], ascending=[False, False, True], ignore_index=True)


def _select(kind: str, fill_rate: float, distinct: int, min_fill_rate: float, min_distinct: int,
            max_levels: int) -> tuple[str, str]:
    """``(role, "")`` for a selected column, ``("", reason)`` for another."""
    if fill_rate == 0:
        return "", "empty everywhere"
    if kind == "short-text":
        kind = "categorical" if distinct <= max_levels else "free-text"
    if kind == "age":
        kind = "continuous"
    if kind not in ("continuous", "categorical"):
        return "", {"free-text": "free text (set aside)", "uid": "a UID", "date-time": "a date or time",
                    "identifying": "identifying (PS3.15 basic profile)", "list": "multi-valued (its split columns count)",
                    "sequence": "a sequence", "private": "private or unknown attribute",
                    }.get(kind, f"not a feature ({kind})")
    if fill_rate < min_fill_rate:
        return "", f"fill rate {fill_rate:.0%} < {min_fill_rate:.0%}"
    if distinct < min_distinct:
        return "", f"{distinct} distinct value(s) < {min_distinct}"
    if kind == "categorical" and distinct > max_levels:
        return "", f"{distinct} levels > {max_levels}"
    return kind, ""


def selected_columns(profile: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(continuous, categorical)`` column names the profile selects."""
    chosen = profile[profile["selected"]]
    return (sorted(chosen.loc[chosen["role"] == "continuous", "column"]),
            sorted(chosen.loc[chosen["role"] == "categorical", "column"]))


@dataclass(frozen=True)
class BodyPartReport:
    """BodyPartExamined before and after imputation (thesis 2.3.2: 40.6% -> 100% in the study).

    Args:
        files: files read without error.
        recorded: files whose BodyPartExamined is filled in.
        imputed: files given a value by a rule.
        by_rule: files per ``(rule, body part, source attribute)``.
        unmatched: the most frequent source texts no rule matched (to write the next rule from).
    """

    files: int
    recorded: int
    imputed: int
    by_rule: pd.DataFrame
    unmatched: pd.DataFrame

    @property
    def fill_rate_before(self) -> float:
        return self.recorded / self.files if self.files else 0.0

    @property
    def fill_rate_after(self) -> float:
        return (self.recorded + self.imputed) / self.files if self.files else 0.0

    def __str__(self) -> str:
        rules = self.by_rule["rule"].nunique() if len(self.by_rule) else 0
        lines = [(f"BodyPartExamined filled in {self.fill_rate_before:.1%} of {self.files} file(s) before imputation, "
                  f"{self.fill_rate_after:.1%} after ({self.imputed} imputed by {rules} rule(s))")]
        if len(self.by_rule):
            lines += ["", self.by_rule.to_string(index=False)]
        if len(self.unmatched):
            lines += ["", "most frequent texts no rule matched:", self.unmatched.to_string(index=False)]
        return "\n".join(lines)


def body_part_report(db: str | os.PathLike | DicomIndex, rules: str | os.PathLike | None = None,
                     unmatched: int = 20) -> BodyPartReport:
    """Fill rate of BodyPartExamined before and after imputation, files per rule, and what no rule matched.

    Args:
        db: the index folder.
        rules: a rules file (default: ``DB/body_part_rules.yaml`` when present, else radtl's own).
        unmatched: how many of the most frequent unmatched source texts to list.
    """
    with connect(db, body_part_rules=rules) as con:
        columns = {row[0] for row in con.execute("DESCRIBE dicom").fetchall()}
        ok = "FROM dicom WHERE status = 'ok'"
        files, recorded, imputed = con.execute(
            "SELECT count(*), count(*) FILTER (BodyPartExaminedSource = 'BodyPartExamined'), "
            f"count(*) FILTER (BodyPartExaminedRule IS NOT NULL) {ok}").fetchone()
        by_rule = con.execute(
            "SELECT BodyPartExaminedRule AS rule, BodyPartExaminedImputed AS body_part, BodyPartExaminedSource AS source, "
            f"count(*) AS files {ok} AND BodyPartExaminedRule IS NOT NULL GROUP BY ALL ORDER BY files DESC, rule").df()
        sources = [c for c in ("ProtocolName", "StudyDescription", "RequestedProcedureDescription") if c in columns]
        if sources:
            texts = " || ' | ' || ".join(f"coalesce({sql_identifier(c)}, '')" for c in sources)
            missing = con.execute(
                f"SELECT {texts} AS texts, count(*) AS files {ok} AND BodyPartExaminedImputed IS NULL "
                f"GROUP BY ALL ORDER BY files DESC, texts LIMIT {int(unmatched)}").df()
            missing = missing.rename(columns={"texts": " | ".join(sources)})
        else:
            missing = pd.DataFrame(columns=["texts", "files"])
    return BodyPartReport(files, recorded, imputed, by_rule, missing)
