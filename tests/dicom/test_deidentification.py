"""The Basic Profile of DICOM PS3.15 Table E.1-1 as data: its rows, its range rules, its UID actions."""

import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.tag import Tag

from radtl.dicom.deidentification import (
    BASIC_PROFILE,
    BASIC_PROFILE_CODE,
    OPTIONS,
    SAFE_PRIVATE,
    basic_profile_action,
    is_safe_private,
    is_uid_replacement,
    option_cell,
    profile_action,
)

# Rows added to Table E.1-1 after pydicom 3.0's data dictionary was generated (DICOM 2024c):
# the diagnosis code sequences, Person Names to Use and pronouns, Gender Identity and Sex
# Parameters for Clinical Use, Ethnic Groups, and the waveform annotation and display
# Attributes. pydicom 3.0 has no keyword for them.
NOT_IN_PYDICOM_3_0 = {
    0x00081301,  # Principal Diagnosis Code Sequence
    0x00081302,  # Primary Diagnosis Code Sequence
    0x00081303,  # Secondary Diagnoses Code Sequence
    0x00081304,  # Histological Diagnoses Code Sequence
    0x00100011,  # Person Names to Use Sequence
    0x00100012,  # Name to Use
    0x00100013,  # Name to Use Comment
    0x00100014,  # Third Person Pronouns Sequence
    0x00100015,  # Pronoun Code Sequence
    0x00100016,  # Pronoun Comment
    0x00100041,  # Gender Identity Sequence
    0x00100042,  # Sex Parameters for Clinical Use Category Comment
    0x00100043,  # Sex Parameters for Clinical Use Category Sequence
    0x00100044,  # Gender Identity Code Sequence
    0x00100045,  # Gender Identity Comment
    0x00100046,  # Sex Parameters for Clinical Use Category Code Sequence
    0x00100047,  # Sex Parameters for Clinical Use Category Reference
    0x00102162,  # Ethnic Groups
    0x0040A034,  # Effective Start DateTime
    0x0040A035,  # Effective Stop DateTime
    0x0040B034,  # Annotation DateTime
    0x0040B036,  # Segment Definition DateTime
    0x0040B03B,  # Montage Name
    0x0040B03F,  # Montage Channel Label
    0x0040E012,  # Display URI
}

BASIC_PROFILE_CODES = {"D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}


def action(keyword):
    return basic_profile_action(tag_for_keyword(keyword))


class TestTable:
    def test_rows_are_public_attributes_pydicom_knows(self):
        unknown = {tag for tag in BASIC_PROFILE if not keyword_for_tag(tag)}
        assert unknown <= NOT_IN_PYDICOM_3_0

    def test_rows_are_public_groups(self):
        assert all((tag >> 16) % 2 == 0 for tag in BASIC_PROFILE)

    def test_rows_hold_basic_profile_codes_only(self):
        assert set(BASIC_PROFILE.values()) <= BASIC_PROFILE_CODES

    def test_rows_are_in_tag_order(self):
        assert list(BASIC_PROFILE) == sorted(BASIC_PROFILE)

    def test_table_is_complete_size(self):
        assert len(BASIC_PROFILE) >= 250

    def test_table_is_read_only(self):
        with pytest.raises(TypeError):
            BASIC_PROFILE[0x00080060] = "X"  # type: ignore[index]

    def test_uid_rows_replace_the_uid_unless_the_table_says_otherwise(self):
        # Affected SOP Instance UID is removed (X); Annotation Group UID gets a dummy (D).
        uid_rows = {
            tag: code for tag, code in BASIC_PROFILE.items() if keyword_for_tag(tag) and dictionary_VR(tag) == "UI"
        }
        assert {tag for tag, code in uid_rows.items() if code != "U"} == {0x00001000, 0x006A0003}


class TestAction:
    @pytest.mark.parametrize(
        "keyword, expected",
        [
            ("PatientName", "Z"),
            ("PatientID", "Z/D"),  # Z until 2024b's table; Z/D since
            ("PatientBirthDate", "Z"),
            ("PatientSex", "Z"),
            ("AccessionNumber", "Z"),
            ("StudyID", "Z"),
            ("StudyDate", "Z"),
            ("StudyTime", "Z"),
            ("SeriesDate", "X/D"),
            ("ContentDate", "Z/D"),
            ("AcquisitionDateTime", "X/Z/D"),
            ("StudyInstanceUID", "U"),
            ("SeriesInstanceUID", "U"),
            ("SOPInstanceUID", "U"),
            ("FrameOfReferenceUID", "U"),
            ("InstitutionName", "X/Z/D"),
            ("InstitutionAddress", "X"),
            ("ReferringPhysicianName", "Z"),
            ("OperatorsName", "X/Z/D"),
            ("StationName", "X/Z/D"),
            ("DeviceSerialNumber", "X/Z/D"),
            ("StudyDescription", "X"),
            ("SeriesDescription", "X"),
            ("ImageComments", "X"),
            ("ProtocolName", "X/D"),
            ("PatientAge", "X"),
            ("SourceImageSequence", "X/Z/U*"),
        ],
    )
    def test_known_attribute_has_the_tables_action(self, keyword, expected):
        assert action(keyword) == expected

    @pytest.mark.parametrize(
        "keyword",
        ["Modality", "Rows", "BodyPartExamined", "WindowCenter", "SliceThickness", "Manufacturer", "SOPClassUID"],
    )
    def test_attribute_the_table_does_not_list_is_kept(self, keyword):
        assert action(keyword) is None

    def test_accepts_a_pydicom_tag(self):
        assert basic_profile_action(Tag("PatientName")) == "Z"

    @pytest.mark.parametrize("tag", [0x60003000, 0x60023000, 0x601E3000])
    def test_overlay_data_of_any_overlay_group_is_removed(self, tag):
        assert basic_profile_action(tag) == "X"

    def test_overlay_comments_are_removed(self):
        assert basic_profile_action(0x60024000) == "X"

    def test_other_overlay_attributes_are_kept(self):
        assert basic_profile_action(0x60020010) is None  # Overlay Rows

    @pytest.mark.parametrize("tag", [0x50000010, 0x50023000, 0x501E0005])
    def test_curve_data_is_removed(self, tag):
        assert basic_profile_action(tag) == "X"

    @pytest.mark.parametrize("tag", [0x00091001, 0x00090010, 0x7FE11010, 0x60010010])
    def test_private_attribute_is_removed(self, tag):
        assert basic_profile_action(tag) == "X"

    @pytest.mark.parametrize("tag", [-1, 0x1_0000_0000])
    def test_number_that_is_no_tag_is_refused(self, tag):
        with pytest.raises(ValueError, match="not a DICOM tag"):
            basic_profile_action(tag)


class TestUidReplacement:
    @pytest.mark.parametrize("code", ["U", "X/Z/U*"])
    def test_uid_replacing_codes(self, code):
        assert is_uid_replacement(code)

    @pytest.mark.parametrize("code", ["D", "Z", "X", "Z/D", "X/Z", "X/D", "X/Z/D"])
    def test_other_codes(self, code):
        assert not is_uid_replacement(code)

    def test_uid_attributes_are_replaced(self):
        assert is_uid_replacement(action("StudyInstanceUID"))


class TestOptions:
    """PS3.15 E.3: each Option radtl offers keeps (K) or cleans (C) what its column of Table E.1-1 names."""

    def test_offered_options_carry_their_cid_7050_code(self):
        codes = {name: option.code for name, option in OPTIONS.items()}
        assert codes["retain-longitudinal-dates"] == (
            "113107", "DCM", "Retain Longitudinal Temporal Information Modified Dates Option")
        assert codes["clean-descriptions"] == ("113105", "DCM", "Clean Descriptors Option")
        assert {code[0] for code in codes.values()} == {"113105", "113107", "113108", "113109", "113111", "113112"}

    def test_basic_profile_code(self):
        assert BASIC_PROFILE_CODE == ("113100", "DCM", "Basic Application Confidentiality Profile")

    def test_without_options_the_basic_code_applies(self):
        assert profile_action(tag_for_keyword("StudyDate")) == "Z"

    @pytest.mark.parametrize("keyword, option, expected", [
        ("StudyDate", "retain-longitudinal-dates", "C"),
        ("AcquisitionDateTime", "retain-longitudinal-dates", "C"),
        ("StudyTime", "retain-longitudinal-dates", "C"),
        ("PatientSex", "retain-patient-characteristics", "K"),
        ("PatientAge", "retain-patient-characteristics", "K"),
        ("PatientWeight", "retain-patient-characteristics", "K"),
        ("Allergies", "retain-patient-characteristics", "C"),
        ("StationName", "retain-device-identity", "K"),
        ("DeviceSerialNumber", "retain-device-identity", "K"),
        ("DeviceUID", "retain-device-identity", "K"),
        ("InstitutionName", "retain-institution-identity", "K"),
        ("InstitutionAddress", "retain-institution-identity", "K"),
        ("StudyDescription", "clean-descriptions", "C"),
        ("SeriesDescription", "clean-descriptions", "C"),
        ("ImageComments", "clean-descriptions", "C"),
    ])
    def test_option_overrides_the_basic_code_where_its_column_says(self, keyword, option, expected):
        assert profile_action(tag_for_keyword(keyword), [option]) == expected

    @pytest.mark.parametrize("keyword, option", [
        ("PatientBirthDate", "retain-longitudinal-dates"),  # no Option keeps the birth date
        ("PatientName", "retain-patient-characteristics"),
        ("PatientID", "retain-institution-identity"),
        ("AccessionNumber", "retain-device-identity"),
        ("OperatorsName", "retain-device-identity"),
        ("StudyInstanceUID", "retain-longitudinal-dates"),
    ])
    def test_option_leaves_the_attributes_it_does_not_name_to_the_basic_profile(self, keyword, option):
        assert profile_action(tag_for_keyword(keyword), [option]) == action(keyword)

    def test_clean_wins_over_keep_when_two_options_name_an_attribute(self):
        # Allergies: C in Retain Patient Characteristics and in Clean Descriptors
        assert profile_action(tag_for_keyword("Allergies"), ["retain-patient-characteristics",
                                                              "clean-descriptions"]) == "C"

    def test_private_attribute_is_cleaned_only_with_retain_safe_private(self):
        assert profile_action(0x70531000) == "X"
        assert profile_action(0x70531000, ["retain-safe-private"]) == "C"

    def test_attribute_the_table_does_not_list_stays_unlisted_whatever_the_options(self):
        assert profile_action(tag_for_keyword("Modality"), list(OPTIONS)) is None

    def test_unknown_option_is_refused(self):
        with pytest.raises(KeyError):
            profile_action(tag_for_keyword("StudyDate"), ["retain-everything"])

    def test_option_columns_agree_with_themselves(self):
        # a date the Full Dates Option keeps is one the Modified Dates Option cleans (and nothing else)
        dates = {tag for tag in BASIC_PROFILE if option_cell(tag, "retain-longitudinal-dates")}
        assert len(dates) >= 50 and all(option_cell(tag, "retain-longitudinal-dates") == "C" for tag in dates)


class TestSafePrivate:
    """PS3.15 E.3.10 and Table E.3.10-1, with radtl's stricter reading of its Note 2."""

    def test_listed_attribute_of_its_creator_is_safe(self):
        assert is_safe_private("Philips PET Private Group", 0x70531000, "DS")  # SUV Factor (7053,xx00)

    def test_block_number_does_not_matter(self):
        assert is_safe_private("Philips PET Private Group", 0x70531100, "DS")

    def test_same_element_of_another_creator_is_not_safe(self):
        assert not is_safe_private("ACME PRIVATE", 0x70531000, "DS")

    def test_attribute_with_another_vr_than_listed_is_not_safe(self):
        assert not is_safe_private("Philips PET Private Group", 0x70531000, "LO")

    def test_ob_is_never_kept_even_when_listed(self):
        listed_ob = next(row for row in SAFE_PRIVATE.values() if row.vr == "OB")
        tag = listed_ob.group << 16 | 0x1000 | listed_ob.element_byte
        assert not is_safe_private(listed_ob.private_creator, tag)

    def test_private_creator_element_itself_is_not_a_safe_attribute(self):
        assert not is_safe_private("Philips PET Private Group", 0x70530010)

    def test_table_lists_130_rows(self):
        assert len(SAFE_PRIVATE) == 130
