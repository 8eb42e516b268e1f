"""Spatial transforms: ``ResizeLongestPad``, the study's square resize, and its dictionary twin.

The resize itself is :func:`radtl.dicom.image.resize_longest_pad` (NumPy and PIL), which ``radtl convert``, the
pack writer and the pseudo-labelling encoders call directly.
"""

from radtl.transforms.spatial.array import ResizeLongestPad
from radtl.transforms.spatial.dictionary import ResizeLongestPadD, ResizeLongestPadd, ResizeLongestPadDict

__all__ = ["ResizeLongestPad", "ResizeLongestPadD", "ResizeLongestPadDict", "ResizeLongestPadd"]
