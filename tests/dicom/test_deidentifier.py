"""De-identifying one data set under the PS3.15 Basic Profile and its options (radtl.dicom.deidentifier)."""

import datetime
import io
import logging
import os
import stat

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, UltrasoundImageStorage

from radtl.dicom.deidentification import OPTIONS
from radtl.dicom.deidentifier import (
    IMPLEMENTATION_CLASS_UID,
    MAX_SEQUENCE_DEPTH,
    DeidentificationError,
    DeidentificationKeys,
    DeidentificationSettings,
    Deidentifier,
    burned_in_reason,
)
from radtl.errors import UsageError
from tests.support.tools import dciodvfy_errors, requires_tool

PLANTED = {
    "PatientName": "Plantedsurname^Plantedgiven",
    "PatientID": "MRN-PLANTED-1",
    "OtherPatientIDs": "OTHERID-PLANTED",
    "PatientBirthDate": "19610223",
    "InstitutionName": "Planted General Hospital",
    "InstitutionAddress": "1 Planted Street, Plantedtown",
    "StationName": "PLANTEDSTN01",
    "OperatorsName": "Operatorplanted^Olga",
    "PerformingPhysicianName": "Performerplanted^Paul",
    "AccessionNumber": "ACCPLANTED77",
    "ReferringPhysicianName": "Referrerplanted^Rita",
    "StudyDate": "20200311",
    "SeriesDate": "20200312",
    "AcquisitionDate": "20200313",
    "ContentDate": "20200314",
}
PRIVATE_NAME = "Privateplanted Name"
NESTED_NAME = "Nestedplanted^Nora"
NESTED_UID = "1.2.999.777.4242.1"
STUDY_UID = "1.2.999.1"
SERIES_UID = "1.2.999.1.2"
SOP_UID = "1.2.999.1.2.3"
FRAME_OF_REFERENCE_UID = "1.2.999.1.9"
PIXELS = np.arange(16, dtype=np.uint16).reshape(4, 4)


def planted_ct(patient_id: str = PLANTED["PatientID"], sop_uid: str = SOP_UID) -> FileDataset:
    """A small CT data set carrying every planted identifying value, one private tag and nested sequences."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE_UID
    ds.Modality = "CT"
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    ds.PatientID = patient_id
    ds.PatientSex = "F"
    ds.PatientAge = "059Y"
    ds.StudyTime = "101500"
    ds.ContentTime = "101600"
    ds.AcquisitionDateTime = "20200313101700.5+0100"
    ds.StudyDescription = "CT chest"
    ds.SeriesDescription = "Plantedsurname follow-up"
    ds.DeviceSerialNumber = "SERIALPLANTED9"
    ds.private_block(0x0009, "ACME 1.0", create=True).add_new(0x01, "LO", PRIVATE_NAME)
    reference = Dataset()
    reference.ReferencedSOPClassUID = CTImageStorage
    reference.ReferencedSOPInstanceUID = "1.2.999.1.2.4"
    ds.ReferencedImageSequence = [reference]
    inner = Dataset()
    inner.ReferencedSOPClassUID = CTImageStorage
    inner.ReferencedSOPInstanceUID = NESTED_UID
    inner.ContentCreatorName = NESTED_NAME
    outer = Dataset()
    outer.SeriesInstanceUID = SERIES_UID
    outer.ReferencedInstanceSequence = [inner]
    ds.ReferencedSeriesSequence = [outer]  # a name and a UID two sequence levels deep
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns = PIXELS.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = PIXELS.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return FileDataset("planted.dcm", ds, file_meta=meta, preamble=b"\x00" * 128)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def keys(tmp_path):
    return DeidentificationKeys.open(tmp_path / "keys")


def day(value: str) -> datetime.date:
    return datetime.datetime.strptime(value, "%Y%m%d").date()


def deidentify(ds, keys, *options, allow_burned_in=False):
    settings = DeidentificationSettings.from_text(list(options), allow_burned_in=allow_burned_in)
    return Deidentifier(settings, keys).deidentify(ds)


class TestBasicProfile:
    def test_no_planted_value_survives_anywhere_in_the_written_file(self, keys):
        written = to_bytes(deidentify(planted_ct(), keys)).lower()
        planted = [*PLANTED.values(), PRIVATE_NAME, NESTED_NAME, NESTED_UID, STUDY_UID, SOP_UID]
        planted += [part for name in (PLANTED["PatientName"], NESTED_NAME) for part in name.split("^")]
        survivors = [value for value in planted if value.lower().encode() in written]
        assert survivors == []

    def test_an_animals_responsible_person_is_emptied_not_removed(self, keys):
        # Type 2C for an animal (PS3.3 C.7.1.1): the table's X would break the IOD (deid-data's cat.dcm)
        ds = planted_ct()
        ds.PatientSpeciesDescription = "Feline"
        ds.ResponsiblePerson, ds.ResponsibleOrganization = "Owner^Planted", "Planted Vets Ltd"
        result = deidentify(ds, keys)
        assert result.ResponsiblePerson == "" and result.ResponsibleOrganization == ""

    def test_a_patients_responsible_person_is_removed(self, keys):
        ds = planted_ct()
        ds.ResponsiblePerson = "Parent^Planted"
        assert "ResponsiblePerson" not in deidentify(ds, keys)

    def test_patient_id_and_name_become_one_pseudonym(self, keys):
        result = deidentify(planted_ct(), keys)
        assert result.PatientID == keys.pseudonym(PLANTED["PatientID"])
        assert str(result.PatientName) == result.PatientID
        assert result.PatientID.startswith("RADTL")

    def test_a_patient_without_id_is_keyed_by_the_study(self, keys):
        result = deidentify(planted_ct(patient_id=""), keys)
        assert result.PatientID == keys.pseudonym(f"StudyInstanceUID={STUDY_UID}")

    def test_private_attributes_are_removed_with_their_creators(self, keys):
        result = deidentify(planted_ct(), keys)
        assert [element.tag for element in result if element.tag.is_private] == []

    def test_dates_are_removed_or_emptied_without_the_longitudinal_option(self, keys):
        result = deidentify(planted_ct(), keys)
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "PatientBirthDate"):
            assert result.get(keyword) in (None, "", "19000101"), keyword

    def test_sop_class_and_transfer_syntax_are_kept(self, keys):
        result = deidentify(planted_ct(), keys)
        assert result.SOPClassUID == CTImageStorage
        assert result.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
        assert result.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian

    def test_file_meta_is_rebuilt_for_the_new_instance(self, keys):
        result = deidentify(planted_ct(), keys)
        assert result.file_meta.MediaStorageSOPInstanceUID == result.SOPInstanceUID == keys.uid(SOP_UID)
        assert result.file_meta.MediaStorageSOPClassUID == CTImageStorage
        assert result.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID

    def test_pixel_data_is_byte_identical(self, keys):
        source = planted_ct()
        assert dcmread(io.BytesIO(to_bytes(deidentify(source, keys)))).PixelData == source.PixelData

    def test_the_source_data_set_is_not_modified(self, keys):
        source = planted_ct()
        before = to_bytes(source)
        deidentify(source, keys, "retain-longitudinal-dates", "clean-descriptions")
        assert to_bytes(source) == before

    def test_identity_removed_and_method_are_recorded(self, keys):
        result = deidentify(planted_ct(), keys, "clean-descriptions", "retain-longitudinal-dates")
        assert result.PatientIdentityRemoved == "YES"
        assert len(result.DeidentificationMethod) <= 64
        codes = [(item.CodeValue, item.CodingSchemeDesignator) for item in result.DeidentificationMethodCodeSequence]
        assert codes == [("113100", "DCM"), ("113105", "DCM"), ("113107", "DCM")]
        assert all(item.CodeMeaning for item in result.DeidentificationMethodCodeSequence)

    def test_burned_in_annotation_is_kept_as_it_was(self, keys):
        assert deidentify(planted_ct(), keys).BurnedInAnnotation == "NO"

    def test_a_data_set_nested_too_deep_is_refused(self, keys):
        ds = planted_ct()
        item = ds
        for _ in range(MAX_SEQUENCE_DEPTH + 2):
            child = Dataset()
            item.ReferencedSeriesSequence = [child]
            item = child
        with pytest.raises(DeidentificationError, match="nested deeper"):
            deidentify(ds, keys)

    def test_a_data_set_with_too_many_elements_is_refused(self, keys, monkeypatch):
        monkeypatch.setattr("radtl.dicom.deidentifier.MAX_ELEMENTS", 20)
        with pytest.raises(DeidentificationError, match="more than 20 elements"):
            deidentify(planted_ct(), keys)

    def test_a_person_name_the_table_does_not_list_becomes_a_dummy(self, keys):
        ds = planted_ct()
        ds.EvaluatorName = "Evaluatorplanted^Eve"
        assert deidentify(ds, keys).EvaluatorName == "ANONYMOUS"

    def test_compound_codes_take_the_alternative_that_keeps_no_value(self, keys):
        result = deidentify(planted_ct(), keys)
        assert result.InstitutionName == "ANONYMIZED"  # X/Z/D -> D
        assert result.AcquisitionDate in (None, "")  # X/Z -> Z
        assert result.ReferencedImageSequence[0].ReferencedSOPInstanceUID != "1.2.999.1.2.4"  # X/Z/U* -> U

    def test_the_result_shares_no_mutable_value_with_the_source(self, keys):
        source = planted_ct()
        result = deidentify(source, keys)
        result.ImageType.append("EDITED")
        assert list(source.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]

    def test_nothing_identifying_is_logged(self, keys, caplog):
        with caplog.at_level(logging.DEBUG, logger="radtl.dicom.deidentifier"):
            deidentify(planted_ct(), keys, "clean-descriptions", "retain-longitudinal-dates")
        assert "Clean Descriptors emptied" in caplog.text
        assert not [value for value in PLANTED.values() if value.split("^")[0] in caplog.text]


class TestUids:
    def test_uids_are_the_same_with_the_same_keys_folder(self, tmp_path):
        first = deidentify(planted_ct(), DeidentificationKeys.open(tmp_path / "keys"))
        second = deidentify(planted_ct(), DeidentificationKeys.open(tmp_path / "keys"))
        for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID"):
            assert first[keyword].value == second[keyword].value

    def test_uids_differ_with_another_salt(self, tmp_path):
        first = deidentify(planted_ct(), DeidentificationKeys.open(tmp_path / "one"))
        second = deidentify(planted_ct(), DeidentificationKeys.open(tmp_path / "two"))
        assert first.SOPInstanceUID != second.SOPInstanceUID

    @pytest.mark.parametrize("keyword, value", [("SOPInstanceUID", ""), ("SOPInstanceUID", "../x"),
                                                ("SOPClassUID", "")])
    def test_instance_without_a_valid_sop_uid_is_refused(self, keys, keyword, value):
        ds = planted_ct()
        setattr(ds, keyword, value)
        with pytest.raises(DeidentificationError, match=f"no valid {keyword}"):
            deidentify(ds, keys)

    def test_replacements_are_2_25_uids(self, keys):
        uid = keys.uid(SOP_UID)
        assert uid.startswith("2.25.") and len(uid) <= 64 and uid[5:].isdigit()

    def test_references_map_to_the_uids_of_the_instances_they_reference(self, keys):
        referenced = deidentify(planted_ct(sop_uid="1.2.999.1.2.4"), keys)
        referencing = deidentify(planted_ct(), keys)
        assert referencing.ReferencedImageSequence[0].ReferencedSOPInstanceUID == referenced.SOPInstanceUID
        assert referencing.FrameOfReferenceUID == referenced.FrameOfReferenceUID != FRAME_OF_REFERENCE_UID
        nested = referencing.ReferencedSeriesSequence[0]
        assert nested.SeriesInstanceUID == referencing.SeriesInstanceUID
        assert nested.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == keys.uid(NESTED_UID)


class TestOptions:
    def test_longitudinal_dates_shift_by_one_offset_per_patient(self, keys):
        result = deidentify(planted_ct(), keys, "retain-longitudinal-dates")
        offset = keys.date_offset(PLANTED["PatientID"])
        assert -3650 <= offset.days <= -1
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            assert day(result[keyword].value) - day(PLANTED[keyword]) == offset, keyword
        assert result.StudyTime == "101500"
        assert result.LongitudinalTemporalInformationModified == "MODIFIED"

    def test_longitudinal_date_times_keep_their_time(self, keys):
        result = deidentify(planted_ct(), keys, "retain-longitudinal-dates")
        assert result.AcquisitionDateTime[8:] == "101700.5+0100"
        assert result.AcquisitionDateTime[:8] != "20200313"

    def test_another_patient_gets_another_offset(self, keys):
        offsets = {keys.date_offset(f"patient-{number}") for number in range(5)}
        assert len(offsets) > 1
        assert keys.date_offset("patient-0") == keys.date_offset("patient-0")

    def test_a_date_range_is_emptied_not_shifted(self, keys):
        ds = planted_ct()
        ds.StudyDate = "20200101-20201231"
        assert deidentify(ds, keys, "retain-longitudinal-dates").StudyDate in (None, "")

    def test_retain_patient_characteristics_keeps_sex_and_age(self, keys):
        assert "PatientAge" not in deidentify(planted_ct(), keys)
        result = deidentify(planted_ct(), keys, "retain-patient-characteristics")
        assert (result.PatientSex, result.PatientAge) == ("F", "059Y")

    def test_retain_device_identity_keeps_the_serial_number(self, keys):
        assert deidentify(planted_ct(), keys).get("DeviceSerialNumber") != "SERIALPLANTED9"
        result = deidentify(planted_ct(), keys, "retain-device-identity")
        assert result.DeviceSerialNumber == "SERIALPLANTED9"

    def test_retain_institution_identity_keeps_the_institution(self, keys):
        result = deidentify(planted_ct(), keys, "retain-institution-identity")
        assert result.InstitutionName == PLANTED["InstitutionName"]

    def test_retain_safe_private_keeps_safe_private_attributes_only(self, keys):
        ds = planted_ct()
        block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        block.add_new(0x23, "DS", "39.375")  # Table Speed, in PS3.15 Table E.3.10-1
        block.add_new(0x01, "LO", PRIVATE_NAME)  # not in the table
        result = deidentify(ds, keys, "retain-safe-private")
        private = {element.tag: str(element.value) for element in result if element.tag.is_private}
        assert private == {0x00190010: "GEMS_ACQU_01", 0x00191023: "39.375"}

    def test_clean_descriptions_keeps_a_description_without_identifying_values(self, keys):
        assert "StudyDescription" not in deidentify(planted_ct(), keys)
        result = deidentify(planted_ct(), keys, "clean-descriptions")
        assert result.StudyDescription == "CT chest"

    def test_clean_descriptions_empties_a_description_with_the_patient_name(self, keys):
        result = deidentify(planted_ct(), keys, "clean-descriptions")
        assert result.get("SeriesDescription") in (None, "")

    @pytest.mark.parametrize("written", ["23.02.1961", "1961-02-23", "02/23/1961"])
    def test_clean_descriptions_empties_a_description_with_the_birth_date(self, keys, written):
        ds = planted_ct()
        ds.StudyDescription = f"CT chest, born {written}"
        assert deidentify(ds, keys, "clean-descriptions").get("StudyDescription") in (None, "")


class TestBurnedIn:
    @pytest.mark.parametrize(
        "change, reason",
        [
            ({"BurnedInAnnotation": "YES"}, "Burned In Annotation"),
            ({"RecognizableVisualFeatures": "YES"}, "Recognizable Visual Features"),
            ({"SOPClassUID": SecondaryCaptureImageStorage}, "Secondary Capture"),
            ({"ConversionType": "WSD"}, "Conversion Type"),
            ({"Modality": "US"}, "ultrasound"),
            ({"SOPClassUID": UltrasoundImageStorage}, "ultrasound"),
            ({"ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]}, "SCREEN SAVE"),
        ],
    )
    def test_each_cause_is_named(self, change, reason):
        ds = planted_ct()
        for keyword, value in change.items():
            setattr(ds, keyword, value)
        assert reason in burned_in_reason(ds)

    def test_an_ordinary_ct_has_no_reason(self):
        assert burned_in_reason(planted_ct()) is None

    def test_burned_in_pixels_are_refused_by_default(self, keys):
        ds = planted_ct()
        ds.BurnedInAnnotation = "YES"
        with pytest.raises(DeidentificationError, match="Burned In Annotation"):
            deidentify(ds, keys)

    def test_burned_in_pixels_pass_when_allowed(self, keys):
        ds = planted_ct()
        ds.BurnedInAnnotation = "YES"
        assert deidentify(ds, keys, allow_burned_in=True).BurnedInAnnotation == "YES"


class TestKeys:
    def test_the_folder_and_salt_are_private(self, tmp_path):
        DeidentificationKeys.open(tmp_path / "keys")
        assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "keys" / "salt").stat().st_mode) == 0o600
        assert (tmp_path / "keys" / "salt").stat().st_size == 32

    def test_a_keys_folder_inside_the_cohort_is_refused(self, tmp_path):
        with pytest.raises(DeidentificationError, match="inside the cohort"):
            DeidentificationKeys.open(tmp_path / "cohort" / "keys", cohort=tmp_path / "cohort")

    def test_a_group_readable_salt_is_refused(self, tmp_path):
        DeidentificationKeys.open(tmp_path / "keys")
        os.chmod(tmp_path / "keys" / "salt", 0o640)
        with pytest.raises(DeidentificationError, match="other users"):
            DeidentificationKeys.open(tmp_path / "keys")

    def test_a_salt_of_the_wrong_size_is_refused(self, tmp_path):
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / "salt").write_bytes(b"short")
        os.chmod(tmp_path / "keys" / "salt", 0o600)
        with pytest.raises(DeidentificationError, match="5 bytes"):
            DeidentificationKeys.open(tmp_path / "keys")

    def test_the_mapping_is_saved_and_merged(self, tmp_path):
        keys = DeidentificationKeys.open(tmp_path / "keys")
        deidentify(planted_ct(), keys)
        keys.save()
        again = DeidentificationKeys.open(tmp_path / "keys")
        again.pseudonym("another patient")
        again.save()
        lines = (tmp_path / "keys" / "pseudonyms.csv").read_text().splitlines()
        assert lines[0] == "patient_id,pseudonym,date_offset_days"
        assert {line.split(",")[0] for line in lines[1:]} == {PLANTED["PatientID"], "another patient"}
        assert stat.S_IMODE((tmp_path / "keys" / "pseudonyms.csv").stat().st_mode) == 0o600

    def test_keep_mapping_false_writes_no_mapping(self, tmp_path):
        keys = DeidentificationKeys.open(tmp_path / "keys", keep_mapping=False)
        deidentify(planted_ct(), keys)
        keys.save()
        assert not (tmp_path / "keys" / "pseudonyms.csv").exists()


class TestSettings:
    def test_options_are_read_from_comma_separated_text(self):
        settings = DeidentificationSettings.from_text("retain-longitudinal-dates, clean-descriptions")
        assert settings.options == {"retain-longitudinal-dates", "clean-descriptions"}

    def test_an_unknown_option_names_the_closest(self):
        with pytest.raises(UsageError, match="retain-longitudinal-dates") as error:
            DeidentificationSettings.from_text("retain-longitudinal-date")
        assert "clean-descriptions" in error.value.hint

    def test_the_method_description_fits_lo_with_every_option(self):
        settings = DeidentificationSettings(frozenset(OPTIONS))
        assert len(settings.method_description()) <= 64
        assert len(settings.method_codes()) == 1 + len(OPTIONS)


@requires_tool("dciodvfy", "dicom3tools")
def test_a_deidentified_synthetic_ct_gets_no_new_dciodvfy_error(tmp_path, keys):
    from radtl.dicom.synthetic.iods import ct_image
    from radtl.dicom.synthetic.modules import Study, write

    study = Study("deid", "Doe^Jane", "PID-7", "19700101", "F", "CT chest", age="054Y", accession="ACC9")
    source = write(ct_image(study, "slice", 1, np.zeros((8, 8)), z=0.0), tmp_path / "source.dcm")
    result = deidentify(dcmread(source), keys, "retain-longitudinal-dates", "clean-descriptions")
    result.save_as(tmp_path / "deidentified.dcm", enforce_file_format=True)
    new_errors = set(dciodvfy_errors(tmp_path / "deidentified.dcm")) - set(dciodvfy_errors(source))
    assert new_errors == set()
