"""Reading DICOM files and decoding their pixel data, with every failure typed.

Decoding is pydicom's, pluggable by transfer syntax (PS3.5 Annex A): pylibjpeg with its
libjpeg, openjpeg and rle plugins, and pyjpegls, cover JPEG, JPEG-LS, JPEG 2000 and RLE.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radtl.dicom.errors import (
    ImplausibleDimensionsError,
    NoPixelDataError,
    NotDicomError,
    PixelDataError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)

__all__ = ["read_dataset", "check_dimensions", "decode_frames", "native_grayscale_frames", "PIXEL_DATA_KEYWORDS", "DEFAULT_MAX_PIXEL_BYTES"]

PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

#: Decoded size above which an object is refused as implausible (4 GiB).
DEFAULT_MAX_PIXEL_BYTES = 4 * 2**30

# Errors pydicom raises from a header cut short or garbled bytes.
_PARSE_ERRORS = (EOFError, struct.error, ValueError, OverflowError, KeyError, TypeError, NotImplementedError)


def read_dataset(source: str | os.PathLike | BinaryIO, stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM Part 10 file, or a raw dataset without preamble, or raise :class:`NotDicomError`.

    Files without the 128-byte preamble and ``DICM`` prefix (PS3.10 7.1) are common in
    older archives; they are accepted when a forced read finds an image or SOP Class.
    ``stop_before_pixels`` reads the header only (sorting a series needs no pixels).
    ``source`` is a path or an open binary file (left where pydicom stopped reading).
    """
    is_file = hasattr(source, "read")
    size = os.fstat(source.fileno()).st_size if is_file else os.path.getsize(source)
    if size == 0:
        raise NotDicomError("empty file (0 bytes)")
    try:
        return dcmread(source, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        if is_file:
            source.seek(0)
    except _PARSE_ERRORS as error:
        raise NotDicomError(f"header unreadable ({type(error).__name__}: {error})") from error
    try:
        ds = dcmread(source, force=True, stop_before_pixels=stop_before_pixels)
        looks_like_dicom = "SOPClassUID" in ds or any(k in ds for k in PIXEL_DATA_KEYWORDS)
    except _PARSE_ERRORS as error:
        raise NotDicomError(f"no DICM prefix and not a raw dataset ({type(error).__name__})") from error
    if not looks_like_dicom:
        raise NotDicomError("no DICM prefix (PS3.10 7.1) and no SOP Class UID or Pixel Data found")
    if "TransferSyntaxUID" not in ds.file_meta:
        # pydicom guessed the encoding while reading; record it so decoders can run
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            "1.2.840.10008.1.2" if implicit else (ExplicitVRLittleEndian if little else "1.2.840.10008.1.2.2")
        )
    return ds


def _sop_class_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID")
    return f"{UID(uid).name} ({uid})" if uid else "object without SOP Class UID"


def _positive_int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword)
    if value in (None, "") and default is not None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as error:
        raise ImplausibleDimensionsError(f"{keyword}={value!r} is not an integer") from error
    if number <= 0:
        raise ImplausibleDimensionsError(f"{keyword}={number} (must be > 0)")
    return number


def check_dimensions(ds: Dataset, max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES) -> None:
    """Refuse objects without Pixel Data, or whose Image Pixel Module (C.7.6.3) is empty or absurd."""
    if not any(keyword in ds for keyword in PIXEL_DATA_KEYWORDS):
        sop_class = _sop_class_name(ds)
        if "Image" in sop_class or "Rows" in ds:
            # pydicom returns what it read from a file cut short without complaint
            raise NoPixelDataError(f"{sop_class} is an image object but holds no Pixel Data (stripped, or the file is truncated)")
        raise NoPixelDataError(f"{sop_class} carries no Pixel Data")
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if ds.get(k) in (None, "")]
    if missing:
        raise ImplausibleDimensionsError(f"Image Pixel Module (PS3.3 C.7.6.3) incomplete: {', '.join(missing)} missing")
    rows, columns, bits = (_positive_int(ds, k) for k in ("Rows", "Columns", "BitsAllocated"))
    frames = _positive_int(ds, "NumberOfFrames", default=1)
    samples = _positive_int(ds, "SamplesPerPixel", default=1)
    decoded = rows * columns * frames * samples * max(bits, 8) // 8
    if decoded > max_pixel_bytes:
        raise ImplausibleDimensionsError(
            f"{rows}x{columns}x{frames} frames x{samples} samples at {bits} bits would decode to "
            f"{decoded / 2**30:.1f} GiB (limit {max_pixel_bytes / 2**30:.1f} GiB)"
        )


def native_grayscale_frames(ds: Dataset) -> np.ndarray | None:
    """``(F, H, W)`` straight from uncompressed little-endian grey Pixel Data, or None to defer to pydicom.

    The common case of an archive (PS3.5 8.1.1, native encoding) needs no decoder: the
    bytes are the array. Stored bits below Bits Allocated are masked, or sign-extended from
    the High Bit for signed data, as PS3.5 8.1.1 lays them out. Anything else (compressed,
    big endian, colour, 1- or 32-bit, short data, an unusual High Bit) returns None.
    """
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) or "PixelData" not in ds:
        return None
    if str(ds.get("PhotometricInterpretation", "")).upper() not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    allocated, stored = int(ds.BitsAllocated), int(ds.get("BitsStored") or ds.BitsAllocated)
    if allocated not in (8, 16) or int(ds.get("SamplesPerPixel") or 1) != 1:
        return None
    if not 0 < stored <= allocated or int(ds.get("HighBit", stored - 1)) != stored - 1:
        return None
    frames, rows, columns = int(ds.get("NumberOfFrames") or 1), int(ds.Rows), int(ds.Columns)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    data = ds.PixelData
    if len(data) < frames * rows * columns * dtype.itemsize:
        return None  # pydicom reports the shortfall
    pixels = np.frombuffer(data, dtype=dtype, count=frames * rows * columns).reshape(frames, rows, columns)
    if stored < allocated:
        shift = allocated - stored
        pixels = (pixels << shift) >> shift if signed else pixels & np.array((1 << stored) - 1, dtype=dtype)
    return pixels


def decode_frames(ds: Dataset, max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES) -> np.ndarray:
    """Decode all frames: ``(F, H, W)`` for one sample per pixel, ``(F, H, W, 3)`` for colour.

    YBR colour spaces come back as RGB (pydicom's conversion, PS3.3 C.7.6.3.1.2), and
    PALETTE COLOR is expanded through its palette (C.7.6.3.1.5), so no colour image is
    returned in a colour space the caller would misread.
    """
    check_dimensions(ds, max_pixel_bytes)
    if "PixelData" in ds:
        syntax = UID(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian))
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError as error:
            raise UnsupportedTransferSyntaxError(f"no decoder exists for {syntax.name} ({syntax})") from error
        if not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies)
            raise UnsupportedTransferSyntaxError(f"{syntax.name} ({syntax}) needs a plugin: {missing}")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    native = native_grayscale_frames(ds)
    if native is not None:
        return native
    try:
        pixels = ds.pixel_array
        if photometric == "PALETTE COLOR":
            pixels = apply_color_lut(pixels, ds)
    except (ValueError, RuntimeError, EOFError, struct.error, KeyError, IndexError, TypeError, AttributeError) as error:
        raise PixelDataError(f"{type(error).__name__}: {error}") from error
    frames = int(ds.get("NumberOfFrames") or 1)
    color = pixels.ndim == 4 or (pixels.ndim == 3 and frames == 1 and pixels.shape[-1] in (3, 4))
    if frames == 1 and pixels.ndim == (3 if color else 2):
        pixels = pixels[np.newaxis]
    if pixels.ndim != (4 if color else 3):
        raise UnsupportedImageError(f"unexpected decoded shape {pixels.shape} for {frames} frame(s)")
    return pixels
