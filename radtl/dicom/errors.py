"""Typed failures of the DICOM-to-image conversion.

Every failure a real archive produces has a class here, and each class has a short
``code`` that the conversion manifest records in its ``reason`` column and the batch
summary counts by. Nothing is caught with a bare ``except``: a failure that is not one
of these is a bug, and the batch records it as ``internal-error`` with its traceback
summary rather than hiding it.
"""

from __future__ import annotations

__all__ = [
    "DicomConversionError",
    "NotDicomError",
    "NoPixelDataError",
    "UnsupportedTransferSyntaxError",
    "PixelDataError",
    "ImplausibleDimensionsError",
    "UnsupportedImageError",
]


class DicomConversionError(Exception):
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
    """Rows, Columns, Number of Frames or Samples per Pixel are zero or describe an absurdly large image."""

    code = "implausible-dimensions"


class UnsupportedImageError(DicomConversionError):
    """An image whose photometric interpretation or pixel layout this converter does not render."""

    code = "unsupported-image"
