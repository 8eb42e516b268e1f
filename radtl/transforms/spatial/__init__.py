"""Spatial transforms (``ResizeLongestPad``, the study's square resize): the maths, array transforms and their
dictionary twins."""

from radtl.transforms.spatial.array import ResizeLongestPad
from radtl.transforms.spatial.dictionary import ResizeLongestPadD, ResizeLongestPadd, ResizeLongestPadDict
from radtl.transforms.spatial.functional import resize_longest_pad, resize_longest_pad_uint8, resized_shape, to_uint8

__all__ = [
    "ResizeLongestPad",
    "ResizeLongestPadD",
    "ResizeLongestPadDict",
    "ResizeLongestPadd",
    "resize_longest_pad",
    "resize_longest_pad_uint8",
    "resized_shape",
    "to_uint8",
]
