"""Label transforms (nodule masks, the label cast, the mask a DICOM-SEG stores): the maths, array transforms and
their dictionary twins."""

from radtl.transforms.label.array import (
    CastLabel,
    NoduleMask,
    NoduleSpheres,
    SegmentationMask,
)
from radtl.transforms.label.dictionary import (
    CastLabelD,
    CastLabeld,
    CastLabelDict,
    NoduleMaskD,
    NoduleMaskd,
    NoduleMaskDict,
    SegmentationMaskD,
    SegmentationMaskd,
    SegmentationMaskDict,
)
from radtl.transforms.label.functional import (
    nodule_mask,
)

__all__ = [
    "CastLabel",
    "CastLabeld",
    "CastLabelD",
    "CastLabelDict",
    "NoduleMask",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
    "NoduleSpheres",
    "SegmentationMask",
    "SegmentationMaskd",
    "SegmentationMaskD",
    "SegmentationMaskDict",
    "nodule_mask",
]
