"""Where radtl's MONAI bundles live, so a bundle runs the same from the repo root or from inside it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import radtl

__all__ = [
    "BUNDLES_DIR",
    "available_bundles",
    "bundle_metadata",
    "bundle_root",
    "load_bundle_config",
    "resolve_bundle",
    "root_cause",
    "run_workflow",
]

#: ``bundles/`` of the source tree radtl is installed from (editable installs and checkouts).
BUNDLES_DIR = Path(radtl.__file__).resolve().parents[1] / "bundles"


def _is_bundle(folder: Path, name: str | None = None) -> bool:
    meta = folder / "configs" / "metadata.json"
    if not meta.is_file():
        return False
    return name is None or folder.name == name or json.loads(meta.read_text()).get("name") == name


def bundle_root(name: str) -> str:
    """The folder of bundle ``name``: the working directory when inside it, else ``./bundles/<name>``,
    else ``bundles/<name>`` of radtl's source tree. A bundle's ``bundle_root`` is this, overridable
    with ``--bundle_root`` like any MONAI bundle setting.
    """
    here = Path.cwd()
    for candidate in (here, here / "bundles" / name, BUNDLES_DIR / name):
        if _is_bundle(candidate, name):
            return str(candidate.resolve())
    raise FileNotFoundError(
        f"bundle {name!r} not found in {here}, {here / 'bundles'} or {BUNDLES_DIR}; pass --bundle_root DIR"
    )


def available_bundles() -> list[str]:
    """The bundles shipped in radtl's source tree."""
    if not BUNDLES_DIR.is_dir():
        return []
    return sorted(d.name for d in BUNDLES_DIR.iterdir() if _is_bundle(d))


def resolve_bundle(bundle: str | os.PathLike) -> Path:
    """A bundle given by folder or by name, as its folder."""
    path = Path(bundle)
    if _is_bundle(path):
        return path.resolve()
    return Path(bundle_root(str(bundle)))


def bundle_metadata(bundle: str | os.PathLike) -> dict:
    """A bundle's ``configs/metadata.json`` (its ``name`` and ``version`` name the algorithm in DICOM-SEG)."""
    return json.loads((resolve_bundle(bundle) / "configs" / "metadata.json").read_text())


def load_bundle_config(
    bundle: str | os.PathLike, overrides: dict | None = None, config: str | Sequence[str] = "train.json"
):
    """A bundle's ``configs/<config>`` as a parsed MONAI ``ConfigParser`` with ``overrides`` applied,
    so a tool can take its parts (``network_def``, ``datalist``, ``image_transforms``...) by name.
    Several configs (``["train.json", "inference.json"]``) merge in order, as ``monai.bundle run`` merges them."""
    from monai.bundle import ConfigParser

    folder = resolve_bundle(bundle)
    names = [config] if isinstance(config, str) else list(config)
    parser = ConfigParser()
    parser.read_config([str(folder / "configs" / name) for name in names])
    parser.update({"bundle_root": str(folder), **(overrides or {})})
    parser.parse()
    return parser


def run_workflow(config_files: list[str | os.PathLike], overrides: dict) -> None:
    """Run a bundle's workflow from ``config_files`` (later files override earlier ones) with ``overrides``,
    as ``python -m monai.bundle run`` does; ``finalize`` runs even when ``run`` fails."""
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(config_file=[str(f) for f in config_files], workflow_type=None, **overrides)
    workflow.initialize()
    try:
        workflow.run()
    finally:
        workflow.finalize()


def root_cause(error: BaseException) -> BaseException:
    """The exception under MONAI's wrappers ("Failed to evaluate ConfigExpression", "applying transform")."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error
