from radtl.transforms.io.array import LoadPacked, LoadRadiograph
from radtl.transforms.io.dictionary import (
    LoadPackedD,
    LoadPackedd,
    LoadPackedDict,
    LoadRadiographD,
    LoadRadiographd,
    LoadRadiographDict,
)

__all__ = [
    "LoadPacked",
    "LoadPackedD",
    "LoadPackedDict",
    "LoadPackedd",
    "LoadRadiograph",
    "LoadRadiographD",
    "LoadRadiographDict",
    "LoadRadiographd",
]
