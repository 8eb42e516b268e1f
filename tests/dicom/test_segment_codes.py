"""Labels files and radtl's table of SNOMED CT codes for segments (radtl.dicom.segment_codes)."""

from __future__ import annotations

from collections import Counter

import pytest
from pydicom.sr._concepts_dict import concepts
from pydicom.sr.codedict import codes

from radtl.dicom.segment_codes import (
    GENERIC_CODE,
    LabelsFileError,
    generic_segment,
    parse_code,
    read_labels,
    structures,
)

#: Every SNOMED CT code PS3.16 lists, as pydicom ships them: code value -> meanings.
PS3_16_SCT: dict[str, set[str]] = {}
for _by_code in concepts["SCT"].values():
    for _value, (_meaning, _) in _by_code.items():
        PS3_16_SCT.setdefault(_value, set()).add(_meaning.lower())


def _codes(segment):
    return [c for c in (segment.category, segment.property_type, segment.anatomic_region,
                        segment.property_type_modifier, segment.anatomic_region_modifier) if c is not None]


def verhoeff_valid(number: str) -> bool:
    """The check digit SNOMED CT identifiers end with (Verhoeff's dihedral scheme, SNOMED CT TIG 6.4)."""
    d = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
         [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
         [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
         [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
    p = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
         [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
         [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]
    check = 0
    for position, digit in enumerate(reversed(number)):
        check = d[check][p[position % 8][int(digit)]]
    return check == 0


# --- the shipped table ---------------------------------------------------------------------------


def test_every_shipped_code_is_a_snomed_ct_concept_identifier():
    """Digits with a valid Verhoeff check digit and the concept partition (00), SNOMED CT TIG 6.4."""
    for name, segment in structures().items():
        for code in _codes(segment):
            assert code.scheme_designator == "SCT", name
            assert code.value.isdigit() and verhoeff_valid(code.value) and code.value[-3:-1] == "00", (name, code)


def test_the_findings_use_the_codes_of_ps3_16():
    table = structures()
    assert table["lung_nodule"].property_type == codes.SCT.Nodule
    assert table["lung_nodule"].anatomic_region == codes.SCT.Lung
    assert table["tumor"].property_type.value == codes.SCT.Neoplasm.value
    for name in ("lung_nodule", "tumor", "lesion", "mass"):
        assert table[name].category.value == codes.SCT.MorphologicallyAbnormalStructure.value
        assert all(code.value in PS3_16_SCT for code in _codes(table[name])), name


def test_a_code_ps3_16_names_for_one_side_is_used_for_that_side_only():
    """29700009 is the right subclavian artery: TotalSegmentator's mapping used it for both sides; radtl's does not."""
    for name, segment in structures().items():
        for code in (segment.property_type, segment.anatomic_region):
            meanings = PS3_16_SCT.get(code.value, set()) if code is not None else set()
            for side in ("left", "right"):
                if any(side in meaning.split() for meaning in meanings):
                    assert side in name, (name, code)


def test_every_structure_has_its_own_codes():
    """So to-mask can find a segment's value in a labels file by its codes alone."""
    keys = Counter(tuple((c.value for c in _codes(s))) + (s.property_type_modifier is None,)
                   for s in structures().values())
    assert [key for key, count in keys.items() if count > 1] == []


def test_the_totalsegmentator_table_names_its_117_classes():
    table = read_labels("totalsegmentator")
    assert sorted(table) == list(range(1, 118))
    assert (table[1].label, table[5].label, table[117].label) == ("spleen", "liver", "costal_cartilages")
    assert table[5].property_type == codes.SCT.Liver


# --- labels files ----------------------------------------------------------------------------------


def test_a_labels_file_may_name_structures_or_give_codes(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "# my model\nvalue,label,structure,category,type,region\n"
        "1,,liver,,,\n"
        "2,Liver tumour,,SCT:49755003:Morphologically Abnormal Structure,SCT:108369006:Neoplasm,SCT:10200004:Liver\n"
    )
    table = read_labels(labels)
    assert table[1].label == "liver" and table[1].property_type == codes.SCT.Liver
    assert table[2].label == "Liver tumour" and table[2].anatomic_region == codes.SCT.Liver


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("value,structure\n1,liver\n1,spleen\n", "value 1 appears twice"),
        ("value,structure\n1,livre\n", "unknown structure 'livre'"),
        ("value,structure\n0,liver\n", "0 is the background"),
        ("value,structure\nfive,liver\n", "not a whole number"),
        ("value,type\n1,SCT:10200004:Liver\n", "give both category and type"),
        ("value,category,type\n1,SCT:123037004:Anatomical Structure,10200004\n", "SCHEME:VALUE:Meaning"),
        ("value,color\n1,red\n", "unknown column.*did you mean colour"),
        ("value,label\n1,Liver\n", "neither a structure nor category and type"),
        ("label,structure\nLiver,liver\n", "no value column"),
    ],
)
def test_a_bad_labels_file_is_refused_naming_the_row(tmp_path, text, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    with pytest.raises(LabelsFileError, match=message):
        read_labels(labels)


def test_an_error_names_the_line_of_the_file(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("# comment\nvalue,structure\n\n1,liver\n2,livre\n")
    with pytest.raises(LabelsFileError, match=r"labels.csv line 5: unknown structure 'livre'"):
        read_labels(labels)


def test_a_structure_brings_its_colour_and_a_row_may_give_its_own(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("value,structure,colour\n1,spleen,\n2,liver,255 0 0\n")
    table = read_labels(labels)
    assert (table[1].colour, table[2].colour) == ((50, 170, 60), (255, 0, 0))


def test_a_colour_out_of_range_is_refused(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("value,structure,colour\n1,spleen,256 0 0\n")
    with pytest.raises(LabelsFileError, match="line 2: colour '256 0 0' is not R G B"):
        read_labels(labels)


def test_a_missing_labels_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_labels(tmp_path / "none.csv")


def test_a_value_without_an_entry_is_a_generic_tissue_segment():
    segment = generic_segment(117)
    assert segment.label == "label 117"
    assert segment.category == segment.property_type == GENERIC_CODE == codes.SCT.Tissue


def test_a_code_keeps_colons_in_its_meaning():
    assert parse_code("99XYZ:1:a: b").meaning == "a: b"
