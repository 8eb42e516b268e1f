from radtl.transforms.io.array import LoadRadiograph
from radtl.transforms.io.dictionary import LoadRadiographD, LoadRadiographd, LoadRadiographDict

__all__ = ["LoadRadiograph", "LoadRadiographD", "LoadRadiographDict", "LoadRadiographd"]
