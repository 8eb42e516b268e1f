"""Spatial transforms (``ResizeLongestPad``, the study's square resize): the maths, array transforms and their
dictionary twins.

The names are imported on first use (:func:`radtl.lazy.lazy_exports`): ``radtl convert`` resizes with
:mod:`~radtl.transforms.spatial.functional` (NumPy and PIL only) and must not import torch or MONAI.
"""

from radtl.lazy import lazy_exports

#: Each public name and the submodule that defines it, imported when the name is first read.
_HOMES = {
    "ResizeLongestPad": "array",
    "ResizeLongestPadD": "dictionary",
    "ResizeLongestPadDict": "dictionary",
    "ResizeLongestPadd": "dictionary",
    "resize_longest_pad": "functional",
    "resize_longest_pad_uint8": "functional",
    "resized_shape": "functional",
    "to_uint8": "functional",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
