"""Reading DICOM files and decoding their pixel data, with every failure typed.

Decoding is pydicom's, pluggable by transfer syntax (PS3.5 Annex A): pylibjpeg with its
libjpeg, openjpeg and rle plugins, and pyjpegls, cover JPEG, JPEG-LS, JPEG 2000 and RLE.
"""

from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pydicom.filereader
from pydicom import dcmread
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.pixels.decoders.base import get_decoder
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
)

from radtl.dicom.errors import (
    ELEMENT_VALUE_ERRORS,
    ImplausibleDimensionsError,
    NoPixelDataError,
    NotDicomError,
    PixelDataError,
    TooLargeError,
    TruncatedFileError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)

__all__ = [
    "DatasetRead",
    "read_file",
    "read_dataset",
    "is_uid",
    "sop_class_uid",
    "empty_instance_uids",
    "INSTANCE_UID_KEYWORDS",
    "check_dimensions",
    "decode_frames",
    "native_grayscale_frames",
    "PIXEL_DATA_KEYWORDS",
    "DEFAULT_MAX_PIXEL_BYTES",
]

PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_PIXEL_DATA_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
#: The tags of Pixel Data and its float variants, as the bytes a header-only read stops before (PS3.5 7.1).
_PIXEL_TAG_BYTES = {struct.pack(order, tag >> 16, tag & 0xFFFF) for tag in _PIXEL_DATA_TAGS for order in ("<HH", ">HH")}
#: The Sequence Delimitation Item (PS3.5 7.5.2) that ends an undefined-length value, in either byte order.
_SEQUENCE_DELIMITERS = {True: b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", False: b"\xff\xfe\xe0\xdd\x00\x00\x00\x00"}
_UNDEFINED_LENGTH = 0xFFFFFFFF

#: The per-file budget (1 GiB): the decoded size of the pixels, checked from the header before
#: any decoding, and the size a deflated data set (PS3.5 A.5) may inflate to.
DEFAULT_MAX_PIXEL_BYTES = 2**30

#: Lossy 8-bit JPEG (PS3.5 A.4.1, ISO/IEC 10918-1) has no one exact decoding: the standard bounds the inverse
#: DCT's error, and the chroma upsampling of YBR_FULL_422 is the decoder's choice. Pillow's libjpeg-turbo is of
#: the IJG line that dcmtk and most viewers decode with, so it is tried first; pylibjpeg's libjpeg upsamples
#: otherwise and differs by up to 3 levels on real colour photographs (deid-data's dicom-cookies).
_PREFERRED_PLUGIN = {JPEGBaseline8Bit: "pillow", JPEGExtended12Bit: "pillow"}

# Errors pydicom raises from a header cut short or garbled bytes.
_PARSE_ERRORS = (EOFError, struct.error, ValueError, OverflowError, KeyError, TypeError, NotImplementedError)


@dataclass(frozen=True)
class DatasetRead:
    """A data set as read, and what the file's bytes said around it.

    Args:
        dataset: the data set, with its File Meta Information.
        pixel_data_follows: a header-only read stopped before Pixel Data (or a float variant).
        cut_short: where the file ends inside an element, e.g. ``"(0010,0010) PatientName: 3 of 8
            bytes present"``; None when every element read is whole.
        cut_in_pixel_data: the element cut short is Pixel Data (or a float variant).
    """

    dataset: FileDataset
    pixel_data_follows: bool = False
    cut_short: str | None = None
    cut_in_pixel_data: bool = False


def read_dataset(
    source: str | os.PathLike | BinaryIO,
    stop_before_pixels: bool = False,
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES,
) -> Dataset:
    """Read a DICOM Part 10 file, or a raw dataset without preamble; a file cut short is an error.

    Raises :class:`NotDicomError` for what is not DICOM, :class:`TruncatedFileError` for a file
    that ends inside an element of its header (PS3.5 7.1), :class:`PixelDataError` for one that
    ends inside its Pixel Data, and :class:`TooLargeError` for a deflated data set that would
    inflate beyond ``max_pixel_bytes``. A file whose Pixel Data is whole but which ends inside a
    later element is returned, with a warning. See :func:`read_file` for the rest.
    """
    read = read_file(source, stop_before_pixels, max_pixel_bytes)
    if read.cut_in_pixel_data:
        raise PixelDataError(f"the file ends inside {read.cut_short}")
    if read.cut_short and not read.pixel_data_follows and not any(k in read.dataset for k in PIXEL_DATA_KEYWORDS):
        raise TruncatedFileError(f"the file ends inside {read.cut_short}")
    if read.cut_short:  # after whole Pixel Data: the image is intact
        warnings.warn(f"cut short: the file ends inside {read.cut_short}", stacklevel=2)
    return read.dataset


def read_file(
    source: str | os.PathLike | BinaryIO,
    stop_before_pixels: bool = False,
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES,
) -> DatasetRead:
    """Read a DICOM file, and say whether Pixel Data follows and where the file is cut short.

    Files without the 128-byte preamble and ``DICM`` prefix (PS3.10 7.1) are common in
    older archives; they are accepted when a forced read finds an image or SOP Class.
    ``stop_before_pixels`` reads the header only (sorting a series needs no pixels).
    ``source`` is a path or an open binary file (left where the header read stopped).

    pydicom reads a value whose declared length runs past the end of the file as the bytes
    there are, silently; the last element is checked against the file size here, so a file
    cut short is reported (``dcmdump`` says "premature end of stream"). A deflated data set
    (PS3.5 A.5) is inflated here, at most ``max_pixel_bytes`` of it (pydicom would inflate it whole).

    Raises :class:`NotDicomError` for what is not DICOM (a corrupt deflate stream included),
    :class:`TooLargeError` for a deflated data set beyond ``max_pixel_bytes``, and
    :class:`TruncatedFileError` for a deflate stream cut short.
    """
    if hasattr(source, "read"):
        return _read_open_file(source, stop_before_pixels, max_pixel_bytes)
    with _FileWithinSize(io.FileIO(os.fspath(source), "rb")) as handle:
        return _read_open_file(handle, stop_before_pixels, max_pixel_bytes)


class _FileWithinSize(io.BufferedReader):
    """A file whose reads never ask for more than it holds.

    pydicom reads a value with ``fp.read(length)`` for the length the element declares (PS3.5
    7.1), and a buffered read of n bytes allocates n first: a 4 GiB length in a 1 kB file asks
    for 4 GiB (address space, not resident pages, but refused under a memory limit).
    """

    def __init__(self, raw: io.FileIO) -> None:
        super().__init__(raw)
        self._size = os.fstat(raw.fileno()).st_size

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > 2**20:  # a small read costs little: only large ones pay for tell()
            size = min(size, max(0, self._size - self.tell()))
        return super().read(size)


def _read_open_file(handle: BinaryIO, stop_before_pixels: bool, max_pixel_bytes: int) -> DatasetRead:
    start = handle.tell()
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        raise NotDicomError("empty file (0 bytes)")
    handle.seek(start)
    if DeflatedExplicitVRLittleEndian.encode() in handle.read(2048):  # in the File Meta Information, if anywhere
        handle.seek(start)
        deflated = _read_deflated(handle, stop_before_pixels, max_pixel_bytes)
        if deflated is not None:
            return deflated
    handle.seek(start)
    ds = _read_plain(handle, stop_before_pixels)
    meta_length = ds.file_meta.get("FileMetaInformationGroupLength")
    meta_length = meta_length if isinstance(meta_length, int) else 0  # a damaged (0002,0000) may hold anything
    dataset_start = start + (132 if ds.preamble else 0) + (12 + meta_length if meta_length else 0)
    return _examine(ds, handle, size, dataset_start)


def _read_plain(handle: BinaryIO, stop_before_pixels: bool) -> FileDataset:
    start = handle.tell()
    try:
        return dcmread(handle, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        handle.seek(start)
    except _PARSE_ERRORS as error:
        raise NotDicomError(f"header unreadable ({type(error).__name__}: {error})") from error
    try:
        ds = dcmread(handle, force=True, stop_before_pixels=stop_before_pixels)
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


def _read_deflated(handle: BinaryIO, stop_before_pixels: bool, max_pixel_bytes: int) -> DatasetRead | None:
    """Read a Deflated Explicit VR Little Endian file (PS3.5 A.5), inflating at most ``max_pixel_bytes``.

    Returns None for a file of another transfer syntax.
    """
    start = handle.tell()
    try:
        preamble = pydicom.filereader.read_preamble(handle, force=True)
        # pydicom's own reader of the File Meta Information (group 0002, PS3.10 7.1)
        file_meta = pydicom.filereader._read_file_meta_info(handle)
    except _PARSE_ERRORS as error:
        raise NotDicomError(f"File Meta Information unreadable ({type(error).__name__}: {error})") from error
    if file_meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        handle.seek(start)
        return None
    with tempfile.SpooledTemporaryFile(max_size=2**24) as inflated:
        size = _inflate(handle, inflated, max_pixel_bytes)
        inflated.seek(0)
        try:
            dataset = pydicom.filereader.read_dataset(
                inflated, is_implicit_VR=False, is_little_endian=True,
                        stop_when=(lambda tag, vr, length: tag in _PIXEL_DATA_TAGS) if stop_before_pixels else None,
            )
        except _PARSE_ERRORS as error:
            raise NotDicomError(f"inflated data set unreadable ({type(error).__name__}: {error})") from error
        ds = FileDataset(getattr(handle, "name", None) or "deflated", dataset, preamble, file_meta, False, True)
        ds.set_original_encoding(False, True, dataset._character_set)
        return _examine(ds, inflated, size, dataset_start=0)


def _inflate(compressed: BinaryIO, out: BinaryIO, limit: int) -> int:
    """Inflate a raw deflate stream (RFC 1951, no zlib header, PS3.5 A.5) into ``out``, refusing beyond ``limit``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while not inflater.eof:
            pending = inflater.unconsumed_tail or compressed.read(2**20)
            if not pending:
                raise TruncatedFileError(
                    f"the deflate stream (PS3.5 A.5) ends after {total} inflated bytes, before its last block"
                )
            # at most 16 MiB a call (a bomb inflates 1000:1), and never 0: max_length 0 means unlimited
            chunk = inflater.decompress(pending, min(2**24, limit + 1 - total))
            total += len(chunk)
            if total > limit:
                raise TooLargeError(
                    f"the deflated data set (PS3.5 A.5) inflates to more than {limit / 2**30:.2f} GiB, the per-file "
                    "limit (max_pixel_bytes)"
                )
            out.write(chunk)
    except zlib.error as error:
        raise NotDicomError(f"the deflate stream (PS3.5 A.5) is corrupt (zlib: {error})") from error
    return total


def _examine(ds: FileDataset, handle: BinaryIO, size: int, dataset_start: int) -> DatasetRead:
    """Whether Pixel Data follows where a header read stopped, and whether the last element read is whole."""
    stopped = handle.tell()
    follows = stopped < size and handle.read(4) in _PIXEL_TAG_BYTES
    handle.seek(stopped)
    if follows:
        return DatasetRead(ds, pixel_data_follows=True)
    if not len(ds):
        if size > dataset_start:  # pydicom drops every element when one runs past the end of the file
            return DatasetRead(ds, cut_short=f"its data set (none of its {size - dataset_start} bytes could be read: "
                                             "an element runs past the end of the file)")
        return DatasetRead(ds)
    last_tag = next(reversed(ds.keys()))
    last = ds.get_item(last_tag)
    value_tell = getattr(last, "value_tell", None)
    if value_tell is None:
        return DatasetRead(ds)
    name = f"{Tag(last_tag)} {_keyword(last_tag)}"
    if last.length == _UNDEFINED_LENGTH:
        handle.seek(max(0, size - 8))
        whole = handle.read(8) == _SEQUENCE_DELIMITERS[ds.original_encoding[1]]
        handle.seek(stopped)
        if not whole:
            return DatasetRead(ds, cut_short=f"{name}: no Sequence Delimitation Item at the end",
                               cut_in_pixel_data=last_tag in _PIXEL_DATA_TAGS)
    elif value_tell + last.length > size:
        return DatasetRead(ds, cut_short=f"{name}: {max(0, size - value_tell)} of {last.length} bytes present",
                           cut_in_pixel_data=last_tag in _PIXEL_DATA_TAGS)
    elif value_tell + last.length < size:  # pydicom stops silently at an element header cut short
        trailing = size - value_tell - last.length
        return DatasetRead(ds, cut_short=f"the header of the element after {name}: {trailing} bytes")
    return DatasetRead(ds)


def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) or "(private or unknown)"


#: A UID as PS3.5 9.1 lays it out: digits in components separated by dots (leading zeros, which some vendors
#: write, are tolerated).
_UID_SYNTAX = re.compile(r"[0-9]+(\.[0-9]+)*")


def is_uid(value: object) -> bool:
    """Whether ``value`` is a UID (PS3.5 9.1): digit components joined by dots, at most 64 characters. A UID
    that passes is safe as a file or folder name."""
    return isinstance(value, str) and len(value) <= 64 and _UID_SYNTAX.fullmatch(value) is not None


def sop_class_uid(ds: Dataset) -> UID:
    """The SOP Class UID (PS3.3 C.12.1), or an empty UID when it is missing or damaged (several values, not text)."""
    uid = ds.get("SOPClassUID")
    return UID(uid) if isinstance(uid, str) else UID("")


#: The UIDs that identify an instance, its series and study (PS3.3 C.12.1, C.7.3.1, C.7.2.1): Type 1, never empty.
INSTANCE_UID_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")


def empty_instance_uids(ds: Dataset) -> list[str]:
    """The keywords of :data:`INSTANCE_UID_KEYWORDS` that ``ds`` holds with an empty value.

    Real files have them: TotalSegmentator's example CT series (a de-identification that blanked them) has
    empty SOP Class, SOP Instance, Series and Study Instance UIDs. radtl never fills such a UID in: ``radtl
    convert`` names images after the source's path and ``radtl index`` keys rows by path, so an empty UID costs
    nothing there and the column stays null, where an invented UID could be mistaken for a real one. An element
    whose bytes are unreadable is not empty (the index notes it as an invalid value).
    """
    empty = []
    for keyword in INSTANCE_UID_KEYWORDS:
        if keyword not in ds:
            continue
        try:
            value = ds[keyword].value
        except ELEMENT_VALUE_ERRORS:
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            empty.append(keyword)
    return empty


def _sop_class_name(ds: Dataset) -> str:
    uid = sop_class_uid(ds)
    return f"{uid.name} ({uid})" if uid else "object without a (readable) SOP Class UID"


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
    """Refuse objects without Pixel Data, or whose Image Pixel Module (C.7.6.3) is empty, absurd or over the budget.

    This runs on the header before any decoder: decoders allocate the array the header
    declares (pylibjpeg-rle does for a 478-byte file declaring 3.8 GiB), so a file declaring
    more than ``max_pixel_bytes`` once decoded is refused here, whatever its size on disk.
    """
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
            f"{decoded / 2**30:.2f} GiB (limit {max_pixel_bytes / 2**30:.2f} GiB, max_pixel_bytes)"
        )
    keyword = next(k for k in PIXEL_DATA_KEYWORDS if k in ds)
    if not ds[keyword].value:
        raise PixelDataError(f"{keyword} is empty (0 bytes) where {rows}x{columns}x{frames} frames are declared")


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


def _pixel_array(ds: Dataset) -> np.ndarray:
    """pydicom's decoding of all frames, by the preferred plugin of the transfer syntax when there is one.

    A stream the preferred plugin refuses goes to pydicom's other plugins, with a warning naming the refusal.
    """
    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ""))
    plugin = _PREFERRED_PLUGIN.get(syntax)
    if plugin and int(ds.get("BitsAllocated") or 0) == 8 and plugin in get_decoder(syntax).available_plugins:
        try:
            return pixel_array(ds, decoding_plugin=plugin)
        except (ValueError, RuntimeError, OSError, EOFError, KeyError, IndexError, TypeError) as error:
            warnings.warn(f"{plugin} could not decode this {syntax.name} ({type(error).__name__}: {error}); "
                          "decoded by pydicom's other plugins", stacklevel=2)
    return ds.pixel_array


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
        pixels = _pixel_array(ds)
        if photometric == "PALETTE COLOR":
            pixels = apply_color_lut(pixels, ds)
    except (ValueError, RuntimeError, EOFError, struct.error, KeyError, IndexError, TypeError, AttributeError,
            StopIteration) as error:  # StopIteration: more frames declared than fragments encapsulated
        raise PixelDataError(f"{type(error).__name__}: {error}") from error
    frames = int(ds.get("NumberOfFrames") or 1)
    color = pixels.ndim == 4 or (pixels.ndim == 3 and frames == 1 and pixels.shape[-1] in (3, 4))
    if frames == 1 and pixels.ndim == (3 if color else 2):
        pixels = pixels[np.newaxis]
    if pixels.ndim != (4 if color else 3):
        raise UnsupportedImageError(f"unexpected decoded shape {pixels.shape} for {frames} frame(s)")
    return pixels
