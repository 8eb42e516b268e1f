"""Deprecated: the pack moved to :mod:`radtl.data.pack` (format, writer, reader; issue 23); this path works for
one release."""

from radtl.lazy import moved_module

moved_module(__name__, "radtl.data.pack")
