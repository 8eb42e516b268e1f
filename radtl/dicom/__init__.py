"""DICOM to display images, stage by stage as DICOM PS3.3 C.11 and PS3.4 N.2 define them.

- :mod:`~radtl.dicom.lut`: the stages' arithmetic (Modality LUT, VOI LUT, inversion).
- :mod:`~radtl.dicom.modules`: a frame's stage parameters read from its modules and
  functional groups.
- :mod:`~radtl.dicom.render`: stored values to an 8-bit frame (first valid window).
- :mod:`~radtl.dicom.io`: reading and decoding, every failure typed (:mod:`~radtl.dicom.errors`).
- :mod:`~radtl.dicom.image`: colour, resizing with padding, RadiologyNET's frame policies.
- :mod:`~radtl.dicom.convert`: one dataset to its display frames.
- :mod:`~radtl.dicom.export`: ``radtl convert``, a whole archive to PNGs and a manifest.
"""

from radtl.dicom.convert import ColorMode, ConversionOptions, DisplayFrame, display_frames, read_display_frames
from radtl.dicom.errors import DicomConversionError
from radtl.dicom.export import ConversionSummary, ExportSettings, Status, convert_tree
from radtl.dicom.lut import (
    LookupTable,
    Rescale,
    VoiLutFunction,
    Window,
    apply_inversion,
    apply_lut,
    apply_modality_lut,
    apply_paper_window,
    apply_rescale,
    apply_voi,
    apply_voi_lut,
    apply_window,
)
from radtl.dicom.modules import GrayscalePipeline, VoiPreference, grayscale_pipeline
from radtl.dicom.render import RenderedFrame, WindowFormula, render_grayscale

__all__ = [
    "ColorMode", "ConversionOptions", "ConversionSummary", "DicomConversionError", "DisplayFrame",
    "ExportSettings", "GrayscalePipeline", "LookupTable", "RenderedFrame", "Rescale", "Status",
    "VoiLutFunction", "VoiPreference", "Window", "WindowFormula", "apply_inversion", "apply_lut",
    "apply_modality_lut", "apply_paper_window", "apply_rescale", "apply_voi", "apply_voi_lut",
    "apply_window", "convert_tree", "display_frames", "grayscale_pipeline", "read_display_frames",
    "render_grayscale",
]
