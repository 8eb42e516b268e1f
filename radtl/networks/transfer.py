"""Weight transfer: RadiologyNET releases, torchvision/ImageNet state dicts and radtl checkpoints.

Users arrive with checkpoints from three places, and each names tensors its own way:

- **RadiologyNET** (``<Name>.tar.gz`` holding ``<Name>.pth``): a dict with the weights under
  ``'model_state'`` in torchvision's layout, sometimes prefixed ``model.``; the authors' own loader
  copies by name and shape, retrying with the ``model.`` prefix added or removed and ``features``
  renamed ``model`` (shared/science/radiologynet.md, "Released weights").
- **torchvision**: a plain state dict in torchvision's layout. radtl's ResNet, MobileNetV3, VGG16
  and InceptionV3 share it; its DenseNet121 and EfficientNet (MONAI's) rename modules, mapped by
  each backbone's :meth:`~radtl.networks.backbone.Backbone.torchvision_module_names`.
- **radtl**: a state dict of a radtl model, possibly inside an Ignite/MONAI checkpoint dict.

:func:`load_pretrained` reads any of them, tries each way of naming (layout, prefix rewrite,
target backbone inside a U-Net or regressor) and keeps the one under which most tensors fit by
name and shape, then loads and returns a :class:`TransferReport`. The same rule covers partial
transfer: a classifier into a U-Net's ``encoder.``, a 36-class pretraining head left out of a
4-class model (reported as shape-mismatched), a 3-channel first convolution summed into a
grey-scale stem, a ViT's position embeddings learned at 224 px resized to a model built for 64 px.

Each initialisation also fixes the input normalisation the network expects (:data:`INITS`,
:func:`input_mean`, :func:`input_std`): ImageNet's statistics for ImageNet weights, none otherwise.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary pickled objects unless the caller says the file is trusted (``allow_pickle=True``).
"""

import io
import logging
import pickle
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import torch
from torch import nn

from radtl.errors import RadtlError
from radtl.networks.backbone import Backbone
from radtl.networks.vit import resize_position_embeddings

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

#: Keys under which checkpoint files nest a state dict: RadiologyNET, Lightning, Ignite/MONAI.
CONTAINER_KEYS = ("model_state", "state_dict", "model", "network", "net")
#: Prefix rewrites tried on every key, as (old, new): DataParallel's ``module.``, RadiologyNET's
#: ``model.`` and its ``model.`` for ``features.``, and radtl's own wrappers.
PREFIX_REWRITES = (
    ("", ""),
    ("module.", ""),
    ("model.", ""),
    ("model.", "features."),
    ("encoder.", ""),
    ("backbone.", ""),
)


#: ImageNet's per-channel mean and standard deviation, which torchvision's ImageNet weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The study's three initialisations.
INITS = ("random", "imagenet", "radiologynet")


def _check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; the study's are {', '.join(INITS)}")
    return init


def input_mean(init: str) -> tuple[float, ...]:
    """Per-channel mean subtracted from a [0, 1] RGB input for a network initialised by ``init``.

    The study normalised with ImageNet's statistics only for ImageNet-initialised networks; random and
    RadiologyNET initialisations see the image in [0, 1] as it was pretrained (shared/science/radiologynet.md,
    "Fine-tuning protocol").

    Args:
        init: one of :data:`INITS`.
    """
    return IMAGENET_MEAN if _check_init(init) == "imagenet" else (0.0, 0.0, 0.0)


def input_std(init: str) -> tuple[float, ...]:
    """Per-channel divisor for a network initialised by ``init`` (see :func:`input_mean`).

    Args:
        init: one of :data:`INITS`.
    """
    return IMAGENET_STD if _check_init(init) == "imagenet" else (1.0, 1.0, 1.0)


class CheckpointSource(str, Enum):
    """Where a checkpoint comes from, which fixes how its tensors are named."""

    AUTO = "auto"
    RADIOLOGYNET = "radiologynet"
    TORCHVISION = "torchvision"
    RADTL = "radtl"


class CheckpointError(RadtlError, ValueError):
    """A checkpoint that cannot be read, or does not fit the model; the message names the file."""


@dataclass
class TransferReport:
    """What :func:`load_pretrained` did, key by key (model key names).

    Attributes:
        origin: the file, URL or ``"<state dict>"``.
        source: the checkpoint source, as given or as detected (``"torchvision/radtl"`` when
            detected for an architecture whose radtl names are torchvision's).
        naming: how keys were read: layout, prefix rewrite, target submodule.
        loaded: keys copied unchanged.
        adapted: keys loaded after adaptation: first-convolution weights whose input channels
            were adapted, and ViT position embeddings resized to the model's patch grid.
        resized: the position-embedding keys among ``adapted``.
        missing: model keys the checkpoint has no tensor for (``num_batches_tracked`` ignored).
        unexpected: checkpoint keys the model has no parameter for.
        mismatched: ``(key, checkpoint shape, model shape)`` for keys present in both.
    """

    origin: str
    source: str
    naming: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every model tensor was loaded and every checkpoint tensor used."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        read_as = self.naming if self.naming.startswith(f"{self.source} layout") else f"{self.source}, {self.naming}"
        channels = len(self.adapted) - len(self.resized)
        lines = [
            f"{self.origin} ({read_as}): loaded {len(self.loaded)} tensors"
            + (f", {channels} with adapted input channels" if channels else "")
            + (f", {len(self.resized)} position embeddings resized" if self.resized else "")
        ]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                lines.append(f"  {label} {len(keys)}: {_preview(keys)}")
        if self.mismatched:
            shapes = [f"{key} {list(theirs)} vs model {list(ours)}" for key, theirs, ours in self.mismatched]
            lines.append(f"  shape-mismatched {len(shapes)}: {_preview(shapes)}")
        return "\n".join(lines)


def _preview(items: list[str], count: int = 4) -> str:
    shown = ", ".join(items[:count])
    return shown + (f", ... ({len(items) - count} more)" if len(items) > count else "")


def read_checkpoint(
    path_or_state: str | Path | Mapping,
    source: str | CheckpointSource = CheckpointSource.AUTO,
    allow_pickle: bool = False,
) -> tuple[StateDict, str]:
    """The state dict a checkpoint holds, and the container key it was found under (or "").

    Args:
        path_or_state: a ``.pth``/``.pt`` file, a RadiologyNET ``.tar.gz`` release, an
            ``http(s)://`` URL (downloaded to torch's hub cache), or a mapping already in memory.
        source: with ``"radiologynet"``, the weights must sit under ``'model_state'``.
        allow_pickle: let ``torch.load`` run arbitrary pickled code; only for trusted files.

    Raises:
        CheckpointError: missing, truncated or corrupt file; a pickle that is not plain weights;
            anything that is not a mapping of tensor names to tensors.
    """
    source = CheckpointSource(source)
    origin = "<state dict>" if isinstance(path_or_state, Mapping) else str(path_or_state)
    content = path_or_state if isinstance(path_or_state, Mapping) else _load_file(origin, allow_pickle)
    state, container = _unwrap(content, origin)
    if source is CheckpointSource.RADIOLOGYNET and container != "model_state":
        raise CheckpointError(
            f"{origin}: expected a RadiologyNET checkpoint, a dict with the weights under 'model_state'; "
            f"found {'a plain state dict' if not container else repr(container)}"
        )
    return state, container


def _load_file(location: str, allow_pickle: bool) -> object:
    try:
        if location.startswith(("http://", "https://")):
            return torch.hub.load_state_dict_from_url(location, map_location="cpu", weights_only=not allow_pickle)
        path = Path(location)
        if not path.is_file():
            raise CheckpointError(f"{location}: no such checkpoint file")
        if tarfile.is_tarfile(path):
            return torch.load(_tar_member(path), map_location="cpu", weights_only=not allow_pickle)
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise CheckpointError(
                f"{location}: holds pickled Python objects, not plain weights; radtl refuses arbitrary pickles. "
                "Pass allow_pickle=True only for a file from a source you trust."
            ) from error
        raise CheckpointError(f"{location}: not a readable PyTorch checkpoint ({error})") from error
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, tarfile.TarError) as error:
        if isinstance(error, CheckpointError):
            raise
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{location}: not a readable PyTorch checkpoint, likely truncated or corrupt ({first_line})"
        ) from error


def _tar_member(path: Path) -> io.BytesIO:
    """The one ``.pth``/``.pt`` file inside a RadiologyNET ``<Name>.tar.gz`` release."""
    with tarfile.open(path) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith((".pth", ".pt"))]
        if len(members) != 1:
            names = [m.name for m in archive.getmembers()]
            raise CheckpointError(f"{path}: expected one .pth or .pt file in the archive, found {names}")
        return io.BytesIO(archive.extractfile(members[0]).read())


def _is_state_dict(candidate: object) -> bool:
    return (
        isinstance(candidate, Mapping)
        and bool(candidate)
        and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in candidate.items())
    )


def _unwrap(content: object, origin: str) -> tuple[StateDict, str]:
    container = ""
    while isinstance(content, Mapping) and not _is_state_dict(content):
        key = next((k for k in CONTAINER_KEYS if isinstance(content.get(k), Mapping)), None)
        if key is None:
            keys = [str(k) for k in content][:8]
            raise CheckpointError(
                f"{origin}: a dict with keys {keys} is not a state dict: expected tensors by name, "
                f"or a state dict under one of {list(CONTAINER_KEYS)}"
            )
        container = container or key
        content = content[key]
    if not _is_state_dict(content):
        raise CheckpointError(f"{origin}: holds a {type(content).__name__}, not a state dict of tensors")
    return dict(content), container


def adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first-convolution weight ``(out, c, k, k)`` for ``in_channels`` inputs instead of ``c``.

    For one channel the weights are summed over ``c``: a grey image through the summed kernel
    gives exactly what the original kernel gives on the grey image copied to ``c`` channels, the
    copy the study made. Otherwise channels are repeated cyclically and scaled by
    ``c / in_channels`` to keep the activations' scale (exactly, for a constant image, when
    ``in_channels`` is a multiple of ``c``).
    """
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_channels // weight.shape[1])
    return weight.repeat(1, repeats, *([1] * (weight.dim() - 2)))[:, :in_channels] * (weight.shape[1] / in_channels)


def backbones(model: nn.Module) -> dict[str, Backbone]:
    """Every :class:`Backbone` in ``model`` by state-dict prefix (``""`` for the model itself)."""
    return {
        f"{name}." if name else "": module for name, module in model.named_modules() if isinstance(module, Backbone)
    }


def to_torchvision_layout(model: Backbone, state: StateDict | None = None) -> StateDict:
    """``model``'s state dict (or ``state``, in radtl's names) under torchvision's names."""
    key_map = model.torchvision_key_map()
    state = model.state_dict() if state is None else state
    return {key_map.get(key, key): tensor for key, tensor in state.items()}


@dataclass
class _Naming:
    """One reading of a checkpoint's keys in the model's namespace."""

    description: str
    layout: str  # "radtl", "torchvision", or "torchvision/radtl" where the two name alike
    target: str  # the backbone prefix the checkpoint is read into ("" for the model itself)
    state: StateDict
    rewritten: set[str]  # keys that came through the prefix rewrite (all keys when there is none)


def _namings(state: StateDict, model: nn.Module, layouts: tuple[str, ...]) -> list[_Naming]:
    """Every reading of ``state``'s keys worth scoring, most natural first."""
    targets = backbones(model)
    inverse_maps = {
        prefix: {theirs: ours for ours, theirs in backbone.torchvision_key_map().items()}
        for prefix, backbone in targets.items()
    }
    readings = []
    for old, new in PREFIX_REWRITES:
        carriers = {key for key in state if key.startswith(old)}
        if old and not carriers:
            continue
        rewritten = {(new + key[len(old) :] if key in carriers else key): key for key in state}
        rewrite = f"'{old}' read as '{new}'" if new else (f"'{old}' prefix removed" if old else "names as stored")
        for layout in layouts:
            for prefix in ["", *(p for p in targets if p)] if layout == "radtl" else targets:
                same_names = prefix in targets and not targets[prefix].torchvision_module_names()
                if same_names and len(layouts) == 2 and layout != layouts[0]:
                    continue  # the other layout's reading is this one
                label = "torchvision/radtl" if same_names and len(layouts) == 2 else layout
                inverse = inverse_maps[prefix] if layout == "torchvision" else {}
                renamed = {prefix + inverse.get(key, key): original for key, original in rewritten.items()}
                where = f", into '{prefix}'" if prefix else ""
                readings.append(
                    _Naming(
                        description=f"{label} layout, {rewrite}{where}",
                        layout=label,
                        target=prefix,
                        state={key: state[original] for key, original in renamed.items()},
                        rewritten={key for key, original in renamed.items() if original in carriers},
                    )
                )
    return readings


def _fits(tensor: torch.Tensor, target: torch.Tensor, adaptable: bool) -> bool:
    if tensor.shape == target.shape:
        return True
    return (
        adaptable
        and tensor.dim() == target.dim()
        and tensor.shape[0] == target.shape[0]
        and (tensor.shape[2:] == target.shape[2:])
    )


def _resizable(tensor: torch.Tensor, target: torch.Tensor, grid: tuple[int, ...]) -> bool:
    """Position embeddings ``(1, n, d)`` of a square grid, to resize to the model's 2-D ``grid``."""
    if tensor.dim() != 3 or target.dim() != 3 or len(grid) != 2:
        return False
    side = round(tensor.shape[1] ** 0.5)
    return tensor.shape[0] == target.shape[0] == 1 and tensor.shape[2] == target.shape[2] and side**2 == tensor.shape[1]


def _position_grids(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """The state-dict key of every backbone's position embeddings, with the patch grid they are built for."""
    return {
        prefix + backbone.position_embedding_key: tuple(backbone.patch_grid)
        for prefix, backbone in backbones(model).items()
        if getattr(backbone, "position_embedding_key", "")
    }


def _match(
    naming: _Naming,
    targets: StateDict,
    stems: set[str],
    report: TransferReport,
    positions: dict[str, tuple[int, ...]],
) -> StateDict:
    """Sort every key into the report and return the tensors to load.

    ``stems`` are the first-convolution keys whose input channels may be adapted, ``positions``
    the position-embedding keys that may be resized, with the model's patch grid for each.
    """
    to_load: StateDict = {}
    for key, tensor in naming.state.items():
        if key.endswith("num_batches_tracked") and key not in targets:
            continue
        if key not in targets:
            report.unexpected.append(key)
        elif tensor.shape == targets[key].shape:
            to_load[key] = tensor
            report.loaded.append(key)
        elif _fits(tensor, targets[key], key in stems):
            to_load[key] = adapt_input_channels(tensor, targets[key].shape[1])
            report.adapted.append(key)
        elif key in positions and _resizable(tensor, targets[key], positions[key]):
            to_load[key] = resize_position_embeddings(tensor, positions[key]).to(targets[key].dtype)
            report.adapted.append(key)
            report.resized.append(key)
        else:
            report.mismatched.append((key, tuple(tensor.shape), tuple(targets[key].shape)))
    mismatched = {key for key, _, _ in report.mismatched}
    report.missing = [
        key
        for key in targets
        if key not in to_load and key not in mismatched and not key.endswith("num_batches_tracked")
    ]
    return to_load


def _check_fit(naming: _Naming, model: nn.Module, report: TransferReport, to_load: StateDict) -> None:
    """Refuse a checkpoint of another architecture instead of half-loading it.

    When the checkpoint is read into a backbone, all of it but the classification head must fit
    the backbone, and fill all of the backbone but its head: the head is the only part a
    transfer replaces. Into other models (a plain U-Net), at least one tensor must fit.
    """
    name = type(model).__name__
    if not to_load:
        raise CheckpointError(
            f"{report.origin} does not fit {name}: no tensor matches by name and shape; "
            f"it looks like a different architecture.\n{report}"
        )
    backbone = backbones(model).get(naming.target)
    if backbone is None:
        return
    head = backbone.head_prefixes()
    in_head = tuple(naming.target + prefix for prefix in head)
    unplaced = [key for key in report.unexpected if key in naming.rewritten and not key.startswith(in_head)]
    mismatched = [key for key, _, _ in report.mismatched if not key.startswith(in_head)]
    unplaced += mismatched
    empty = [
        naming.target + key
        for key in backbone.state_dict()
        if naming.target + key not in to_load
        and naming.target + key not in mismatched
        and not key.endswith("num_batches_tracked")
        and not key.startswith(head)
    ]
    if unplaced or empty:
        problems = (
            [f"{len(unplaced)} of its tensors have no place in the model ({_preview(unplaced)})"] if unplaced else []
        )
        if empty:
            problems.append(f"{len(empty)} tensors of {type(backbone).__name__} stay unloaded ({_preview(empty)})")
        raise CheckpointError(
            f"{report.origin} does not fit {name}: {'; '.join(problems)}; it looks like a different architecture."
        )


def load_pretrained(
    model: nn.Module,
    path_or_state: str | Path | Mapping,
    source: str | CheckpointSource = CheckpointSource.AUTO,
    strict: bool = False,
    allow_pickle: bool = False,
) -> TransferReport:
    """Load a pretrained checkpoint into ``model`` by name and shape, and report what happened.

    Without ``strict``, a transfer may leave out exactly what transfers replace: the checkpoint's
    classification head (a 36-class pretraining head for a 4-class task) and whatever the model
    has beyond the backbone (a U-Net's decoder). Anything else that does not fit means another
    architecture, and nothing is loaded.

    Args:
        model: a radtl network (a backbone, a U-Net with an ``encoder``, a regressor...).
        path_or_state: file, RadiologyNET ``.tar.gz``, URL, or a state dict (see :func:`read_checkpoint`).
        source: ``"auto"``, ``"radiologynet"``, ``"torchvision"`` or ``"radtl"``; fixes the layout tried.
        strict: raise on any missing, unexpected or shape-mismatched key.
        allow_pickle: let ``torch.load`` unpickle arbitrary objects; only for trusted files.

    Returns:
        The :class:`TransferReport`, also logged (as a warning when incomplete).

    Raises:
        CheckpointError: unreadable file; a checkpoint of another architecture; with ``strict``,
            any incomplete transfer. The model is left unchanged.
    """
    source = CheckpointSource(source)
    state, container = read_checkpoint(path_or_state, source, allow_pickle)
    origin = "<state dict>" if isinstance(path_or_state, Mapping) else str(path_or_state)
    layouts = {
        CheckpointSource.RADTL: ("radtl",),
        CheckpointSource.TORCHVISION: ("torchvision",),
        CheckpointSource.RADIOLOGYNET: ("torchvision",),
        # RadiologyNET files hold torchvision names: try those first, they win ties.
        CheckpointSource.AUTO: ("torchvision", "radtl") if container == "model_state" else ("radtl", "torchvision"),
    }[source]
    if "torchvision" in layouts and not backbones(model) and source is not CheckpointSource.AUTO:
        raise CheckpointError(f"{origin}: {type(model).__name__} has no backbone with a torchvision layout")
    targets = model.state_dict()
    stems = {prefix + backbone.stem_conv for prefix, backbone in backbones(model).items()}
    positions = _position_grids(model)

    def fits(key: str, tensor: torch.Tensor) -> bool:
        return _fits(tensor, targets[key], key in stems) or (
            key in positions and _resizable(tensor, targets[key], positions[key])
        )

    def score(naming: _Naming) -> int:
        return sum(k in targets and fits(k, v) for k, v in naming.state.items())

    best = max(_namings(state, model, layouts), key=score)  # max keeps the first, most natural, of equal scores
    if container == "model_state":
        detected = CheckpointSource.RADIOLOGYNET.value
    else:
        # Under auto, the layout that fitted names the source ("torchvision/radtl" where they coincide).
        detected = best.layout if source is CheckpointSource.AUTO else source.value
    report = TransferReport(origin, detected, best.description)
    to_load = _match(best, targets, stems, report, positions)
    _check_fit(best, model, report, to_load)
    if strict and not report.complete:
        raise CheckpointError(f"{origin} does not load strictly into {type(model).__name__}:\n{report}")
    model.load_state_dict(to_load, strict=False)
    logger.log(logging.INFO if report.complete else logging.WARNING, "%s", report)
    return report
