"""Deprecated: moved to :mod:`radtl.energy` (issue 23); this path works for one release."""

from radtl.lazy import moved_module

moved_module(__name__, "radtl.energy")
