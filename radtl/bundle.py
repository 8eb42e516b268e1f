"""Where radtl's MONAI bundles live, so a bundle runs the same from the repo root or from inside it; and the
settings that input from outside radtl may give a bundle.

MONAI's ``ConfigParser`` evaluates a string that starts with ``$`` (a Python expression), resolves one that is
``@id`` (a reference) or starts with ``%`` (a macro: another config file), and instantiates a dict with a
``_target_``. So no text from a request, a ``--conf`` value, the command line or a datalist reaches it as it came:
:func:`checked_settings` parses each outside value to its type in :data:`SETTINGS` (int, float, bool, one of a set
of names, an inert path) and refuses anything else with a :class:`SettingError` naming the setting, and
:func:`load_bundle_config` and :func:`run_workflow`, the two ways into the parser, refuse any override, nested
(a datalist) or not, that the parser would evaluate (:func:`check_inert`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import radtl
from radtl.errors import RadtlError

__all__ = [
    "BUNDLES_DIR",
    "SETTINGS",
    "Setting",
    "SettingError",
    "available_bundles",
    "bundle_metadata",
    "bundle_root",
    "check_inert",
    "checked_settings",
    "load_bundle_config",
    "parse_bool",
    "resolve_bundle",
    "root_cause",
    "run_workflow",
]

#: The environment variable naming further folders of bundles, separated by :data:`os.pathsep` (``:`` or ``;``).
BUNDLES_ENV = "RADTL_BUNDLES"
#: The bundles installed with radtl: the wheel maps the repository's ``bundles/`` to the package ``radtl.bundles``.
PACKAGE_BUNDLES_DIR = Path(radtl.__file__).resolve().parent / "bundles"
#: ``bundles/`` of the source tree radtl is imported from (a checkout, an editable install).
BUNDLES_DIR = Path(radtl.__file__).resolve().parents[1] / "bundles"
_METADATA = Path("configs") / "metadata.json"


class BundleNotFoundError(RadtlError, FileNotFoundError):
    """No bundle of that name in the folders radtl searches (:func:`bundle_search_path`), or a folder that is not a
    bundle. The message names the bundles that exist, the closest to the name asked for, and each folder searched.

    Args:
        name: the bundle asked for, as given.
        found: the names of the bundles that exist.
        searched: the folders searched, in order.
        reason: what is wrong, when not that ``name`` is unknown (a folder without ``configs/metadata.json``).
    """

    hint = (
        "`radtl bundles` lists them; give a bundle's folder (one with configs/metadata.json) instead of a name, "
        f"or add the folder holding it to {BUNDLES_ENV} (with python -m monai.bundle run: --bundle_root DIR)"
    )

    def __init__(self, name: str, found: Sequence[str], searched: Sequence[Path], reason: str = "") -> None:
        from radtl.errors import closest

        self.bundle = name
        self.found = list(found)
        self.searched = list(searched)
        match = closest(Path(name).name, self.found) if self.found and not reason else None
        message = (reason or f"no bundle {name!r}") + (f" (did you mean {match!r}?)" if match else "")
        where = ", ".join(str(folder) for folder in self.searched) or "no folder of bundles exists"
        if self.found:
            message += f"; the bundles are {', '.join(self.found)}, found in {where}"
        else:
            message += f"; no bundles found (searched {where})"
        super().__init__(message)


def _is_bundle(folder: Path, name: str | None = None) -> bool:
    """``folder`` holds ``configs/metadata.json`` (and, given ``name``, is named so or its metadata says so)."""
    meta = folder / _METADATA
    if not meta.is_file():
        return False
    if name is None or folder.name == name:
        return True
    try:
        return json.loads(meta.read_text()).get("name") == name
    except (OSError, ValueError, AttributeError):  # an unreadable metadata.json names no bundle
        return False


def _plain_name(name: str) -> bool:
    """``name`` is one folder name, not a path (``btmr``, not ``../btmr`` or ``a/btmr``)."""
    return bool(name) and name not in (".", "..") and not any(sep in name for sep in ("/", "\\", os.sep))


def bundle_search_path() -> list[Path]:
    """The folders whose sub-folders are bundles, in the order a bundle name is looked up, each once (resolved);
    only folders that exist.

    1. ``bundles/`` under the working directory;
    2. each folder in the ``RADTL_BUNDLES`` environment variable (:data:`os.pathsep`-separated);
    3. the bundles installed with radtl (``radtl/bundles`` inside the installed package, from a wheel);
    4. ``bundles/`` of the source checkout radtl is imported from (an editable install, ``PYTHONPATH``).

    :func:`bundle_root` looks in the working directory itself first, when it is the bundle's folder.
    """
    candidates = [Path.cwd() / "bundles"]
    candidates += [Path(entry).expanduser() for entry in os.environ.get(BUNDLES_ENV, "").split(os.pathsep) if entry]
    candidates.append(PACKAGE_BUNDLES_DIR)
    if (BUNDLES_DIR.parent / "pyproject.toml").is_file():  # a source checkout, not site-packages' neighbours
        candidates.append(BUNDLES_DIR)
    folders: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir() and candidate.resolve() not in folders:
            folders.append(candidate.resolve())
    return folders


def find_bundles() -> dict[str, Path]:
    """Every bundle radtl finds, name to folder, in :func:`bundle_search_path` order: the working directory when
    it is a bundle, then the sub-folders of each search folder. A name found twice is the first one (as
    :func:`bundle_root` resolves it).
    """
    found: dict[str, Path] = {}
    here = Path.cwd()
    if _is_bundle(here):
        found[here.resolve().name] = here.resolve()
    for folder in bundle_search_path():
        for child in sorted(folder.iterdir()):
            if child.name not in found and _is_bundle(child):
                found[child.name] = child.resolve()
    return found


def bundle_root(name: str) -> str:
    """The folder of bundle ``name``: the working directory when it is that bundle's folder, else the first
    ``<folder>/<name>`` of :func:`bundle_search_path` (``./bundles``, ``RADTL_BUNDLES``, radtl's installed bundles,
    the source checkout's ``bundles/``). A bundle's ``bundle_root`` is this, overridable with ``--bundle_root``
    like any MONAI bundle setting.

    Raises:
        BundleNotFoundError: no such bundle; the message names those that exist and the closest one.
    """
    here = Path.cwd()
    if _is_bundle(here, name):
        return str(here.resolve())
    folders = bundle_search_path()
    if _plain_name(name):
        for folder in folders:
            if _is_bundle(folder / name):
                return str(folder / name)
    raise BundleNotFoundError(name, list(find_bundles()), folders)


def available_bundles() -> list[str]:
    """The names of the bundles radtl finds (:func:`find_bundles`), sorted."""
    return sorted(find_bundles())


def resolve_bundle(bundle: str | os.PathLike) -> Path:
    """A bundle given by folder (one with ``configs/metadata.json``) or by name (:func:`bundle_root`), as its folder.

    Raises:
        BundleNotFoundError: neither a bundle folder nor the name of a bundle radtl finds.
    """
    path = Path(bundle)
    if _is_bundle(path):
        return path.resolve()
    if not _plain_name(str(bundle)):
        reason = f"{bundle} is not a bundle folder (it has no {_METADATA.as_posix()})" if path.is_dir() else ""
        raise BundleNotFoundError(str(bundle), list(find_bundles()), bundle_search_path(), reason=reason)
    return Path(bundle_root(str(bundle)))


def bundle_metadata(bundle: str | os.PathLike) -> dict:
    """A bundle's ``configs/metadata.json`` (its ``name`` and ``version`` name the algorithm in DICOM-SEG)."""
    return json.loads((resolve_bundle(bundle) / _METADATA).read_text())


class BundleKind(str, Enum):
    """What a bundle trains: read from its JSON by :func:`bundle_table` (no MONAI parse).

    ``PRETRAINING``: ``train.json`` trains on a packed pseudo-label datalist (a ``pack``, no dataset ``layout``) and
    exports a backbone; otherwise the format of the first output in ``metadata.json``'s ``network_data_format``:
    ``segmentation``, ``regression`` or ``classes`` (``CLASSIFICATION``); ``OTHER`` for anything else.
    """

    PRETRAINING = "pretraining"
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    SEGMENTATION = "segmentation"
    OTHER = "other"


@dataclass(frozen=True)
class BundleInfo:
    """One row of :func:`bundle_table`.

    Args:
        name: the bundle's name (its folder's name), as ``radtl run NAME`` takes it.
        kind: what it trains.
        task: ``metadata.json``'s ``task`` (else its ``description``).
        network: the default network, ``train.json``'s ``backbone`` (else ``network_def``'s ``name``).
        folder: where it is.
    """

    name: str
    kind: BundleKind
    task: str
    network: str
    folder: Path


def _read_json(path: Path) -> dict:
    content = json.loads(path.read_text())
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(content).__name__}")
    return content


def _plain(value: object) -> str:
    """``value`` when it is text MONAI's parser takes as it is (not ``$``, ``@``, ``%``), else empty."""
    return value if isinstance(value, str) and not _EVALUATED.search(value) else ""


def _kind(train: dict, metadata: dict) -> BundleKind:
    if "pack" in train and "layout" not in train:
        return BundleKind.PRETRAINING
    outputs = metadata.get("network_data_format", {}).get("outputs", {})
    first = next(iter(outputs.values()), {}) if isinstance(outputs, dict) else {}
    form = first.get("format") if isinstance(first, dict) else None
    return {"segmentation": BundleKind.SEGMENTATION, "regression": BundleKind.REGRESSION,
            "classes": BundleKind.CLASSIFICATION}.get(form, BundleKind.OTHER)


def bundle_info(name: str, folder: Path) -> BundleInfo:
    """The :class:`BundleInfo` of the bundle in ``folder``, from its ``metadata.json`` and ``train.json`` alone.

    Raises:
        OSError, ValueError: a metadata.json or train.json that cannot be read as a JSON object.
    """
    metadata = _read_json(folder / _METADATA)
    train_file = folder / "configs" / "train.json"
    train = _read_json(train_file) if train_file.is_file() else {}
    network_def = train.get("network_def") if isinstance(train.get("network_def"), dict) else {}
    network = _plain(train.get("backbone")) or _plain(network_def.get("name"))
    task = metadata.get("task") or metadata.get("description") or ""
    return BundleInfo(name, _kind(train, metadata), " ".join(str(task).split()), network, folder)


def bundle_table() -> list[BundleInfo]:
    """Every bundle radtl finds (:func:`find_bundles`), sorted by name, for ``radtl bundles``.

    Reads JSON only (no MONAI, no torch). A bundle whose JSON cannot be read is listed with kind ``other`` and
    the reason as its task, so one broken bundle does not hide the others.
    """
    rows = []
    for name, folder in sorted(find_bundles().items()):
        try:
            rows.append(bundle_info(name, folder))
        except (OSError, ValueError) as error:
            rows.append(BundleInfo(name, BundleKind.OTHER, f"cannot be read: {error}", "", folder))
    return rows


def format_bundle_table(rows: Sequence[BundleInfo], task_width: int = 60) -> str:
    """``rows`` as an aligned text table (name, kind, network, task, where), ``task`` cut to ``task_width``."""

    def cut(text: str) -> str:
        return text if len(text) <= task_width else text[: task_width - 3].rstrip() + "..."

    table = [("name", "kind", "network", "task", "where")]
    table += [(row.name, row.kind.value, row.network or "-", cut(row.task) or "-", str(row.folder)) for row in rows]
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(line[:4], widths)), line[4]]) for line in table
    )


class SettingError(RadtlError, ValueError):
    """A bundle setting from outside radtl that radtl will not pass to MONAI's config parser; ``name`` says which."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


#: What makes MONAI's ConfigParser act on a string: an expression (``$``), a reference (``@``), a macro (``%``)
#: at its start, a relative id (``@#``, ``%#``) or the id separator ``::`` anywhere.
_EVALUATED = re.compile(r"^[$@%]|[@%]#|::")
#: The keys that make a dict a component MONAI instantiates or configures (``_target_``, ``_path_``, ``_mode_``...).
_COMPONENT_KEY = re.compile(r"^_\w+_$")
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...'"


def parse_bool(name: str, value: object) -> bool:
    """``value`` as a bool: a bool, or ``true``/``false`` (``yes``/``no``, ``1``/``0``, ``on``/``off``) as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingError(name, f"expected true or false, got {_shown(value)}")


def check_inert(value: object, name: str) -> None:
    """Refuse ``value`` (a setting, or a nested datalist) when MONAI's config parser would evaluate any part of it.

    Raises:
        SettingError: naming the part, e.g. ``datalist#training#0#image``.
    """
    if isinstance(value, str):
        if _EVALUATED.search(value) or "\0" in value:
            raise SettingError(
                name, f"{_shown(value)} would be evaluated by MONAI's config parser ($, @, % or :: syntax); refused"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or _COMPONENT_KEY.match(key) or _EVALUATED.search(key):
                raise SettingError(f"{name}#{key}", "not a key radtl passes to MONAI's config parser; refused")
            check_inert(item, f"{name}#{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_inert(item, f"{name}#{index}")


@dataclass(frozen=True)
class Setting:
    """A bundle setting that outside input may give: its type and the values it may take.

    Args:
        kind: ``int``, ``float``, ``bool`` or ``str``.
        low: the smallest number allowed (inclusive).
        high: the largest number allowed (inclusive).
        choices: the names a ``str`` may be; a callable gives them when asked (the network registry).
            Without choices a ``str`` is a path, taken as long as the parser would not evaluate it.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None

    def _range(self) -> str:
        return f"from {self.low:g} to {self.high:g}" if self.low is not None and self.high is not None else ""

    def _number(self, name: str, value: object) -> float | int:
        kind = "an integer" if self.kind is int else "a number"
        wrong = SettingError(name, f"expected {kind} {self._range()}, got {_shown(value)}".replace("  ", " "))
        if isinstance(value, bool):
            raise wrong
        if isinstance(value, str):
            try:
                value = int(value) if self.kind is int else float(value)
            except ValueError:
                raise wrong from None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise wrong
            value = int(value)
        else:
            value = float(value)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise wrong
        return value

    def parse(self, name: str, value: object) -> int | float | bool | str:
        """``value`` (as sent: JSON, a query string, the command line) as this setting's type, or a SettingError."""
        if self.kind is bool:
            return parse_bool(name, value)
        if self.kind in (int, float):
            return self._number(name, value)
        if not isinstance(value, str):
            raise SettingError(name, f"expected text, got {_shown(value)}")
        if self.choices is not None:
            choices = tuple(self.choices() if callable(self.choices) else self.choices)
            if value not in choices:
                raise SettingError(name, f"expected one of {', '.join(choices)}; got {_shown(value)}")
            return value
        check_inert(value, name)
        return value


def _networks() -> tuple[str, ...]:
    from radtl.networks.registry import available

    return available()


def _inits() -> tuple[str, ...]:
    from radtl.data.inputs import INITS

    return INITS


_COUNT = 100_000
#: The bundle settings a request, ``--conf``, ``radtl sweep`` or another outside source may give, with their types
#: and bounds; anything else is refused. Paths (``dataset_dir``, ``pretrained``...) are taken as inert text.
SETTINGS: dict[str, Setting] = {
    # where things are
    "dataset_dir": Setting(str),
    "output_dir": Setting(str),
    "pretrained": Setting(str),
    "checkpoint": Setting(str),
    "sex_csv": Setting(str),
    # the network and its start
    "backbone": Setting(str, choices=_networks),
    "init": Setting(str, choices=_inits),
    "image_size": Setting(int, 8, 4096),
    "device": Setting(str, choices=("cpu", "cuda", *(f"cuda:{i}" for i in range(16)), "mps")),
    "amp": Setting(bool),
    "channels_last": Setting(bool),
    # optimisation
    "lr": Setting(float, 1e-12, 10.0),
    "min_lr": Setting(float, 0.0, 10.0),
    "weight_decay": Setting(float, 0.0, 10.0),
    "max_epochs": Setting(int, 1, _COUNT),
    "patience": Setting(int, 0, _COUNT),
    "batch_size": Setting(int, 1, 4096),
    "warmup_epochs": Setting(int, 0, _COUNT),
    "validate_every": Setting(float, 0.0, _COUNT),
    "checkpoint_every": Setting(int, 1, _COUNT),
    "seed": Setting(int, 0, 2**32 - 1),
    "split_seed": Setting(int, 0, 2**32 - 1),
    "train_fraction": Setting(float, 1e-6, 1.0),
    "cache_rate": Setting(float, 0.0, 1.0),
    "num_workers": Setting(int, 0, 256),
    "eval_split": Setting(str, choices=("training", "validation", "test")),
    # regression (bone_age)
    "label_mean": Setting(float, -1e6, 1e6),
    "label_std": Setting(float, 1e-6, 1e6),
    # segmentation
    "patches_per_volume": Setting(int, 1, 4096),
    "positive_patches": Setting(int, 0, 4096),
    "negative_patches": Setting(int, 0, 4096),
    "fn_weight": Setting(float, 0.0, 1e6),
    "foreground_prior": Setting(float, 1e-6, 1.0 - 1e-6),
    "threshold": Setting(float, 0.0, 1.0),
    "min_nodule_volume_mm3": Setting(float, 0.0, 1e9),
    "fractional": Setting(bool),
}


def checked_settings(values: Mapping[str, object], source: str, accepted: Iterable[str] | None = None) -> dict:
    """Outside ``values`` as bundle settings of their :data:`SETTINGS` types, or a :class:`SettingError` naming the
    first setting that is unknown, out of bounds or of another type.

    Args:
        values: setting name to value, as sent.
        source: where they came from, for the message (``"the train request"``, ``"--conf luna_nodule_seg"``).
        accepted: the names this source may set (default: all of :data:`SETTINGS`).
    """
    names = tuple(accepted) if accepted is not None else tuple(SETTINGS)
    checked = {}
    for name, value in values.items():
        if name not in names:
            raise SettingError(str(name)[:60], f"not a setting {source} may give; it may give {', '.join(names)}")
        checked[name] = SETTINGS[name].parse(name, value)
    return checked


def load_bundle_config(
    bundle: str | os.PathLike, overrides: dict | None = None, config: str | Sequence[str] = "train.json"
):
    """A bundle's ``configs/<config>`` as a parsed MONAI ``ConfigParser`` with ``overrides`` applied,
    so a tool can take its parts (``network_def``, ``datalist``, ``image_transforms``...) by name.
    Several configs (``["train.json", "inference.json"]``) merge in order, as ``monai.bundle run`` merges them.

    Raises:
        SettingError: an override the config parser would evaluate (see :func:`check_inert`).
    """
    from monai.bundle import ConfigParser

    for name, value in (overrides or {}).items():
        check_inert(value, name)
    folder = resolve_bundle(bundle)
    names = [config] if isinstance(config, str) else list(config)
    parser = ConfigParser()
    parser.read_config([str(folder / "configs" / name) for name in names])
    parser.update({"bundle_root": str(folder), **(overrides or {})})
    parser.parse()
    return parser


def run_workflow(config_files: list[str | os.PathLike], overrides: dict) -> None:
    """Run a bundle's workflow from ``config_files`` (later files override earlier ones) with ``overrides``,
    as ``python -m monai.bundle run`` does; ``finalize`` runs even when ``run`` fails.

    Raises:
        SettingError: an override (or a part of one, like a datalist's path) the config parser would evaluate.
    """
    from monai.bundle import ConfigWorkflow

    for name, value in overrides.items():
        check_inert(value, name)
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
