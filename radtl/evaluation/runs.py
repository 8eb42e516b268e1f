"""Evaluation runs on a classification bundle: Grad-CAM heatmaps, frozen-backbone probes, ROI robustness.

Each run takes its data, transforms, labels and network from the bundle's own ``train.json``
(:class:`BundleTask`), so it sees the images exactly as the bundle's training and evaluation do,
and writes its tables and figures into one folder. The CLI (``radtl gradcam``, ``radtl probe``,
``radtl perturb``, ``radtl rating_sheet``) is a thin layer over these functions.

- :func:`write_heatmaps`: Grad-CAM or Grad-CAM++ (MONAI) of every image of a split, each saved
  as a PNG of the input beside its overlay, with ``heatmaps.csv`` (prediction, probability and,
  where the datalist item has a ``mask``, the localisation Dice at 20% of the map's peak);
- :func:`probe_backbone`: the Radio DINO / OmniRad frozen-backbone regimes for any radtl
  checkpoint (kNN k = 1, 5, 20, logistic regression, head-only, LoRA, features at several
  input sizes) and a 2-D map of the test features coloured by label;
- :func:`perturbation_robustness`: predictions under shifted and scaled ROI boxes (the bone-tumour
  study), per model, with a paired comparison of their stability.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose
from tqdm.auto import tqdm

from radtl.atomic import write_json_atomic, write_text_atomic
from radtl.bundle import Bundle, BundleKind
from radtl.errors import MissingPackageError
from radtl.evaluation.frozen import frozen_evaluation, lora_finetune
from radtl.evaluation.probes import extract_features
from radtl.evaluation.robustness import box_perturbations, compare_stability, roi_robustness, stability_summary
from radtl.logs import show_progress
from radtl.networks import create, load_pretrained
from radtl.report.figures import embedding_plot
from radtl.transforms import LoadRadiograph

__all__ = ["BundleTask", "heatmap_sources", "perturbation_robustness", "probe_backbone", "write_heatmaps"]

logger = logging.getLogger(__name__)


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return write_text_atomic(path, frame.to_csv(index=False))


class BundleTask:
    """A classification bundle's parts, taken from its ``train.json`` by name (:class:`radtl.bundle.Bundle`).

    Args:
        bundle: a bundle folder or name (``btmr``, ``covid19_cxr``, ``grazpedwri_osteopenia``).
        output_dir: where the run writes (the bundle's ``datalist.json`` goes here too).
        settings: further bundle settings (``dataset_dir=...``, ``image_size=...``).
    """

    def __init__(self, bundle: str | os.PathLike, output_dir: str | os.PathLike, **settings) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.bundle = Bundle(bundle, {"output_dir": str(self.output_dir), **settings})
        self.bundle.require(BundleKind.CLASSIFICATION)
        self.config = self.bundle.config
        self.labels: list[str] = list(self.config["labels"])
        self.architecture: str = str(self.config["backbone"])
        self.device = self.bundle.device
        self.image_size = int(self.bundle.get("image_size"))
        self.load = self.bundle.transforms("image_transforms")
        self.network_input = self.bundle.transforms("network_input")

    def items(self, split: str) -> list[dict]:
        """The datalist items of ``split`` (``training``, ``validation``, ``test``)."""
        return self.bundle.items(split)

    def classifier(self, checkpoint: str | os.PathLike) -> torch.nn.Module:
        """The bundle's network with a fine-tuned checkpoint (``model.pt``) loaded strictly, in eval mode."""
        return self.bundle.network(checkpoint)

    def backbone(self, checkpoint: str | os.PathLike | None, num_classes: int = 0) -> torch.nn.Module:
        """The bundle's architecture with any radtl checkpoint's backbone (head left out), in eval mode."""
        network = create(self.architecture, num_classes=num_classes)
        if checkpoint:
            load_pretrained(network, checkpoint)
        return network.to(self.device).eval()

    def loader(self, split: str, batch_size: int = 32, limit: int = 0) -> DataLoader:
        """Batches of ``split`` through the bundle's image transforms and network input, in datalist order."""
        items = self.items(split)[: limit or None]
        transform = Compose([self.load, self.network_input])
        return DataLoader(Dataset(items, transform), batch_size=batch_size, shuffle=False, num_workers=0)

    def prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch as ``(images on the device, integer labels)``."""
        return batch["image"].to(self.device).as_tensor(), torch.as_tensor(batch["label"]).reshape(-1).long()


def write_heatmaps(
    task: BundleTask,
    checkpoint: str | os.PathLike,
    split: str = "test",
    method: str = "gradcam",
    limit: int = 0,
    threshold: float = 0.2,
) -> Path:
    """Grad-CAM heatmaps of ``split`` as PNGs (input beside overlay) in ``task.output_dir``; returns ``heatmaps.csv``.

    Args:
        task: the bundle's parts.
        checkpoint: the fine-tuned ``model.pt``.
        split: datalist split.
        method: ``gradcam`` or ``gradcam++`` (MONAI's ``GradCAM`` / ``GradCAMpp``).
        limit: at most this many images (0: all).
        threshold: fraction of the map's peak above which it counts as "attended" for the localisation Dice.
    """
    from radtl.interpret import class_activation_maps, localisation_dice, save_heatmap

    network = task.classifier(checkpoint)
    rows = []
    items = task.items(split)[: limit or None]
    for item in tqdm(items, desc=f"{method} {split}", disable=not show_progress()):
        shown = task.load(dict(item))
        image = task.network_input(dict(shown))["image"].as_tensor()[None].to(task.device)
        with torch.no_grad():
            logits = network(image).float()
        probabilities = torch.sigmoid(logits)[0] if logits.shape[1] == 1 else logits.softmax(dim=1)[0]
        predicted = int(probabilities[0] >= 0.5) if logits.shape[1] == 1 else int(probabilities.argmax())
        cam = class_activation_maps(network, image, method=method)[0, 0].cpu()
        stem = Path(str(item["image"])).stem
        path = save_heatmap(task.output_dir / f"{stem}_{method}.png", shown["image"], cam)
        row = {
            "image": str(item["image"]),
            "heatmap": path.name,
            "label": item.get("label"),
            "predicted": predicted,
            "probability": float(probabilities.max() if logits.shape[1] > 1 else probabilities[0]),
        }
        if item.get("mask"):
            mask = task.load({"image": item["mask"]})["image"][0] > 0.5
            row["localisation_dice"] = localisation_dice(cam, mask, threshold)
        rows.append(row)
    table = _write_csv(pd.DataFrame(rows), task.output_dir / "heatmaps.csv")
    logger.info("%d heatmap(s) in %s", len(rows), task.output_dir)
    return table


def heatmap_sources(folders: Mapping[str, str | os.PathLike]) -> dict[str, dict[str, Path]]:
    """Model name -> {case (the image's file stem) -> heatmap PNG} from :func:`write_heatmaps` folders,
    the input of :func:`radtl.interpret.rating.write_rating_sheet`."""
    sources = {}
    for name, folder in folders.items():
        table = Path(folder) / "heatmaps.csv"
        if not table.is_file():
            raise FileNotFoundError(f"{name}: no heatmaps.csv in {folder}; run radtl gradcam first")
        rows = pd.read_csv(table)
        sources[name] = {Path(image).stem: Path(folder) / heatmap for image, heatmap in zip(rows["image"], rows["heatmap"])}
    return sources


def probe_backbone(
    task: BundleTask,
    checkpoint: str | os.PathLike | None,
    ks: Sequence[int] = (1, 5, 20),
    scales: Sequence[int] = (224, 112, 56),
    head_epochs: int = 100,
    lora_ranks: Sequence[int] = (8, 16),
    lora_epochs: int = 10,
    lora_lr: float = 1e-3,
    embedding: str = "tsne",
    batch_size: int = 32,
) -> Path:
    """Frozen-backbone evaluation of ``checkpoint`` on the bundle's training and test splits; returns ``probe.json``.

    Writes ``probe.json`` (every metric), ``probe.csv`` (the same, one row per metric) and
    ``embedding.png`` (a t-SNE / UMAP / PCA map of the test features coloured by label).

    Args:
        task: the bundle's parts.
        checkpoint: any radtl checkpoint of the bundle's architecture (a pretraining ``backbone.pt``,
            a fine-tuned ``model.pt``, a RadiologyNET ``.tar.gz``); None probes random weights.
        ks: kNN neighbours.
        scales: input sizes of the multi-scale logistic probe (Radio DINO: 224 / 112 / 56).
        head_epochs: epochs of the head-only regime.
        lora_ranks: LoRA ranks (alpha = 2 x rank, as OmniRad's R8/a16 and R16/a32); empty skips LoRA.
        lora_epochs: epochs of each LoRA run.
        lora_lr: AdamW learning rate of the adapters and the head.
        embedding: ``tsne``, ``umap`` or ``pca``.
        batch_size: images per batch.
    """
    if lora_ranks and importlib.util.find_spec("peft") is None:  # before any work, so none is lost
        raise MissingPackageError("LoRA needs the peft library: pip install -e '.[lora]', or leave LoRA out with --lora_ranks ''")
    backbone = task.backbone(checkpoint)
    train, test = task.loader("training", batch_size), task.loader("test", batch_size)

    def images(batch: dict) -> torch.Tensor:
        return task.prepare(batch)[0]

    metrics = {"checkpoint": str(checkpoint or "random"), "architecture": task.architecture}
    metrics.update(
        frozen_evaluation(
            backbone, train, test, task.prepare, ks=ks, head_epochs=head_epochs, scales=scales, device=task.device
        )
    )
    for rank in lora_ranks:
        classifier = task.backbone(checkpoint, num_classes=max(len(task.labels), 2)).train()
        scores = lora_finetune(
            classifier, train, test, task.prepare, rank=rank, alpha=2 * rank, epochs=lora_epochs, lr=lora_lr,
            device=task.device,
        )
        metrics.update({key.replace("lora_", f"lora_r{rank}_"): value for key, value in scores.items()})
    features, labels = extract_features(backbone, test, images, task.device)
    embedding_plot(
        features.numpy(),
        {"label": [task.labels[int(i)] for i in labels]},
        task.output_dir / "embedding.png",
        method=embedding,
    )
    write_json_atomic(task.output_dir / "probe.json", metrics, default=float)
    _write_csv(pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())}), task.output_dir / "probe.csv")
    return task.output_dir / "probe.json"


def perturbation_robustness(
    task: BundleTask,
    checkpoints: Mapping[str, str | os.PathLike],
    split: str = "test",
    shifts: Sequence[float] = (0.1, 0.2),
    scales: Sequence[float] = (0.8, 1.2),
    limit: int = 0,
) -> Path:
    """Each model's predictions under ROI perturbations of ``split``; returns ``stability.csv``.

    The ROI of an item is its datalist ``box`` (``[x0, y0, x1, y1]`` in the image's pixels) or
    the whole image. Writes ``robustness.csv`` (one row per model, case and perturbation),
    ``stability.csv`` (flip rate, mean probability change and accuracy per model and perturbation)
    and ``comparison.csv`` (each pair of models: a paired Wilcoxon test of the per-case changes).

    Args:
        task: the bundle's parts.
        checkpoints: model name -> fine-tuned ``model.pt``.
        split: datalist split.
        shifts: box shifts, as fractions of its width / height, in each of the four directions.
        scales: box scale factors about its centre.
        limit: at most this many images (0: all).
    """
    networks = {name: task.classifier(checkpoint) for name, checkpoint in checkpoints.items()}  # fail before work
    load = LoadRadiograph()
    cases = []
    for item in task.items(split)[: limit or None]:
        image = task.network_input({"image": load(item["image"])})["image"]
        case = {"id": Path(str(item["image"])).stem, "image": torch.as_tensor(image), "label": item.get("label")}
        if item.get("box") is not None:
            case["box"] = tuple(float(v) for v in item["box"])
        cases.append(case)
    perturbations = box_perturbations(shifts, scales)
    frames = {}
    for name, network in networks.items():
        frame = roi_robustness(network, cases, perturbations, task.image_size, device=task.device)
        frames[name] = frame.assign(model=name)
    _write_csv(pd.concat(frames.values(), ignore_index=True), task.output_dir / "robustness.csv")
    summaries = [stability_summary(frame).reset_index().assign(model=name) for name, frame in frames.items()]
    stability = _write_csv(pd.concat(summaries, ignore_index=True), task.output_dir / "stability.csv")
    pairs = [
        {"model_a": a, "model_b": b, **compare_stability(frames[a], frames[b], names=(a, b))}
        for a, b in itertools.combinations(frames, 2)
    ]
    if pairs:
        _write_csv(pd.DataFrame(pairs), task.output_dir / "comparison.csv")
    return stability
