"""Label transforms (nodule masks): the maths, array transforms and their dictionary twins."""

from radtl.transforms.label.array import (
    NoduleMask,
    NoduleSpheres,
)
from radtl.transforms.label.dictionary import (
    NoduleMaskD,
    NoduleMaskd,
    NoduleMaskDict,
)
from radtl.transforms.label.functional import (
    nodule_mask,
)

__all__ = [
    "NoduleMask",
    "NoduleMaskD",
    "NoduleMaskDict",
    "NoduleMaskd",
    "NoduleSpheres",
    "nodule_mask",
]
