"""BodyPartExamined imputed from the protocol name and study descriptions, by rules kept as data.

BodyPartExamined (0018,0015; General Series module, DICOM PS3.3 C.7.3.1) is Type 3 and
missing from more than half of a typical archive's files; its values are the defined terms
of DICOM PS3.16 Annex L ("Correspondence of Anatomic Region Codes and Body Part Examined
Defined Terms": ``CHEST``, ``CSPINE``, ``WHOLEBODY``, ...). The RadiologyNET study (thesis
2.3.2, Code Listing 2.1) filled it in from ProtocolName, StudyDescription and
RequestedProcedureDescription with regular expressions tolerant of typos, abbreviations
and English, Latin and Croatian terms (fill rate 40.6% -> 100%). This module does the same
with a rules file (``body_part_rules.yaml`` next to it; :data:`DEFAULT_RULES_PATH`), in SQL
that DuckDB runs over the index.

Normalisation. Each source text is matched after :func:`normalized_text_sql`: words run
together in camel case split (``HeadRoutine``, ``AbdPelvis``: scanner protocol names), lower case,
``đ`` -> ``dj`` (DuckDB's ``strip_accents`` leaves ``đ`` alone), accents stripped (``č ć`` ->
``c``, ``š`` -> ``s``, ``ž`` -> ``z``), every run of characters that are neither letters nor
digits (whitespace, ``_ - . , / ( ) + :`` and the like) replaced by one space, trimmed. So
``"RTG L-S kralježnice"`` is matched as ``"rtg l s kraljeznice"``. Patterns are matched
case-insensitively (``regexp_matches(text, pattern, 'i')``, Google RE2), unanchored.

Order. A recorded (non-empty) BodyPartExamined is kept, upper-cased and trimmed. Otherwise
the first rule in file order whose pattern matches any source wins, the sources tried in
their configured order for that rule; so specific rules come first (FINGER before HAND,
CSPINE before SPINE). Where no rule matches, the value is NULL. Three columns come out:

- ``BodyPartExaminedImputed``: the recorded value, else the winning rule's ``body_part``;
- ``BodyPartExaminedRule``: the winning rule's name (NULL when recorded or unmatched);
- ``BodyPartExaminedSource``: ``'BodyPartExamined'`` when recorded, else the keyword of
  the source attribute that matched (NULL when unmatched).

Composition. Each source is normalised once in an inner SELECT, and the three outputs refer
to those aliases in the outer one (one CASE picks the outcome, and the three outputs index
lists with it, so DuckDB evaluates the patterns once per row)::

    inner = ", ".join(["*"] + [f'{expr} AS "{alias}"' for alias, expr in normalized_sources_sql(rules, cols).items()])
    outer = ", ".join(f'{expr} AS "{name}"' for name, expr in body_part_sql(rules, cols, normalized=True).items())
    sql = f"SELECT * EXCLUDE (<the aliases>), {outer} FROM (SELECT {inner} FROM dicom_current)"

(:func:`body_part_query_sql` builds exactly this.) Without ``normalized=True`` the
expressions normalise inline and fit a single SELECT over the table. Sources that are not
among the table's columns are skipped; a table without BodyPartExamined has it missing
everywhere.

Extending. Copy ``body_part_rules.yaml``, add or edit rules (its header describes the format),
and pass the copy's path to :func:`load_body_part_rules` (an index folder's own
``DB/body_part_rules.yaml`` is used by :func:`radtl.dicom.index.store.connect`). The loader
checks every pattern in Python ``re`` and in RE2 and names the rule at fault.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from radtl.dicom.index.sql import sql_identifier, sql_literal
from radtl.errors import RadtlError

__all__ = [
    "BODY_PART_COLUMNS",
    "DEFAULT_RULES_PATH",
    "RECORDED",
    "BodyPartRule",
    "BodyPartRuleError",
    "BodyPartRules",
    "body_part_query_sql",
    "body_part_sql",
    "impute_body_parts",
    "load_body_part_rules",
    "normalized_sources_sql",
    "normalized_text_sql",
]

DEFAULT_RULES_PATH = Path(__file__).with_name("body_part_rules.yaml")
"""radtl's own rules, installed with the package."""

RECORDED = "BodyPartExamined"
"""The attribute imputed; also the source reported for a recorded value."""

BODY_PART_COLUMNS = ("BodyPartExaminedImputed", "BodyPartExaminedRule", "BodyPartExaminedSource")
"""The output columns, in the order :func:`body_part_sql` gives them."""

_ALIAS_PREFIX = "_bp_"
_RULE_KEYS = ("name", "body_part", "pattern")
_TOP_KEYS = ("sources", "rules")
_BODY_PART_TERM = re.compile(r"^[A-Z0-9]+$")


class BodyPartRuleError(RadtlError, ValueError):
    """A rules file that cannot be used: the file, the rule (name or position) and what is wrong."""


@dataclass(frozen=True)
class BodyPartRule:
    """One rule: where ``pattern`` matches a normalised source text, BodyPartExamined is ``body_part``."""

    name: str
    body_part: str
    pattern: str


@dataclass(frozen=True)
class BodyPartRules:
    """The source attributes (DICOM keywords, in the order tried) and the rules (first match wins)."""

    sources: tuple[str, ...]
    rules: tuple[BodyPartRule, ...]


# ---------------------------------------------------------------------------------------------
# loading


def _re2_error(con: duckdb.DuckDBPyConnection, pattern: str) -> str | None:
    """RE2's complaint about ``pattern`` (as DuckDB compiles it), or None when it compiles."""
    try:
        con.execute("SELECT regexp_matches('', ?, 'i')", [pattern]).fetchall()
    except duckdb.Error as error:
        return str(error)
    return None


def _check_rule(item, index: int, where: str, names: set[str], con: duckdb.DuckDBPyConnection) -> BodyPartRule:
    label = f"{where}: rule {index + 1}"
    if not isinstance(item, Mapping):
        raise BodyPartRuleError(f"{label}: expected a mapping with keys {', '.join(_RULE_KEYS)}, got {item!r}")
    name = item.get("name")
    if isinstance(name, str) and name.strip():
        label = f"{label} ({name!r})"
    unknown = sorted(str(key) for key in item if key not in _RULE_KEYS)
    if unknown:
        raise BodyPartRuleError(f"{label}: unknown key(s) {', '.join(unknown)}; a rule has exactly "
                                f"{', '.join(_RULE_KEYS)}")
    missing = [key for key in _RULE_KEYS if key not in item]
    if missing:
        raise BodyPartRuleError(f"{label}: missing key(s) {', '.join(missing)}")
    if not isinstance(name, str) or not name.strip():
        raise BodyPartRuleError(f"{label}: name must be a non-empty string, got {name!r}")
    if name in names:
        raise BodyPartRuleError(f"{label}: duplicate rule name {name!r}; names must be unique")
    body_part = item["body_part"]
    if not isinstance(body_part, str) or not _BODY_PART_TERM.match(body_part):
        raise BodyPartRuleError(f"{label}: body_part must be a BodyPartExamined defined term (DICOM PS3.16 "
                                f"Annex L) in upper-case letters and digits, e.g. CHEST or CSPINE; got {body_part!r}")
    pattern = item["pattern"]
    if not isinstance(pattern, str) or not pattern:
        raise BodyPartRuleError(f"{label}: pattern must be a non-empty string, got {pattern!r}")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise BodyPartRuleError(f"{label}: pattern {pattern!r} is not a valid Python regular expression: "
                                f"{error}") from None
    problem = _re2_error(con, pattern)
    if problem is not None:
        raise BodyPartRuleError(f"{label}: pattern {pattern!r} is not valid in RE2 (DuckDB's regular expressions; "
                                f"no lookarounds or backreferences): {problem}")
    if compiled.search("") is not None:
        raise BodyPartRuleError(f"{label}: pattern {pattern!r} matches the empty text, so it would match every file")
    names.add(name)
    return BodyPartRule(name=name, body_part=body_part, pattern=pattern)


def _in_dictionary(keyword: str) -> bool:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword) is not None


def _check_sources(sources, where: str, dictionary: bool = True) -> tuple[str, ...]:
    """The rules file's sources, each a DICOM keyword (looked up in pydicom's dictionary when ``dictionary``)."""
    if not isinstance(sources, list) or not sources:
        raise BodyPartRuleError(f"{where}: sources must be a non-empty list of DICOM keywords, got {sources!r}")
    is_keyword = _in_dictionary if dictionary else str.isidentifier
    seen: list[str] = []
    for keyword in sources:
        if not isinstance(keyword, str) or not is_keyword(keyword):
            raise BodyPartRuleError(f"{where}: source {keyword!r} is not a DICOM keyword (e.g. ProtocolName)")
        if keyword == RECORDED:
            raise BodyPartRuleError(f"{where}: source {keyword!r} is the attribute being imputed, not a source")
        if keyword in seen:
            raise BodyPartRuleError(f"{where}: source {keyword!r} is listed twice")
        seen.append(keyword)
    return tuple(seen)


def load_body_part_rules(path: str | os.PathLike | None = None) -> BodyPartRules:
    """Read and check a rules file (default: radtl's own, :data:`DEFAULT_RULES_PATH`).

    Raises:
        BodyPartRuleError: the file is unreadable or malformed, a source is not a DICOM
            keyword, or a rule has an unknown or missing key, a duplicate name, a body_part
            that is not an upper-case term, or a pattern that Python ``re`` or RE2 rejects or
            that matches the empty text. The message names the file and the rule.
    """
    if path is None:
        return _default_rules()
    return _load(Path(path))


@functools.lru_cache(maxsize=1)
def _default_rules() -> BodyPartRules:
    # radtl's own file is checked against the DICOM dictionary by tests/dicom/index/test_body_part.py, not at every query:
    # the lookup imports pydicom, which `radtl query` otherwise never needs
    return _load(DEFAULT_RULES_PATH, dictionary=False)


def _load(path: Path, dictionary: bool = True) -> BodyPartRules:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BodyPartRuleError(f"{where}: cannot read the rules file: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BodyPartRuleError(f"{where}: not valid YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise BodyPartRuleError(f"{where}: expected a mapping with keys {', '.join(_TOP_KEYS)}")
    unknown = sorted(str(key) for key in data if key not in _TOP_KEYS)
    if unknown:
        raise BodyPartRuleError(f"{where}: unknown key(s) {', '.join(unknown)}; the file has {', '.join(_TOP_KEYS)}")
    sources = _check_sources(data.get("sources"), where, dictionary)
    items = data.get("rules")
    if not isinstance(items, list) or not items:
        raise BodyPartRuleError(f"{where}: rules must be a non-empty list, got {items!r}")
    names: set[str] = set()
    with duckdb.connect() as con:
        rules = tuple(_check_rule(item, index, where, names, con) for index, item in enumerate(items))
    return BodyPartRules(sources=sources, rules=rules)


# ---------------------------------------------------------------------------------------------
# SQL


def normalized_text_sql(column_sql: str) -> str:
    """A DuckDB expression: the text ``column_sql`` (an already quoted column or any expression) normalised.

    Words run together in camel case split (``HeadRoutine`` -> ``Head Routine``), lower case,
    ``đ`` -> ``dj``, accents stripped, runs of non-letters/non-digits -> one space, trimmed;
    NULL stays NULL.
    """
    split = rf"regexp_replace(CAST({column_sql} AS VARCHAR), '(\p{{Ll}})(\p{{Lu}})', '\1 \2', 'g')"
    lowered = f"replace(lower({split}), 'đ', 'dj')"
    return rf"trim(regexp_replace(strip_accents({lowered}), '[^\pL\pN]+', ' ', 'g'))"


def _sources_present(rules: BodyPartRules, columns: Collection[str]) -> list[str]:
    present = set(columns)
    return [source for source in rules.sources if source in present]


def normalized_sources_sql(rules: BodyPartRules, columns: Collection[str]) -> dict[str, str]:
    """Alias -> expression of each source's normalised text (``_bp_ProtocolName``, ...), for an inner SELECT.

    Only the sources among ``columns``, in the configured order. :func:`body_part_sql` with
    ``normalized=True`` refers to these aliases.
    """
    return {_ALIAS_PREFIX + source: normalized_text_sql(sql_identifier(source))
            for source in _sources_present(rules, columns)}


def body_part_sql(rules: BodyPartRules, columns: Collection[str], normalized: bool = False) -> dict[str, str]:
    """The three output expressions (:data:`BODY_PART_COLUMNS` -> SQL) for a SELECT list.

    Args:
        rules: the rules (:func:`load_body_part_rules`).
        columns: the columns of the table selected from; sources not among them are skipped,
            and without ``BodyPartExamined`` every row counts as not recorded.
        normalized: refer to the aliases of :func:`normalized_sources_sql` (computed in an
            inner SELECT) instead of normalising each source inline.
    """
    sources = _sources_present(rules, columns)
    recorded = (f"nullif(upper(trim(CAST({sql_identifier(RECORDED)} AS VARCHAR))), '')"
                if RECORDED in set(columns) else None)
    texts = {source: sql_identifier(_ALIAS_PREFIX + source) if normalized else normalized_text_sql(sql_identifier(source))
             for source in sources}
    # One CASE picks the outcome: 1 = recorded, 2.. = the (rule, source) pairs in match order, NULL = none.
    # The three outputs index lists with that same expression, so DuckDB evaluates it once per row
    # (common subexpression elimination) and the patterns run once, not three times.
    outcomes: list[tuple[str | None, str | None, str | None]] = [(None, None, RECORDED)]
    branches = [] if recorded is None else [f"WHEN {recorded} IS NOT NULL THEN 1"]
    for rule in rules.rules:
        for source in sources:
            outcomes.append((rule.body_part, rule.name, source))
            branches.append(f"WHEN regexp_matches({texts[source]}, {sql_literal(rule.pattern)}, 'i') "
                            f"THEN {len(outcomes)}")
    if not branches:
        return {name: "CAST(NULL AS VARCHAR)" for name in BODY_PART_COLUMNS}
    outcome = "(CASE " + " ".join(branches) + " END)"

    def pick(position: int) -> str:
        values = ", ".join("NULL" if item[position] is None else sql_literal(item[position]) for item in outcomes)
        return f"CAST([{values}][{outcome}] AS VARCHAR)"

    imputed = pick(0) if recorded is None else f"coalesce({recorded}, {pick(0)})"
    return {"BodyPartExaminedImputed": imputed, "BodyPartExaminedRule": pick(1), "BodyPartExaminedSource": pick(2)}


def body_part_query_sql(rules: BodyPartRules, columns: Collection[str], relation_sql: str) -> str:
    """A whole query: every column of ``relation_sql`` (a table, view or parenthesised query) plus the three outputs.

    Each source is normalised once, in an inner SELECT whose aliases are dropped again.
    """
    normalized = normalized_sources_sql(rules, columns)
    inner = ", ".join(["*"] + [f"{expression} AS {sql_identifier(alias)}" for alias, expression in normalized.items()])
    outer = ", ".join(f"{expression} AS {sql_identifier(name)}"
                      for name, expression in body_part_sql(rules, columns, normalized=True).items())
    hidden = f" EXCLUDE ({', '.join(sql_identifier(alias) for alias in normalized)})" if normalized else ""
    return f"SELECT *{hidden}, {outer} FROM (SELECT {inner} FROM {relation_sql})"


def impute_body_parts(
    records: Iterable[Mapping[str, str | None]],
    rules: BodyPartRules | None = None,
) -> list[tuple[str | None, str | None, str | None]]:
    """(imputed value, rule, source) for each record, in order, by the same SQL as the index's view.

    For small inputs and tests: the records (mappings from DICOM keyword to text; missing
    keys are NULL) go into an in-memory DuckDB table with the sources and BodyPartExamined
    as columns, and :func:`body_part_query_sql` runs over it.
    """
    rules = rules or load_body_part_rules()
    columns = [*rules.sources, RECORDED]
    rows = [[index] + [None if record.get(c) is None else str(record.get(c)) for c in columns]
            for index, record in enumerate(records)]
    if not rows:
        return []
    row_column = "_bp_row"
    with duckdb.connect() as con:
        definitions = ", ".join([f"{row_column} BIGINT"] + [f"{sql_identifier(c)} VARCHAR" for c in columns])
        con.execute(f"CREATE TABLE records ({definitions})")
        con.executemany(f"INSERT INTO records VALUES ({', '.join('?' * (len(columns) + 1))})", rows)
        outputs = ", ".join(sql_identifier(name) for name in BODY_PART_COLUMNS)
        query = body_part_query_sql(rules, columns, "records")
        return [tuple(row) for row in con.execute(f"SELECT {outputs} FROM ({query}) ORDER BY {row_column}").fetchall()]
