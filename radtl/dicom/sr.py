"""DICOM Structured Reports of radtl's results (PS3.3 A.35, PS3.16 TID 1500), written and read with highdicom.

Two reports, both TID 1500 Measurement Report, the template PACS viewers and archives know for measurements
made on images, so the SR needs no private template:

- **Nodule measurements** (:func:`nodule_report`, :func:`write_nodule_report`, :func:`read_nodule_report`):
  a Comprehensive 3D SR (PS3.3 A.35.13) with, per connected nodule of a SEG's segment, one TID 1411
  Volumetric ROI measurement group (3-D components, face-connected as MONAI's ``RemoveSmallObjects`` counts them):
  its Volume (mm3), its longest axial Diameter (mm; the longest in-plane extent on any slice, modifier
  Maximum) and its centroid. The group's ROI is the SEG segment itself (Referenced Segment, with the source
  images the nodule lies on), so the measurements are tied to the voxels that were measured. Where the centroid
  goes is what TID 1500 allows: a TID 1411 group has exactly one ROI (Image Regions, a Volume Surface or a
  Referenced Segment), and TID 300 numeric measurements hold numbers (highdicom refuses coordinates under them in
  a TID 1411 group); the one place for a point is a Volume Surface SCOORD3D with a Geometric Purpose of Region
  (CID 219). So each nodule has a second TID 1411 group with the same Tracking Identifier and Tracking UID
  (TID 1500's way of saying "the same finding") whose ROI is the centroid: POINT, patient coordinates, purpose
  Center of Mass (DCM 128138). Every group and measurement names the algorithm and its version (TID 4019
  Algorithm Identification), copied from the SEG's Segment Algorithm Identification.
- **Classification and regression results** (:func:`prediction_report`, :func:`write_prediction_report`,
  :func:`read_prediction_report`): per source image, a Comprehensive SR (PS3.3 A.35.3; no spatial
  coordinates, so not 3D) with one TID 1501 image-level measurement group (Measurements and Qualitative
  Evaluations) referencing the image: a classification is a Qualitative Evaluation "Classification"
  (SCT 278201002) whose value is the predicted class (coded in radtl's private scheme ``99RADTL``; a private
  Coding Scheme Designator begins with ``99``, PS3.3 8.2) with a TID 300
  "Probability" measurement (UCUM ``1``); a regression is one TID 300 measurement in its unit (bone age
  in months). TID 1500 rather than a simpler Basic Text SR because archives index its coded content and
  the same reader serves both reports.

Both copy the patient and the study from the image they describe (via
:func:`radtl.dicom.seg.derivation_source`, which empties or drops values that break their VR), so the SR
lands in the source's study; Manufacturer is ``radtl`` and the observer is a device named for the model,
which is how :func:`radtl.dicom.pacs.find_results` finds them again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist, squareform

import radtl
from radtl.atomic import write_atomic
from radtl.dicom.seg import derivation_source, named_output, names_unquoted, read_segmentation
from radtl.dicom.series import CTSeries, read_series_headers
from radtl.errors import RadtlError

__all__ = [
    "MEASUREMENT_SERIES_NUMBER",
    "PREDICTION_SERIES_NUMBER",
    "Nodule",
    "NoduleRecord",
    "PredictionRecord",
    "StructuredReportError",
    "measure_nodules",
    "nodule_report",
    "prediction_report",
    "read_nodule_report",
    "read_prediction_report",
    "sr_path",
    "ucum_unit",
    "write_nodule_report",
    "write_prediction_report",
]

logger = logging.getLogger(__name__)

#: Series Numbers of the reports' new series (the SEG's is 900).
MEASUREMENT_SERIES_NUMBER = 901
PREDICTION_SERIES_NUMBER = 902
#: radtl's private coding scheme for its classes (PS3.3 8.2: a private Coding Scheme Designator begins with ``99``).
RADTL_SCHEME = "99RADTL"
#: Center of Mass (DCM 128138): the purpose of the centroid's SCOORD3D.
CENTER_OF_MASS = codes.DCM.CenterOfMass
#: Classification (SCT 278201002): the concept of a classification's Qualitative Evaluation (not Finding,
#: DCM 121071, which TID 1501 already uses for its Finding row).
CLASSIFICATION = codes.SCT.Classification
#: Probability (DCM 122157) of the predicted class, dimensionless (UCUM ``1``).
PROBABILITY = codes.DCM.Probability
NO_UNITS = Code("1", "UCUM", "no units")
#: Units a regression bundle may name, as UCUM codes (PS3.16 CID 82).
UCUM_UNITS = {
    "months": codes.UCUM.Month,
    "month": codes.UCUM.Month,
    "mo": codes.UCUM.Month,
    "years": Code("a", "UCUM", "year"),
    "mm": codes.UCUM.Millimeter,
    "mm3": codes.UCUM.CubicMillimeter,
}
#: Bone age as radtl codes it (no SNOMED CT or LOINC observable for a predicted skeletal age fits exactly).
BONE_AGE = Code("BONEAGE", RADTL_SCHEME, "Bone age")


class StructuredReportError(RadtlError, ValueError):
    """A report that cannot be written (an unknown unit, a SEG without an algorithm) or read (not radtl's)."""


# ---- measuring nodules ----


@dataclass(frozen=True)
class Nodule:
    """One connected nodule of a mask, measured in physical units.

    Args:
        volume_mm3: voxel count times the voxel volume.
        longest_axial_diameter_mm: the longest distance between two corners of its voxels on one slice.
        diameter_end_points: the two in-plane points (patient LPS, mm) that diameter joins.
        centroid: its voxels' mean position in patient coordinates (LPS, mm; PS3.3 C.7.6.2.1.1).
        slices: the slice indices (along the series' sorted order) it lies on.
    """

    volume_mm3: float
    longest_axial_diameter_mm: float
    diameter_end_points: tuple[tuple[float, float, float], tuple[float, float, float]]
    centroid: tuple[float, float, float]
    slices: tuple[int, ...]


def _to_patient(affine: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``(N, 3)`` voxel indices ``(column, row, slice)`` (fractional allowed) to patient LPS mm."""
    return indices @ affine[:3, :3].T + affine[:3, 3]


def _longest_in_plane(pixels: np.ndarray, affine: np.ndarray, slice_index: int) -> tuple[float, np.ndarray]:
    """The longest distance between two voxel corners of ``pixels`` (``(N, 2)`` column, row) on one slice."""
    offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    corners = np.unique((pixels[:, None, :] + offsets[None]).reshape(-1, 2), axis=0)
    points = _to_patient(affine, np.column_stack([corners, np.full(len(corners), float(slice_index))]))
    if len(points) > 64:  # only hull vertices can be farthest apart; corners of squares are never all collinear
        points = points[ConvexHull(corners).vertices]
    distances = squareform(pdist(points))
    first, second = np.unravel_index(int(np.argmax(distances)), distances.shape)
    return float(distances[first, second]), points[[first, second]]


def measure_nodules(mask: np.ndarray, affine: np.ndarray) -> list[Nodule]:
    """The connected components of ``mask`` (``(X, Y, Z)`` = column, row, slice), measured with ``affine``.

    Components are face-connected in 3-D (scipy's default structure, as MONAI's ``RemoveSmallObjects``
    with connectivity 1). Volumes use the voxel volume ``|det(affine[:3, :3])|``; the longest axial
    diameter is, over the slices a nodule lies on, the longest distance between corners of its voxels
    on one slice in physical units (a box of 10 x 6 pixels of 0.7 mm has sqrt(7^2 + 4.2^2) mm). Nodules
    are listed by the order scipy labels them (first voxel in ``(X, Y, Z)`` order).

    Args:
        mask: 0/1 (or boolean) on the series' grid.
        affine: 4x4 voxel index to patient LPS mm (:attr:`radtl.dicom.series.CTSeries.affine`).
    """
    labels, count = ndimage.label(np.asarray(mask) > 0)
    voxel_volume = abs(float(np.linalg.det(affine[:3, :3])))
    nodules = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        component = labels[box] == label
        indices = np.argwhere(component) + [s.start for s in box]
        centroid = _to_patient(affine, indices.mean(axis=0, keepdims=True).astype(float))[0]
        longest, ends = 0.0, np.zeros((2, 3))
        slices = sorted({int(z) for z in indices[:, 2]})
        for z in slices:
            length, points = _longest_in_plane(indices[indices[:, 2] == z][:, :2].astype(float), affine, z)
            if length > longest:
                longest, ends = length, points
        nodules.append(
            Nodule(
                volume_mm3=len(indices) * voxel_volume,
                longest_axial_diameter_mm=longest,
                diameter_end_points=(tuple(map(float, ends[0])), tuple(map(float, ends[1]))),
                centroid=tuple(map(float, centroid)),
                slices=tuple(slices),
            )
        )
    return nodules


# ---- shared parts of both reports ----


def _algorithm(name: str, version: str) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=name, version=version)


def _observation_context(name: str, version: str) -> hd.sr.ObservationContext:
    """The observer is the model, a device whose UID is derived from its name and version (PS3.16 TID 1004)."""
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["radtl", name, version]),
        name=name[:64],
        manufacturer_name="radtl",
        model_name=f"{name} {version}"[:64],
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(observer_type=codes.cid270.Device,
                                                      observer_identifying_attributes=device)
    )


def _document(
    kind: type[hd.sr.ComprehensiveSR] | type[hd.sr.Comprehensive3DSR],
    report: hd.sr.MeasurementReport,
    evidence: Sequence[Dataset],
    series_number: int,
    description: str,
) -> hd.sr.ComprehensiveSR | hd.sr.Comprehensive3DSR:
    with names_unquoted():
        document = kind(
            evidence=[derivation_source(evidence[0]), *evidence[1:]],
            content=report,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="radtl",
            is_complete=True,
            series_description=description[:64],
            software_versions=f"radtl {radtl.__version__}",
        )
    return document


def sr_path(output: str | os.PathLike, name: str) -> Path:
    """``output/<name>.sr.dcm`` where ``name`` (a UID from the source's files) must be a plain file name.

    Raises:
        SegmentationSourceError: a name that is not a plain file name, so the SR would land outside ``output``
            (:func:`radtl.dicom.seg.named_output`).
    """
    return named_output(output, name, ".sr.dcm")


def _save(document: Dataset, path: str | os.PathLike) -> Path:
    return write_atomic(path, lambda temporary: document.save_as(temporary, enforce_file_format=True))


# ---- nodule measurements: TID 1500 / TID 1411 in a Comprehensive 3D SR ----


def _seg_algorithm(seg: Dataset, segment_number: int) -> tuple[str, str]:
    item = next((s for s in seg.SegmentSequence if int(s.SegmentNumber) == segment_number), None)
    if item is None:
        raise StructuredReportError(f"the SEG has no segment {segment_number}")
    identification = item.get("SegmentationAlgorithmIdentificationSequence") or []
    if item.get("SegmentAlgorithmType") != "AUTOMATIC" or not identification:
        raise StructuredReportError(
            f"segment {segment_number} of the SEG names no algorithm (Segment Algorithm Type "
            f"{item.get('SegmentAlgorithmType')}); a measurement report records the model that measured"
        )
    return str(identification[0].AlgorithmName), str(identification[0].AlgorithmVersion)


def _slice_references(series: CTSeries, slices: Sequence[int]) -> list[hd.sr.SourceImageForSegmentation]:
    """The source images of slices (indices along the normal): one instance per slice, or for a multi-frame
    source (Enhanced CT, whose ``frames`` number the slices) its one instance with the slices' Frame Numbers."""
    frames = getattr(series, "frames", None)
    if frames is None:
        return [
            hd.sr.SourceImageForSegmentation(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
            for ds in (series.datasets[z] for z in slices)
        ]
    ds = series.datasets[0]
    return [hd.sr.SourceImageForSegmentation(str(ds.SOPClassUID), str(ds.SOPInstanceUID),
                                             referenced_frame_numbers=sorted(int(frames[z]) for z in slices))]


def nodule_report(
    seg_file: str | os.PathLike, source: CTSeries | str | os.PathLike, segment_number: int = 1
) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 measurement report of a SEG segment's nodules (see the module's docstring).

    The mask measured is the SEG's own, read back onto the source series (:func:`radtl.dicom.seg.read_segmentation`;
    a FRACTIONAL SEG's probabilities at 0.5 or more), so the report and the SEG cannot disagree. A SEG that found
    nothing gives a report whose one group (TID 1500 needs one) is an image-level Qualitative Evaluation over the
    series, Nodule: Absent (SCT 272519000): an explicit "no nodule", with no volumetric group.

    Args:
        seg_file: the SEG, written by :func:`radtl.dicom.seg.write_segmentation`.
        source: the series it segments (its folder, or its :class:`CTSeries`).
        segment_number: the segment measured (1: the nodule).

    Raises:
        StructuredReportError: the segment is missing or names no algorithm.
        radtl.dicom.seg.SegmentationSourceError: the SEG does not segment ``source``.
    """
    series = source if isinstance(source, CTSeries) else read_series_headers(source, modality=None)
    seg = pydicom.dcmread(seg_file, stop_before_pixels=True)
    name, version = _seg_algorithm(seg, segment_number)
    mask = read_segmentation(seg_file, series, segment_number) >= (0.5 if seg.SegmentationType == "FRACTIONAL" else 1)
    frame_of_reference = str(series.datasets[0].FrameOfReferenceUID)
    algorithm = _algorithm(name, version)
    groups = []
    for number, nodule in enumerate(measure_nodules(mask, series.affine), start=1):
        sources = _slice_references(series, nodule.slices)
        tracking = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"Nodule {number}")
        volume = hd.sr.Measurement(
            name=codes.SCT.Volume, value=round(nodule.volume_mm3, 3), unit=codes.UCUM.CubicMillimeter,
            algorithm_id=algorithm,
        )
        diameter = hd.sr.Measurement(
            name=codes.SCT.Diameter, value=round(nodule.longest_axial_diameter_mm, 3), unit=codes.UCUM.Millimeter,
            derivation=codes.SCT.Maximum, algorithm_id=algorithm,
        )
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=str(seg.SOPClassUID), sop_instance_uid=str(seg.SOPInstanceUID),
                segment_number=segment_number, source_images=sources,
            ),
            finding_type=codes.SCT.Nodule,
            finding_sites=[hd.sr.FindingSite(codes.SCT.Lung)],
            algorithm_id=algorithm,
            measurements=[volume, diameter],
        ))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,  # the same finding: same Tracking Identifier and UID
            referenced_volume_surface=hd.sr.VolumeSurface(
                graphic_type=hd.sr.GraphicTypeValues3D.POINT, graphic_data=np.array([nodule.centroid]),
                frame_of_reference_uid=frame_of_reference, source_images=sources,
            ),
            geometric_purpose=CENTER_OF_MASS,
            finding_type=codes.SCT.Nodule,
            finding_sites=[hd.sr.FindingSite(codes.SCT.Lung)],
            algorithm_id=algorithm,
        ))
    if not groups:  # TID 1500 holds at least one group: an image-level "nodule: absent" over the series
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="No nodule"),
            finding_type=codes.SCT.Nodule,
            algorithm_id=algorithm,
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(codes.SCT.Nodule, codes.SCT.Absent)],
            source_images=[
                hd.sr.SourceImageForMeasurementGroup(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
                for ds in series.datasets
            ],
        ))
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(name, version),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    return _document(hd.sr.Comprehensive3DSR, report, [seg, *series.datasets], MEASUREMENT_SERIES_NUMBER,
                     f"{name} {version} measurements")


def write_nodule_report(
    path: str | os.PathLike, seg_file: str | os.PathLike, source: CTSeries | str | os.PathLike, segment_number: int = 1
) -> Path:
    """Write :func:`nodule_report` to ``path`` (atomically); returns the path."""
    document = nodule_report(seg_file, source, segment_number)
    path = _save(document, path)
    logger.info("wrote %s (measurements of %s)", path, Path(seg_file).name)
    return path


@dataclass(frozen=True)
class NoduleRecord:
    """One nodule as read back from a measurement report.

    Args:
        tracking_identifier: ``Nodule N``.
        tracking_uid: its Tracking Unique Identifier.
        volume_mm3: Volume.
        longest_axial_diameter_mm: Diameter (Maximum).
        centroid: the Center of Mass point (patient LPS, mm).
        seg_sop_instance_uid: the SEG holding its voxels.
        segment_number: their segment.
        source_sop_instance_uids: the source images it lies on.
        algorithm_name: the measuring algorithm's name.
        algorithm_version: its version.
    """

    tracking_identifier: str
    tracking_uid: str
    volume_mm3: float
    longest_axial_diameter_mm: float
    centroid: tuple[float, float, float]
    seg_sop_instance_uid: str
    segment_number: int
    source_sop_instance_uids: tuple[str, ...]
    algorithm_name: str
    algorithm_version: str


def _measurement(group, name: Code, path) -> hd.sr.Measurement:
    found = group.get_measurements(name=name)
    if len(found) != 1:
        raise StructuredReportError(
            f"{path}: a measurement group holds {len(found)} {name.meaning} measurement(s), not 1"
        )
    return found[0]


def _children(template: hd.sr.ContentSequence, name: Code) -> list[hd.sr.ContentItem]:
    """The content items named ``name`` directly under a template's root item (a group, a measurement)."""
    return [item for item in template[0].ContentSequence if item.name == name]


def _algorithm_of(measurement: hd.sr.Measurement) -> tuple[str, str]:
    name = _children(measurement, codes.DCM.AlgorithmName)
    version = _children(measurement, codes.DCM.AlgorithmVersion)
    return (str(name[0].value) if name else "", str(version[0].value) if version else "")


def _read_report(path: str | os.PathLike) -> hd.sr.MeasurementReport:
    document = hd.sr.srread(path)
    content = document.content
    if not isinstance(content, hd.sr.MeasurementReport):
        raise StructuredReportError(f"{path}: not a TID 1500 Measurement Report")
    return content


def read_nodule_report(path: str | os.PathLike) -> list[NoduleRecord]:
    """The nodules of a report :func:`write_nodule_report` wrote, through highdicom's content accessors.

    Raises:
        StructuredReportError: not a TID 1500 report, or a group without its Volume or Diameter.
    """
    measured, centres = [], {}
    for group in _read_report(path).get_volumetric_roi_measurement_groups():
        if group.reference_type == codes.DCM.ReferencedSegment:
            measured.append(group)
        elif group.reference_type == codes.DCM.VolumeSurface and CENTER_OF_MASS in [
            item.value for item in _children(group, codes.DCM.GeometricPurposeOfRegion)
        ]:
            centres[str(group.tracking_uid)] = np.asarray(group.roi.graphic_data).reshape(-1, 3)[0]
    records = []
    for group in measured:
        volume = _measurement(group, codes.SCT.Volume, path)
        if str(group.tracking_uid) not in centres:
            raise StructuredReportError(f"{path}: {group.tracking_identifier} has no Center of Mass group")
        segment = group.referenced_segment
        name, version = _algorithm_of(volume)
        records.append(NoduleRecord(
            tracking_identifier=str(group.tracking_identifier),
            tracking_uid=str(group.tracking_uid),
            volume_mm3=float(volume.value),
            longest_axial_diameter_mm=float(_measurement(group, codes.SCT.Diameter, path).value),
            centroid=tuple(float(v) for v in centres[str(group.tracking_uid)]),
            seg_sop_instance_uid=str(segment.referenced_sop_instance_uid),
            segment_number=int(segment.referenced_segment_numbers[0]),
            source_sop_instance_uids=tuple(
                str(image.referenced_sop_instance_uid) for image in segment.source_images_for_segmentation
            ),
            algorithm_name=name,
            algorithm_version=version,
        ))
    return records


# ---- classification and regression results: TID 1500 / TID 1501 in a Comprehensive SR ----


def ucum_unit(unit: str) -> Code:
    """A regression bundle's unit (``"months"``) as its UCUM code.

    Raises:
        StructuredReportError: a unit radtl has no code for.
    """
    try:
        return UCUM_UNITS[unit.strip().lower()]
    except KeyError:
        raise StructuredReportError(
            f"no UCUM code for the unit {unit!r}; use one of {', '.join(sorted(UCUM_UNITS))}"
        ) from None


def _class_code(label: str) -> Code:
    return Code(label[:16], RADTL_SCHEME, label[:64])


def prediction_report(
    image: Dataset,
    algorithm_name: str,
    algorithm_version: str,
    *,
    label: str | None = None,
    probability: float | None = None,
    value: float | None = None,
    unit: str | None = None,
    quantity: Code = BONE_AGE,
) -> hd.sr.ComprehensiveSR:
    """The TID 1500 report of one image's prediction (see the module's docstring).

    Give ``label`` and ``probability`` for a classification, or ``value`` and ``unit`` for a regression.

    Args:
        image: the source image's header (its patient, study and SOP Instance are referenced).
        algorithm_name: the model (the bundle's name).
        algorithm_version: its version (the bundle's version).
        label: the predicted class.
        probability: the predicted class's probability, in [0, 1].
        value: the regressed value.
        unit: its unit (``"months"``; :func:`ucum_unit`).
        quantity: what the value measures (default: bone age).

    Raises:
        StructuredReportError: neither or both kinds of prediction, a probability outside [0, 1], an unknown unit.
    """
    if (label is None) == (value is None):
        raise StructuredReportError("a prediction report holds a class (label, probability) or a value (value, unit)")
    algorithm = _algorithm(algorithm_name, algorithm_version)
    evaluations, measurements = None, []
    if label is not None:
        if probability is None or not 0.0 <= float(probability) <= 1.0:
            raise StructuredReportError(f"the probability of {label!r} must be in [0, 1], got {probability}")
        evaluations = [hd.sr.QualitativeEvaluation(CLASSIFICATION, _class_code(label))]
        measurements.append(hd.sr.Measurement(name=PROBABILITY, value=round(float(probability), 6), unit=NO_UNITS,
                                              algorithm_id=algorithm))
    else:
        if unit is None:
            raise StructuredReportError("a regressed value needs its unit")
        measurements.append(hd.sr.Measurement(name=quantity, value=round(float(value), 4), unit=ucum_unit(unit),
                                              algorithm_id=algorithm))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Prediction"),
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations,
        source_images=[hd.sr.SourceImageForMeasurementGroup(str(image.SOPClassUID), str(image.SOPInstanceUID))],
    )
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(algorithm_name, algorithm_version),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=[group],
    )
    document = _document(hd.sr.ComprehensiveSR, report, [image], PREDICTION_SERIES_NUMBER,
                         f"{algorithm_name} {algorithm_version} results")
    # the private scheme of the class codes and bone age, declared in the SOP Common module
    # (Coding Scheme Identification Sequence, PS3.3 C.12.1)
    scheme = Dataset()
    scheme.CodingSchemeDesignator = RADTL_SCHEME
    scheme.CodingSchemeName = "radtl model outputs"
    scheme.CodingSchemeResponsibleOrganization = "radtl"
    document.CodingSchemeIdentificationSequence = [*document.get("CodingSchemeIdentificationSequence", []), scheme]
    return document


def write_prediction_report(path: str | os.PathLike, image: Dataset, algorithm_name: str, algorithm_version: str,
                            **prediction) -> Path:
    """Write :func:`prediction_report` to ``path`` (atomically); returns the path."""
    return _save(prediction_report(image, algorithm_name, algorithm_version, **prediction), path)


@dataclass(frozen=True)
class PredictionRecord:
    """One image's prediction as read back from a report.

    Args:
        image_sop_instance_uid: the image it is about.
        label: the predicted class (None for a regression).
        probability: its probability (None for a regression).
        value: the regressed value (None for a classification).
        unit: the value's UCUM code (None for a classification).
        algorithm_name: the model.
        algorithm_version: its version.
    """

    image_sop_instance_uid: str
    label: str | None
    probability: float | None
    value: float | None
    unit: str | None
    algorithm_name: str
    algorithm_version: str


def read_prediction_report(path: str | os.PathLike) -> PredictionRecord:
    """The prediction of a report :func:`write_prediction_report` wrote.

    Raises:
        StructuredReportError: not a TID 1500 report with one image-level group.
    """
    groups = _read_report(path).get_image_measurement_groups()
    if len(groups) != 1:
        raise StructuredReportError(f"{path}: {len(groups)} image measurement groups, not the 1 of a prediction")
    group = groups[0]
    images = group.source_images
    image_uid = str(images[0].referenced_sop_instance_uid) if images else ""
    evaluations = group.get_qualitative_evaluations(name=CLASSIFICATION)
    if evaluations:
        probability = _measurement(group, PROBABILITY, path)
        name, version = _algorithm_of(probability)
        return PredictionRecord(image_uid, str(evaluations[0].value.meaning), float(probability.value), None, None,
                                name, version)
    measurements = group.get_measurements()
    if len(measurements) != 1:
        raise StructuredReportError(f"{path}: neither a Classification nor one measurement")
    name, version = _algorithm_of(measurements[0])
    return PredictionRecord(image_uid, None, None, float(measurements[0].value), str(measurements[0].unit.value),
                            name, version)
