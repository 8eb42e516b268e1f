"""Specification tests for radtl.dicom.index.body_part: BodyPartExamined imputed by rules kept as data."""

from __future__ import annotations

import duckdb
import pytest
import yaml

from radtl.dicom.index.body_part import (
    BODY_PART_COLUMNS,
    DEFAULT_RULES_PATH,
    BodyPartRule,
    BodyPartRuleError,
    BodyPartRules,
    body_part_query_sql,
    body_part_sql,
    impute_body_parts,
    load_body_part_rules,
    normalized_sources_sql,
    normalized_text_sql,
)

# BodyPartExamined defined terms used by the packaged rules, as spelled in DICOM PS3.16 Annex L
# ("Correspondence of Anatomic Region Codes and Body Part Examined Defined Terms").
ANNEX_L_TERMS = {
    "ABDOMEN", "ABDOMENPELVIS", "ADRENAL", "ANKLE", "AORTA", "BLADDER", "BRAIN", "BREAST", "CALCANEUS",
    "CHEST", "CHESTABDOMEN", "CHESTABDPELVIS", "CLAVICLE", "COCCYX", "COLON", "CSPINE", "EAR", "ELBOW",
    "ESOPHAGUS", "FACE", "FEMUR", "FINGER", "FOOT", "FOREARM", "GALLBLADDER", "HAND", "HEAD", "HEADNECK",
    "HEART", "HIP", "HUMERUS", "JAW", "KIDNEY", "KNEE", "LIVER", "LOWERLEG", "LOWERLIMB", "LSPINE", "NECK",
    "ORBIT", "PANCBILEDUCT", "PANCREAS", "PELVIS", "PROSTATE", "RECTUM", "SCROTUM", "SELLA", "SHOULDER",
    "SIJOINT", "SKULL", "SPINE", "SPLEEN", "SSPINE", "THYROID", "TLSPINE", "TMJ", "TOE", "TSPINE",
    "UPPERLIMB", "UTERUS", "WHOLEBODY", "WRIST",
}

EXAMPLES = [
    # Croatian, with and without diacritics
    ("RTG desnog ručnog zgloba", "WRIST"),
    ("RTG desnog rucnog zgloba", "WRIST"),
    ("CT toraksa s kontrastom", "CHEST"),
    ("RTG PLUĆA PA", "CHEST"),
    ("RTG pluca PA/LL", "CHEST"),
    ("RTG srca i pluća", "CHEST"),
    ("RTG prsnog koša", "CHEST"),
    ("RTG rebara lijevo", "CHEST"),
    ("MR L-S kralježnice", "LSPINE"),
    ("MR LS kralj.", "LSPINE"),
    ("MR lumbalne kraljeznice", "LSPINE"),
    ("RTG vratne kralježnice", "CSPINE"),
    ("Rtg Th kralježnice", "TSPINE"),
    ("RTG torakalne kralježnice", "TSPINE"),
    ("MR cijele kralježnice", "SPINE"),
    ("RTG sakruma", "SSPINE"),
    ("RTG SI zglobova", "SIJOINT"),
    ("CT glave nativno", "HEAD"),
    ("MR mozga", "BRAIN"),
    ("MR hipofize", "SELLA"),
    ("RTG lubanje", "SKULL"),
    ("CT sinusa", "HEAD"),
    ("MSCT orbita", "ORBIT"),
    ("CT temporalnih kostiju", "EAR"),
    ("RTG kostiju lica", "FACE"),
    ("Ortopantomogram", "JAW"),
    ("CT vrata s kontrastom", "NECK"),
    ("UZV štitnjače", "THYROID"),
    ("Mamografija obostrano", "BREAST"),
    ("UZV dojki", "BREAST"),
    ("TACE jetre", "LIVER"),
    ("Kemoembolizacija", "LIVER"),
    ("MR jetre", "LIVER"),
    ("MR gušterače", "PANCREAS"),
    ("UZV bubrega", "KIDNEY"),
    ("CT urografija", "KIDNEY"),
    ("CT koronarografija", "HEART"),
    ("MR srca", "HEART"),
    ("UZV trbuha", "ABDOMEN"),
    ("CT abdomena i zdjelice", "ABDOMENPELVIS"),
    ("CT toraksa, abdomena i zdjelice", "CHESTABDPELVIS"),
    ("MR prostate", "PROSTATE"),
    ("RTG zdjelice i kukova", "PELVIS"),
    ("RTG oba kuka", "HIP"),
    ("RTG natkoljenice", "FEMUR"),
    ("Koljeno lijevo", "KNEE"),
    ("MR koljena L s kontrastom", "KNEE"),
    ("RTG potkoljenice", "LOWERLEG"),
    ("RTG lijevog gležnja", "ANKLE"),
    ("RTG pete", "CALCANEUS"),
    ("RTG stopala", "FOOT"),
    ("RTG palca lijevog stopala", "TOE"),
    ("RTG desnog ramena", "SHOULDER"),
    ("RTG ključne kosti", "CLAVICLE"),
    ("RTG nadlaktice", "HUMERUS"),
    ("RTG lakta", "ELBOW"),
    ("RTG podlaktice", "FOREARM"),
    ("RTG šake AP", "HAND"),
    ("Prst desne šake", "FINGER"),
    ("Koštana dob", "HAND"),
    ("Angiografija donjih ekstremiteta", "LOWERLIMB"),
    ("MSCT cijelog tijela", "WHOLEBODY"),
    # English and abbreviations
    ("Rtg C-spine AP/LAT", "CSPINE"),
    ("CT C spine w/o", "CSPINE"),
    ("T-SPINE 2 views", "TSPINE"),
    ("L/S spine", "LSPINE"),
    ("Chest PA", "CHEST"),
    ("CXR portable", "CHEST"),
    ("Thorax pa", "CHEST"),
    ("Head CT w/o contrast", "HEAD"),
    ("Brain MRI", "BRAIN"),
    ("Mammo screening bilat", "BREAST"),
    ("Cardiac MRI", "HEART"),
    ("Coronary CTA", "HEART"),
    ("CT abdomen/pelvis", "ABDOMENPELVIS"),
    ("CT chest abdomen pelvis", "CHESTABDPELVIS"),
    ("Whole body PET", "WHOLEBODY"),
    ("MRCP", "PANCBILEDUCT"),
    ("Renal US", "KIDNEY"),
    ("Pelvis AP", "PELVIS"),
    ("Hip R", "HIP"),
    ("Knee 3 views", "KNEE"),
    ("Tib/Fib", "LOWERLEG"),
    ("Ankle AP/LAT/Mortise", "ANKLE"),
    ("Heel axial", "CALCANEUS"),
    ("Foot 3 views", "FOOT"),
    ("Big toe", "TOE"),
    ("Long leg standing", "LOWERLIMB"),
    ("Shoulder Y view", "SHOULDER"),
    ("Elbow", "ELBOW"),
    ("Wrist 2V", "WRIST"),
    ("Scaphoid series", "WRIST"),
    ("Left hand", "HAND"),
    ("Bone age", "HAND"),
    ("Finger lat", "FINGER"),
    ("TMJ open/closed", "TMJ"),
    ("Facial bones", "FACE"),
    ("IAC MRI", "EAR"),
    ("Neck soft tissue", "NECK"),
    ("Coccyx", "COCCYX"),
    ("CTA abdominal aorta", "AORTA"),
    # scanner protocol names (words run together in camel case, ^ and _ as separators)
    ("Head^01_HeadRoutine", "HEAD"),
    ("Abdomen^AbdPelvis", "ABDOMENPELVIS"),
    ("Spine^LSpine", "LSPINE"),
    ("CorCTA", "HEART"),
    ("CaScore", "HEART"),
    ("WB_MRI", "WHOLEBODY"),
    ("Th12-L1", "TLSPINE"),
    # Latin
    ("Articulatio genus", "KNEE"),
    ("Manus dextra", "HAND"),
    ("Pes planus", "FOOT"),
    ("Crus sin.", "LOWERLEG"),
    ("Columna vertebralis", "SPINE"),
    ("Os sacrum", "SSPINE"),
    ("Antebrachium", "FOREARM"),
    ("Calcaneus", "CALCANEUS"),
    ("Hepar", "LIVER"),
    ("Mamma", "BREAST"),
    # typos
    ("Abdomne CT", "ABDOMEN"),
    ("Thoarx", "CHEST"),
    ("Torax PA", "CHEST"),
    ("Pelivs", "PELVIS"),
    ("RTG glezanj", "ANKLE"),
    ("CT abdmoen", "ABDOMEN"),
]

NOT_BODY_PARTS = [
    "college",
    "handover",
    "Localizer",
    "Scout",
    "Topogram",
    "T2 TSE axial",
    "AX T1 FS",
    "Coronal MPR",
    "DWI b1000",
    "Digital radiography",
    "Dose report",
    "Corrected series",
    "Linear method alarm",
    "PET",
    "Patient protocol",
]


def _write_rules(path, rules, sources=("ProtocolName", "StudyDescription", "RequestedProcedureDescription")):
    path.write_text(yaml.safe_dump({"sources": list(sources), "rules": rules}, sort_keys=False), encoding="utf-8")
    return path


def _rules(*rules: tuple[str, str, str], sources=("ProtocolName", "StudyDescription")) -> BodyPartRules:
    return BodyPartRules(sources=tuple(sources), rules=tuple(BodyPartRule(*rule) for rule in rules))


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return [tuple(row) for row in con.execute(sql).fetchall()]


# ---------------------------------------------------------------------------------------------
# the packaged rules


@pytest.fixture(scope="module")
def imputed_descriptions() -> dict[str, tuple]:
    """The packaged rules over every example, as StudyDescription, in one query."""
    texts = [text for text, _ in EXAMPLES]
    return dict(zip(texts, impute_body_parts([{"StudyDescription": text} for text in texts]), strict=True))


@pytest.fixture(scope="module")
def imputed_protocols() -> dict[str, tuple]:
    """The packaged rules over every text that names no body part, as ProtocolName, in one query."""
    return dict(zip(NOT_BODY_PARTS, impute_body_parts([{"ProtocolName": text} for text in NOT_BODY_PARTS]),
                    strict=True))


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_packaged_rules_impute_the_body_part_from_a_description(imputed_descriptions, text, expected):
    value, rule, source = imputed_descriptions[text]
    assert (value, source) == (expected, "StudyDescription"), f"{text!r} matched rule {rule!r}"


@pytest.mark.parametrize("text", NOT_BODY_PARTS)
def test_packaged_rules_leave_texts_that_name_no_body_part_unmatched(imputed_protocols, text):
    assert imputed_protocols[text] == (None, None, None), f"{text!r} matched"


def test_example_table_covers_at_least_sixty_distinct_texts():
    texts = [text for text, _ in EXAMPLES]
    assert len(texts) >= 60
    assert len(set(texts)) == len(texts)


def test_packaged_rules_load_and_compile_in_python_and_re2():
    rules = load_body_part_rules()
    assert rules.sources == ("ProtocolName", "StudyDescription", "RequestedProcedureDescription")
    assert 50 <= len(rules.rules)
    assert len({rule.name for rule in rules.rules}) == len(rules.rules)


def test_packaged_rules_use_only_annex_l_defined_terms():
    rules = load_body_part_rules(DEFAULT_RULES_PATH)
    assert {rule.body_part for rule in rules.rules} <= ANNEX_L_TERMS


def test_packaged_rules_put_specific_rules_before_general_ones():
    names = [rule.name for rule in load_body_part_rules().rules]
    assert names.index("finger") < names.index("hand")
    assert names.index("toe") < names.index("foot")
    assert names.index("cervical_spine") < names.index("spine")
    assert names.index("lumbar_spine") < names.index("spine")
    assert names.index("hip") < names.index("femur") < names.index("head")


# ---------------------------------------------------------------------------------------------
# recorded values, sources, order


def test_recorded_body_part_is_kept_upper_cased_with_source_body_part_examined_and_no_rule():
    records = [{"BodyPartExamined": " chest ", "StudyDescription": "MR mozga"}]
    assert impute_body_parts(records) == [("CHEST", None, "BodyPartExamined")]


def test_blank_recorded_body_part_counts_as_missing():
    records = [{"BodyPartExamined": "   ", "StudyDescription": "MR mozga"}]
    assert impute_body_parts(records) == [("BRAIN", "brain", "StudyDescription")]


def test_no_recorded_value_and_no_match_gives_all_null():
    assert impute_body_parts([{"ProtocolName": "Localizer", "StudyDescription": None}, {}]) == [
        (None, None, None), (None, None, None)]


def test_results_follow_the_order_of_the_records():
    records = [{"ProtocolName": "Knee"}, {"ProtocolName": "Scout"}, {"StudyDescription": "Chest PA"}]
    assert [value for value, _, _ in impute_body_parts(records)] == ["KNEE", None, "CHEST"]


def test_sources_are_tried_in_configured_order_for_the_same_rule():
    records = [{"ProtocolName": "Knee", "StudyDescription": "Koljeno"}]
    assert impute_body_parts(records) == [("KNEE", "knee", "ProtocolName")]
    reversed_sources = _rules(("knee", "KNEE", r"\bknee|\bkoljen"), sources=("StudyDescription", "ProtocolName"))
    assert impute_body_parts(records, reversed_sources) == [("KNEE", "knee", "StudyDescription")]


def test_rule_order_beats_source_order():
    records = [{"ProtocolName": "Hand PA", "StudyDescription": "Finger lat"}]
    assert impute_body_parts(records) == [("FINGER", "finger", "StudyDescription")]


def test_first_matching_rule_wins_when_both_words_appear():
    assert impute_body_parts([{"StudyDescription": "Finger and hand"}]) == [("FINGER", "finger", "StudyDescription")]
    hand_first = _rules(("hand", "HAND", r"\bhand"), ("finger", "FINGER", r"\bfinger"))
    assert impute_body_parts([{"StudyDescription": "Finger and hand"}], hand_first) == [
        ("HAND", "hand", "StudyDescription")]


def test_texts_are_normalised_before_matching():
    rules = _rules(("lumbosacral", "LSPINE", r"^mr l s kraljeznica dj$"))
    assert impute_body_parts([{"ProtocolName": "  MR   L-S/KRALJEŽNICA_(Đ) "}], rules) == [
        ("LSPINE", "lumbosacral", "ProtocolName")]


def test_normalized_text_sql_splits_camel_case_lowers_strips_accents_maps_dj_and_collapses_separators():
    sql = normalized_text_sql("?")
    text = "  Ručni_zglob (L-S)/Đ, gušterača+ŽČŠĆ: x.y  "
    assert duckdb.execute(f"SELECT {sql}", [text]).fetchone()[0] == "rucni zglob l s dj gusteraca zcsc x y"
    assert duckdb.execute(f"SELECT {sql}", ["Head^01_HeadRoutine MRCP"]).fetchone()[0] == "head 01 head routine mrcp"
    assert duckdb.execute(f"SELECT {sql}", [None]).fetchone()[0] is None


# ---------------------------------------------------------------------------------------------
# the SQL over a table


def test_missing_source_column_is_skipped():
    rules = load_body_part_rules()
    con = duckdb.connect()
    con.execute("CREATE TABLE t (StudyDescription VARCHAR, BodyPartExamined VARCHAR)")
    con.execute("INSERT INTO t VALUES ('MR mozga', NULL), ('Knee', 'knee')")
    query = body_part_query_sql(rules, ["StudyDescription", "BodyPartExamined"], "t")
    assert "ProtocolName" not in query
    assert _run(con, f"SELECT {', '.join(BODY_PART_COLUMNS)} FROM ({query})") == [
        ("BRAIN", "brain", "StudyDescription"), ("KNEE", None, "BodyPartExamined")]


def test_table_without_body_part_examined_treats_it_as_missing():
    rules = load_body_part_rules()
    con = duckdb.connect()
    con.execute("CREATE TABLE t (ProtocolName VARCHAR)")
    con.execute("INSERT INTO t VALUES ('Thorax pa')")
    query = body_part_query_sql(rules, ["ProtocolName"], "t")
    assert _run(con, f"SELECT {', '.join(BODY_PART_COLUMNS)} FROM ({query})") == [("CHEST", "chest", "ProtocolName")]


def test_table_without_any_source_gives_the_recorded_value_or_null():
    rules = load_body_part_rules()
    con = duckdb.connect()
    con.execute("CREATE TABLE t (BodyPartExamined VARCHAR)")
    con.execute("INSERT INTO t VALUES ('Hand'), (NULL)")
    expressions = body_part_sql(rules, ["BodyPartExamined"])
    select = ", ".join(f"{expression} AS {name}" for name, expression in expressions.items())
    assert _run(con, f"SELECT {select} FROM t") == [("HAND", None, "BodyPartExamined"), (None, None, None)]


def test_inline_expressions_agree_with_the_composed_query():
    rules = load_body_part_rules()
    columns = ["ProtocolName", "StudyDescription", "BodyPartExamined"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (ProtocolName VARCHAR, StudyDescription VARCHAR, BodyPartExamined VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, NULL)", [(text, None) for text, _ in EXAMPLES[:30]])
    inline = ", ".join(f"{expression} AS {name}" for name, expression in body_part_sql(rules, columns).items())
    composed = body_part_query_sql(rules, columns, "t")
    outputs = ", ".join(BODY_PART_COLUMNS)
    assert _run(con, f"SELECT {inline} FROM t") == _run(con, f"SELECT {outputs} FROM ({composed})")


def test_normalized_sources_sql_names_one_alias_per_present_source():
    rules = load_body_part_rules()
    aliases = normalized_sources_sql(rules, ["RequestedProcedureDescription", "ProtocolName", "Modality"])
    assert list(aliases) == ["_bp_ProtocolName", "_bp_RequestedProcedureDescription"]
    assert '"ProtocolName"' in aliases["_bp_ProtocolName"]


def test_composed_query_keeps_the_table_columns_and_hides_the_aliases():
    rules = load_body_part_rules()
    con = duckdb.connect()
    con.execute("CREATE TABLE t (Modality VARCHAR, ProtocolName VARCHAR)")
    con.execute("INSERT INTO t VALUES ('CR', 'Chest PA')")
    query = body_part_query_sql(rules, ["Modality", "ProtocolName"], "t")
    names = [row[0] for row in con.execute(f"DESCRIBE {query}").fetchall()]
    assert names == ["Modality", "ProtocolName", *BODY_PART_COLUMNS]


def test_single_quotes_in_patterns_and_names_are_escaped():
    rules = _rules(("o'brien", "KNEE", r"o'brien|\bknee"))
    assert impute_body_parts([{"ProtocolName": "Knee"}], rules) == [("KNEE", "o'brien", "ProtocolName")]


# ---------------------------------------------------------------------------------------------
# user rules files


def test_user_rules_file_is_loaded_and_used(tmp_path):
    path = _write_rules(tmp_path / "rules.yaml", [{"name": "paw", "body_part": "HAND", "pattern": r"\bpaw"}])
    rules = load_body_part_rules(path)
    assert rules.rules == (BodyPartRule("paw", "HAND", r"\bpaw"),)
    assert impute_body_parts([{"RequestedProcedureDescription": "Paw x-ray"}], rules) == [
        ("HAND", "paw", "RequestedProcedureDescription")]


def test_pattern_invalid_in_python_raises_naming_the_rule(tmp_path):
    path = _write_rules(tmp_path / "rules.yaml", [{"name": "broken", "body_part": "HAND", "pattern": "(hand"}])
    with pytest.raises(BodyPartRuleError, match=r"rule 1 \('broken'\).*not a valid Python regular expression"):
        load_body_part_rules(path)


def test_pattern_invalid_in_re2_raises_naming_the_rule_and_re2_error(tmp_path):
    rules = [{"name": "ok", "body_part": "KNEE", "pattern": "knee"},
             {"name": "lookahead", "body_part": "HAND", "pattern": "hand(?!over)"}]
    path = _write_rules(tmp_path / "rules.yaml", rules)
    with pytest.raises(BodyPartRuleError, match=r"rule 2 \('lookahead'\).*RE2.*perl operator") as error:
        load_body_part_rules(path)
    assert str(path) in str(error.value)


def test_duplicate_rule_name_raises(tmp_path):
    rules = [{"name": "hand", "body_part": "HAND", "pattern": "hand"},
             {"name": "hand", "body_part": "HAND", "pattern": "saka"}]
    with pytest.raises(BodyPartRuleError, match=r"rule 2 \('hand'\).*duplicate"):
        load_body_part_rules(_write_rules(tmp_path / "rules.yaml", rules))


def test_lower_case_body_part_raises(tmp_path):
    rules = [{"name": "hand", "body_part": "hand", "pattern": "hand"}]
    with pytest.raises(BodyPartRuleError, match=r"rule 1 \('hand'\).*body_part.*upper-case"):
        load_body_part_rules(_write_rules(tmp_path / "rules.yaml", rules))


def test_unknown_rule_key_raises(tmp_path):
    rules = [{"name": "hand", "body_part": "HAND", "pattern": "hand", "laterality": "L"}]
    with pytest.raises(BodyPartRuleError, match=r"rule 1 \('hand'\).*unknown key.*laterality"):
        load_body_part_rules(_write_rules(tmp_path / "rules.yaml", rules))


def test_missing_rule_key_raises(tmp_path):
    with pytest.raises(BodyPartRuleError, match=r"rule 1 \('hand'\).*missing key.*pattern"):
        load_body_part_rules(_write_rules(tmp_path / "rules.yaml", [{"name": "hand", "body_part": "HAND"}]))


def test_pattern_matching_the_empty_text_raises(tmp_path):
    rules = [{"name": "anything", "body_part": "HAND", "pattern": "(?:hand)?"}]
    with pytest.raises(BodyPartRuleError, match=r"rule 1 \('anything'\).*empty text"):
        load_body_part_rules(_write_rules(tmp_path / "rules.yaml", rules))


def test_source_that_is_not_a_dicom_keyword_raises(tmp_path):
    path = _write_rules(tmp_path / "rules.yaml", [{"name": "hand", "body_part": "HAND", "pattern": "hand"}],
                        sources=["ProtocolName", "Protocol Name"])
    with pytest.raises(BodyPartRuleError, match=r"source 'Protocol Name' is not a DICOM keyword"):
        load_body_part_rules(path)


def test_empty_rules_or_sources_raise(tmp_path):
    with pytest.raises(BodyPartRuleError, match="rules must be a non-empty list"):
        load_body_part_rules(_write_rules(tmp_path / "a.yaml", []))
    with pytest.raises(BodyPartRuleError, match="sources must be a non-empty list"):
        load_body_part_rules(_write_rules(tmp_path / "b.yaml", [{"name": "h", "body_part": "HAND", "pattern": "h"}],
                                          sources=[]))


def test_file_that_is_not_a_mapping_or_not_yaml_raises(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(BodyPartRuleError, match="expected a mapping"):
        load_body_part_rules(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("sources: [a\nrules: {", encoding="utf-8")
    with pytest.raises(BodyPartRuleError, match="not valid YAML"):
        load_body_part_rules(tmp_path / "bad.yaml")


def test_missing_rules_file_raises(tmp_path):
    with pytest.raises(BodyPartRuleError, match="cannot read"):
        load_body_part_rules(tmp_path / "absent.yaml")


def test_radtl_rules_sources_are_dicom_keywords():
    """radtl's own rules file skips the dictionary lookup at query time (no pydicom import), so it is checked here."""
    from radtl.dicom.index.body_part import DEFAULT_RULES_PATH, _load

    assert _load(DEFAULT_RULES_PATH, dictionary=True) == load_body_part_rules()
