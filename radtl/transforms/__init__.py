"""MONAI transforms over radtl's DICOM pipeline, usable by ``_target_`` from bundle JSON.

Grouped by operation, as MONAI groups its own; each group has ``array.py`` transforms, their
``dictionary.py`` twins (``...d``, ``...D``, ``...Dict``) and, where there is maths, ``functional.py``:

- :mod:`~radtl.transforms.io`: every loader and writer (``LoadDicomImage``, ``LoadRadiograph``,
  ``LoadPacked``, ``LoadCTVolume``, ``SaveDicomSeg``).
- :mod:`~radtl.transforms.intensity`: ``VoiWindow`` (PS3.3 C.11.2.1.2), ``StandardizeLabel`` (z-scores and back).
- :mod:`~radtl.transforms.label`: nodule masks (``NoduleMask``), ``CastLabel``, ``SegmentationMask`` (binary or
  fractional, the mask a DICOM-SEG stores).
- :mod:`~radtl.transforms.spatial`: ``ResizeLongestPad``, the study's square resize.
- :mod:`~radtl.transforms.batch`: augmentation of whole batches on their device
  (``RandBatchAugment``, ``MultiCrop``).

Every public name is importable from here; its module is imported when the name is first read
(:func:`radtl.lazy.lazy_exports`), so importing one group does not import the others.
"""

from radtl.lazy import lazy_exports

#: Each public name and the submodule that defines it, imported when the name is first read.
_HOMES = {
    "LPS_TO_RAS": "io.array",
    "LoadCTVolume": "io.array",
    "LoadCTVolumeD": "io.dictionary",
    "LoadCTVolumeDict": "io.dictionary",
    "LoadCTVolumed": "io.dictionary",
    "LoadDicomImage": "io.array",
    "LoadDicomImageD": "io.dictionary",
    "LoadDicomImageDict": "io.dictionary",
    "LoadDicomImaged": "io.dictionary",
    "LoadPacked": "io.array",
    "LoadPackedD": "io.dictionary",
    "LoadPackedDict": "io.dictionary",
    "LoadPackedd": "io.dictionary",
    "LoadRadiograph": "io.array",
    "LoadRadiographD": "io.dictionary",
    "LoadRadiographDict": "io.dictionary",
    "LoadRadiographd": "io.dictionary",
    "SaveDicomSeg": "io.array",
    "SaveDicomSegD": "io.dictionary",
    "SaveDicomSegDict": "io.dictionary",
    "SaveDicomSegd": "io.dictionary",
    "StandardizeLabel": "intensity.array",
    "StandardizeLabelD": "intensity.dictionary",
    "StandardizeLabelDict": "intensity.dictionary",
    "StandardizeLabeld": "intensity.dictionary",
    "VoiWindow": "intensity.array",
    "VoiWindowD": "intensity.dictionary",
    "VoiWindowDict": "intensity.dictionary",
    "VoiWindowd": "intensity.dictionary",
    "CastLabel": "label.array",
    "CastLabelD": "label.dictionary",
    "CastLabelDict": "label.dictionary",
    "CastLabeld": "label.dictionary",
    "SegmentationMask": "label.array",
    "SegmentationMaskD": "label.dictionary",
    "SegmentationMaskDict": "label.dictionary",
    "SegmentationMaskd": "label.dictionary",
    "NoduleMask": "label.array",
    "NoduleMaskD": "label.dictionary",
    "NoduleMaskDict": "label.dictionary",
    "NoduleMaskd": "label.dictionary",
    "NoduleSpheres": "label.array",
    "nodule_mask": "label.functional",
    "ResizeLongestPad": "spatial.array",
    "ResizeLongestPadD": "spatial.dictionary",
    "ResizeLongestPadDict": "spatial.dictionary",
    "ResizeLongestPadd": "spatial.dictionary",
    "BatchRandomizable": "batch.array",
    "BatchRepeatChannel": "batch.array",
    "CROP_ATTEMPTS": "batch.functional",
    "GAMMA_EPSILON": "batch.functional",
    "MultiCrop": "batch.array",
    "RandBatchAugment": "batch.array",
    "adjust_brightness": "batch.functional",
    "adjust_contrast": "batch.functional",
    "adjust_gamma": "batch.functional",
    "affine_matrices": "batch.functional",
    "affine_resample": "batch.functional",
    "color_jitter": "batch.functional",
    "crop_matrices": "batch.functional",
    "gaussian_blur": "batch.functional",
    "resized_crop_boxes": "batch.functional",
    "solarize": "batch.functional",
    "to_unit_float": "batch.functional",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
