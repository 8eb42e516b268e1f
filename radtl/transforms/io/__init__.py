from radtl.transforms.io.array import LoadRadiograph
from radtl.transforms.io.dictionary import LoadRadiographd, LoadRadiographD, LoadRadiographDict

__all__ = ["LoadRadiograph", "LoadRadiographd", "LoadRadiographD", "LoadRadiographDict"]
