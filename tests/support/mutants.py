"""Seeded mutants of pydicom's test files: the bad input ``radtl convert`` and ``radtl index`` must survive.

Each :class:`Mutant` is the bytes of one file made from a pydicom test file (``pydicom-data``)
by one mutation: a truncation (inside the header or the pixel data), flipped bytes, an absurd
Image Pixel Module value (PS3.3 C.7.6.3), a huge declared value length (PS3.5 7.1), a zero or
NaN window (C.11.2), a zero rescale slope (C.11.1), a wrong photometric interpretation, a
frame count that disagrees with the data. Three hostile files are always made:

- ``deflate-bomb``: 1 MB of Deflated Explicit VR Little Endian (PS3.5 A.5) that inflates to 1 GiB;
- ``rle-bomb``: a few hundred bytes of RLE Lossless (PS3.5 G) declaring 65000 x 65000 pixels;
- ``rle-panic``: a 1x1 16-bit RLE image whose runs overflow their segments, which makes
  pylibjpeg-rle panic (``pyo3_runtime.PanicException``, a ``BaseException``).

``make_mutants(count, seed)`` is deterministic for a seed. ``python -m tests.support.mutants FOLDER``
writes them (see docs/reliability.md); benchmarks/mutants.py runs convert and index over them.
"""

from __future__ import annotations

import argparse
import io
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

__all__ = [
    "Mutant", "HOSTILE_KINDS", "SOURCES", "hostile_mutants", "make_mutants", "with_pixel_data_length", "write_mutants",
]

#: pydicom test files the mutants start from: native, big endian, RLE, JPEG, JPEG 2000, deflate, colour, multi-frame,
#: and one without pixels.
SOURCES = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "emri_small.dcm", "emri_small_RLE.dcm", "SC_rgb.dcm",
    "SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_jpeg_dcmtk.dcm",
    "image_dfl.dcm", "MR_small_bigendian.dcm", "SC_rgb_small_odd.dcm", "rtplan.dcm",
)

#: The mutants every sample includes, with the reason code ``radtl convert`` must give them.
HOSTILE_KINDS = {"deflate-bomb": "too-large", "rle-bomb": "implausible-dimensions", "rle-panic": "bad-pixel-data"}

_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


@dataclass(frozen=True)
class Mutant:
    """One mutated file.

    Args:
        name: a file name that says what was done (``0042-truncate-header-CT_small.dcm``).
        kind: the mutation (``truncate-header``, ``rows``, ``deflate-bomb``, ...).
        data: the file's bytes.
    """

    name: str
    kind: str
    data: bytes


def _to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def _pixel_offset(data: bytes) -> int:
    """Where Pixel Data starts (its tag), or the end of the file when there is none."""
    found = [data.rfind(tag) for tag in _PIXEL_DATA_TAGS]
    found = [f for f in found if f > 132]
    return min(found) if found else len(data)


def _header_end(data: bytes) -> int:
    return max(133, _pixel_offset(data))


# Byte mutations: the file as bytes, a random generator -> the mutated bytes.
def _truncate_header(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, _header_end(data))]


def _truncate_pixels(data: bytes, rng: random.Random) -> bytes:
    start = _pixel_offset(data)
    return data[: rng.randrange(start, len(data))] if start < len(data) - 1 else data[:-1]


def _flip(data: bytes, rng: random.Random, start: int, stop: int) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        mutated[rng.randrange(start, max(start + 1, stop))] ^= 1 << rng.randrange(8)
    return bytes(mutated)


def _flip_header(data: bytes, rng: random.Random) -> bytes:
    return _flip(data, rng, 132, _header_end(data))


def _flip_pixels(data: bytes, rng: random.Random) -> bytes:
    return _flip(data, rng, min(_pixel_offset(data), len(data) - 1), len(data))


def with_pixel_data_length(data: bytes, length: int, keep: int) -> bytes | None:
    """Pixel Data's 32-bit length set to ``length`` and only ``keep`` bytes of its value kept (None: no Pixel Data)."""
    offset = _pixel_offset(data)
    if offset >= len(data):
        return None
    explicit = data[offset + 4 : offset + 6] in (b"OB", b"OW")
    value = offset + (12 if explicit else 8)
    order = "<" if data[offset : offset + 4] == _PIXEL_DATA_TAGS[0] else ">"
    return data[: value - 4] + struct.pack(f"{order}L", length) + data[value : value + keep]


def _huge_length(data: bytes, rng: random.Random) -> bytes:
    """A small file whose last element declares a value of up to 4 GiB (PS3.5 7.1.2, 32-bit lengths)."""
    length = rng.choice([0xFFFFFFF0, 0x7FFFFFFF, 2**31 + 12, 2**30])
    mutated = with_pixel_data_length(data, length, keep=64)
    return mutated or data + struct.pack("<HH2sHL", 0x0019, 0x1010, b"OB", 0, length) + b"\x00" * 16


def _zero_pixel_data(data: bytes, rng: random.Random) -> bytes:
    """Pixel Data present with a value length of 0."""
    return with_pixel_data_length(data, 0, keep=0) or data


# Dataset mutations: a dataset read from the test file is changed in place.
def _put(ds: Dataset, keyword: str, value: int | str) -> None:
    """Set ``keyword`` as written bytes, so values pydicom would refuse to build (IS ``"abc"``) can be written."""
    tag = tag_for_keyword(keyword)
    vr = dictionary_VR(tag)
    if vr in ("US", "SS"):
        raw = struct.pack("<H" if ds.original_encoding[1] else ">H", int(value) & 0xFFFF)
    else:
        raw = str(value).encode("ascii")
        raw += b" " * (len(raw) % 2)
    implicit, little = ds.original_encoding
    ds[tag] = RawDataElement(Tag(tag), None if implicit else vr, len(raw), raw, 0, implicit, little)


def _set(keyword: str, choices: tuple) -> Callable[[Dataset, random.Random], None]:
    def mutate(ds: Dataset, rng: random.Random) -> None:
        _put(ds, keyword, rng.choice(choices))

    return mutate


def _window(ds: Dataset, rng: random.Random) -> None:
    _put(ds, "WindowCenter", "40")
    _put(ds, "WindowWidth", rng.choice(["0", "NaN", "-1", "inf", "1e400"]))


def _frames_mismatch(ds: Dataset, rng: random.Random) -> None:
    frames = int(ds.get("NumberOfFrames") or 1)
    _put(ds, "NumberOfFrames", rng.choice([frames + 1, frames + 7, frames * 3, max(1, frames - 1), 2**31 - 1]))


_BYTE_MUTATIONS = {
    "truncate-header": _truncate_header,
    "truncate-pixels": _truncate_pixels,
    "flip-header": _flip_header,
    "flip-pixels": _flip_pixels,
    "huge-length": _huge_length,
    "zero-pixel-data": _zero_pixel_data,
}
_DATASET_MUTATIONS = {
    "rows": _set("Rows", (0, 1, 65535, 40000)),
    "columns": _set("Columns", (0, 1, 65535, 40000)),
    "bits-allocated": _set("BitsAllocated", (0, 1, 3, 7, 12, 24, 32, 64)),
    "number-of-frames": _set("NumberOfFrames", ("0", "-3", "100000", "2147483647", "abc")),
    "samples-per-pixel": _set("SamplesPerPixel", (0, 2, 3, 4, 65535)),
    "window": _window,
    "slope-zero": _set("RescaleSlope", ("0",)),
    "photometric": _set("PhotometricInterpretation", ("RGB", "YBR_FULL", "PALETTE COLOR", "MONOCHROME3", "", "HSV")),
    "frames-mismatch": _frames_mismatch,
}


def _deflate_bomb(inflated_bytes: int = 2**30) -> bytes:
    """A Deflated Explicit VR Little Endian file (PS3.5 A.5) of ~1 MB whose data set inflates to ``inflated_bytes``.

    A full flush resets the compressor, so one compressed MiB of zeros can be repeated
    verbatim: the bomb is built in milliseconds without compressing a GiB.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["radtl mutants: deflate bomb"])
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID, "OT"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 512, 512
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    header = DicomBytesIO()
    header.is_little_endian, header.is_implicit_VR = True, False
    write_dataset(header, ds)
    pixel_element = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, inflated_bytes)
    mebibyte = b"\x00" * 2**20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = [compressor.compress(header.getvalue() + pixel_element) + compressor.flush(zlib.Z_FULL_FLUSH)]
    block = compressor.compress(mebibyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream += [block] * (inflated_bytes // 2**20) + [compressor.flush()]
    out = io.BytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta)
    out.write(b"".join(stream))
    return out.getvalue()


def _rle_file(rows: int, columns: int, bits: int, frame: bytes) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["radtl mutants: RLE", str(rows), str(bits)])
    ds.SOPClassUID, ds.Modality = SecondaryCaptureImageStorage, "OT"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    return _to_bytes(ds)


def _rle_header(*segments: bytes) -> bytes:
    """The RLE header (PS3.5 G.5): the segment count and 15 offsets, then the segments."""
    offsets, position = [], 64
    for segment in segments:
        offsets.append(position)
        position += len(segment)
    return struct.pack("<16L", len(segments), *offsets, *([0] * (15 - len(segments)))) + b"".join(segments)


def hostile_mutants() -> list[Mutant]:
    """The deflate bomb, the RLE bomb and the 1x1 RLE image that panics pylibjpeg-rle."""
    return [
        Mutant("deflate-bomb.dcm", "deflate-bomb", _deflate_bomb()),
        # 65000 x 65000 8-bit = 3.9 GiB declared; one segment of one replicate run
        Mutant("rle-bomb.dcm", "rle-bomb", _rle_file(65000, 65000, 8, _rle_header(b"\x81\x00"))),
        # 1x1 16-bit, two segments: replicate runs of 53 and 39 bytes into 1-byte segments
        Mutant("rle-panic.dcm", "rle-panic", _rle_file(1, 1, 16, _rle_header(b"\xcc\xdd", b"\xd9\xe6"))),
    ]


def make_mutants(count: int = 300, seed: int = 0) -> list[Mutant]:
    """``count`` mutants (at least the three hostile ones), the same for the same ``seed``."""
    rng = random.Random(seed)
    originals = {name: Path(get_testdata_file(name)).read_bytes() for name in SOURCES}
    kinds = sorted(_BYTE_MUTATIONS) + sorted(_DATASET_MUTATIONS)
    mutants = hostile_mutants()
    number = 0
    while len(mutants) < count:
        kind, source = kinds[number % len(kinds)], rng.choice(SOURCES)
        number += 1
        data = originals[source]
        if kind in _BYTE_MUTATIONS:
            mutated = _BYTE_MUTATIONS[kind](data, rng)
        else:
            ds = dcmread(io.BytesIO(data))
            _DATASET_MUTATIONS[kind](ds, rng)
            mutated = _to_bytes(ds)
        mutants.append(Mutant(f"{number:04d}-{kind}-{source}", kind, mutated))
    return mutants


def write_mutants(folder: str | Path, count: int = 300, seed: int = 0) -> list[Path]:
    """Write ``make_mutants(count, seed)`` into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for mutant in make_mutants(count, seed):
        path = folder / mutant.name
        path.write_bytes(mutant.data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    print(f"{len(write_mutants(arguments.folder, arguments.count, arguments.seed))} mutants in {arguments.folder}")
