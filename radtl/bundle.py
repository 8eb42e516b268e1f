"""radtl's MONAI bundles: where they are found, what they are, which settings outside input may give them, and
running one by name.

A bundle name is looked up in one order (:func:`bundle_search_path`): the working directory when it is the bundle,
``./bundles/<name>``, each folder of the ``RADTL_BUNDLES`` environment variable, the bundles installed with radtl
(``radtl/bundles`` of a wheel) and the source checkout's ``bundles/``; a folder given instead of a name is taken
as it is. :func:`bundle_table` lists them from their JSON alone, and this module imports neither MONAI nor torch
until a bundle is parsed or run.

Each bundle declares its kind in ``metadata.json`` (:class:`BundleKind`); :data:`PROPERTIES` writes down, after
``monai/bundle/properties.py``, the config ids a bundle of each kind defines. :class:`Bundle` is how radtl's tools
take a bundle: its folder, metadata and kind, its parts by property name, its network with a trained checkpoint
(strict, eval mode), its transforms and the items of a split.

MONAI's ``ConfigParser`` evaluates a string that starts with ``$`` (a Python expression), resolves one that is
``@id`` (a reference) or starts with ``%`` (a macro: another config file), and instantiates a dict with a
``_target_``. So no text from a request, a ``--conf`` value, the command line or a datalist reaches it as it came:
:func:`checked_settings` parses each outside value to its type in :data:`SETTINGS` (int, float, bool, one of a set
of names, an inert path) and refuses anything else with a :class:`SettingError` naming the setting;
:func:`checked_overrides` takes ``--set key=value`` only for keys the bundle's configs have; and
:func:`load_bundle_config` and :func:`run_workflow`, the two ways into the parser, refuse any override, nested
(a datalist) or not, that the parser would evaluate (:func:`check_inert`). :func:`run_bundle` runs a bundle as
``python -m monai.bundle run`` does and reports a failure by its root cause, in one line.
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
from radtl.errors import RadtlError, UsageError, closest
from radtl.logs import reapply

__all__ = [
    "BUNDLES_DIR",
    "BUNDLES_ENV",
    "PACKAGE_BUNDLES_DIR",
    "PROPERTIES",
    "SETTINGS",
    "Bundle",
    "BundleConfigError",
    "BundleInfo",
    "BundleKind",
    "BundleKindError",
    "BundleNotFoundError",
    "BundleRunError",
    "Setting",
    "SettingError",
    "available_bundles",
    "bundle_config_files",
    "bundle_configs",
    "bundle_info",
    "bundle_kind",
    "bundle_metadata",
    "bundle_root",
    "bundle_search_path",
    "bundle_table",
    "check_inert",
    "checked_overrides",
    "checked_settings",
    "find_bundles",
    "format_bundle_table",
    "load_bundle_config",
    "parse_bool",
    "read_bundle_config",
    "resolve_bundle",
    "split_values",
    "root_cause",
    "run_bundle",
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
        self.bundle = name
        self.found = list(found)
        self.searched = list(searched)
        self.reason = reason
        match = closest(Path(name).name, self.found) if self.found and not reason else None
        message = (reason or f"no bundle {name!r}") + (f" (did you mean {match!r}?)" if match else "")
        where = ", ".join(str(folder) for folder in self.searched) or "no folder of bundles exists"
        if self.found:
            message += f"; the bundles are {', '.join(self.found)}, found in {where}"
        else:
            message += f"; no bundles found (searched {where})"
        super().__init__(message)

    def __reduce__(self):  # rebuilt from what it was built from, so it crosses process boundaries intact
        return type(self), (self.bundle, self.found, self.searched, self.reason)


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
    """What a bundle trains, as its ``metadata.json`` declares it (``"kind": "classification"``); each kind has the
    properties of :data:`PROPERTIES` (:func:`bundle_kind` reads it, with no MONAI parse).

    ``PRETRAINING``: trains on a packed pseudo-label datalist and exports a backbone; ``CLASSIFICATION``,
    ``REGRESSION`` and ``SEGMENTATION``: a downstream task on a dataset ``layout``; ``OTHER``: none of these (a
    bundle without the declaration, or with one radtl does not know).
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


def _kind(metadata: dict) -> BundleKind:
    """The kind ``metadata.json`` declares (its ``kind``); :attr:`BundleKind.OTHER` when it declares none radtl knows."""
    try:
        return BundleKind(metadata.get("kind"))
    except ValueError:  # no declaration, or one radtl does not know
        return BundleKind.OTHER


def bundle_kind(bundle: str | os.PathLike) -> BundleKind:
    """The kind a bundle's ``metadata.json`` declares (``"kind": "segmentation"``), read without MONAI; ``OTHER`` when
    it declares none radtl knows.

    Raises:
        BundleNotFoundError: no such bundle.
    """
    return _kind(bundle_metadata(bundle))


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
    return BundleInfo(name, _kind(metadata), " ".join(str(task).split()), network, folder)


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


def format_bundle_table(rows: Sequence[BundleInfo], task_width: int = 44) -> str:
    """``rows`` as an aligned text table (name, kind, network, task, where), ``task`` cut to ``task_width`` and
    ``where`` relative to the working directory when the bundle is under it."""

    def cut(text: str) -> str:
        return text if len(text) <= task_width else text[: task_width - 3].rstrip() + "..."

    def where(folder: Path) -> str:
        try:
            return str(folder.relative_to(Path.cwd()))
        except ValueError:  # not under the working directory
            return str(folder)

    table = [("name", "kind", "network", "task", "where")]
    table += [(row.name, row.kind.value, row.network or "-", cut(row.task) or "-", where(row.folder)) for row in rows]
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


def split_values(values: object, kind: Callable = str, option: str = "value") -> list:
    """A comma-separated list from the command line (``"1e-3,1e-4"``, or what fire made of it: a number, a tuple)
    as a list of ``kind``; a :class:`~radtl.errors.UsageError` names ``option`` and the entry that is not a ``kind``.
    """
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    elif not isinstance(values, (list, tuple)):
        values = [values]
    parsed = []
    for value in values:
        try:
            parsed.append(kind(value.strip() if isinstance(value, str) else value))
        except (TypeError, ValueError):
            what = {int: "a whole number", float: "a number"}.get(kind, f"a {getattr(kind, '__name__', kind)}")
            raise UsageError(f"{option}: {_shown(value)} is not {what}") from None
    return parsed


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
    from radtl.networks.transfer import INITS

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
    # results as DICOM SR (radtl.dicom.sr) and where they are stored (radtl.dicom.pacs.parse_pacs_url checks it)
    "sr_output": Setting(str),
    "send": Setting(str),
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


def run_workflow(
    config_files: list[str | os.PathLike],
    overrides: dict,
    *,
    meta_file: str | os.PathLike | None = None,
    logging_file: str | os.PathLike | None = None,
) -> None:
    """Run a bundle's workflow from ``config_files`` (later files override earlier ones) with ``overrides``,
    as ``python -m monai.bundle run`` does; ``finalize`` runs even when ``run`` fails.

    Args:
        config_files: the configs, merged in order.
        overrides: id-value pairs (``max_epochs``, ``train#trainer#max_epochs``), as ``--key value`` to MONAI.
        meta_file: the bundle's ``metadata.json`` (default, as MONAI: ``metadata.json`` beside the first config).
        logging_file: the ``logging.conf`` applied before parsing (default, as MONAI: ``logging.conf`` beside the
            first config, skipped with a warning if there is none).

    Raises:
        SettingError: an override (or a part of one, like a datalist's path) the config parser would evaluate.
    """
    from monai.bundle import ConfigWorkflow

    for name, value in overrides.items():
        check_inert(value, name)
    optional = {"meta_file": meta_file, "logging_file": logging_file}
    workflow = ConfigWorkflow(
        config_file=[str(f) for f in config_files],
        workflow_type=None,
        **{key: str(value) for key, value in optional.items() if value is not None},
        **overrides,
    )
    reapply()  # the workflow applied the bundle's logging.conf; radtl's console rule (--verbose) comes back
    workflow.initialize()
    try:
        workflow.run()
    finally:
        workflow.finalize()


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from (``__cause__``) or while handling (``__context__``), outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def root_cause(error: BaseException) -> BaseException:
    """The exception under MONAI's wrappers ("Failed to evaluate ConfigExpression", "applying transform"): the
    outermost :class:`~radtl.errors.RadtlError` along the chain of ``__cause__`` (or, where an exception was raised
    while handling another without ``from``, ``__context__``), else the innermost exception of that chain.
    """
    chain = _chain(error)
    return next((link for link in chain if isinstance(link, RadtlError)), chain[-1])


# -- radtl run: a bundle by name, its configs merged as MONAI merges them, settings checked against its keys --

#: The suffixes of the config files MONAI reads.
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
#: Files of ``configs/`` that are not workflow configs.
_NOT_WORKFLOWS = ("metadata", "logging")


class BundleConfigError(RadtlError, FileNotFoundError):
    """A config that is not among a bundle's ``configs/`` (nor a file); the message names those it has."""

    hint = "give a config of the bundle by name (evaluate, inference) or a config file's path"


class BundleRunError(RadtlError, RuntimeError):
    """A bundle run that failed: the message is the root cause under MONAI's wrappers (:func:`root_cause`) in one
    line; ``__cause__`` is the original exception, with MONAI's whole traceback.
    """

    hint = "--debug shows the traceback"


def bundle_configs(bundle: str | os.PathLike) -> list[str]:
    """The workflow configs of a bundle (``configs/*.json``, ``*.yaml`` but metadata and logging), by stem."""
    folder = resolve_bundle(bundle) / "configs"
    return sorted(
        path.stem for path in folder.iterdir() if path.suffix in _CONFIG_SUFFIXES and path.stem not in _NOT_WORKFLOWS
    )


def _config_file(folder: Path, config: str | os.PathLike) -> Path:
    text = os.fspath(config) if isinstance(config, os.PathLike) else str(config)
    if not _plain_name(text):  # a path: ./mine.json, /data/override.json
        if Path(text).is_file():
            return Path(text).resolve()
        raise BundleConfigError(f"no config file {text}")
    names = [text] if Path(text).suffix in _CONFIG_SUFFIXES else [text + suffix for suffix in _CONFIG_SUFFIXES]
    for name in names:
        if (folder / "configs" / name).is_file() and Path(name).stem not in _NOT_WORKFLOWS:
            return folder / "configs" / name
    if Path(text).is_file():  # not the bundle's: a file in the working directory
        return Path(text).resolve()
    have = bundle_configs(folder)
    match = closest(Path(text).stem, have)
    raise BundleConfigError(
        f"bundle {folder.name} has no config {text!r}" + (f" (did you mean {match!r}?)" if match else "")
        + f"; its configs are {', '.join(have) or 'none'} ({folder / 'configs'})"
    )


def bundle_config_files(bundle: str | os.PathLike, configs: str | Sequence[str | os.PathLike] = ()) -> list[Path]:
    """The config files ``radtl run BUNDLE CONFIG...`` merges, in order.

    A config is a name in the bundle's ``configs/`` (``evaluate`` or ``evaluate.json``), else a file's path
    (``./mine.json``, ``mine.json``). The bundle's ``train.json`` comes first unless listed: radtl's ``evaluate.json``,
    ``inference.json`` and ``multi_gpu_train.json`` patch it, as in MONAI's model zoo
    (``--config_file "['configs/train.json','configs/evaluate.json']"``). No config means ``train.json``.

    Raises:
        BundleNotFoundError: no such bundle.
        BundleConfigError: no such config; the message names the bundle's configs and the closest one.
    """
    folder = resolve_bundle(bundle)
    names = [configs] if isinstance(configs, (str, os.PathLike)) else list(configs)
    files = [_config_file(folder, config) for config in names]
    train = folder / "configs" / "train.json"
    if train.is_file() and train.resolve() not in [file.resolve() for file in files]:
        files.insert(0, train)
    return list(dict.fromkeys(files))


def _split_id(key: str) -> list[str]:
    return key.replace("::", "#").split("#")


def _child(node: object, part: str) -> tuple[bool, object]:
    """The item ``part`` of a config dict (by key) or list (by index), and whether it is there."""
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return True, node[int(part)]
    return False, None


def _lookup(config: object, key: str) -> tuple[bool, object, list[str]]:
    """Walk ``key`` (``train#trainer#max_epochs``) into ``config``: whether it is there, the last item reached and
    the parts of ``key`` that led to it."""
    node, path = config, []
    for part in _split_id(key):
        found, child = _child(node, part)
        if not found:
            return False, node, path
        node = child
        path.append(part)
    return True, node, path


def _merge(config: dict, key: str, value: object) -> None:
    """Set ``key`` of ``config`` as MONAI's ``ConfigParser.load_config_files`` does (``#`` paths, ``+`` merges)."""
    merge = key.startswith("+")
    *parents, last = _split_id(key[1:] if merge else key)
    found, parent, _ = _lookup(config, "#".join(parents)) if parents else (True, config, [])
    if not found:
        return  # MONAI refuses a path whose parent is missing; the run reports it
    exists, current = _child(parent, last)
    if merge and isinstance(current, dict) and isinstance(value, dict):
        current.update(value)
    elif merge and isinstance(current, list) and isinstance(value, list):
        current.extend(value)
    elif isinstance(parent, dict):
        parent[last] = value
    elif exists and isinstance(parent, list):
        parent[int(last)] = value


def read_bundle_config(bundle: str | os.PathLike, configs: str | Sequence[str | os.PathLike] = ()) -> dict:
    """The configs of :func:`bundle_config_files` merged as MONAI merges them (later keys and ``#`` paths override
    earlier ones), as plain JSON: nothing is parsed, evaluated or imported (no MONAI, no torch).
    """
    import yaml

    merged: dict = {}
    for file in bundle_config_files(bundle, configs):
        content = json.loads(file.read_text()) if file.suffix == ".json" else yaml.safe_load(file.read_text())
        if not isinstance(content, dict):
            raise BundleConfigError(f"{file}: not a config (a JSON or YAML object)")
        for key, value in content.items():
            _merge(merged, key, value)
    return merged


#: ``key=value`` pairs in one ``--set`` are separated by commas: a comma followed by ``key=`` starts the next.
_NEXT_PAIR = re.compile(r",(?=\s*[A-Za-z_][\w#:]*\s*=)")


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not a value radtl passes on")


def _parsed(text: object) -> object:
    """``text`` as a JSON literal where it is one (``1``, ``1e-3``, ``true``, ``"text"``, ``[1, 2]``), else as it is."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def _set_pairs(settings: str | Sequence[str] | Mapping[str, object] | None) -> list[tuple[str, object]]:
    if settings is None:
        return []
    if isinstance(settings, Mapping):
        return [(str(key), value) for key, value in settings.items()]
    items = [settings] if isinstance(settings, str) else list(settings)
    pairs = []
    for item in items:
        if not isinstance(item, str):
            raise SettingError("--set", f"expected key=value, got {_shown(item)}")
        for text in _NEXT_PAIR.split(item):
            key, equals, value = text.partition("=")
            if not equals or not key.strip():
                raise SettingError("--set", f"expected key=value, got {_shown(text)}")
            pairs.append((key.strip(), value.strip()))
    return pairs


def checked_overrides(
    settings: str | Sequence[str] | Mapping[str, object] | None,
    bundle: str | os.PathLike,
    configs: str | Sequence[str | os.PathLike] = (),
    reserved: Mapping[str, str] | None = None,
) -> dict:
    """``--set key=value`` settings as overrides for :func:`run_bundle` (or ``run_workflow``), each checked.

    A key must be one the bundle's merged configs (:func:`read_bundle_config`) have: a top-level key
    (``max_epochs``) or a ``#`` path (``train#trainer#max_epochs``), or a new argument of a component the configs
    have (``network_def#features``: a dict with ``_target_``; refused when it is close to one the component has,
    ``train#trainer#max_epoch``), never a component key (``_target_``). A value
    is a JSON literal where it parses as one (``1``, ``1e-3``, ``true``, ``"text"``, ``[1,2]``), else text; a
    setting of :data:`SETTINGS` is parsed to its type and bounds, and every value must be inert
    (:func:`check_inert`). A later pair of the same key wins.

    Args:
        settings: ``"key=value"`` strings (one string may hold several, ``max_epochs=1,lr=1e-3``), or a mapping.
        bundle: the bundle's folder or name.
        configs: the configs the run merges (see :func:`bundle_config_files`); their keys are the ones accepted.
        reserved: keys the command sets from its own options, to the option (``{"lr": "radtl sweep --lrs"}``).

    Raises:
        SettingError: a malformed pair, a key the configs do not have (naming the closest one), a reserved key, a
            value outside its setting's type or bounds, or one MONAI's parser would evaluate.
    """
    pairs = _set_pairs(settings)
    if not pairs:
        return {}
    config = read_bundle_config(bundle, configs)
    files = ", ".join(path.name for path in bundle_config_files(bundle, configs))
    name = resolve_bundle(bundle).name
    overrides: dict = {}
    for key, raw in pairs:
        parts = _split_id(key)
        if any(_COMPONENT_KEY.match(part) or _EVALUATED.search(part) for part in parts):
            raise SettingError(key[:60], "not a key radtl passes to MONAI's config parser; refused")
        if reserved and parts[0] in reserved:
            raise SettingError(key[:60], f"set by {reserved[parts[0]]}; give it there, not with --set")
        found, container, path = _lookup(config, key)
        # a component (a dict with _target_) may take an argument it lacks, unless it is close to one it has
        new_argument = (len(parts) > 1 and len(path) == len(parts) - 1 and isinstance(container, dict)
                        and "_target_" in container and closest(parts[-1], [str(k) for k in container]) is None)
        if not found and not new_argument:
            missing = parts[len(path)]
            choices = [str(k) for k in container] if isinstance(container, dict) else []
            match = closest(missing, choices)
            elsewhere = [cfg for cfg in bundle_configs(bundle) if _lookup(read_bundle_config(bundle, cfg), key)[0]]
            if elsewhere:
                advice = f"; it is a setting of {', '.join(elsewhere)}: run with that config"
            elif match:
                advice = f"; did you mean {'#'.join([*path, match])}?"
            else:
                advice = "; its settings are the keys of its configs (#-paths for nested ones)"
            raise SettingError(key[:60], f"not a setting of bundle {name} ({files}){advice}")
        value = _parsed(raw)
        if len(parts) == 1 and key in SETTINGS:
            value = SETTINGS[key].parse(key, value if isinstance(value, str) or not isinstance(raw, str) else raw)
        check_inert(value, key)
        overrides[key] = value
    return overrides


def _installed_copy(folder: Path) -> bool:
    return folder.resolve().is_relative_to(PACKAGE_BUNDLES_DIR)


def run_bundle(
    bundle: str | os.PathLike,
    configs: str | Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, object] | None = None,
) -> list[Path]:
    """Run a bundle as ``python -m monai.bundle run`` would: ``radtl run BUNDLE [CONFIG...] [--set key=value]``.

    Finds the bundle by name or folder (:func:`resolve_bundle`), merges ``train.json`` and ``configs``
    (:func:`bundle_config_files`), applies the bundle's ``configs/logging.conf`` and runs the workflow
    (:func:`run_workflow`) with ``bundle_root`` set to the bundle's folder and ``overrides`` (from
    :func:`checked_overrides`). A failure is raised as one line: radtl's root cause, not MONAI's wrappers.

    Args:
        bundle: the bundle's folder or name (``btmr``).
        configs: configs merged over ``train.json`` (``evaluate``, ``inference``, ``./mine.json``).
        overrides: settings (``{"max_epochs": 1}``); ``bundle_root`` defaults to the bundle's folder.

    Returns:
        The config files run, in order.

    Raises:
        BundleNotFoundError, BundleConfigError: no such bundle or config.
        UsageError: the bundle is the copy installed with radtl and ``output_dir`` (inside the installed package by
            default) is not given.
        SettingError: an override MONAI's parser would evaluate.
        BundleRunError: the run failed; the message is the root cause in one line, ``__cause__`` the original.
    """
    folder = resolve_bundle(bundle)
    files = bundle_config_files(folder, configs)
    settings = {"bundle_root": str(folder), **(overrides or {})}
    if _installed_copy(folder) and "output_dir" not in settings and "output_dir" in read_bundle_config(folder, files):
        raise UsageError(
            f"{folder.name} is the copy installed with radtl ({folder}); its output_dir would be inside the package",
            hint="give --set output_dir=DIR (and --set dataset_dir=DIR: the sample data is not installed)",
        )
    logging_file = folder / "configs" / "logging.conf"
    try:
        run_workflow(
            files,
            settings,
            meta_file=folder / _METADATA,
            logging_file=logging_file if logging_file.is_file() else None,
        )
    except Exception as error:  # noqa: BLE001 - the run's boundary: one line for a person, the original kept
        cause = root_cause(error)
        if cause is error and isinstance(error, RadtlError):
            raise
        text = " ".join(str(cause).split()) or type(cause).__name__
        if not isinstance(cause, RadtlError):
            text = f"{type(cause).__name__}: {text}"
        ran = " + ".join(file.name for file in files)
        raise BundleRunError(f"{folder.name} ({ran}): {text}", hint=getattr(cause, "hint", "") or None) from error
    return files


# The bundle contract, after monai/bundle/properties.py: per kind, each property a bundle of that kind defines, with
# its description, whether it is required and the config id that holds it (``#`` for a nested id); ``config`` is the
# config the id is in, merged over train.json (MONAI keeps separate TrainProperties and InferProperties instead).
_DESCRIPTION, _REQUIRED, _ID, _CONFIG = "description", "required", "id", "config"


def _property(description: str, id_: str, required: bool = True, config: str = "train.json") -> dict:
    return {_DESCRIPTION: description, _REQUIRED: required, _ID: id_, _CONFIG: config}


_COMMON_PROPERTIES = {
    "bundle_root": _property("root path of the bundle (radtl.bundle.bundle_root(name) by default).", "bundle_root"),
    "output_dir": _property("where the run writes its checkpoints, history and tables.", "output_dir"),
    "device": _property("target device to execute the bundle workflow.", "device"),
    "max_epochs": _property("max number of epochs to execute the training.", "max_epochs"),
    "lr": _property("the optimizer's learning rate (radtl sweep sets it).", "lr"),
    "seed": _property("the seed of set_determinism.", "seed"),
    "key_metric": _property("the validation metric that selects the checkpoint and stops early.", "key_metric"),
    "network_def": _property(
        "the network module, on the CPU, no weights loaded (dino_pretrain: student and teacher instead).",
        "network_def",
        required=False,
    ),
    "network": _property("network_def placed on the device (radtl.networks.place).", "network"),
    "trainer": _property("training workflow engine.", "train#trainer"),
    "train_handlers": _property("event-handlers of the training logic run by every process.", "train#handlers"),
    "train_rank0_handlers": _property(
        "event-handlers of the training logic run by the first process only (logs, exports).", "train#rank0_handlers"
    ),
    "evaluator": _property("validation workflow engine.", "validate#evaluator"),
    "initialize": _property("expressions run before the workflow.", "initialize"),
    "run": _property("the workflow.", "run"),
}

_DOWNSTREAM_PROPERTIES = {
    "dataset_dir": _property("directory path of the dataset.", "dataset_dir"),
    "layout": _property("the dataset layout radtl.data.prepare_datalist reads.", "layout"),
    "datalist": _property("the split datalist: {split: [items]}.", "datalist"),
    "backbone": _property("the network's architecture by name (radtl.networks.create).", "backbone"),
    "init": _property("the initialisation: random, imagenet, radiologynet or a checkpoint's name.", "init"),
    "pretrained": _property("a checkpoint whose backbone initialises the network (empty: none).", "pretrained"),
    "network_input": _property("transforms from the loaded image to the network's input.", "network_input"),
    "postprocessing": _property("transforms of the evaluator's output.", "postprocessing"),
    "validate_rank0_handlers": _property(
        "event-handlers of the validation logic run by the first process only (checkpoints, logs).",
        "validate#rank0_handlers",
    ),
    "eval_checkpoint": _property("the checkpoint evaluate.json scores.", "ckpt_path", config="evaluate.json"),
    "eval_split": _property("the split evaluate.json scores.", "eval_split", config="evaluate.json"),
}

_IMAGE_PROPERTIES = {
    "image_size": _property("the side of the square network input, in pixels.", "image_size"),
    "image_transforms": _property("transforms that load a radiograph to a (1, H, W) array.", "image_transforms"),
}

#: The properties each :class:`BundleKind` defines: name -> ``description``, ``required``, ``id`` (the config id
#: holding it) and ``config`` (the config it is in, merged over ``train.json``), as MONAI's
#: ``monai.bundle.properties.TrainProperties`` writes down a training bundle's. ``tests/bundles/test_bundle_contract.py``
#: checks every bundle against its kind's; :meth:`Bundle.missing_properties` names what a bundle lacks.
PROPERTIES: dict[BundleKind, dict[str, dict]] = {
    BundleKind.CLASSIFICATION: {
        **_COMMON_PROPERTIES,
        **_DOWNSTREAM_PROPERTIES,
        **_IMAGE_PROPERTIES,
        "labels": _property("the class names, in the order of the network's outputs.", "labels"),
    },
    BundleKind.REGRESSION: {
        **_COMMON_PROPERTIES,
        **_DOWNSTREAM_PROPERTIES,
        **_IMAGE_PROPERTIES,
        "unit": _property("the unit of the regressed value (months).", "unit"),
        "label_mean": _property("the mean the labels are standardised by.", "label_mean"),
        "label_std": _property("the standard deviation the labels are standardised by.", "label_std"),
    },
    BundleKind.SEGMENTATION: {
        **_COMMON_PROPERTIES,
        **_DOWNSTREAM_PROPERTIES,
        "labels": _property("the segment names, one per output channel.", "labels"),
        "threshold": _property("the probability a voxel needs to be in the mask.", "threshold"),
        "inferer": _property("MONAI Inferer object that runs the network over a whole volume.", "inferer"),
        "inference_transforms": _property("transforms that load a series for inference.", "inference_transforms"),
        "infer_checkpoint": _property("the checkpoint inference.json serves.", "ckpt_path", config="inference.json"),
        "input_series": _property("the series folder inference.json reads.", "input_series", config="inference.json"),
        "seg_output": _property("where inference.json writes its DICOM-SEGs.", "seg_output", config="inference.json"),
        "fractional": _property(
            "write a FRACTIONAL SEG of probabilities instead of a BINARY one.", "fractional", config="inference.json"
        ),
        "infer_mask": _property("transforms from probabilities to the binary mask.", "infer#mask", config="inference.json"),
        "infer_evaluator": _property("inference workflow engine.", "infer#evaluator", config="inference.json"),
    },
    BundleKind.PRETRAINING: {
        **_COMMON_PROPERTIES,
        "datalist": _property("the pseudo-label datalist radtl pseudolabel wrote.", "datalist"),
        "pack": _property("the packed datalist the training reads (radtl.data.ensure_pack).", "pack"),
        "image_size": _property("the side of the square network input, in pixels.", "image_size"),
        "backbone": _property("the pretrained backbone's architecture.", "backbone", required=False),
    },
    BundleKind.OTHER: {},
}


class BundleKindError(RadtlError, ValueError):
    """A bundle of another kind than the tool takes (``radtl gradcam`` on a pretraining bundle)."""

    hint = "`radtl bundles` lists each bundle's kind"


class Bundle:
    """One bundle as radtl's tools use it: its folder, metadata, declared kind and, parsed on first use, its configs'
    parts by the names of its kind's :data:`PROPERTIES`.

    Args:
        bundle: the bundle's folder or name (:func:`resolve_bundle`).
        settings: bundle settings applied over the configs (``{"output_dir": ..., "dataset_dir": ...}``); each must
            be inert (:func:`check_inert`).
        configs: the configs merged, in order (``["train.json", "inference.json"]``).

    Raises:
        BundleNotFoundError: no such bundle.
    """

    def __init__(
        self,
        bundle: str | os.PathLike,
        settings: Mapping[str, object] | None = None,
        configs: str | Sequence[str] = "train.json",
    ) -> None:
        self.root = resolve_bundle(bundle)
        self.name = self.root.name
        self.metadata = bundle_metadata(self.root)
        self.kind = _kind(self.metadata)
        self.settings = dict(settings or {})
        self.configs = [configs] if isinstance(configs, str) else list(configs)
        self._config = None
        self._datalist = None

    def __repr__(self) -> str:
        return f"Bundle({self.name!r}, kind={self.kind.value!r}, root={str(self.root)!r})"

    def require(self, *kinds: BundleKind, tool: str = "") -> Bundle:
        """This bundle, when its kind is one of ``kinds``.

        Raises:
            BundleKindError: a bundle of another kind; the message names the bundles of ``kinds``.
        """
        if self.kind not in kinds:
            wanted = " or ".join(kind.value for kind in kinds)
            fitting = [row.name for row in bundle_table() if row.kind in kinds]
            raise BundleKindError(
                f"{tool + ': ' if tool else ''}bundle {self.name!r} is a {self.kind.value} bundle, not {wanted}"
                + (f"; the {wanted} bundles are {', '.join(fitting)}" if fitting else "")
            )
        return self

    def missing_properties(self) -> list[str]:
        """The required properties of this bundle's kind (:data:`PROPERTIES`) its configs do not define, read as
        plain JSON (nothing parsed)."""
        merged: dict[str, dict] = {}
        missing = []
        for name, spec in PROPERTIES[self.kind].items():
            if not spec[_REQUIRED]:
                continue
            config = spec[_CONFIG]
            if config not in merged:
                merged[config] = (
                    read_bundle_config(self.root, [config]) if (self.root / "configs" / config).is_file() else {}
                )
            if not _lookup(merged[config], spec[_ID])[0]:
                missing.append(name)
        return missing

    @property
    def config(self):
        """The merged configs as a parsed MONAI ``ConfigParser`` (:func:`load_bundle_config`), built on first use."""
        if self._config is None:
            self._config = load_bundle_config(self.root, self.settings, self.configs)
        return self._config

    def get(self, name: str):
        """The parsed content of property ``name`` of this bundle's kind (``"evaluator"``), else of config id
        ``name`` (``"infer#mask"``)."""
        spec = PROPERTIES[self.kind].get(name)
        return self.config.get_parsed_content(spec[_ID] if spec else name)

    @property
    def device(self):
        """The bundle's ``device`` as a ``torch.device``."""
        import torch

        return torch.device(self.get("device"))

    def network(self, checkpoint: str | os.PathLike | None = None):
        """A new instance of the bundle's ``network_def`` with ``checkpoint`` (a ``model.pt`` the bundle trained)
        loaded strictly, on the bundle's device, in eval mode.

        Raises:
            radtl.networks.CheckpointError: a checkpoint that is not this network's, key for key.
        """
        from radtl.networks import load_pretrained

        network = self.config.get_parsed_content("network_def", lazy=False)
        if checkpoint is not None:
            load_pretrained(network, checkpoint, strict=True)
        return network.to(self.device).eval()

    def transforms(self, *ids: str):
        """The transform lists of config ids ``ids`` chained as one ``Compose`` (``"image_transforms"``,
        ``"network_input"``); by default the input a kind's network sees at inference."""
        from monai.transforms import Compose

        if not ids:
            ids = ("inference_transforms",) if self.kind is BundleKind.SEGMENTATION else ("image_transforms",)
            ids += ("network_input",)
        chained: list = []
        for id_ in ids:
            part = self.config.get_parsed_content(id_)
            chained += list(part.transforms) if isinstance(part, Compose) else list(part)
        return Compose(chained)

    def items(self, split: str) -> list[dict]:
        """The datalist items of ``split`` (``training``, ``validation``, ``test``).

        Raises:
            ValueError: no such split in the datalist.
        """
        if self._datalist is None:
            self._datalist = self.config.get_parsed_content("datalist")
        if split not in self._datalist:
            raise ValueError(f"no split {split!r} in the datalist; it has {', '.join(self._datalist)}")
        return list(self._datalist[split])
