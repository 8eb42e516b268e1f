"""Masks on a CT or MR series' grid to DICOM Segmentation objects (PS3.3 A.51, C.8.20) and back, with highdicom.

This is radtl's one SEG writer and reader. The writer and the reader are symmetric:
:func:`write_segmentation` takes a mask in the layout :class:`radtl.transforms.LoadCTVolume` gives the
series, ``(X, Y, Z)`` = (column, row, slice in the order along the slice normal), and
:func:`read_segmentation` returns the same array from the file. One segment (a lung nodule, segment 1)
or many: a map of segment numbers ``0..N`` (BINARY) or one channel per segment, each segment described
by a :class:`Segment`; :func:`read_segment_map` reads every segment back as one map of segment numbers.
A segment may record the label-map value it stands for (:func:`tracking_id`), which is how
``radtl seg to-mask`` (:mod:`radtl.dicom.labelmap`) gives back a label map's own values.

Each frame references its source instance (Derivation Image and Referenced Series, PS3.3
C.7.6.1 / C.8.20.2), and a source without the UIDs to reference is refused
(:func:`require_references`), so the SEG lands in the source's study, Frame of Reference and patient:
highdicom copies the Patient, General Study and Patient Study modules from the source, which the
standard requires of a derived object in the same study (PS3.3 A.51.3); the source's scanner and
institution, which highdicom would also record as contributing equipment, are removed.

What is copied is first checked against the rules of its Value Representation (PS3.5 6.2) by
:func:`derivation_source`: an archive's invalid Patient's Birth Date must not make a series
impossible to segment, and Patient Comments (free text) is not copied at all. The Algorithm
Identification records the checkpoint the mask came from (:func:`checkpoint_parameters`).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import numpy as np
from highdicom._standard_utils import get_iod_module_map, get_module_attribute_map, get_sop_class_iod_map
from pydicom.datadict import dictionary_has_tag, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import DA, DT, IS, TM, VALIDATORS, DSdecimal, DSfloat

import radtl
from radtl.atomic import write_atomic
from radtl.dicom.series import CTSeries, SeriesError, read_series_headers

__all__ = [
    "LUNG_NODULE",
    "REFERENCE_ATTRIBUTES",
    "Algorithm",
    "Segment",
    "SegmentRecord",
    "SegmentationSourceError",
    "checkpoint_parameters",
    "derivation_source",
    "named_output",
    "names_unquoted",
    "names_a_folder",
    "read_segment_map",
    "read_segmentation",
    "require_references",
    "seg_path",
    "segmentation",
    "tracked_value",
    "tracking_id",
    "value_problem",
    "write_segmentation",
]

logger = logging.getLogger(__name__)


class SegmentationSourceError(SeriesError):
    """A mask or a SEG that does not fit the source series it is meant for."""


@dataclass(frozen=True)
class Segment:
    """What a segment is, coded as the Segment Description Macro requires (PS3.3 C.8.20.2, CID 7150/7151).

    Args:
        label: Segment Label, for people.
        category: Segmented Property Category (CID 7150).
        property_type: Segmented Property Type (CID 7151).
        anatomic_region: Anatomic Region where it lies (CID 4), or None.
        property_type_modifier: Segmented Property Type Modifier (laterality, CID 244), or None.
        anatomic_region_modifier: Anatomic Region Modifier (laterality, CID 244), or None.
        colour: the recommended display colour, ``(R, G, B)`` in 0..255, written as Recommended Display
            CIELab Value (0062,000D); None leaves the colour to the viewer.
    """

    label: str
    category: Code
    property_type: Code
    anatomic_region: Code | None = None
    property_type_modifier: Code | None = None
    anatomic_region_modifier: Code | None = None
    colour: tuple[int, int, int] | None = None

    def description(
        self, number: int, algorithm: Algorithm | None, value: int | None = None
    ) -> hd.seg.SegmentDescription:
        """This segment as item ``number`` of the Segment Sequence (PS3.3 C.8.20.2, C.8.20.4).

        Args:
            number: Segment Number (1..N).
            algorithm: the model (AUTOMATIC), or None for a person's label (MANUAL).
            value: the label-map value the segment stands for, recorded as its Tracking ID and a new
                Tracking UID (:func:`tracking_id`), or None to record none.
        """
        tracking = {"tracking_id": tracking_id(value), "tracking_uid": hd.UID()} if value is not None else {}
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=self.label[:64],
            segmented_property_category=self.category,
            segmented_property_type=self.property_type,
            algorithm_type=(
                hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if algorithm else hd.seg.SegmentAlgorithmTypeValues.MANUAL
            ),
            algorithm_identification=algorithm.identification() if algorithm else None,
            anatomic_regions=[self.anatomic_region] if self.anatomic_region else None,
            display_color=hd.color.CIELabColor.from_rgb(*self.colour) if self.colour is not None else None,
            **tracking,
        )
        # the modifiers sit inside the item they modify (PS3.3 C.8.20.2, Table 10-7 for the region)
        if self.property_type_modifier is not None:
            description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
                hd.sr.CodedConcept.from_code(self.property_type_modifier)
            ]
        if self.anatomic_region_modifier is not None and self.anatomic_region is not None:
            description.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [
                hd.sr.CodedConcept.from_code(self.anatomic_region_modifier)
            ]
        return description


#: A lung nodule as SNOMED CT codes it: a morphologically abnormal structure (49755003) of type
#: nodule (27925004) in the lung (39607008), as the LIDC-IDRI SEG conversions code their nodules.
LUNG_NODULE = Segment("Lung nodule", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Nodule, codes.SCT.Lung)


@dataclass(frozen=True)
class Algorithm:
    """The model that made the segmentation (Algorithm Identification Sequence, PS3.3 C.8.20.2).

    Args:
        name: Algorithm Name, e.g. the bundle's name.
        version: Algorithm Version, e.g. the bundle's version.
        parameters: Algorithm Parameters (threshold, checkpoint...), written as ``key=value``.
    """

    name: str
    version: str
    parameters: dict[str, str] = field(default_factory=dict)

    def identification(self) -> hd.AlgorithmIdentificationSequence:
        return hd.AlgorithmIdentificationSequence(
            name=self.name,
            family=codes.DCM.ArtificialIntelligence,
            version=self.version,
            source="radtl",
            parameters={k: str(v) for k, v in self.parameters.items()} or None,
        )


#: The training history :class:`radtl.engines.TrainingHistory` writes beside a bundle's checkpoint.
HISTORY_FILE = "history.json"


def checkpoint_parameters(checkpoint: str | os.PathLike) -> dict[str, str]:
    """The checkpoint a mask came from, as Algorithm Parameters (0066,0032) of the SEG (PS3.3 C.8.20.2).

    ``checkpoint_sha256`` identifies the weights; the training history beside them (``history.json``,
    :class:`radtl.engines.TrainingHistory`) gives ``best_val_<key metric>`` and ``best_epoch``
    (``best_validation=unknown`` without one). A history whose best validation metric is 0 or less
    (for a metric where higher is better), or that records none, describes a model that learned
    nothing: its masks are empty or noise, and a warning says so before anything is written.

    Raises:
        FileNotFoundError: no checkpoint at ``checkpoint``.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    with path.open("rb") as weights:
        parameters = {"checkpoint_sha256": hashlib.file_digest(weights, "sha256").hexdigest()}
    history_path = path.parent / HISTORY_FILE
    if not history_path.is_file():
        logger.info("%s: no %s beside it; the SEG records its hash but no validation score", path, HISTORY_FILE)
        return {**parameters, "best_validation": "unknown"}
    try:
        history = json.loads(history_path.read_text())
        key, best = str(history["key_metric"]), history["best_metric"]
    except (ValueError, KeyError, TypeError) as error:
        logger.warning("%s: not a training history (%s); the SEG records no validation score", history_path, error)
        return {**parameters, "best_validation": "unreadable"}
    parameters[f"best_val_{key}"] = "none" if best is None else f"{float(best):.4f}"
    parameters["best_epoch"] = str(history.get("best_epoch"))
    if best is None:
        logger.warning("%s: its training history records no validation %s; it may have learned nothing", path, key)
    elif history.get("higher_is_better", True) and float(best) <= 0:
        logger.warning(
            "%s: its best validation %s was %s (%s): the model learned nothing, its segmentations will be empty "
            "or wrong; train it (longer) before using it", path, key, best, history_path,
        )
    return parameters


#: Type 2 attributes of the Patient (PS3.3 C.7.1.1) and General Study (C.7.2.1) modules. highdicom reads
#: them from the first source image for any derived object: present in the SEG, empty when unknown.
TYPE_2_PATIENT_AND_STUDY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
)
#: Enumerated Values of Patient's Sex (0010,0040), PS3.3 C.7.1.1.
PATIENT_SEX_VALUES = ("M", "F", "O")
#: Attributes highdicom would copy that a SEG leaves out: Patient Comments (0010,4000), Type 3 free
#: text about the patient, which a segmentation does not need and de-identification often misses.
NOT_COPIED = ("PatientComments",)
#: What a value of each VR looks like (PS3.5 Table 6.2-1), for messages that never repeat the value.
VR_RULES = {
    "AE": "at most 16 characters",
    "AS": "an age nnnD, nnnW, nnnM or nnnY",
    "CS": "at most 16 upper-case letters, digits, spaces and underscores",
    "DA": "a date YYYYMMDD",
    "DS": "a decimal number of at most 16 characters",
    "DT": "a date and time YYYYMMDDHHMMSS.FFFFFF&ZZXX",
    "IS": "an integer of at most 12 characters",
    "LO": "at most 64 characters",
    "PN": "a person name: at most 3 groups of at most 5 components and 64 characters each",
    "SH": "at most 16 characters",
    "TM": "a time HHMMSS.FFFFFF",
    "UI": "a UID of digits and dots, at most 64 characters",
}
#: VRs that highdicom parses into dates and times, so that a well-formed impossible date (20230231) fails too.
PARSED_VRS = {"DA": DA, "DT": DT, "TM": TM}


def _person_name_is_valid(value: object) -> bool:
    text = str(value)
    groups = text.split("=")
    return (
        len(groups) <= 3
        and all(len(group) <= 64 and group.count("^") <= 4 for group in groups)
        and not any(character < " " and character != "\x1b" for character in text)
    )


def _as_text(value: object) -> object:
    """A number pydicom parsed from a DS or IS string as that string again: pydicom's validators check the
    text, and refuse the DSfloat and IS objects themselves (so a Patient's Weight of 79 would fail)."""
    return str(value) if isinstance(value, (DSfloat, DSdecimal, IS)) else value


def value_problem(element: DataElement) -> str | None:
    """Why ``element``'s value breaks the rules of its VR (PS3.5 6.2), or None when it keeps them.

    Dates and times must also be real ones, as highdicom parses them; Patient's Sex must be one of
    its Enumerated Values. The answer never holds the value: a patient's or study's attribute may
    identify the patient (PS3.15 E.1).
    """
    if element.VR == "SQ" or element.is_empty:
        return None
    vr = element.VR
    standard_vr = dictionary_VR(element.tag) if dictionary_has_tag(element.tag) else vr
    if vr != standard_vr and " or " not in standard_vr:
        return f"stored as VR {vr}, not its VR {standard_vr} (PS3.6)"
    rule = f"not {VR_RULES.get(vr, 'valid')} (VR {vr}, PS3.5 6.2)"
    for value in element.value if element.VM > 1 else [element.value]:
        if value is None or value == "":
            continue
        if vr in PARSED_VRS:
            try:
                PARSED_VRS[vr](value)
            except (ValueError, TypeError):
                return rule
        if vr == "PN":
            if not _person_name_is_valid(value):
                return rule
        elif vr in VALIDATORS and not VALIDATORS[vr](vr, _as_text(value))[0]:
            return rule
    if element.keyword == "PatientSex" and str(element.value) not in PATIENT_SEX_VALUES:
        return f"not one of the Enumerated Values {', '.join(PATIENT_SEX_VALUES)} (PS3.3 C.7.1.1)"
    return None


@functools.cache
def _copied_keywords(sop_class_uid: str) -> tuple[str, ...]:
    """What highdicom copies from a source of this SOP Class into a derived object: the root attributes of
    its IOD's Patient and Study modules (Patient, Clinical Trial Subject, General Study, Patient Study,
    Clinical Trial Study), read from highdicom's own tables of the standard."""
    iod = get_sop_class_iod_map().get(sop_class_uid)
    modules = [module["key"] for module in get_iod_module_map().get(iod, []) if module["ie"] in ("Patient", "Study")]
    attributes = get_module_attribute_map()
    copied = (item["keyword"] for module in modules for item in attributes.get(module, []) if not item["path"])
    return tuple(dict.fromkeys([*TYPE_2_PATIENT_AND_STUDY, *copied]))


@contextmanager
def names_unquoted() -> Iterator[None]:
    """Silence highdicom's warning that quotes a one-component Patient's Name while it builds a SEG or SR from
    a source: such a name is valid (PS3.5 6.2.1.2), and a log line must never carry it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The string .* is unlikely to represent", category=UserWarning)
        yield


def derivation_source(dataset: Dataset) -> Dataset:
    """A copy of a source instance from which highdicom can copy the patient and the study into the SEG.

    highdicom copies the root attributes of the source's Patient and Study modules and parses its
    Patient's Birth Date, Study Date and Study Time; one value that breaks its VR's rules (PS3.5 6.2),
    say a Patient's Birth Date of ``BIRTHSECRET``, would stop the SEG from being written. In the copy
    such a value is emptied when its attribute is Type 2 and removed otherwise, with a warning that
    names the attribute and the rule but never the value, which may identify the patient. A Type 2
    attribute the source lacks is added empty, and Patient Comments is removed (:data:`NOT_COPIED`).
    The source itself is left as it is.
    """
    cleaned = copy.deepcopy(dataset)
    for keyword in NOT_COPIED:
        if keyword in cleaned:
            del cleaned[keyword]
    for keyword in _copied_keywords(str(dataset.SOPClassUID)):
        if keyword not in cleaned:
            continue
        try:
            problem = value_problem(cleaned[keyword])
        except (ValueError, TypeError, OverflowError):  # pydicom could not turn the stored bytes into a value
            problem = "not readable as its VR (PS3.5 6.2)"
        if problem is None:
            continue
        del cleaned[keyword]
        if keyword in TYPE_2_PATIENT_AND_STUDY:
            setattr(cleaned, keyword, "")
            outcome = "written empty in the SEG (Type 2)"
        else:
            outcome = "left out of the SEG"
        logger.warning("source %s %s is %s: %s", keyword, Tag(tag_for_keyword(keyword)), problem, outcome)
    for keyword in TYPE_2_PATIENT_AND_STUDY:
        if keyword not in cleaned:
            setattr(cleaned, keyword, "")
    return cleaned


def _source_series(source: CTSeries | str | os.PathLike) -> CTSeries:
    return source if isinstance(source, CTSeries) else read_series_headers(source, modality=None)


#: What a SEG references in each source instance and in its series (PS3.3 C.8.20.1 Referenced Series,
#: C.7.6.1 Derivation Image; the SEG joins the source's study and Frame of Reference, A.51.3).
REFERENCE_ATTRIBUTES = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")


def require_references(series: CTSeries) -> None:
    """Refuse a source series a SEG cannot reference: one whose UIDs are missing or empty.

    radtl never invents a reference: a SEG pointing at UIDs made up for it would point at nothing in the
    archive. Some exports (TotalSegmentator's example series) empty Study, Series and SOP Instance UID.

    Raises:
        SegmentationSourceError: naming each empty attribute, its tag and how many instances lack it.
    """
    empty = []
    for keyword in REFERENCE_ATTRIBUTES:
        count = sum(1 for ds in series.datasets if not str(ds.get(keyword, "") or "").strip())
        if count:
            empty.append(f"{keyword} {Tag(tag_for_keyword(keyword))} in {count} of {len(series.datasets)}")
    if empty:
        raise SegmentationSourceError(
            f"{Path(series.paths[0]).parent}: the source instances have empty {'; '.join(empty)}: a SEG must "
            "reference its source by these UIDs (PS3.3 C.8.20.1) and radtl does not invent them; fetch the series "
            "again from the archive that holds its UIDs, or fill them in (e.g. pydicom.uid.generate_uid) on a copy "
            "and segment that copy"
        )


#: How a segment records the label-map value it stands for: its Tracking ID (0062,0020), a text label for
#: "tracking a finding or feature" across objects (PS3.3 C.8.20.4), paired with a Tracking UID (0062,0021).
TRACKING_ID_PREFIX = "label map value "


def tracking_id(value: int) -> str:
    """The Tracking ID of the segment that stands for label-map value ``value``: ``label map value 117``.

    Segment numbers run 1..N (PS3.3 C.8.20.2); a label map's values need not (TotalSegmentator's 1, 5, 117).
    The Segment Description Macro's one per-segment identifier that may carry such a value is its Tracking
    ID (Type 1C, "a text label used for tracking a finding or feature, potentially across multiple reporting
    objects", C.8.20.4): the value identifies the structure in every label map of the same labelling.
    """
    return f"{TRACKING_ID_PREFIX}{int(value)}"


def tracked_value(item: Dataset) -> int | None:
    """The label-map value a Segment Sequence item records in its Tracking ID (:func:`tracking_id`), or None."""
    text = str(item.get("TrackingID", "") or "")
    number = text[len(TRACKING_ID_PREFIX):] if text.startswith(TRACKING_ID_PREFIX) else ""
    return int(number) if number.isdigit() and int(number) > 0 else None


def _frames(mask: np.ndarray, series: CTSeries, segments: int) -> np.ndarray:
    """``(X, Y, Z)`` or ``(N, X, Y, Z)`` to highdicom's ``(frames, rows, columns[, N])``, one frame per source."""
    mask = np.asarray(mask)
    if mask.ndim == 4 and mask.shape[0] == 1:
        mask = mask[0]
    slices, rows, columns = series.shape
    grid = (columns, rows, slices)
    if mask.shape[-3:] != grid or mask.ndim not in (3, 4):
        raise SegmentationSourceError(
            f"mask shape {mask.shape} is not the series' grid (X, Y, Z) = {grid}; "
            "invert any spatial transform before writing"
        )
    # a multi-frame source's frames in its stored order: highdicom pairs SEG frame i with source frame i
    if mask.ndim == 4:
        if mask.shape[0] != segments:
            raise SegmentationSourceError(f"{mask.shape[0]} mask channels for {segments} segment description(s)")
        return np.ascontiguousarray(series.in_stored_order(mask.transpose(3, 2, 1, 0)))
    return np.ascontiguousarray(series.in_stored_order(mask.transpose(2, 1, 0)))


def _pixels(frames: np.ndarray, segments: int, fractional: bool) -> np.ndarray:
    """The checked pixel array: a map of segment numbers (BINARY) or probabilities per segment (FRACTIONAL)."""
    if fractional:
        if frames.ndim == 3 and segments > 1:  # a map of segment numbers, one 0/1 channel per segment
            if not np.isin(frames, np.arange(segments + 1)).all():
                raise SegmentationSourceError(f"a map of {segments} segments holds only the numbers 0..{segments}")
            return np.stack([frames == number for number in range(1, segments + 1)], axis=-1).astype(np.uint8)
        frames = frames.astype(np.float32)
        if frames.size and (frames.min() < 0 or frames.max() > 1):
            raise SegmentationSourceError(
                f"FRACTIONAL needs probabilities in [0, 1], got {frames.min()}..{frames.max()}"
            )
        return frames
    if segments == 1 or frames.ndim == 4:
        if not np.isin(frames, (0, 1)).all():
            raise SegmentationSourceError("BINARY needs a 0/1 mask; threshold probabilities first, or write FRACTIONAL")
        return frames.astype(np.uint8)
    if not np.isin(frames, np.arange(segments + 1)).all():
        raise SegmentationSourceError(f"a map of {segments} segments holds only the numbers 0..{segments}")
    return frames.astype(np.uint8 if segments < 256 else np.uint16)


def segmentation(
    mask: np.ndarray,
    source: CTSeries | str | os.PathLike,
    algorithm: Algorithm | None,
    segment: Segment | Sequence[Segment] = LUNG_NODULE,
    fractional: bool = False,
    series_number: int = 900,
    series_description: str | None = None,
    values: Sequence[int] | None = None,
) -> hd.seg.Segmentation:
    """Build the DICOM Segmentation of ``mask`` over the series it was predicted on.

    Args:
        mask: on the series' grid, ``(X, Y, Z)``: for one segment 0/1 (BINARY) or probabilities in [0, 1]
            (FRACTIONAL); for N segments the segment numbers 0..N, 0 where none. Or ``(N, X, Y, Z)``, one
            channel per segment.
        source: the series (its folder, or the :class:`CTSeries` read from it).
        algorithm: the model, recorded as Segment Algorithm Type AUTOMATIC with its identification;
            None for a person's label (MANUAL, no Algorithm Identification, PS3.3 C.8.20.2).
        segment: what the mask segments (default: lung nodule), or one :class:`Segment` per segment
            number 1..N.
        fractional: write Segmentation Type FRACTIONAL with Fractional Type PROBABILITY (C.8.20.2.3).
        series_number: Series Number of the new series.
        series_description: Series Description (default: the algorithm's name and version).
        values: the label-map value each segment stands for, recorded in its Tracking ID
            (:func:`tracking_id`); None records none.

    Raises:
        SegmentationSourceError: a mask that is not on the series' grid, or out of range; a source
            series without the UIDs a SEG references (:func:`require_references`).
    """
    segments = [segment] if isinstance(segment, Segment) else list(segment)
    if not segments:
        raise SegmentationSourceError("no segment to write: give at least one Segment")
    if values is not None and len(values) != len(segments):
        raise SegmentationSourceError(f"{len(values)} label-map value(s) for {len(segments)} segment(s)")
    series = _source_series(source)
    require_references(series)
    frames = _pixels(_frames(mask, series, len(segments)), len(segments), fractional)
    made_by = f"{algorithm.name} {algorithm.version}" if algorithm else "manual annotation"
    descriptions = [
        item.description(number, algorithm, None if values is None else values[number - 1])
        for number, item in enumerate(segments, start=1)
    ]
    what = segments[0].label if len(segments) == 1 else f"{len(segments)} segments"
    with names_unquoted():
        seg = hd.seg.Segmentation(
            # highdicom copies the patient and the study from the first source image only
            source_images=[derivation_source(series.datasets[0]), *series.datasets[1:]],
            pixel_array=frames,
            segmentation_type=(
                hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY
            ),
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="radtl",
            manufacturer_model_name=algorithm.name if algorithm else "radtl",
            software_versions=f"radtl {radtl.__version__}",
            device_serial_number="0",
            series_description=(series_description or made_by)[:64],
            content_label="SEGMENTATION",
            content_description=f"{what} by {made_by}"[:64],
            transfer_syntax_uid=ExplicitVRLittleEndian,
            # every frame kept when nothing was found: an empty SEG is a valid, explicit "no nodule"
            omit_empty_frames=bool(frames.any()),
        )
    _drop_source_equipment(seg)
    return seg


#: Purpose of Reference "Acquisition Equipment" (DCM 109101), PS3.16 CID 7005.
ACQUISITION_EQUIPMENT = "109101"


def _drop_source_equipment(seg: hd.seg.Segmentation) -> None:
    """Remove the source's scanner from Contributing Equipment Sequence (PS3.3 C.12.1, Type 3).

    highdicom records the acquisition equipment of the source images there: manufacturer,
    institution name and address, station and device serial number, which PS3.15 Annex E lists
    as identifying. The SEG needs none of it, so it does not carry it.
    """
    kept = [
        item
        for item in seg.get("ContributingEquipmentSequence", [])
        if not any(code.CodeValue == ACQUISITION_EQUIPMENT for code in item.get("PurposeOfReferenceCodeSequence", []))
    ]
    if kept:
        seg.ContributingEquipmentSequence = kept
    elif "ContributingEquipmentSequence" in seg:
        del seg.ContributingEquipmentSequence


def names_a_folder(output: str | os.PathLike) -> bool:
    """Whether an output names a folder of SEGs, not one SEG file: it ends in ``/`` or is an existing folder."""
    text = os.fspath(output)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def seg_path(output: str | os.PathLike, series_instance_uid: str) -> Path:
    """Where the SEG of a series goes: ``output`` itself, or ``output/<SeriesInstanceUID>.seg.dcm`` when
    ``output`` names a folder (:func:`names_a_folder`).

    Raises:
        SegmentationSourceError: a Series Instance UID that is not a plain file name (it comes from the
            source's files, and the SEG must land inside ``output``).
    """
    if not names_a_folder(output):
        return Path(output)
    return named_output(output, series_instance_uid, ".seg.dcm")


def named_output(folder: str | os.PathLike, name: str, suffix: str) -> Path:
    """``folder/<name><suffix>``, for a result named after its source (a Series Instance UID from the source's
    files, a folder's name), which must therefore be a plain file name so the result lands inside ``folder``.

    Raises:
        SegmentationSourceError: ``name`` is empty, ``.``/``..``, or holds a path separator.
    """
    name = str(name)
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise SegmentationSourceError(f"{name!r} (from the source's files) cannot name a file in {folder}")
    return Path(folder) / f"{name}{suffix}"


def write_segmentation(
    path: str | os.PathLike,
    mask: np.ndarray,
    source: CTSeries | str | os.PathLike,
    algorithm: Algorithm | None,
    segment: Segment = LUNG_NODULE,
    fractional: bool = False,
    **kwargs,
) -> Path:
    """Write the DICOM Segmentation of ``mask`` (see :func:`segmentation`) to ``path``; returns the path."""
    seg = segmentation(mask, source, algorithm, segment, fractional, **kwargs)
    path = write_atomic(path, lambda temporary: seg.save_as(temporary, enforce_file_format=True))  # never half a SEG
    found = "nothing found" if not np.asarray(mask).any() else f"{int((np.asarray(mask) > 0).sum())} voxel(s)"
    logger.info("wrote %s (%s, %s, %d frame(s))", path, seg.SegmentationType, found, int(seg.NumberOfFrames))
    return path


def _open_against(path: str | os.PathLike, series: CTSeries) -> tuple[hd.seg.Segmentation, list[str]]:
    """The SEG at ``path``, checked to segment ``series``, and the series' SOP Instance UIDs in slice order.

    Raises:
        SegmentationSourceError: the SEG references another series, or instances the source lacks.
    """
    seg = hd.seg.segread(path)
    referenced = {str(item.SeriesInstanceUID) for item in seg.ReferencedSeriesSequence}
    if series.series_instance_uid not in referenced:
        raise SegmentationSourceError(
            f"{path} segments series {', '.join(sorted(referenced))}, not {series.series_instance_uid}"
        )
    uids = [str(ds.SOPInstanceUID) for ds in series.datasets]
    missing = sorted({uid for _, _, uid in seg.get_source_image_uids()} - set(uids))
    if missing:
        raise SegmentationSourceError(
            f"{path} references {len(missing)} instance(s) not in the source series, e.g. {missing[0]}"
        )
    return seg, uids


def _segment_volume(seg: hd.seg.Segmentation, series: CTSeries, uids: list[str], segment_number: int) -> np.ndarray:
    """One segment on the source grid, ``(X, Y, Z)``: uint8 for BINARY, float32 in [0, 1] for FRACTIONAL."""
    fractional = seg.SegmentationType == "FRACTIONAL"
    selection = dict(
        segment_numbers=[segment_number],
        combine_segments=False,  # one segment's own 0/1 (or fractions), not its number
        rescale_fractional=True,
        dtype=np.float32 if fractional else np.uint8,
    )
    if series.multiframe:  # one multi-frame source (enhanced CT): its frames, in the order along the normal
        frames = seg.get_pixels_by_source_frame(
            source_sop_instance_uid=uids[0], source_frame_numbers=list(series.frames), **selection
        )
    else:
        frames = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, **selection)
    if frames.ndim == 4:
        frames = frames[..., 0]
    return np.ascontiguousarray(frames.transpose(2, 1, 0))


def read_segmentation(
    path: str | os.PathLike, source: CTSeries | str | os.PathLike, segment_number: int = 1
) -> np.ndarray:
    """Read one segment of a SEG back onto its source series' grid: ``(X, Y, Z)``, uint8 for BINARY (0/1),
    float32 for FRACTIONAL.

    Raises:
        SegmentationSourceError: the SEG references another series, or instances the source lacks.
    """
    series = _source_series(source)
    seg, uids = _open_against(path, series)
    return _segment_volume(seg, series, uids, segment_number)


@dataclass(frozen=True)
class SegmentRecord:
    """A segment as a SEG describes it: its number, what it is, and the label-map value it records.

    Args:
        number: Segment Number (0062,0004).
        segment: its label and codes, as a :class:`Segment`.
        value: the label-map value its Tracking ID records (:func:`tracked_value`), or None.
    """

    number: int
    segment: Segment
    value: int | None


def _code(item: Dataset) -> Code:
    return Code(str(item.CodeValue), str(item.CodingSchemeDesignator), str(item.CodeMeaning))


def _first_code(item: Dataset, keyword: str) -> Code | None:
    sequence = item.get(keyword)
    return _code(sequence[0]) if sequence else None


def _described(item: Dataset) -> Segment:
    """A Segment Sequence item as the :class:`Segment` that wrote it (PS3.3 C.8.20.2)."""
    category = item.SegmentedPropertyCategoryCodeSequence[0]
    property_type = item.SegmentedPropertyTypeCodeSequence[0]
    region = item.AnatomicRegionSequence[0] if item.get("AnatomicRegionSequence") else None
    colour = item.get("RecommendedDisplayCIELabValue")
    return Segment(
        label=str(item.get("SegmentLabel", "")),
        category=_code(category),
        property_type=_code(property_type),
        anatomic_region=_code(region) if region is not None else None,
        property_type_modifier=_first_code(property_type, "SegmentedPropertyTypeModifierCodeSequence"),
        anatomic_region_modifier=_first_code(region, "AnatomicRegionModifierSequence") if region is not None else None,
        colour=tuple(hd.color.CIELabColor.from_dicom_value(colour).to_rgb()) if colour else None,
    )


#: A FRACTIONAL segment covers a voxel of a map of segment numbers where its value is at least this.
FRACTIONAL_THRESHOLD = 0.5


def read_segment_map(
    path: str | os.PathLike, source: CTSeries | str | os.PathLike
) -> tuple[np.ndarray, list[SegmentRecord]]:
    """Read every segment of a SEG as one map of segment numbers on the source grid, with the segments.

    A FRACTIONAL segment covers the voxels where its value is at least :data:`FRACTIONAL_THRESHOLD` (a
    map written FRACTIONAL from a label map holds only 0 and 1, so it reads back exactly).

    Returns:
        ``(X, Y, Z)`` uint16 segment numbers, 0 where no segment is, and one :class:`SegmentRecord` per segment.

    Raises:
        SegmentationSourceError: the SEG references another series or instances the source lacks, or two
            segments cover one voxel (a map holds one segment per voxel; read them one by one with
            :func:`read_segmentation`).
    """
    series = _source_series(source)
    seg, uids = _open_against(path, series)
    records = [
        SegmentRecord(number=int(item.SegmentNumber), segment=_described(item), value=tracked_value(item))
        for item in seg.SegmentSequence
    ]
    numbers: np.ndarray | None = None
    for record in records:
        covered = _segment_volume(seg, series, uids, record.number) >= (
            FRACTIONAL_THRESHOLD if seg.SegmentationType == "FRACTIONAL" else 1
        )
        if numbers is None:
            numbers = np.zeros(covered.shape, np.uint16)
        overlap = covered & (numbers > 0)
        if overlap.any():
            other = int(numbers[overlap][0])
            raise SegmentationSourceError(
                f"{path}: segments {other} and {record.number} both cover {int(overlap.sum())} voxel(s); a label "
                "map holds one segment per voxel, so read the segments one by one (read_segmentation)"
            )
        numbers[covered] = record.number
    if numbers is None:
        slices, rows, columns = series.shape
        numbers = np.zeros((columns, rows, slices), np.uint16)
    return numbers, records
