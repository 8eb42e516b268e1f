"""Frozen-backbone evaluation: how far a pretrained network carries a task short of full fine-tuning.

Radio DINO and OmniRad compare backbones under adaptation regimes lighter than full fine-tuning
(shared/science/radio-dino-omnirad.md, "Adaptation regimes"; OmniRad Table 8):

- kNN (k = 1, 5, 20) and logistic regression on frozen features: :func:`radtl.evaluation.probes.probe`,
  reused here as it is.
- the logistic probe on images resized to several sides (448/224/112/56 px in the papers), a
  measure of scale robustness: :func:`multiscale_probe`.
- head-only: the network's own classifier trained on frozen features: :func:`head_only`.
- LoRA (Hu et al. 2022, R8/a16 and R16/a32): low-rank adapters on the backbone's convolutions
  and linear layers, the head trained fully, through the maintained ``peft`` library:
  :func:`lora_model` and :func:`lora_finetune`.

:func:`frozen_evaluation` runs the frozen regimes (probes, head-only, multi-scale) on one pair of
loaders and returns one flat dict of metrics; LoRA trains the network and stays a separate call.

Any radtl backbone (:func:`radtl.networks.create` with ``num_classes=0``, or a classifier, whose
:meth:`~radtl.networks.Backbone.forward_features` is then used) or a checkpoint loaded into one
works. Loaders yield batches that ``prepare(batch) -> (images, labels)`` turns into tensors, the
first two items of what MONAI's ``prepare_batch`` and :class:`radtl.engines.PrepareBatch` return,
so ``PrepareBatch()`` can be passed as it is. Metrics are accuracy and macro F1 (scikit-learn).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.engines import SupervisedTrainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from radtl.engines.metrics import classification_scores
from radtl.errors import MissingPackageError
from radtl.evaluation.probes import extract_features, probe
from radtl.networks.backbone import Backbone
from radtl.networks.vit import VisionTransformer

__all__ = [
    "frozen_evaluation",
    "head_only",
    "lora_finetune",
    "lora_model",
    "lora_target_modules",
    "multiscale_probe",
]

#: ``prepare(batch) -> (images (N, C, H, W), labels (N,))``; further items are ignored.
Prepare = Callable[[Any], Sequence[torch.Tensor]]
#: ``(features (N, D), labels (N,))``, as :func:`radtl.evaluation.probes.extract_features` returns them.
Features = tuple[torch.Tensor, torch.Tensor]

#: Module types that :func:`lora_target_modules` adapts.
LORA_MODULE_TYPES = (nn.Linear, nn.Conv2d, nn.Conv3d)


class _FeatureExtractor(nn.Module):
    """A network's pooled features: :meth:`Backbone.forward_features` for a radtl backbone, ``forward`` otherwise."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.backbone, Backbone):
            return self.backbone.forward_features(x)
        return self.backbone(x)


def _predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """Class indices of ``(N, K)`` logits: the argmax, or ``logit > 0`` (sigmoid above 0.5) for ``K = 1``."""
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(dim=1)


def _classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``(N, K)`` logits against class indices; binary cross-entropy for one logit."""
    labels = labels.reshape(-1)
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], labels.to(logits.dtype))
    return F.cross_entropy(logits, labels.long())


def _images_and_labels(prepare: Prepare, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    prepared = prepare(batch)
    if len(prepared) < 2 or prepared[1] is None:
        raise ValueError("prepare(batch) must return (images, labels); it returned no labels")
    return prepared[0], torch.as_tensor(prepared[1]).reshape(-1)


def _labelled(loader: Iterable, prepare: Prepare) -> Iterator[dict[str, torch.Tensor]]:
    """``{"image", "label"}`` batches of ``loader``, the form :func:`radtl.evaluation.probes.extract_features` reads."""
    for batch in loader:
        images, labels = _images_and_labels(prepare, batch)
        yield {"image": images, "label": labels}


def _tensor_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> list[dict[str, torch.Tensor]]:
    return [
        {"image": images[start : start + batch_size], "label": labels[start : start + batch_size]}
        for start in range(0, len(images), batch_size)
    ]


def _on(device: str | torch.device) -> Callable[[dict], torch.Tensor]:
    return lambda batch: batch["image"].to(device)


def _train(
    network: nn.Module,
    loader: Iterable,
    prepare: Prepare,
    epochs: int,
    lr: float,
    weight_decay: float,
    device: str | torch.device,
) -> None:
    """Train the parameters of ``network`` that require gradients with AdamW, MONAI's ``SupervisedTrainer``."""

    def prepare_batch(batchdata: Any, device: torch.device | None = None, non_blocking: bool = False, **kwargs):
        images, labels = _images_and_labels(prepare, batchdata)
        return images.to(device, non_blocking=non_blocking), labels.to(device, non_blocking=non_blocking)

    if not isinstance(loader, DataLoader) and not hasattr(loader, "__len__"):
        raise ValueError("the training loader must be a DataLoader or have a length (the epoch length)")
    parameters = [parameter for parameter in network.parameters() if parameter.requires_grad]
    trainer = SupervisedTrainer(
        device=torch.device(device),
        max_epochs=epochs,
        train_data_loader=loader,
        epoch_length=None if isinstance(loader, DataLoader) else len(loader),
        network=network,
        optimizer=torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay),
        loss_function=_classification_loss,
        prepare_batch=prepare_batch,
        decollate=False,
    )
    trainer.run()


def head_only(
    backbone: nn.Module | None,
    train: Features,
    test: Features,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int | None = 256,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Head-only adaptation (OmniRad Table 8): a classifier trained on the frozen backbone's features.

    The head is the backbone's own (:meth:`Backbone.make_classifier`, a linear layer for most
    architectures; ``nn.Linear`` for a ``backbone`` that is not a radtl backbone or is ``None``),
    trained with AdamW and cross-entropy on the cached ``train`` features, mini-batches reshuffled
    every epoch (``batch_size=None``: full batch). Training on cached features is the same as
    training the head behind a backbone that is frozen, in eval mode and fed without augmentation:
    such a backbone gives an image the same features every epoch, so computing them once is exact
    and 100 epochs cost one forward pass. Augmentation, which changes the features every epoch,
    is what caching cannot reproduce.

    Args:
        backbone: the network that produced the features; supplies the head's architecture.
        train: ``(features (N, D), labels (N,))`` to train on, from :func:`radtl.evaluation.probes.extract_features`.
        test: ``(features (M, D), labels (M,))`` to score.
        epochs: passes over ``train``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        batch_size: features per step; ``None``: all of them (full batch).
        seed: seeds the head's initialisation and the shuffling; torch's global generator is left as it was.
        device: where the head trains.

    Returns:
        ``{"head_accuracy", "head_f1"}`` on ``test`` (macro F1).

    Raises:
        ValueError: features of another width than the backbone's ``num_features``, or no training labels.
    """
    (train_x, train_y), (test_x, test_y) = train, test
    if len(train_y) == 0:
        raise ValueError("head_only needs training features; got none")
    width = train_x.shape[1]
    if isinstance(backbone, Backbone) and backbone.num_features and backbone.num_features != width:
        raise ValueError(
            f"the features are {width} wide; {type(backbone).__name__}'s head takes {backbone.num_features}"
        )
    # at least two classes: a binary task trains a 2-way head with cross-entropy
    classes = max(int(train_y.max()), int(test_y.max()) if len(test_y) else 0, 1) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = backbone.make_classifier(classes) if isinstance(backbone, Backbone) else nn.Linear(width, classes)
    head = head.to(device)
    loader = DataLoader(
        TensorDataset(train_x.float(), train_y.long()),
        batch_size=batch_size or len(train_x),
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    _train(head, loader, lambda batch: batch, epochs, lr, weight_decay, device)
    logits, truth = extract_features(
        head, _tensor_batches(test_x.float(), test_y, batch_size or len(test_x) or 1), _on(device), device
    )
    return classification_scores(truth, _predicted_classes(logits), prefix="head_")


def _head_modules(network: Backbone) -> list[str]:
    """Module names of ``network``'s classification head (:meth:`Backbone.head_prefixes` that exist in it)."""
    names = dict(network.named_modules())
    return [prefix.rstrip(".") for prefix in network.head_prefixes() if prefix.rstrip(".") in names]


def lora_target_modules(network: Backbone) -> list[str]:
    """Names of the modules :func:`lora_model` adapts by default: every linear layer and convolution outside the head.

    The head (:meth:`Backbone.head_prefixes`) is trained fully instead. Grouped (depthwise)
    convolutions, EfficientNet's and MobileNet's, are left out: their weight is not one dense
    matrix that a low-rank product updates, and peft adapts them only for ranks divisible by the groups.

    Args:
        network: a radtl backbone.

    Returns:
        Module names (``"layer1.0.conv1"``, ``"blocks.0.attn.qkv"``) in ``named_modules`` order.
    """
    heads = _head_modules(network)
    return [
        name
        for name, module in network.named_modules()
        if isinstance(module, LORA_MODULE_TYPES)
        and not (isinstance(module, nn.Conv2d | nn.Conv3d) and module.groups > 1)
        and not any(name == head or name.startswith(f"{head}.") for head in heads)
    ]


def lora_model(
    network: Backbone,
    rank: int = 8,
    alpha: int = 16,
    target_modules: Sequence[str] | str | None = None,
    dropout: float = 0.0,
) -> nn.Module:
    """A copy of ``network`` with LoRA adapters (Hu et al. 2022), built by ``peft``; ``network`` is not touched.

    Each targeted layer's frozen weight ``W`` gains the low-rank update ``(alpha / rank) B A``
    (``A`` random, ``B`` zero at first, so the copy starts as ``network``'s function); the
    classification head is in peft's ``modules_to_save`` and trains fully; every other parameter
    is frozen. Batch-norm running statistics are buffers, not parameters: they follow the data
    whenever the model runs in train mode, as in any fine-tuning of a CNN.

    Args:
        network: a radtl classifier (backbone with a head, ``num_classes > 0``).
        rank: ``r``, the rank of the update (8 and 16 in OmniRad).
        alpha: ``alpha`` of the ``alpha / r`` scaling (16 and 32 in OmniRad).
        target_modules: modules to adapt, with peft's matching (a list of names or name
            suffixes, or one regular expression matched in full); ``None``: :func:`lora_target_modules`.
        dropout: LoRA dropout on the adapters' input.

    Returns:
        a ``peft.PeftModel`` around the copy, whose ``forward`` is the network's.

    Raises:
        ImportError: peft is not installed.
        TypeError: ``network`` is not a radtl backbone (its head could not be found).
        ValueError: ``network`` has no classifier.
    """
    try:
        import peft
    except ImportError as error:
        raise MissingPackageError("LoRA fine-tuning needs the peft library: pip install peft") from error
    if not isinstance(network, Backbone):
        raise TypeError(f"lora_model needs a radtl backbone to find its head; got {type(network).__name__}")
    heads = [name for name in _head_modules(network) if not isinstance(network.get_submodule(name), nn.Identity)]
    if not heads:
        raise ValueError(
            f"{type(network).__name__} has no classifier to train; build it with num_classes > 0 "
            "or call reset_classifier(num_classes)"
        )
    if target_modules is None:
        names = lora_target_modules(network)
        if not names:
            raise ValueError(f"{type(network).__name__} has no linear layer or convolution outside its head to adapt")
        # one regular expression of the exact names: a plain list would also match every name ending in one of them
        targets: Sequence[str] | str = "|".join(re.escape(name) for name in names)
    else:
        targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    config = peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, modules_to_save=heads
    )
    return peft.get_peft_model(copy.deepcopy(network), config)


def lora_finetune(
    network: Backbone,
    train_loader: Iterable,
    test_loader: Iterable,
    prepare: Prepare,
    rank: int = 8,
    alpha: int = 16,
    epochs: int = 1,
    lr: float = 1e-4,
    weight_decay: float = 0.01,
    target_modules: Sequence[str] | str | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, float | int]:
    """LoRA adaptation (OmniRad Table 8, R8/a16 and R16/a32) of a copy of ``network``, scored on ``test_loader``.

    :func:`lora_model` builds the adapted copy (``network`` itself is left as it was); MONAI's
    ``SupervisedTrainer`` trains the adapters and the head with AdamW and cross-entropy (binary
    cross-entropy for a single-logit network); the test predictions are the argmax of the logits
    (``logit > 0`` for one output).

    Args:
        network: a radtl classifier returning ``(N, K)`` logits in train and eval mode.
        train_loader: batches to train on (a DataLoader, or any iterable with a length).
        test_loader: batches to score.
        prepare: ``prepare(batch) -> (images (N, C, H, W), labels (N,))``.
        rank: LoRA rank ``r``.
        alpha: LoRA ``alpha``.
        epochs: passes over ``train_loader``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay (0.01, Radio DINO's fine-tuning value).
        target_modules: see :func:`lora_model`.
        device: where the copy trains.
        seed: ``torch.manual_seed`` for the adapters' initialisation and any draw during training
            (a shuffling loader without its own generator); torch's CPU generator is restored afterwards.

    Returns:
        ``{"lora_accuracy", "lora_f1", "lora_trainable_parameters", "lora_total_parameters"}``,
        the counts as peft's ``get_nb_trainable_parameters`` gives them (the total includes the
        adapters and the trained copy of the head).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = lora_model(network, rank, alpha, target_modules).to(device)
        _train(model, train_loader, prepare, epochs, lr, weight_decay, device)
    logits, truth = extract_features(model, _labelled(test_loader, prepare), _on(device), device)
    trainable, total = model.get_nb_trainable_parameters()
    return {
        **classification_scores(truth, _predicted_classes(logits), prefix="lora_"),
        "lora_trainable_parameters": int(trainable),
        "lora_total_parameters": int(total),
    }


def _check_sizes(backbone: nn.Module, sizes: Sequence[int]) -> None:
    """Refuse sides that are not positive, or that a ViT cannot cut into whole patches."""
    bad = [size for size in sizes if int(size) != size or size < 1]
    if bad:
        raise ValueError(f"image sides must be positive integers; got {bad}")
    if isinstance(backbone, VisionTransformer):
        bad = [size for size in sizes if size % backbone.patch_size]
        if bad:
            raise ValueError(
                f"{type(backbone).__name__} has patch size {backbone.patch_size}: the sides {bad} are not "
                f"multiples of it; choose sides divisible by {backbone.patch_size}"
            )


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, C, H, W)`` images resized to ``(N, C, size, size)``: bilinear, antialiased when shrinking."""
    return F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _multiscale_scores(
    backbone: nn.Module,
    train_batches: Callable[[], Iterable[dict]],
    test_batches: Callable[[], Iterable[dict]],
    sizes: Sequence[int],
    device: str | torch.device,
    seed: int = 0,
) -> dict[int, dict[str, float]]:
    """The logistic probe at each side; ``*_batches()`` give fresh ``{"image", "label"}`` batches each call."""
    extractor = _FeatureExtractor(backbone)
    scores = {}
    for size in sizes:

        def prepare(batch: dict, size: int = size) -> torch.Tensor:
            return _resized(batch["image"].to(device), size)

        train = extract_features(extractor, train_batches(), prepare, device)
        test = extract_features(extractor, test_batches(), prepare, device)
        scores[int(size)] = probe(train, test, ks=(), seed=seed)
    return scores


def multiscale_probe(
    backbone: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    sizes: Sequence[int] = (224, 112, 56),
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> dict[int, dict[str, float]]:
    """Scale robustness (Radio DINO, "Adaptation regimes"): the logistic probe on images resized to each side.

    Both splits are resized to ``size x size`` (bilinear, antialiased when shrinking; a non-square
    image is stretched), their features extracted by the frozen ``backbone`` (eval mode) and
    :func:`radtl.evaluation.probes.probe` fitted on the training features (logistic regression only). radtl's
    ViTs resize their position embeddings to the input's patch grid, so any side that is a multiple
    of the patch size works; CNNs take any side their pooling survives.

    Args:
        backbone: feature extractor (a radtl backbone's ``forward_features`` is used), on ``device``.
        train_images: ``(N, C, H, W)`` images to fit the probe on.
        train_labels: ``(N,)`` class indices.
        test_images: ``(M, C, H', W')`` images to score.
        test_labels: ``(M,)`` class indices.
        sizes: sides to evaluate (448/224/112/56 in Radio DINO).
        batch_size: images per forward pass.
        device: where the backbone runs.

    Returns:
        ``{size: {"logistic_accuracy", "logistic_f1"}}`` (macro F1).

    Raises:
        ValueError: images that are not ``(N, C, H, W)`` or not as many as their labels; a side that is
            not a positive integer, or not a multiple of a ViT's patch size.
    """
    _check_sizes(backbone, sizes)
    for name, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        if images.dim() != 4:
            raise ValueError(f"{name}_images must be (N, C, H, W); got {list(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} {name} images but {len(labels)} labels")
    train = _tensor_batches(train_images, train_labels.reshape(-1), batch_size)
    test = _tensor_batches(test_images, test_labels.reshape(-1), batch_size)
    return _multiscale_scores(backbone, lambda: train, lambda: test, sizes, device)


def frozen_evaluation(
    backbone: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable,
    prepare: Prepare,
    ks: Sequence[int] = (1, 5, 20),
    head_epochs: int = 100,
    scales: Sequence[int] = (224, 112, 56),
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Every frozen-backbone regime of Radio DINO and OmniRad on one train/test pair, as one flat dict.

    The features of each split are extracted once (:func:`radtl.evaluation.probes.extract_features`) and
    serve the kNN and logistic probes (:func:`radtl.evaluation.probes.probe`) and :func:`head_only`; for
    each side in ``scales`` the loaders are read again and the images resized
    (:func:`multiscale_probe`), so no split is held in memory as images.

    Args:
        backbone: feature extractor (a radtl backbone's ``forward_features`` is used), on ``device``.
        train_loader: batches to fit the probes and the head on (read ``1 + len(scales)`` times).
        test_loader: batches to score.
        prepare: ``prepare(batch) -> (images (N, C, H, W), labels (N,))``.
        ks: neighbours of the kNN probes; ``()``: none.
        head_epochs: epochs of :func:`head_only`; 0 leaves it out.
        scales: sides of the multi-scale logistic probe; ``()``: none.
        device: where the backbone runs.
        seed: seed of the logistic regressions and the head.

    Returns:
        ``{"knn{k}_accuracy", "knn{k}_f1", ..., "logistic_accuracy", "logistic_f1", "head_accuracy",
        "head_f1", "scale{side}_logistic_accuracy", "scale{side}_logistic_f1", ...}`` (macro F1).
    """
    _check_sizes(backbone, scales)
    extractor = _FeatureExtractor(backbone)
    train = extract_features(extractor, _labelled(train_loader, prepare), _on(device), device)
    test = extract_features(extractor, _labelled(test_loader, prepare), _on(device), device)
    scores = probe(train, test, ks=ks, seed=seed)
    if head_epochs:
        scores.update(head_only(backbone, train, test, epochs=head_epochs, seed=seed, device=device))
    multiscale = _multiscale_scores(
        backbone,
        lambda: _labelled(train_loader, prepare),
        lambda: _labelled(test_loader, prepare),
        scales,
        device,
        seed,
    )
    for size, size_scores in multiscale.items():
        scores.update({f"scale{size}_{name}": value for name, value in size_scores.items()})
    return scores
