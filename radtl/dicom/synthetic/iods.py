"""Whole instances, one function per IOD (PS3.3 A): the modules of :mod:`~radtl.dicom.synthetic.modules` summed.

Each builder returns a dataset with every module but, where it says so, the window and the pixels, which the
sample sets choose; :func:`~radtl.dicom.synthetic.modules.write` stores it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from radtl.dicom.synthetic.modules import (
    AXIAL,
    BASIC_TEXT_SR,
    CR_IMAGE,
    CT_IMAGE,
    DATE,
    DX_IMAGE_PRESENTATION,
    TIME,
    Study,
    add_frame_of_reference,
    add_general_image,
    add_image_plane,
    add_patient_and_study,
    add_series,
    add_window,
    code,
    decimal_string,
    new_instance,
    seq,
    set_pixels,
    uid,
)

__all__ = [
    "add_enhanced_multiframe",
    "add_mr_acquisition",
    "axial_slice",
    "basic_text_sr",
    "cr_image",
    "ct_image",
    "dx_image",
    "secondary_capture",
]


def cr_image(
    study: Study,
    key: str,
    number: int,
    arr: np.ndarray,
    photometric: str,
    body_part: str,
    view: str,
    orientation: Sequence[str],
    spacing: float,
    laterality: str | None = None,
) -> Dataset:
    """A CR Image instance (PS3.3 A.2) holding 12-bit ``arr``; the caller adds a window.

    Patient, General Study, Patient Study, General Series, CR Series (C.8.1.1), General Equipment, General
    Image, Image Pixel, CR Image (C.8.1.2) and SOP Common.

    Args:
        study: the patient and study.
        key: the instance's fixed name within the study (its SOP Instance UID derives from it).
        number: Series Number.
        arr: ``(H, W)`` 12-bit stored values.
        photometric: ``MONOCHROME1`` or ``MONOCHROME2``.
        body_part: Body Part Examined.
        view: View Position (``PA``).
        orientation: Patient Orientation.
        spacing: Imager Pixel Spacing, mm.
        laterality: Laterality, or None.
    """
    ds = new_instance(CR_IMAGE, study.key, key)
    add_patient_and_study(ds, study)
    add_series(
        ds,
        study,
        modality="CR",
        number=number,
        description=f"{body_part} {view}",
        body_part=body_part,
        laterality=laterality,
    )
    ds.ViewPosition = view
    add_general_image(ds, number=1, image_type=["ORIGINAL", "PRIMARY"], patient_orientation=orientation)
    ds.ImagerPixelSpacing = [decimal_string(spacing), decimal_string(spacing)]
    ds.KVP = "70" if body_part == "HAND" else "120"
    ds.ExposureTime = "10"
    ds.XRayTubeCurrent = "200"
    set_pixels(ds, arr, bits_stored=12, photometric=photometric)
    return ds


def dx_image(
    study: Study,
    key: str,
    arr: np.ndarray,
    photometric: str,
    anatomy: Dataset,
    body_part: str,
    laterality: str,
    orientation: Sequence[str],
    spacing: float,
    bits_stored: int = 12,
) -> Dataset:
    """A DX Image For Presentation instance (PS3.3 A.26) holding ``arr``; the caller adds a window or VOI LUT.

    Adds to the common modules DX Series (C.8.11.1), DX Anatomy Imaged (C.8.11.2), DX Image (C.8.11.3),
    DX Detector (C.8.11.4) and DX Positioning (C.8.11.5).

    Args:
        study: the patient and study.
        key: the instance's fixed name within the study.
        arr: ``(H, W)`` stored values.
        photometric: ``MONOCHROME1`` (Presentation LUT Shape ``INVERSE``) or ``MONOCHROME2``.
        anatomy: the Anatomic Region Sequence item (:func:`~radtl.dicom.synthetic.modules.code`).
        body_part: Body Part Examined.
        laterality: Image Laterality.
        orientation: Patient Orientation.
        spacing: Imager Pixel Spacing, mm.
        bits_stored: Bits Stored.
    """
    ds = new_instance(DX_IMAGE_PRESENTATION, study.key, key)
    add_patient_and_study(ds, study)
    add_series(ds, study, modality="DX", number=1, description=f"{body_part} PA", body_part=body_part)
    ds.PresentationIntentType = "FOR PRESENTATION"
    add_general_image(ds, number=1, image_type=["ORIGINAL", "PRIMARY"], patient_orientation=orientation)
    ds.ImageLaterality = laterality
    ds.AnatomicRegionSequence = seq(anatomy)
    ds.ViewPosition = "PA"
    ds.ViewCodeSequence = seq(code("399348003", "SCT", "postero-anterior"))
    ds.AcquisitionContextSequence = seq()
    ds.DetectorType = "SCINTILLATOR"
    ds.PositionerType = "COLUMN" if body_part == "CHEST" else "NONE"
    ds.ImagerPixelSpacing = [decimal_string(spacing), decimal_string(spacing)]
    ds.KVP = "60" if body_part == "HAND" else "125"
    set_pixels(ds, arr, bits_stored=bits_stored, photometric=photometric)
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    return ds


def axial_slice(
    sop_class: UID,
    study: Study,
    key: object,
    *,
    number: int,
    shape: tuple[int, int],
    spacing: float,
    z: float,
    thickness: float,
    modality: str,
    description: str,
    body_part: str,
    image_type: Sequence[str],
    series: int = 1,
) -> Dataset:
    """An axial cross-sectional instance (CT, MR, ...) centred on the isocentre, without pixels yet.

    Fills the Patient, Study, Series, Frame of Reference, General Image and Image Plane
    modules; the caller adds the modality's acquisition attributes and the pixels.

    Args:
        sop_class: the SOP Class UID (:data:`~radtl.dicom.synthetic.modules.CT_IMAGE`, ...).
        study: the patient and study.
        key: the instance's fixed name within the study.
        number: Instance Number.
        shape: rows and columns.
        spacing: Pixel Spacing, mm (square pixels).
        z: the slice's position along the patient axis, mm.
        thickness: Slice Thickness, mm.
        modality: Modality.
        description: Series Description.
        body_part: Body Part Examined.
        image_type: Image Type.
        series: Series Number.
    """
    ds = new_instance(sop_class, study.key, key)
    add_patient_and_study(ds, study)
    add_series(
        ds, study, modality=modality, number=series, description=description, body_part=body_part,
        patient_position="HFS",
    )
    add_frame_of_reference(ds, study)
    add_general_image(ds, number=number, image_type=list(image_type))
    ds.AcquisitionNumber = 1
    rows, cols = shape
    add_image_plane(
        ds, position=[-cols * spacing / 2, -rows * spacing / 2, z], spacing=[spacing, spacing], thickness=thickness
    )
    return ds


def ct_image(
    study: Study, key: object, number: int, hu: np.ndarray, z: float, series: int = 1,
    spacing: float = 1.5, thickness: float = 5.0,
) -> Dataset:
    """A CT Image instance (PS3.3 A.3) from an HU image: stored int16 = HU + 1024, soft-tissue and lung windows.

    :func:`axial_slice` plus CT Image (C.8.2.1), Image Pixel and VOI LUT.

    Args:
        study: the patient and study.
        key: the instance's fixed name within the study.
        number: Instance Number.
        hu: ``(H, W)`` Hounsfield units.
        z: the slice's position along the patient axis, mm.
        series: Series Number.
        spacing: Pixel Spacing, mm.
        thickness: Slice Thickness, mm.
    """
    ds = axial_slice(
        CT_IMAGE, study, key, number=number, shape=hu.shape, spacing=spacing, z=z, thickness=thickness,
        modality="CT", description="Chest 5mm", body_part="CHEST", image_type=["ORIGINAL", "PRIMARY", "AXIAL"],
        series=series,
    )
    ds.KVP = "120"
    ds.XRayTubeCurrent = 200
    ds.ExposureTime = 500
    ds.ConvolutionKernel = "STANDARD"
    stored = np.rint(hu + 1024).astype(np.int16)
    set_pixels(ds, stored, bits_stored=16)
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    add_window(ds, [40, -600], [400, 1500], ["SOFT TISSUE", "LUNG"])
    return ds


def add_mr_acquisition(ds: Dataset) -> None:
    """MR Image module (PS3.3 C.8.3.1): a 1.5 T T2-weighted turbo spin echo."""
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = ["SK", "SP"]
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = "tse2d1_15"
    ds.AngioFlag = "N"
    ds.RepetitionTime = "4000"
    ds.EchoTime = "100"
    ds.EchoTrainLength = 15
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = "63.87"
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = "1.5"
    ds.FlipAngle = "150"
    ds.PixelBandwidth = "200"
    ds.ReceiveCoilName = "HEAD"
    ds.TransmitCoilName = "BODY"


def add_enhanced_multiframe(
    ds: Dataset,
    study: Study,
    modality: str,
    image_type: list[str],
    n_frames: int,
    spacing: float,
    thickness: float,
    positions: list[list[float]],
    anatomy: Dataset,
    frames: list[tuple[float, float, float, float, str]],
    rescale_type: str,
    frame_type_attr: str,
    frame_type_extra: dict[str, str],
) -> None:
    """The modules an Enhanced CT (PS3.3 A.38) or Enhanced MR (A.36) instance shares, but for the pixels.

    Patient, Study and Series, Frame of Reference, Enhanced General Image attributes, Multi-frame Dimension
    (C.7.6.17: one stack, in-stack position), and Multi-frame Functional Groups (C.7.6.16): shared Pixel Measures,
    Plane Orientation, Frame Anatomy and Frame Type; per frame Frame Content, Plane Position, Pixel Value
    Transformation and Frame VOI LUT.

    Args:
        ds: the dataset, from :func:`~radtl.dicom.synthetic.modules.new_instance`.
        study: the patient and study.
        modality: ``CT`` or ``MR``.
        image_type: Image Type, also each frame's Frame Type.
        n_frames: number of frames.
        spacing: Pixel Spacing, mm.
        thickness: Slice Thickness and Spacing Between Slices, mm.
        positions: each frame's Image Position (Patient).
        anatomy: the Anatomic Region Sequence item.
        frames: each frame's (rescale slope, rescale intercept, window centre, window width, explanation).
        rescale_type: Rescale Type (``HU``, ``US``).
        frame_type_attr: the Frame Type sequence's keyword (``CTImageFrameTypeSequence``, ...).
        frame_type_extra: attributes set both on the dataset and in the Frame Type item.
    """
    add_patient_and_study(ds, study)
    add_series(ds, study, modality=modality, number=1, description=f"Enhanced {modality}", patient_position="HFS")
    add_frame_of_reference(ds, study)
    ds.ImageType = image_type
    ds.InstanceNumber = 1
    ds.ContentDate = DATE
    ds.ContentTime = TIME
    ds.AcquisitionDateTime = DATE + TIME
    ds.AcquisitionDuration = 60
    ds.AcquisitionNumber = 1
    ds.ContentQualification = "RESEARCH"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionContextSequence = seq()
    for k, v in frame_type_extra.items():
        setattr(ds, k, v)
    dim_uid = uid("dimension-organization", study.key)
    ds.DimensionOrganizationType = "3D"
    ds.DimensionOrganizationSequence = seq(Dataset())
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dim_uid
    dims = []
    for pointer, group, label in [
        (0x00209056, 0x00209111, "Stack ID"),
        (0x00209057, 0x00209111, "In-Stack Position Number"),
    ]:
        d = Dataset()
        d.DimensionOrganizationUID = dim_uid
        d.DimensionIndexPointer = pointer
        d.FunctionalGroupPointer = group
        d.DimensionDescriptionLabel = label
        dims.append(d)
    ds.DimensionIndexSequence = seq(*dims)

    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [decimal_string(spacing), decimal_string(spacing)]
    pm.SliceThickness = decimal_string(thickness)
    pm.SpacingBetweenSlices = decimal_string(thickness)
    shared.PixelMeasuresSequence = seq(pm)
    po = Dataset()
    po.ImageOrientationPatient = [decimal_string(v) for v in AXIAL]
    shared.PlaneOrientationSequence = seq(po)
    fa = Dataset()
    fa.AnatomicRegionSequence = seq(anatomy)
    fa.FrameLaterality = "U"
    shared.FrameAnatomySequence = seq(fa)
    ft = Dataset()
    ft.FrameType = image_type
    for k, v in frame_type_extra.items():
        setattr(ft, k, v)
    setattr(shared, frame_type_attr, seq(ft))
    if modality == "CT":
        irr = Dataset()
        irr.IrradiationEventUID = uid("irradiation-event", study.key)
        shared.IrradiationEventIdentificationSequence = seq(irr)
    ds.SharedFunctionalGroupsSequence = seq(shared)

    per_frame = []
    for i in range(n_frames):
        item = Dataset()
        fc = Dataset()
        fc.FrameAcquisitionNumber = 1
        fc.FrameReferenceDateTime = DATE + TIME
        fc.FrameAcquisitionDateTime = DATE + TIME
        fc.FrameAcquisitionDuration = 1000
        fc.DimensionIndexValues = [1, i + 1]
        fc.StackID = "1"
        fc.InStackPositionNumber = i + 1
        item.FrameContentSequence = seq(fc)
        pp = Dataset()
        pp.ImagePositionPatient = [decimal_string(v) for v in positions[i]]
        item.PlanePositionSequence = seq(pp)
        slope, intercept, wc, ww, explanation = frames[i]
        pvt = Dataset()
        pvt.RescaleIntercept = decimal_string(intercept)
        pvt.RescaleSlope = decimal_string(slope)
        pvt.RescaleType = rescale_type
        item.PixelValueTransformationSequence = seq(pvt)
        voi = Dataset()
        voi.WindowCenter = decimal_string(wc)
        voi.WindowWidth = decimal_string(ww)
        voi.WindowCenterWidthExplanation = explanation
        item.FrameVOILUTSequence = seq(voi)
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = seq(*per_frame)


def basic_text_sr(study: Study, key: object, series: int) -> Dataset:
    """A Basic Text SR instance (PS3.3 A.35.1): one finding in a report container, and no pixels.

    Args:
        study: the patient and study.
        key: the instance's fixed name within the study.
        series: Series Number.
    """
    ds = new_instance(BASIC_TEXT_SR, study.key, key)
    add_patient_and_study(ds, study)
    add_series(ds, study, modality="SR", number=series, description="Text report")
    ds.ReferencedPerformedProcedureStepSequence = seq()
    ds.InstanceNumber = 1
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate = DATE
    ds.ContentTime = TIME
    ds.PerformedProcedureCodeSequence = seq()
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = seq(code("18748-4", "LN", "Diagnostic Imaging Report"))
    ds.ContinuityOfContent = "SEPARATE"
    finding = Dataset()
    finding.RelationshipType = "CONTAINS"
    finding.ValueType = "TEXT"
    finding.ConceptNameCodeSequence = seq(code("121071", "DCM", "Finding"))
    finding.TextValue = "Synthetic report: no pixel data in this object."
    ds.ContentSequence = seq(finding)
    return ds


def secondary_capture(
    sop_class: UID, study: Study, key: object, *, modality: str, series: int, description: str, body_part: str
) -> Dataset:
    """A Secondary Capture instance (PS3.3 A.8) without pixels: SC Equipment (C.8.6.1) and a derived image.

    Args:
        sop_class: the SOP Class UID (single-frame or multi-frame Secondary Capture).
        study: the patient and study.
        key: the instance's fixed name within the study.
        modality: Modality.
        series: Series Number.
        description: Series Description.
        body_part: Body Part Examined.
    """
    ds = new_instance(sop_class, study.key, key)
    add_patient_and_study(ds, study)
    add_series(ds, study, modality=modality, number=series, description=description, body_part=body_part)
    ds.ConversionType = "WSD"
    add_general_image(ds, number=1, image_type=["DERIVED", "SECONDARY"], patient_orientation=["L", "P"])
    return ds
