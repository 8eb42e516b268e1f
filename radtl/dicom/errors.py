"""Typed failures of the DICOM-to-image conversion.

Every failure a real archive produces has a class here, and each class has a short
``code`` that the conversion manifest records in its ``reason`` column and the batch
summary counts by. Nothing is caught with a bare ``except``: :func:`failure_reason` is the
one place where ``radtl convert`` and ``radtl index`` turn any other failure of one file into
its row's reason, and a failure that is none of these is a bug, recorded as ``internal-error``
with its traceback summary rather than hidden.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from pydicom.errors import BytesLengthException

from radtl.errors import RadtlError
from radtl.parallel import INTERRUPTIONS

__all__ = [
    "DicomConversionError",
    "NotDicomError",
    "NoPixelDataError",
    "UnsupportedTransferSyntaxError",
    "PixelDataError",
    "ImplausibleDimensionsError",
    "TooLargeError",
    "TruncatedFileError",
    "UnsupportedImageError",
    "ELEMENT_VALUE_ERRORS",
    "failure_reason",
]

#: What pydicom raises when it first turns an element's bytes into a value (PS3.5 6.2): bytes that do not
#: fit the VR (``BytesLengthException``), a VR it does not know (``NotImplementedError``), text that is no
#: number (``ValueError``), and the like. A header is read lazily, so these come when a value is first used.
ELEMENT_VALUE_ERRORS = (ValueError, TypeError, OverflowError, UnicodeDecodeError, NotImplementedError,
                        BytesLengthException)


class DicomConversionError(RadtlError):
    """Base class: a DICOM object that cannot be turned into an image, and why."""

    code = "conversion-error"

    @property
    def reason(self) -> str:
        """The manifest's reason text: ``"<code>: <detail>"``."""
        return f"{self.code}: {self}"


class NotDicomError(DicomConversionError):
    """The file is not a DICOM Part 10 file (nor a readable raw dataset), or its header is cut short."""

    code = "not-dicom"


class NoPixelDataError(DicomConversionError):
    """A valid DICOM object without Pixel Data (SR, RTSTRUCT, SEG stores no image here, RTPLAN, ...)."""

    code = "no-pixel-data"


class UnsupportedTransferSyntaxError(DicomConversionError):
    """No installed pixel-data plugin decodes this transfer syntax (PS3.5 Annex A)."""

    code = "unsupported-transfer-syntax"


class PixelDataError(DicomConversionError):
    """Pixel Data is present but cannot be decoded: truncated, corrupt or inconsistent with the header."""

    code = "bad-pixel-data"


class ImplausibleDimensionsError(DicomConversionError):
    """Rows, Columns, Bits Allocated, Number of Frames or Samples per Pixel are missing, zero or not integers."""

    code = "implausible-dimensions"


class TooLargeError(DicomConversionError):
    """The file would cost more than the per-file budget: its deflated data set once inflated, or memory ran out."""

    code = "too-large"


class TruncatedFileError(DicomConversionError):
    """The file ends inside its data set: in an element's header or value, or in its deflate stream (PS3.5 A.5)."""

    code = "truncated"


class UnsupportedImageError(DicomConversionError):
    """An image whose photometric interpretation or pixel layout this converter does not render."""

    code = "unsupported-image"


def _is_decoder_panic(error: BaseException) -> bool:
    """A Rust decoder's panic (pylibjpeg-rle's ``pyo3_runtime.PanicException``, a ``BaseException``)."""
    return type(error).__module__ == "pyo3_runtime" and type(error).__name__ == "PanicException"


def _raised_converting_an_element(error: BaseException) -> bool:
    """Raised while pydicom turned an element's raw bytes into its value (``convert_raw_data_element``)."""
    frame = error.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        if code.co_name == "convert_raw_data_element" and "pydicom" in Path(code.co_filename).parts:
            return True
        frame = frame.tb_next
    return False


def failure_reason(error: BaseException) -> str:
    """The manifest or index reason (``"<code>: <detail>"``) for any failure of one file; re-raises interruptions.

    A per-file loop catches ``BaseException`` and hands it here, because decoders written in
    Rust panic with a ``BaseException`` and one file must not stop the batch. ``KeyboardInterrupt``,
    ``SystemExit`` and ``GeneratorExit`` are re-raised: they stop the run. The codes:

    - a :class:`DicomConversionError`: its own code;
    - a decoder panic: ``bad-pixel-data`` (the input made the decoder fail);
    - an element whose bytes pydicom cannot turn into a value of its VR, found when the value is
      first used: ``not-dicom``, a header that cannot be parsed (:data:`ELEMENT_VALUE_ERRORS`);
    - ``MemoryError``: ``too-large`` (the budget is checked before decoding; this is the backstop);
    - ``OSError``: ``unreadable`` (permissions, a file that vanished, an I/O error);
    - anything else: ``internal-error``, a bug in radtl, with the exception and where it was raised.
    """
    if isinstance(error, INTERRUPTIONS):
        raise error
    if isinstance(error, DicomConversionError):
        return error.reason
    detail = f"{type(error).__name__}: {error}"
    if _is_decoder_panic(error):
        return f"{PixelDataError.code}: the decoder panicked ({detail})"
    if isinstance(error, ELEMENT_VALUE_ERRORS) and _raised_converting_an_element(error):
        return f"{NotDicomError.code}: a header element is unreadable ({detail})"
    if isinstance(error, MemoryError):
        return f"{TooLargeError.code}: out of memory while reading ({type(error).__name__})"
    if isinstance(error, OSError):
        return f"unreadable: {type(error).__name__}: {error.strerror or error}"
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return f"internal-error: {detail}{at}"
