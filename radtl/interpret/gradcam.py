"""Grad-CAM heatmaps of radtl's classifiers, their display, and their localisation Dice.

Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", Eq. 1-2) weights each channel ``k`` of a convolutional feature map
``A`` by the spatial mean of the class score's gradient, ``alpha_k = mean(dy_c / dA_k)``, and keeps
the positive part of ``sum_k alpha_k A_k``; Grad-CAM++ (Chattopadhyay et al. 2018) weights the
positive gradients pixel by pixel. Both are MONAI's (:class:`monai.visualize.GradCAM`,
:class:`monai.visualize.GradCAMpp`); this module chooses the layer, the class and the scaling,
and leaves the network as it found it.

The RadiologyNET study (shared/science/radiologynet.md, "Grad-CAM"; thesis 5.1) showed two
radiologists the heatmap of each model beside the input (:func:`save_heatmap`, rated with
:mod:`radtl.interpret.rating`); Radio DINO and OmniRad score localisation by thresholding the map
at 20% and computing Dice with the lesion mask (:func:`localisation_dice`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from monai.visualize import GradCAM, GradCAMpp, ModelWithHooks, default_upsampler
from torch import nn

from radtl.atomic import write_bytes_atomic
from radtl.networks.backbone import Backbone
from radtl.networks.vit import VisionTransformer
from radtl.png import encode_png

__all__ = [
    "CAM_METHODS",
    "class_activation_maps",
    "localisation_dice",
    "overlay",
    "save_heatmap",
    "side_by_side",
    "target_layer",
]

#: The CAM methods :func:`class_activation_maps` computes, by name.
CAM_METHODS: dict[str, type[GradCAM]] = {"gradcam": GradCAM, "gradcam++": GradCAMpp}

#: Side of the probe image :func:`target_layer` runs when it is given no example: the smallest
#: convenient side at which every radtl CNN (Inception-v3 needs 75) still yields a feature map.
_PROBE_SIDE = {1: 96, 2: 96, 3: 48}

ClassIndex = int | Sequence[int] | torch.Tensor | None


# --------------------------------------------------------------------------- choosing the layer


@dataclass
class _Call:
    """One module call seen by a forward hook: the module's name, its inputs and its output."""

    name: str
    inputs: tuple
    output: object


@contextmanager
def _evaluating(network: nn.Module) -> Iterator[None]:
    """Put every module in eval mode for the block, then restore each module's own mode.

    Restoring module by module (not ``network.train(was_training)``) keeps mixed states intact,
    such as batch norms frozen in eval mode inside a network that is training.
    """
    modes = [(module, module.training) for module in network.modules()]
    network.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _record_calls(network: nn.Module, run: Callable[[], object]) -> tuple[list[_Call], object]:
    """Run ``run()`` with a forward hook on every submodule; the calls in the order they returned."""
    calls: list[_Call] = []

    def hook(name: str) -> Callable:
        return lambda _module, inputs, output: calls.append(_Call(name, inputs, output))

    handles = [module.register_forward_hook(hook(name)) for name, module in network.named_modules() if name]
    try:
        result = run()
    finally:
        for handle in handles:
            handle.remove()
    return calls, result


def _last_producer(calls: list[_Call], tensor: object, before: int | None = None) -> int | None:
    """Index of the last call (before ``before``) whose output is ``tensor`` itself.

    Forward hooks fire as modules return, so of the nested modules that return the same tensor
    (``layer4.1.act``, ``layer4.1``, ``layer4``) the outermost one comes last.
    """
    end = len(calls) if before is None else before
    for index in range(end - 1, -1, -1):
        if calls[index].output is tensor:
            return index
    return None


def _probe(network: nn.Module) -> torch.Tensor:
    """A zero image the network accepts: its first convolution's channels and dimensionality."""
    conv = next((module for module in network.modules() if isinstance(module, nn.modules.conv._ConvNd)), None)
    if conv is None:
        raise ValueError(f"{type(network).__name__} has no convolution; Grad-CAM needs a convolutional feature map")
    parameter = next(network.parameters())
    dims = len(conv.kernel_size)
    side = _PROBE_SIDE.get(dims, 32)
    return torch.zeros((1, conv.in_channels, *[side] * dims), dtype=parameter.dtype, device=parameter.device)


def _last_spatial_output(calls: list[_Call], spatial_dims: int) -> object:
    """For networks without ``feature_maps``: the last output that is still a map of several positions."""
    for call in reversed(calls):
        output = call.output
        if isinstance(output, torch.Tensor) and output.ndim == spatial_dims + 2 and output.shape[2:].numel() > 1:
            return output
    return None


def _holds_transformer(network: nn.Module) -> bool:
    """A vision transformer, or a model built on one (:class:`~radtl.networks.dino.DINOModel`)."""
    return any(isinstance(module, VisionTransformer) for module in network.modules())


def target_layer(network: nn.Module, example: torch.Tensor | None = None) -> str:
    """The dotted name of the module whose output is the network's last convolutional feature map.

    That map is the one the classifier pools, where Grad-CAM looks (Selvaraju et al. 2017, Sec. 3:
    "the last convolutional layers ... have the best compromise between high-level semantics and
    detailed spatial information"). For a radtl :class:`~radtl.networks.backbone.Backbone` it is
    the last map of :meth:`~radtl.networks.backbone.Backbone.feature_maps`, found by running the
    network once on ``example`` and asking which module returned that very tensor: ``layer4``
    (ResNet), ``class_layers.relu`` (DenseNet-121), ``Mixed_7c`` (Inception-v3), the last pyramid
    layer of ``features`` (VGG-16's last max-pool ``features.30``, MobileNetV3-Large's last
    convolution ``features.16``). Another network's map is the last output of its forward pass
    that still has more than one position.

    The module must run once per forward pass: a hook on a module used twice would mix the
    activation of one call with the gradient of another. When the module returning the map is
    shared, the module returning its input is taken instead, and so on: EfficientNet's ``_swish``
    activates both the stem and the head, so its layer is ``_bn1``, the head's map just before
    the final SiLU.

    Args:
        network: a 2-D or 3-D classification network taking one ``(B, C, *spatial)`` tensor.
        example: an input to probe with (one image is enough); by default a zero image of
            ``_PROBE_SIDE`` pixels a side with the first convolution's channels.

    Raises:
        ValueError: a vision transformer (its tokens are no convolutional map: use its attention
            maps), or a network where no single-use module returns the last map.
    """
    if _holds_transformer(network):
        raise ValueError(
            f"{type(network).__name__} has no convolutional feature map (its patch tokens are resized to a pyramid "
            "only for decoders); Grad-CAM needs a convolutional map: inspect a transformer through its class-token "
            "attention maps instead"
        )
    example = _probe(network) if example is None else example
    with torch.no_grad(), _evaluating(network):
        forward_calls, _ = _record_calls(network, lambda: network(example))
        calls, last_map = forward_calls, None
        if isinstance(network, Backbone):
            try:
                calls, maps = _record_calls(network, lambda: network.feature_maps(example))
                last_map = maps[-1]
            except NotImplementedError:
                calls = forward_calls
        if last_map is None:
            last_map = _last_spatial_output(calls, example.ndim - 2)
    uses = Counter(call.name for call in forward_calls)
    index = _last_producer(calls, last_map)
    while index is not None:
        call = calls[index]
        if uses[call.name] == 1:
            return call.name
        source = call.inputs[0] if call.inputs else None
        index = _last_producer(calls, source, before=index) if isinstance(source, torch.Tensor) else None
    raise ValueError(
        f"no module of {type(network).__name__} that runs once per forward pass returns its last convolutional "
        "feature map (Grad-CAM needs a convolutional map; for a transformer use attention maps); pass layer= "
        "explicitly"
    )


# --------------------------------------------------------------------------- computing the maps


class _LayerHooks(ModelWithHooks):
    """MONAI's :class:`~monai.visualize.ModelWithHooks` on one layer, with hooks that can be removed
    and one class score per sample.

    MONAI's wrapper registers its hooks for good and scores a batch by ``logits[:, class_idx]``,
    which for a tensor of per-sample predictions takes every sample's logit of every predicted
    class. Here the score is the logit of each sample's own class, shaped ``(B, 1, ...)`` so that
    it broadcasts per sample against the ``(B, C, ...)`` gradient.
    """

    def __init__(self, network: nn.Module, layer: str, map_ndim: int):
        super().__init__(network, layer, register_forward=False, register_backward=False)
        self.register_forward = self.register_backward = True
        self.map_ndim = map_ndim
        self.module = network.get_submodule(layer)
        # An in-place module cannot carry a full backward hook (MONAI switches it off likewise).
        self.was_inplace = bool(getattr(self.module, "inplace", False))
        if self.was_inplace:
            self.module.inplace = False
        self.handles = [
            self.module.register_forward_hook(self.forward_hook(layer)),
            self.module.register_full_backward_hook(self.backward_hook(layer)),
        ]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        if self.was_inplace:
            self.module.inplace = True

    def __call__(self, x, class_idx=None, retain_graph=False, **kwargs):
        logits, activations, gradients = super().__call__(x, class_idx=class_idx, retain_graph=retain_graph, **kwargs)
        # Grad-CAM++ weights by exp(score) (Chattopadhyay et al. 2018, Eq. 19 with Y = exp(S)): a positive
        # factor per map that the min-max scaling removes, but exp overflows for logits above 88 and
        # inf * 0 gives NaN maps; a zero score makes the factor 1.
        self.score = torch.zeros_like(self.score)
        return logits, activations, gradients

    def class_score(self, logits: torch.Tensor, class_idx: ClassIndex) -> torch.Tensor:
        if logits.ndim != 2:
            raise ValueError(f"Grad-CAM needs (B, outputs) logits, got shape {tuple(logits.shape)}")
        batch, outputs = logits.shape
        index = torch.as_tensor(class_idx, device=logits.device).long().reshape(-1)
        if index.numel() == 1:
            index = index.expand(batch)
        if index.numel() != batch:
            raise ValueError(f"class_index has {index.numel()} entries for a batch of {batch}")
        if bool(((index < 0) | (index >= outputs)).any()):
            raise ValueError(f"class_index {index.tolist()} out of range for a network with {outputs} output(s)")
        score = logits.gather(1, index[:, None])
        return score.reshape(batch, *[1] * (self.map_ndim - 1))


def _scale_to_unit(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each map of ``(B, 1, *spatial)`` to [0, 1]; a constant map becomes zeros."""
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = (flat - low) / torch.where(span > 0, span, torch.ones_like(span))
    return scaled.reshape(maps.shape)


def _scaled_upsampler(spatial_size: Sequence[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """MONAI's bilinear upsampling of maps scaled to [0, 1] first.

    Scaling before interpolating keeps a constant map constant: interpolated from raw values as
    large as an untrained network's (1e10), rounding alone would make a 1x1 map vary.
    """
    upsample = default_upsampler(spatial_size)
    return lambda maps: upsample(_scale_to_unit(maps))


@contextmanager
def _preserved(network: nn.Module) -> Iterator[None]:
    """Eval mode, frozen parameters, and afterwards every mode, ``requires_grad`` and ``.grad`` as they were.

    The gradient Grad-CAM needs flows from the input (which requires grad) through the frozen
    network, so no parameter accumulates a gradient; MONAI's ``zero_grad`` clears ``.grad``,
    which is put back.
    """
    parameters = [(parameter, parameter.requires_grad, parameter.grad) for parameter in network.parameters()]
    with _evaluating(network):
        try:
            for parameter, _, _ in parameters:
                parameter.requires_grad_(False)
            yield
        finally:
            for parameter, requires_grad, grad in parameters:
                if parameter.requires_grad != requires_grad:
                    parameter.requires_grad_(requires_grad)
                parameter.grad = grad


def class_activation_maps(
    network: nn.Module,
    images: torch.Tensor,
    method: str = "gradcam",
    layer: str | None = None,
    class_index: ClassIndex = None,
) -> torch.Tensor:
    """Grad-CAM or Grad-CAM++ maps of a batch, upsampled to the input and scaled to [0, 1].

    The network runs in eval mode (batch norm on its running statistics, no dropout), so each
    image's map depends on that image alone; afterwards every module's mode, every parameter's
    ``requires_grad`` and ``.grad`` are as they were. Gradients are enabled locally, so the call
    works inside ``torch.no_grad()`` and ``torch.inference_mode()``.

    Args:
        network: a classification network returning ``(B, outputs)`` logits.
        images: ``(B, C, H, W)`` (or ``(B, C, D, H, W)``) input, as the network is fed.
        method: ``"gradcam"`` (Selvaraju et al. 2017) or ``"gradcam++"`` (Chattopadhyay et al. 2018).
        layer: the module to hook (dotted name); by default :func:`target_layer`.
        class_index: the class to explain, one for the batch or one per image; ``None`` explains
            each image's predicted class (the argmax), which for a single-output network (a
            sigmoid binary task, a regression) is output 0.

    Returns:
        ``(B, 1, H, W)`` float maps, each min-max scaled to [0, 1] (its peak is 1; an all-zero map,
        where no position raises the score, stays zero), bilinearly upsampled from the layer's
        resolution, detached, on the input's device.

    Raises:
        ValueError: an unknown method or layer, an input without batch and channel axes, or a
            class index out of range.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"method must be one of {sorted(CAM_METHODS)}, got {method!r}")
    if images.ndim < 3:
        raise ValueError(f"images must be (B, C, *spatial), got shape {tuple(images.shape)}")
    if layer is not None and layer not in dict(network.named_modules()):
        raise ValueError(f"{type(network).__name__} has no module named {layer!r}")
    with torch.inference_mode(False), torch.enable_grad():
        inputs = images.detach().clone().requires_grad_(True)
        layer = target_layer(network, inputs[:1].detach()) if layer is None else layer
        with _preserved(network):
            hooks = _LayerHooks(network, layer, map_ndim=images.ndim)
            try:
                cam = CAM_METHODS[method](
                    nn_module=hooks, target_layers=layer, upsampler=_scaled_upsampler, postprocessing=_scale_to_unit
                )
                maps = cam(inputs, class_idx=class_index)
            finally:
                hooks.remove()
    return maps.detach()


# --------------------------------------------------------------------------- display


def _to_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().float().numpy()
    return np.asarray(array, dtype=np.float64)


def _grey_display(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(H, W)`` or ``(C, H, W)`` to ``(H, W)`` in [0, 1]: channels averaged, then min-max scaled."""
    image = _to_numpy(image)
    if image.ndim == 3:
        image = image.mean(axis=0)  # a radiograph replicated to three channels stays one image
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {image.shape}")
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _cam_display(cam: np.ndarray | torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    cam = _to_numpy(cam)
    if cam.ndim == 3 and cam.shape[0] == 1:
        cam = cam[0]
    if cam.shape != shape:
        raise ValueError(f"cam must be (H, W) = {shape} like the image, got shape {cam.shape}")
    return np.clip(cam, 0.0, 1.0)


def overlay(
    image: np.ndarray | torch.Tensor, cam: np.ndarray | torch.Tensor, alpha: float = 0.4, colormap: str = "jet"
) -> np.ndarray:
    """The grey image under the colour-mapped heatmap: ``(1 - alpha) * image + alpha * colormap(cam)``.

    Args:
        image: ``(H, W)`` or ``(C, H, W)``, any range: channels are averaged and the result
            min-max scaled for display.
        cam: ``(H, W)`` (or ``(1, H, W)``) map in [0, 1], as :func:`class_activation_maps` returns.
        alpha: the heatmap's weight, 0 (image only) to 1 (heatmap only).
        colormap: a matplotlib colormap name.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    grey = _grey_display(image)
    heat = matplotlib.colormaps[colormap](_cam_display(cam, grey.shape))[..., :3]
    blended = (1.0 - alpha) * grey[..., None] + alpha * heat
    return np.round(blended * 255).astype(np.uint8)


def side_by_side(
    image: np.ndarray | torch.Tensor,
    cam: np.ndarray | torch.Tensor,
    alpha: float = 0.4,
    colormap: str = "jet",
    gap: int = 4,
) -> np.ndarray:
    """The input beside its :func:`overlay`, as the study showed heatmaps to its raters.

    Args:
        image: ``(H, W)`` or ``(C, H, W)``, any range (see :func:`overlay`).
        cam: ``(H, W)`` map in [0, 1].
        alpha: the heatmap's weight in the overlay.
        colormap: a matplotlib colormap name.
        gap: width in pixels of the white strip between the two.

    Returns:
        ``(H, 2 * W + gap, 3)`` uint8 RGB: the grey input on the left, the overlay on the right.
    """
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    grey = np.round(_grey_display(image) * 255).astype(np.uint8)
    blended = overlay(image, cam, alpha=alpha, colormap=colormap)
    strip = np.full((grey.shape[0], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([np.repeat(grey[..., None], 3, axis=2), strip, blended], axis=1)


def save_heatmap(
    path: str | os.PathLike,
    image: np.ndarray | torch.Tensor,
    cam: np.ndarray | torch.Tensor,
    alpha: float = 0.4,
    colormap: str = "jet",
    gap: int = 4,
) -> Path:
    """Write :func:`side_by_side` of ``image`` and ``cam`` to ``path`` as a PNG, atomically.

    Args:
        path: the PNG file to write (folders are created).
        image: ``(H, W)`` or ``(C, H, W)``, any range.
        cam: ``(H, W)`` map in [0, 1].
        alpha: the heatmap's weight in the overlay.
        colormap: a matplotlib colormap name.
        gap: width of the strip between input and overlay.

    Returns:
        ``path``.
    """
    return write_bytes_atomic(path, encode_png(side_by_side(image, cam, alpha=alpha, colormap=colormap, gap=gap)))


# --------------------------------------------------------------------------- localisation


def localisation_dice(cam: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor, threshold: float = 0.2) -> float:
    """Dice between the heatmap's region above ``threshold`` of its peak and the lesion mask.

    The localisation score of Radio DINO and OmniRad (shared/science/radio-dino-omnirad.md,
    Interpretability): threshold the map at 20% and compute Dice, ``2 |R & M| / (|R| + |M|)``.
    The region is ``cam >= threshold * max(cam)``: maps from :func:`class_activation_maps` are
    min-max scaled, so this is the 20% level; for any other map it keeps the same meaning, a
    fraction of the map's peak.

    Args:
        cam: a non-negative heatmap, e.g. ``(H, W)``.
        mask: the lesion mask of the same shape, bool or 0/1.
        threshold: the fraction of the peak, in (0, 1].

    Returns:
        The Dice in [0, 1]. An all-zero map has no region (Dice 0 with any lesion). An image
        without a lesion has nothing to localise and gives NaN whatever the map, so that
        ``np.nanmean`` over a test set averages the images with lesions only.

    Raises:
        ValueError: shapes that differ (resample the map or the mask first), a mask with values
            other than 0 and 1, or a threshold outside (0, 1].
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be a fraction of the map's peak in (0, 1], got {threshold}")
    cam, lesion = _to_numpy(cam), _to_numpy(mask)
    if cam.shape != lesion.shape:
        raise ValueError(f"cam {cam.shape} and mask {lesion.shape} must have the same shape")
    if not np.isin(lesion, (0.0, 1.0)).all():
        raise ValueError(f"mask must be bool or 0/1, found values {np.unique(lesion)[:5].tolist()}")
    lesion = lesion.astype(bool)
    if not lesion.any():
        return float("nan")
    peak = float(cam.max())
    region = cam >= threshold * peak if peak > 0 else np.zeros_like(lesion)
    return float(2.0 * np.logical_and(region, lesion).sum() / (region.sum() + lesion.sum()))
