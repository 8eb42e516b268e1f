"""DICOM to display images, stage by stage as DICOM PS3.3 C.11 and PS3.4 N.2 define them.

- :mod:`~radtl.dicom.lut`: the stages' arithmetic (Modality LUT, VOI LUT, inversion).
- :mod:`~radtl.dicom.modules`: a frame's stage parameters read from its modules and
  functional groups.
- :mod:`~radtl.dicom.render`: stored values to an 8-bit frame (first valid window).
- :mod:`~radtl.dicom.io`: reading and decoding, every failure typed (:mod:`~radtl.dicom.errors`).
- :mod:`~radtl.dicom.image`: colour and RadiologyNET's frame policies (the square resize is
  :func:`radtl.dicom.image.resize_longest_pad_uint8`).
- :mod:`~radtl.dicom.frames`: one dataset to its display frames.
- :mod:`~radtl.dicom.convert`: ``radtl convert``, a whole archive to PNGs and a manifest.

DICOM objects and services, one module each (as highdicom has one package per IOD):

- :mod:`~radtl.dicom.series`: a CT series folder as a checked, sorted volume in HU.
- :mod:`~radtl.dicom.seg`: DICOM Segmentation objects (PS3.3 A.51) written and read back;
  :mod:`~radtl.dicom.seg_preview`: a SEG drawn over its series as a PNG.
- :mod:`~radtl.dicom.pacs`: moving files to and from a PACS (DIMSE, PS3.4; DICOMweb, PS3.18).
"""

from radtl.lazy import lazy_exports

#: Each public name and the submodule that defines it, imported when the name is first read.
_HOMES = {
    "ColorMode": "frames",
    "ConversionOptions": "frames",
    "DisplayFrame": "frames",
    "display_frames": "frames",
    "read_display_frames": "frames",
    "DicomConversionError": "errors",
    "ConversionSummary": "convert",
    "ExportSettings": "convert",
    "Status": "convert",
    "convert_tree": "convert",
    "LookupTable": "lut",
    "Rescale": "lut",
    "VoiLutFunction": "lut",
    "Window": "lut",
    "apply_inversion": "lut",
    "apply_lut": "lut",
    "apply_modality_lut": "lut",
    "apply_paper_window": "lut",
    "apply_rescale": "lut",
    "apply_voi": "lut",
    "apply_voi_lut": "lut",
    "apply_window": "lut",
    "GrayscalePipeline": "modules",
    "VoiPreference": "modules",
    "grayscale_pipeline": "modules",
    "RenderedFrame": "render",
    "WindowFormula": "render",
    "render_grayscale": "render",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
