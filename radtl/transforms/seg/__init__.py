from radtl.transforms.seg.array import SaveDicomSeg
from radtl.transforms.seg.dictionary import SaveDicomSegD, SaveDicomSegd, SaveDicomSegDict

__all__ = ["SaveDicomSeg", "SaveDicomSegD", "SaveDicomSegDict", "SaveDicomSegd"]
