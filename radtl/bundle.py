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
