"""The base of every error radtl means for a person to read, and the command line's one way of showing it.

Every exception radtl raises about its input (a file, a folder, an option, a bundle, a PACS) derives from
:class:`RadtlError`. The ``radtl`` command turns one into a single line on standard error,
``radtl <command>: <what is wrong>; <what to do>``, and exit status 2; ``--debug`` (or ``RADTL_DEBUG=1``)
shows the traceback instead. Classes that were ``ValueError`` (or ``KeyError``) before this base existed keep
that class too, so ``except ValueError`` in code that uses radtl still catches them.

The subclasses live with the code that raises them (:class:`radtl.dicom.errors.DicomConversionError`,
:class:`radtl.bundle.SettingError`, :class:`radtl.dicom.pacs.PacsError`, ...); this module holds only the base and
:class:`UsageError`, the error of an option or argument radtl cannot act on. It imports nothing heavy, so the
command line can import it before it knows which command runs.
"""

from __future__ import annotations

__all__ = ["MissingPackageError", "RadtlError", "UsageError", "closest"]


class RadtlError(Exception):
    """An error about radtl's input, for a person: the message says what is wrong, ``hint`` what to do.

    Args:
        message: what is wrong, naming the file, option or value.
        hint: what to do about it (optional; a subclass may set a class-wide ``hint``).
    """

    hint: str = ""

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class UsageError(RadtlError, ValueError):
    """An option, argument or combination of them that radtl cannot act on (``radtl sweep --lr``, ``--set x``)."""


class MissingPackageError(RadtlError, ImportError):
    """An optional package a feature needs is not installed (peft for LoRA, umap-learn for UMAP maps); the message
    says how to install it or how to do without."""


def closest(name: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The one of ``choices`` nearest to ``name`` (a mistyped bundle, option or setting), or None if none is close.

    Uses :func:`difflib.get_close_matches` (Ratcliff/Obershelp similarity of at least 0.5), after comparing
    case-insensitively with ``-`` and ``_`` taken as the same.
    """
    import difflib

    def key(text: str) -> str:
        return text.lower().replace("-", "_")

    keyed = {key(choice): choice for choice in choices}
    match = difflib.get_close_matches(key(name), list(keyed), n=1, cutoff=0.5)
    return keyed[match[0]] if match else None
