"""Robustness to the region of interest: a classifier's predictions when its bounding box is shifted or scaled.

The bone-tumour study (shared/science/bone-tumour.md) classifies crops of the tumour's bounding
box and measures how the predictions move when the box is perturbed (shift and scale); its
RadImageNet-pretrained models were the more stable (p < 0.001). Here:

- :class:`BoxPerturbation`, :func:`box_perturbations`, :func:`perturb_box`: the geometry, shifts
  as fractions of the box's width and height, scales about the box's centre.
- :func:`crop_roi`: the network's input cut from an image along a box that may leave the image.
- :func:`roi_robustness`: every case under every perturbation, one row each, compared with the
  case's unperturbed (reference) prediction.
- :func:`stability_summary`: flip rate, mean probability change and accuracy per perturbation.
- :func:`compare_stability`: two models on the same cases, paired Wilcoxon signed-rank test of
  their per-case mean probability change.

Boxes are ``(x0, y0, x1, y1)`` in continuous pixel coordinates: pixel ``(row i, column j)``
covers ``[j, j + 1) x [i, i + 1)``, so a ``(C, H, W)`` image is the box ``(0, 0, W, H)``;
``x`` grows to the right along the last axis, ``y`` downwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import wilcoxon
from torch import nn

from radtl.transforms.batch.functional import affine_resample, crop_matrices

__all__ = [
    "REFERENCE",
    "BoxPerturbation",
    "box_perturbations",
    "compare_stability",
    "crop_roi",
    "perturb_box",
    "roi_robustness",
    "stability_summary",
]

Box = tuple[float, float, float, float]

#: Name of the summary row over every perturbation in :func:`stability_summary`.
OVERALL = "overall"


@dataclass(frozen=True)
class BoxPerturbation:
    """A change of a bounding box: a shift, then a scaling about the shifted centre.

    Args:
        name: the perturbation's name in result tables (``"shift+x10%"``).
        shift_x: shift of the centre along ``x`` as a fraction of the box's width (0.1: right by 10%).
        shift_y: shift of the centre along ``y`` as a fraction of the box's height (0.1: down by 10%).
        scale: factor on the width and the height, about the centre (1.2: 20% larger each way).

    Raises:
        ValueError: a shift that is not finite, or a scale that is not finite and positive.
    """

    name: str
    shift_x: float = 0.0
    shift_y: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.shift_x) and math.isfinite(self.shift_y)):
            raise ValueError(
                f"BoxPerturbation {self.name!r}: shifts must be finite, got ({self.shift_x}, {self.shift_y})"
            )
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"BoxPerturbation {self.name!r}: scale must be finite and positive, got {self.scale}")


#: The unperturbed box, whose prediction every perturbed one is compared with.
REFERENCE = BoxPerturbation("none")


def box_perturbations(
    shifts: Sequence[float] = (0.1, 0.2), scales: Sequence[float] = (0.8, 1.2)
) -> list[BoxPerturbation]:
    """Each shift in the four directions ``+x, -x, +y, -y``, then each scale: the bone-tumour study's shift/scale set.

    Args:
        shifts: shift fractions of the box's width (``x``) or height (``y``).
        scales: factors on the box's width and height.

    Returns:
        ``4 * len(shifts) + len(scales)`` perturbations named ``"shift+x10%"``, ``"shift-y20%"``,
        ``"scale80%"``, ... (percentages to six significant digits).
    """
    perturbations = []
    for shift in shifts:
        percent = f"{shift * 100:g}%"
        perturbations += [
            BoxPerturbation(f"shift+x{percent}", shift_x=shift),
            BoxPerturbation(f"shift-x{percent}", shift_x=-shift),
            BoxPerturbation(f"shift+y{percent}", shift_y=shift),
            BoxPerturbation(f"shift-y{percent}", shift_y=-shift),
        ]
    perturbations += [BoxPerturbation(f"scale{scale * 100:g}%", scale=scale) for scale in scales]
    return perturbations


def _checked_box(box: Sequence[float] | torch.Tensor | np.ndarray) -> Box:
    values = [float(value) for value in (box.tolist() if hasattr(box, "tolist") else box)]
    if len(values) != 4 or not all(math.isfinite(value) for value in values):
        raise ValueError(f"a box is four finite numbers (x0, y0, x1, y1); got {values}")
    x0, y0, x1, y1 = values
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"a box (x0, y0, x1, y1) needs x1 > x0 and y1 > y0; got {tuple(values)}")
    return x0, y0, x1, y1


def perturb_box(box: Sequence[float], perturbation: BoxPerturbation) -> Box:
    """``box`` shifted by fractions of its own width and height, then scaled about its (shifted) centre.

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels, ``x1 > x0`` and ``y1 > y0``.
        perturbation: the shift and scale.

    Returns:
        The perturbed ``(x0, y0, x1, y1)``, possibly reaching outside the image.

    Raises:
        ValueError: a box that is not four finite numbers with ``x1 > x0`` and ``y1 > y0``.
    """
    x0, y0, x1, y1 = _checked_box(box)
    width, height = x1 - x0, y1 - y0
    center_x = (x0 + x1) / 2 + perturbation.shift_x * width
    center_y = (y0 + y1) / 2 + perturbation.shift_y * height
    half_width, half_height = width * perturbation.scale / 2, height * perturbation.scale / 2
    return center_x - half_width, center_y - half_height, center_x + half_width, center_y + half_height


def crop_roi(
    image: torch.Tensor, box: Sequence[float], size: int, keep_aspect_ratio: bool = True, fill: float = 0.0
) -> torch.Tensor:
    """The ``box`` of ``image`` as a ``size x size`` network input; what lies outside the image reads as ``fill``.

    The box is sampled bilinearly at about the image's own pixel spacing (float coordinates, so a
    sub-pixel shift moves the content), one ``grid_sample`` through
    :func:`radtl.transforms.batch.functional.crop_matrices`, then resized with antialiasing, so a large box is
    not aliased when it shrinks. With ``keep_aspect_ratio`` the longer side of the box becomes
    ``size`` and the shorter one is padded on both sides with ``fill`` (letterbox); without it the
    box is stretched to the square.

    Args:
        image: ``(C, H, W)`` image, already normalised for the network.
        box: ``(x0, y0, x1, y1)`` in pixels (see the module docstring), possibly beyond the image.
        size: side of the output.
        keep_aspect_ratio: letterbox rather than stretch.
        fill: value outside the image and in the letterbox padding, in the image's units
            (0: the mean intensity of a mean/std-normalised image).

    Returns:
        ``(C, size, size)`` float tensor on the image's device.

    Raises:
        ValueError: an image that is not ``(C, H, W)``, a side below 1, or an invalid box.
    """
    if image.dim() != 3:
        raise ValueError(f"crop_roi takes a (C, H, W) image; got {list(image.shape)}")
    if size < 1:
        raise ValueError(f"the output side must be at least 1; got {size}")
    x0, y0, x1, y1 = _checked_box(box)
    width, height = x1 - x0, y1 - y0
    _, rows, columns = image.shape
    image = image if image.is_floating_point() else image.float()
    box_matrix = crop_matrices(
        torch.tensor([[y0, x0, height, width]], dtype=torch.float64), rows, columns, torch.zeros(1, dtype=torch.bool)
    ).to(image.device)
    native = (max(1, math.ceil(height)), max(1, math.ceil(width)))
    # grid_sample pads with zeros: shift the image so that zero stands for ``fill``
    crop = affine_resample((image - fill).unsqueeze(0), box_matrix, native, padding_mode="zeros")
    if keep_aspect_ratio:
        factor = size / max(width, height)
        shape = (min(size, max(1, round(height * factor))), min(size, max(1, round(width * factor))))
    else:
        shape = (size, size)
    crop = F.interpolate(crop, size=shape, mode="bilinear", align_corners=False, antialias=True)
    top, left = (size - shape[0]) // 2, (size - shape[1]) // 2
    crop = F.pad(crop, (left, size - shape[1] - left, top, size - shape[0] - top))
    return crop[0] + fill


def _class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` class probabilities: softmax, or ``(1 - sigmoid, sigmoid)`` for a single logit."""
    if logits.dim() != 2:
        raise ValueError(f"the network must return (N, K) logits; got {list(logits.shape)}")
    if logits.shape[1] == 1:
        positive = torch.sigmoid(logits.float())
        return torch.cat([1 - positive, positive], dim=1)
    return torch.softmax(logits.float(), dim=1)


def _chunks(items: Iterable[torch.Tensor], size: int) -> Iterator[list[torch.Tensor]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _label(value: Any) -> int | None:
    return None if value is None else int(torch.as_tensor(value).reshape(-1)[0])


def roi_robustness(
    network: nn.Module,
    cases: Sequence[Mapping[str, Any]],
    perturbations: Sequence[BoxPerturbation],
    size: int,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    keep_aspect_ratio: bool = True,
    fill: float = 0.0,
) -> pd.DataFrame:
    """Predictions of ``network`` for every case cropped along its box and along each perturbed box.

    Every case is cropped (:func:`crop_roi`) along its box unperturbed (:data:`REFERENCE`,
    ``"none"``) and along each perturbation; the crops run through ``network`` in eval mode,
    ``batch_size`` at a time, so only the probabilities are kept in memory. Each row compares its
    prediction with the case's reference prediction.

    Args:
        network: classifier returning ``(N, K)`` logits (softmax; ``K = 1``: a sigmoid's positive class), on ``device``.
        cases: mappings with ``"image"`` (``(C, H, W)``, normalised for the network), optionally
            ``"box"`` (``(x0, y0, x1, y1)``; default: the whole image), ``"label"`` (class index)
            and ``"id"`` (default: the case's position).
        perturbations: box changes to apply (:func:`box_perturbations`); names unique and not ``"none"``.
        size: side of the network's square input.
        device: where the network runs.
        batch_size: crops per forward pass.
        keep_aspect_ratio: letterbox the crops (:func:`crop_roi`) rather than stretch them.
        fill: value outside the image and in the letterbox padding.

    Returns:
        One row per case and perturbation, the reference first, with columns ``id``, ``perturbation``,
        ``x0``, ``y0``, ``x1``, ``y1`` (the box cropped), ``label`` (nullable), ``predicted`` (class index),
        ``probability`` (of the class the reference predicted), ``changed`` (the prediction differs from
        the reference's), ``delta`` (absolute change of ``probability`` from the reference's) and
        ``correct`` (nullable: without a label, unknown).

    Raises:
        ValueError: duplicate or reserved perturbation names; a case without an image; an invalid box;
            a network that does not return ``(N, K)`` logits.
    """
    names = [perturbation.name for perturbation in perturbations]
    reserved = {REFERENCE.name, OVERALL} & set(names)
    if reserved or len(set(names)) != len(names):
        raise ValueError(f"perturbation names must be unique and not {REFERENCE.name!r} or {OVERALL!r}; got {names}")
    applied = [REFERENCE, *perturbations]
    rows: list[dict[str, Any]] = []

    def crops() -> Iterator[torch.Tensor]:
        for index, case in enumerate(cases):
            if "image" not in case:
                raise ValueError(f"case {index} has no 'image'")
            image = torch.as_tensor(case["image"])
            box = case.get("box")
            box = (0.0, 0.0, float(image.shape[-1]), float(image.shape[-2])) if box is None else _checked_box(box)
            for perturbation in applied:
                moved = perturb_box(box, perturbation)
                rows.append(
                    {
                        "id": case.get("id", index),
                        "perturbation": perturbation.name,
                        "x0": moved[0],
                        "y0": moved[1],
                        "x1": moved[2],
                        "y1": moved[3],
                        "label": _label(case.get("label")),
                    }
                )
                yield crop_roi(image, moved, size, keep_aspect_ratio, fill)

    network.eval()
    probabilities = []
    with torch.no_grad():
        for chunk in _chunks(crops(), batch_size):
            probabilities.append(_class_probabilities(network(torch.stack(chunk).to(device))).cpu())
    frame = pd.DataFrame(rows, columns=["id", "perturbation", "x0", "y0", "x1", "y1", "label"])
    frame["label"] = frame["label"].astype("Int64")
    if not rows:
        return frame.assign(
            predicted=pd.Series(dtype="int64"),
            probability=pd.Series(dtype="float64"),
            changed=pd.Series(dtype="bool"),
            delta=pd.Series(dtype="float64"),
            correct=pd.Series(dtype="boolean"),
        )
    probability = torch.cat(probabilities).double()
    predicted = probability.argmax(dim=1)
    # rows come case by case, the reference first
    reference_rows = torch.arange(len(frame)) // len(applied) * len(applied)
    reference_class = predicted[reference_rows]
    own = probability.gather(1, reference_class[:, None])[:, 0]
    frame["predicted"] = predicted.numpy()
    frame["probability"] = own.numpy()
    frame["changed"] = (predicted != reference_class).numpy()
    frame["delta"] = (own - own[reference_rows]).abs().numpy()
    frame["correct"] = (frame["predicted"] == frame["label"]).astype("boolean")
    return frame


def _stability(rows: pd.DataFrame) -> dict[str, float]:
    correct = rows["correct"].dropna()
    return {
        "cases": int(rows["id"].nunique()),
        "flip_rate": float(rows["changed"].mean()) if len(rows) else math.nan,
        "mean_delta": float(rows["delta"].mean()) if len(rows) else math.nan,
        "accuracy": float(correct.astype(float).mean()) if len(correct) else math.nan,
    }


def stability_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Flip rate, mean probability change and accuracy per perturbation and over all of them.

    Args:
        frame: :func:`roi_robustness`'s rows.

    Returns:
        One row per perturbation in ``frame``'s order (the reference ``"none"`` first: flip rate and
        delta 0, the unperturbed accuracy), then ``"overall"`` over every perturbed row, indexed by
        ``perturbation``, with columns ``cases``, ``flip_rate`` (fraction of predictions that changed),
        ``mean_delta`` and ``accuracy`` (NaN without labels).
    """
    summary = {name: _stability(rows) for name, rows in frame.groupby("perturbation", sort=False)}
    summary[OVERALL] = _stability(frame[frame["perturbation"] != REFERENCE.name])
    return pd.DataFrame.from_dict(summary, orient="index").rename_axis("perturbation")


def _mean_delta_per_case(frame: pd.DataFrame, name: str) -> pd.Series:
    pairs = frame[["id", "perturbation"]]
    if pairs.duplicated().any():
        raise ValueError(f"model {name!r}: each (id, perturbation) must appear once")
    return frame[frame["perturbation"] != REFERENCE.name].groupby("id", sort=True)["delta"].mean()


def compare_stability(
    frame_a: pd.DataFrame, frame_b: pd.DataFrame, names: tuple[str, str] = ("a", "b")
) -> dict[str, Any]:
    """Which of two models is more stable under box perturbation: a paired test over the same cases.

    Each case's stability is its mean ``delta`` over the perturbations (the reference excluded);
    the two models' per-case values are compared with the two-sided Wilcoxon signed-rank test
    (scipy, zero differences dropped), as the bone-tumour study compared RadImageNet and ImageNet
    models. When every paired difference is zero there is nothing to rank: the test is not run and
    ``reason`` says why.

    Args:
        frame_a: :func:`roi_robustness` rows of the first model.
        frame_b: rows of the second model, for the same cases and perturbations.
        names: the models' names in the result's keys.

    Returns:
        ``{"mean_delta_<a>", "mean_delta_<b>"`` (means over cases), ``"statistic"``, ``"p_value"``
        (``None`` when not tested), ``"n_cases"``, ``"reason"`` (``None`` when tested)``}``.

    Raises:
        ValueError: the frames do not hold the same ``(id, perturbation)`` pairs, or hold one twice;
            the two names are equal.
    """
    first, second = names
    if first == second:
        raise ValueError(f"the two models need different names; got {names}")
    pairs_a = set(map(tuple, frame_a[["id", "perturbation"]].itertuples(index=False)))
    pairs_b = set(map(tuple, frame_b[["id", "perturbation"]].itertuples(index=False)))
    if pairs_a != pairs_b:
        only_a, only_b = sorted(map(str, pairs_a - pairs_b))[:5], sorted(map(str, pairs_b - pairs_a))[:5]
        raise ValueError(
            f"the models were not run on the same cases and perturbations: only {first!r}: {only_a}, "
            f"only {second!r}: {only_b}"
        )
    delta_a = _mean_delta_per_case(frame_a, first)
    delta_b = _mean_delta_per_case(frame_b, second).reindex(delta_a.index)
    result: dict[str, Any] = {
        f"mean_delta_{first}": float(delta_a.mean()) if len(delta_a) else math.nan,
        f"mean_delta_{second}": float(delta_b.mean()) if len(delta_b) else math.nan,
        "statistic": None,
        "p_value": None,
        "n_cases": len(delta_a),
        "reason": None,
    }
    differences = (delta_a - delta_b).to_numpy()
    if len(differences) == 0:
        result["reason"] = "no case has a perturbed row to compare"
    elif np.all(differences == 0):
        result["reason"] = (
            "every paired difference is zero: the models are equally stable on every case, "
            "so the Wilcoxon signed-rank test has nothing to rank"
        )
    else:
        test = wilcoxon(delta_a.to_numpy(), delta_b.to_numpy(), alternative="two-sided")
        result["statistic"], result["p_value"] = float(test.statistic), float(test.pvalue)
    return result
