"""Package attributes imported on first use (PEP 562), so importing one light submodule stays light.

``radtl.dicom`` re-exports the conversion pipeline and ``radtl.dicom.index`` the index; importing either package
would import pydicom, pyarrow and pandas before ``radtl query`` (which needs only DuckDB) could run. With
:func:`lazy_exports` a package lists where each public name lives, and a name's module is imported the first time
the name is read (``from radtl.dicom import convert_tree`` still works, as does ``import *``).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports", "moved_module", "moved_names"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose public names live in submodules.

    Args:
        package: the package's ``__name__``.
        homes: each public name and the submodule (relative to ``package``) that defines it.
    """

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        importlib.import_module(package).__dict__[name] = value  # read once; later reads are plain lookups
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(homes))

    return __getattr__, __dir__


def moved_module(old: str, new: str) -> None:
    """Make the deprecated module path ``old`` the module ``new``, with a ``DeprecationWarning``.

    Called by the shim left at the old path, so ``import old``, ``from old import name`` and
    ``monkeypatch.setattr("old.name", ...)`` all reach the one implementation, for one release.

    Args:
        old: the module path that moved (the shim's ``__name__``).
        new: where the module lives now.
    """
    module = importlib.import_module(new)
    warnings.warn(f"{old} moved to {new}; the old path goes in the next release", DeprecationWarning, stacklevel=3)
    sys.modules[old] = module


def moved_names(module: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """The ``__getattr__`` of ``module`` for names that moved out of it: each read warns and returns the new object.

    The new module is imported when a moved name is read, by name, so a deprecated path adds no import to
    ``module`` (nor a cycle through it) for one release.

    Args:
        module: the module the names were in (its ``__name__``).
        homes: each moved name and the module that defines it now.
    """

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} moved to {homes[name]}.{name}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(homes[name]), name)

    return __getattr__
