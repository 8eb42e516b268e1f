"""Embeddings of DICOM tags and images for pseudo-labelling (RadiologyNET, thesis 2.4.1).

Before clustering, the study reduced each data source to an embedding
(shared/science/radiologynet.md, "Feature extraction and clustering"):

- :class:`TagEncoder`: the tag feature matrix of :class:`~radtl.pseudolabel.tag_features.TagFeatureTable`
  through a dense autoencoder (best: 512-200-125 with a 32-d bottleneck, learning rate 1e-2)
  or PCA (LAPACK, ARPACK or randomised solver; 32 to 100 components), Table 2.3;
- :class:`ImageEncoder`: converted 8-bit images, 256 x 256, through the convolutional
  autoencoder (CAE; best: learning rate 1e-6, then PCA to 500 components), Table 2.3.

Both autoencoders are trained by one function, :func:`train_autoencoder` (Adam, MSE, early
stopping on the validation loss, best weights kept). An encoder is saved to a folder: a JSON file
with its parameters and training history, the network's ``state_dict`` (``torch.save``) and,
where there is one, the fitted PCA (joblib: a pickle, load only folders you trust).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
import torch
from ignite.engine import Engine, Events, create_supervised_evaluator, create_supervised_trainer
from ignite.handlers import EarlyStopping, TerminateOnNan
from ignite.metrics import Loss
from monai.data import DataLoader, Dataset
from sklearn.decomposition import PCA
from torch import nn

from radtl.atomic import write_atomic, write_json_atomic
from radtl.data.images import read_radiograph
from radtl.dicom.errors import DicomConversionError
from radtl.dicom.image import resize_longest_pad, to_uint8
from radtl.engines.handlers import EpochLog, TerminalProgressBar
from radtl.networks.autoencoder import ConvAutoencoder, DenseAutoencoder
from radtl.pseudolabel.persistence import check_saved_format

__all__ = [
    "FORMAT_VERSION",
    "PCA_SOLVERS",
    "TAG_METHODS",
    "ImageEncoder",
    "TagEncoder",
    "load_image",
    "prepare_batch",
    "train_autoencoder",
]

#: Version of the folder :meth:`TagEncoder.save` / :meth:`ImageEncoder.save` write; ``load`` reads only this one.
FORMAT_VERSION = 1
#: :class:`TagEncoder` methods.
TAG_METHODS = ("autoencoder", "pca")
#: scikit-learn PCA solvers the study compared: LAPACK is ``"full"``, ARPACK ``"arpack"``,
#: randomised SVD ``"randomized"``; ``"auto"`` lets scikit-learn choose.
PCA_SOLVERS = ("auto", "full", "arpack", "randomized")

# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def prepare_batch(batch: torch.Tensor | Sequence[torch.Tensor], device=None, non_blocking: bool = False):
    """The autoencoders' batch convention: a tensor ``x`` or a one-element tuple ``(x,)``; returns ``(x, x)``.

    The target is the input (reconstruction). Signature of Ignite's ``prepare_batch``.
    """
    if isinstance(batch, (tuple, list)):
        if len(batch) != 1:
            raise ValueError(f"an autoencoder batch is a tensor or a 1-tuple (x,), got a sequence of {len(batch)}")
        batch = batch[0]
    x = torch.as_tensor(batch).to(device=device, non_blocking=non_blocking)
    return x, x


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))


def _validation_iterations(epoch_length: int, validations_per_epoch: int) -> frozenset[int]:
    """Iterations within an epoch (1-based) after which to validate, evenly spread, the last one always."""
    return frozenset(max(1, round(k * epoch_length / validations_per_epoch)) for k in range(1, validations_per_epoch + 1))


def train_autoencoder(
    network: nn.Module,
    train_loader: Any,
    validation_loader: Any,
    *,
    learning_rate: float,
    max_epochs: int,
    patience: int,
    validations_per_epoch: int = 1,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    name: str = "",
) -> dict:
    """Train ``network`` to reconstruct its input, the study's protocol for both autoencoders (thesis 2.4.1).

    Adam and MSE on Ignite's supervised trainer; batches follow :func:`prepare_batch` (a tensor
    or ``(x,)``). The validation loss (MSE over the whole validation set) is computed
    ``validations_per_epoch`` times per epoch, evenly spread over its iterations (the study
    validated images twice per epoch, tags once); training stops early after ``patience``
    validations without a lower loss (Ignite's ``EarlyStopping``). A non-finite training loss
    ends training (Ignite's ``TerminateOnNan``). At the end ``network`` holds the weights of the
    lowest validation loss, kept in memory during training. Each epoch logs one line
    (:class:`radtl.engines.EpochLog`: loss, validation loss, best, time left).

    Args:
        network: a module whose ``forward`` returns a reconstruction of its input's shape.
        train_loader: training batches, shuffled by the caller if wanted; must not be empty.
        validation_loader: validation batches; must not be empty.
        learning_rate: Adam's learning rate.
        max_epochs: the most epochs to train.
        patience: validations without improvement before stopping.
        validations_per_epoch: validations per epoch (capped at the batches per epoch).
        device: where to train; None for ``"cuda"`` if available, else ``"cpu"``.
        progress: show a progress bar (Ignite's ``ProgressBar``, tqdm); None (default) only on a terminal.
        name: what is trained, the prefix of its log lines (``"tag encoder"``).

    Returns:
        ``{"epochs": epochs started, "best_validation_loss": lowest loss (None if none was finite),
        "validation_losses": [loss of each validation], "stopped_early": True if training ended
        before ``max_epochs`` epochs were complete}``.
    """
    counts = {"max_epochs": max_epochs, "patience": patience, "validations_per_epoch": validations_per_epoch}
    for setting, value in counts.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{setting} must be a positive integer, got {value!r}")
    if not learning_rate >= 0:
        raise ValueError(f"learning_rate must be >= 0, got {learning_rate!r}")
    epoch_length = len(train_loader)
    if epoch_length == 0 or len(validation_loader) == 0:
        raise ValueError(
            f"train_autoencoder needs batches to train and validate on, got {epoch_length} training and "
            f"{len(validation_loader)} validation batches"
        )
    device = _device(device)
    network.to(device)
    loss_function = nn.MSELoss()
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    trainer = create_supervised_trainer(network, optimizer, loss_function, device=device, prepare_batch=prepare_batch)
    evaluator = create_supervised_evaluator(
        network, metrics={"loss": Loss(loss_function)}, device=device, prepare_batch=prepare_batch
    )

    validation_losses: list[float] = []
    best: dict[str, Any] = {"loss": math.inf, "state": None}

    def record(engine: Engine) -> None:
        loss = float(engine.state.metrics["loss"])
        validation_losses.append(loss)
        if loss < best["loss"]:
            best["loss"] = loss
            best["state"] = {k: v.detach().clone() for k, v in network.state_dict().items()}

    def score(engine: Engine) -> float:
        # NaN would compare as an improvement in EarlyStopping; count it as the worst loss instead.
        loss = float(engine.state.metrics["loss"])
        return -loss if math.isfinite(loss) else -math.inf

    early_stop = EarlyStopping(patience, score_function=score, trainer=trainer)
    evaluator.add_event_handler(Events.COMPLETED, record)
    evaluator.add_event_handler(Events.COMPLETED, early_stop)

    checkpoints = _validation_iterations(epoch_length, validations_per_epoch)
    at_checkpoint = Events.ITERATION_COMPLETED(
        event_filter=lambda _, iteration: (iteration - 1) % epoch_length + 1 in checkpoints
    )
    trainer.add_event_handler(Events.ITERATION_COMPLETED, TerminateOnNan())
    trainer.add_event_handler(at_checkpoint, lambda _: evaluator.run(validation_loader))
    TerminalProgressBar(progress, output_transform=lambda loss: {"loss": loss}, persist=True).attach(trainer)
    EpochLog(
        evaluator, key_metric="loss", higher_is_better=False, early_stop=early_stop, loss_transform=lambda loss: loss,
        name=name,
    ).attach(trainer)

    trainer.run(train_loader, max_epochs=max_epochs)
    if best["state"] is not None:
        network.load_state_dict(best["state"])
    return {
        "epochs": trainer.state.epoch,
        "best_validation_loss": best["loss"] if math.isfinite(best["loss"]) else None,
        "validation_losses": validation_losses,
        "stopped_early": trainer.state.iteration < max_epochs * epoch_length,
    }


# --------------------------------------------------------------------------------------------
# Shared by both encoders
# --------------------------------------------------------------------------------------------


def _split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, validation)``: a seeded random ``fraction`` of ``n`` rows (at least one each)."""
    if n < 2:
        raise ValueError(f"holding out validation data needs at least 2 samples, got {n}; pass validation data")
    n_validation = min(n - 1, max(1, round(n * fraction)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def _seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a network from ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def _embed(
    network: nn.Module, loader: Any, device: torch.device, reduce: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """``network.encode`` of every batch, flattened per sample: ``(n, dim)`` float32, eval mode, no gradients.

    ``reduce`` (a fitted PCA's ``transform``) is applied batch by batch, so the full-size latent
    of all samples is never held at once.
    """
    network.to(device).eval()
    parts = []
    with torch.no_grad():
        for batch in loader:
            x, _ = prepare_batch(batch, device)
            latent = network.encode(x).flatten(1).cpu().numpy()
            parts.append(reduce(latent) if reduce is not None else latent)
    return np.concatenate(parts).astype(np.float32, copy=False)


class _Encoder:
    """Persistence and bookkeeping shared by :class:`TagEncoder` and :class:`ImageEncoder`."""

    _name = ""
    #: Constructor arguments that describe where/how to run, not the model; not saved.
    _runtime = ("device", "progress")

    def __init__(self, seed: int, device: str | torch.device | None, progress: bool | None) -> None:
        self.seed = int(seed)
        self.device = device
        self.progress = progress if progress is None else bool(progress)
        self.history: dict | None = None
        self._network: nn.Module | None = None
        self._pca: PCA | None = None
        self._fitted = False

    def _params(self) -> dict:
        raise NotImplementedError

    def _state(self) -> dict:
        return {}

    def _restore(self, state: dict) -> None:
        """Set what ``fit`` learned besides the weights, before the network is built."""

    def _new_network(self) -> nn.Module | None:
        raise NotImplementedError

    def _train(self, train_loader: DataLoader, validation_loader: DataLoader, validations_per_epoch: int = 1) -> None:
        """Train a fresh seeded network with :func:`train_autoencoder` and keep it with its history."""
        network = self._new_network()
        self.history = train_autoencoder(
            network,
            train_loader,
            validation_loader,
            learning_rate=self.learning_rate,
            max_epochs=self.max_epochs,
            patience=self.patience,
            validations_per_epoch=validations_per_epoch,
            device=self.device,
            progress=self.progress,
            name=self._name.replace("_", " "),
        )
        self._network = network.eval()

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() or load() first")

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the fitted encoder into ``folder``; returns the path of its JSON file.

        ``<name>.json`` (format, parameters, training history), ``<name>.pt`` (the network's
        ``state_dict``) and ``<name>.pca.joblib`` (the fitted PCA) where present. The JSON file is
        written last, so a folder that has it is complete.
        """
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        if self._network is not None:
            files["weights"] = f"{self._name}.pt"
            weights = {k: v.detach().cpu() for k, v in self._network.state_dict().items()}
            write_atomic(folder / files["weights"], partial(torch.save, weights))
        if self._pca is not None:
            files["pca"] = f"{self._name}.pca.joblib"
            write_atomic(folder / files["pca"], partial(joblib.dump, self._pca))
        config = {
            "format": f"radtl.pseudolabel.{type(self).__name__}",
            "format_version": FORMAT_VERSION,
            "torch_version": torch.__version__,
            "sklearn_version": sklearn.__version__,
            "params": self._params(),
            "state": self._state(),
            "history": self.history,
            "files": files,
        }
        return write_json_atomic(folder / f"{self._name}.json", config, default=float)

    @classmethod
    def load(cls, folder: str | os.PathLike, **runtime):
        """Read an encoder written by :meth:`save` (``folder`` or its JSON file).

        Args:
            folder: the folder :meth:`save` wrote, or its JSON file.
            runtime: run options that are not saved (``device``, ``progress``; ``num_workers``
                for :class:`ImageEncoder`).

        Raises:
            ValueError: the folder holds no saved encoder of this class, or one in another format version.
        """
        path = Path(folder)
        if path.is_dir():
            path = path / f"{cls._name}.json"
        if not path.is_file():
            raise ValueError(f"{path}: no saved {cls.__name__} (the file is missing)")
        config = json.loads(path.read_text())
        check_saved_format(config, path, cls.__name__, f"radtl.pseudolabel.{cls.__name__}", FORMAT_VERSION)
        unknown = set(runtime) - set(cls._runtime)
        if unknown:
            raise TypeError(f"{cls.__name__}.load takes the run options {cls._runtime}, got {sorted(unknown)}")
        encoder = cls(**config["params"], **runtime)
        encoder._restore(config["state"])
        encoder.history = config["history"]
        files = config["files"]
        network = encoder._new_network()
        if network is not None:
            state = torch.load(path.parent / files["weights"], map_location="cpu", weights_only=True)
            network.load_state_dict(state)
            encoder._network = network.to(_device(encoder.device)).eval()
        if "pca" in files:
            encoder._pca = joblib.load(path.parent / files["pca"])
        encoder._fitted = True
        return encoder


# --------------------------------------------------------------------------------------------
# DICOM tags
# --------------------------------------------------------------------------------------------


def _feature_matrix(X: Any, name: str) -> np.ndarray:
    """``X`` as a float32 ``(n, f)`` matrix; ValueError unless it is a non-empty, finite, numeric 2-D matrix."""
    array = np.asarray(X)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D matrix (samples, features), got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers (the tag feature table), got dtype {array.dtype}")
    array = array.astype(np.float32)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} holds {bad} NaN or infinite value(s); impute missing tags first (MissForestImputer)")
    return array


class TagEncoder(_Encoder):
    """Reduce the DICOM-tag feature matrix to ``dim``-d embeddings: a dense autoencoder or PCA (thesis 2.4.1).

    The study's grid (Table 2.3): autoencoder learning rates 1e-2 to 1e-5, layer widths
    300/250/200/512/256, 200/150/125/100/256/128, 150/125/100/75/128/64, bottlenecks 32 to 100;
    PCA with the LAPACK, ARPACK or randomised solver and 32 to 100 components. Training: MSE,
    Adam, batch 32, at most 100 epochs, early stopping after 5 epochs without a lower validation
    loss. The best tag embedding was the 512-200-125-32 autoencoder trained at 1e-2. The defaults
    are those values.

    Args:
        method: ``"autoencoder"`` (:class:`~radtl.networks.autoencoder.DenseAutoencoder`) or ``"pca"``.
        dim: embedding size: the bottleneck width, or PCA's number of components.
        hidden: the autoencoder encoder's dense widths, widest first.
        learning_rate: the autoencoder's Adam learning rate.
        batch_size: the autoencoder's mini-batch size (also used by :meth:`transform`).
        max_epochs: the most epochs of autoencoder training.
        patience: epochs without a lower validation loss before training stops.
        pca_solver: PCA's ``svd_solver``, one of :data:`PCA_SOLVERS`.
        validation_fraction: share of the training rows held out for early stopping when
            :meth:`fit` gets no validation matrix (seeded random rows).
        seed: seeds the network's initialisation, the batch order, the held-out rows and PCA.
        device: where the autoencoder runs; None for ``"cuda"`` if available, else ``"cpu"``.
        progress: show a training progress bar (None: only on a terminal).
    """

    _name = "tag_encoder"

    def __init__(
        self,
        method: str = "autoencoder",
        dim: int = 32,
        *,
        hidden: Sequence[int] = (512, 200, 125),
        learning_rate: float = 1e-2,
        batch_size: int = 32,
        max_epochs: int = 100,
        patience: int = 5,
        pca_solver: str = "auto",
        validation_fraction: float = 0.1,
        seed: int = 0,
        device: str | torch.device | None = None,
        progress: bool | None = False,
    ) -> None:
        super().__init__(seed, device, progress)
        if method not in TAG_METHODS:
            raise ValueError(f"method must be one of {TAG_METHODS}, got {method!r}")
        if pca_solver not in PCA_SOLVERS:
            raise ValueError(f"pca_solver must be one of {PCA_SOLVERS}, got {pca_solver!r}")
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
        self.method = method
        self._dim = int(dim)
        self.hidden = tuple(int(h) for h in hidden)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.pca_solver = pca_solver
        self.validation_fraction = float(validation_fraction)
        #: Width of the feature matrix ``fit`` saw; None before fitting.
        self.in_features: int | None = None

    def __repr__(self) -> str:
        return f"TagEncoder(method={self.method!r}, dim={self._dim}, in_features={self.in_features})"

    @property
    def dim(self) -> int:
        """Embedding size."""
        return self._dim

    def _params(self) -> dict:
        return {
            "method": self.method,
            "dim": self._dim,
            "hidden": list(self.hidden),
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "pca_solver": self.pca_solver,
            "validation_fraction": self.validation_fraction,
            "seed": self.seed,
        }

    def _state(self) -> dict:
        return {"in_features": self.in_features}

    def _restore(self, state: dict) -> None:
        self.in_features = int(state["in_features"])

    def _new_network(self) -> DenseAutoencoder | None:
        if self.method != "autoencoder":
            return None
        return _seeded(lambda: DenseAutoencoder(self.in_features, self.hidden, self._dim), self.seed)

    def _loader(self, X: np.ndarray, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(torch.from_numpy(X), batch_size=self.batch_size, shuffle=shuffle, generator=generator)

    def fit(self, X: Any, validation: Any = None) -> TagEncoder:
        """Fit on the ``(n, f)`` tag feature matrix ``X`` (values in [0, 1]).

        Args:
            X: training rows.
            validation: rows for early stopping; None holds out ``validation_fraction`` of ``X``.
                PCA ignores it.
        """
        X = _feature_matrix(X, "X")
        self.in_features = X.shape[1]
        if self.method == "pca":
            self._pca = PCA(n_components=self._dim, svd_solver=self.pca_solver, random_state=self.seed).fit(X)
            self.history = None
        else:
            if validation is None:
                train, held_out = _split_validation(len(X), self.validation_fraction, self.seed)
                X, validation = X[train], X[held_out]
            else:
                validation = self._check_features(_feature_matrix(validation, "validation"), "validation")
            self._train(self._loader(X, shuffle=True), self._loader(validation, shuffle=False))
        self._fitted = True
        return self

    def _check_features(self, X: np.ndarray, name: str) -> np.ndarray:
        if X.shape[1] != self.in_features:
            raise ValueError(f"{name} has {X.shape[1]} features; this TagEncoder was fitted on {self.in_features}")
        return X

    def transform(self, X: Any) -> np.ndarray:
        """Embed the ``(n, f)`` matrix ``X``: ``(n, dim)`` float32."""
        self._check_fitted()
        X = self._check_features(_feature_matrix(X, "X"), "X")
        if self._pca is not None:
            return self._pca.transform(X).astype(np.float32, copy=False)
        return _embed(self._network, self._loader(X, shuffle=False), _device(self.device))

    def fit_transform(self, X: Any, validation: Any = None) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of ``X``."""
        return self.fit(X, validation).transform(X)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike, image_size: int) -> torch.Tensor:
    """Load an image file as the CAE's input: ``(1, S, S)`` float32 in [0, 1] with ``S = image_size``.

    :func:`~radtl.data.images.read_radiograph` reads it (PNG/JPEG / 255; DICOM through radtl's
    conversion), then :func:`~radtl.dicom.image.resize_longest_pad` fits it into
    ``S x S`` keeping its aspect ratio, centred and zero-padded: the study's preprocessing (thesis
    2.3.2, 256 x 256 for clustering), and the same function as ``radtl convert``, the pack and the
    bundles' ``ResizeLongestPadd``. The result is rounded to 8 bits, as the converted archive the
    CAE learns from holds them; for a DICOM file the input is ``radtl convert``'s grey PNG / 255.

    Raises:
        ValueError: ``image_size`` is not positive, or the file cannot be read as an image
            (the message names the path).
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    try:
        image, _ = read_radiograph(path)
    except (OSError, ValueError, DicomConversionError) as error:
        raise ValueError(f"{path}: cannot be read as an image ({type(error).__name__}: {error})") from error
    square = to_uint8(resize_longest_pad(image, int(image_size)))
    return torch.from_numpy(square.astype(np.float32) / 255.0)[None]


class _ImageDataset(Dataset):
    """MONAI Dataset of image paths loaded by :func:`load_image`, letting its ValueError through.

    The loading function is called directly rather than as the Dataset's transform: MONAI's
    ``Compose`` wraps a transform's exception in a RuntimeError, and the caller needs the
    ValueError that names the unreadable path.
    """

    def __init__(self, paths: Sequence[str], image_size: int) -> None:
        super().__init__(data=list(paths))
        self.load = partial(load_image, image_size=image_size)

    def _transform(self, index: int) -> torch.Tensor:
        return self.load(self.data[index])


def _path_list(paths: Any, name: str) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(f"{name} must be a sequence of paths, got the single path {paths!r}")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError(f"{name} is empty")
    return paths


class ImageEncoder(_Encoder):
    """Embed converted images with the study's convolutional autoencoder (CAE), optionally then PCA (thesis 2.4.1).

    Images are loaded by :func:`load_image` (``image_size`` square, aspect kept, zero-padded)
    and the :class:`~radtl.networks.autoencoder.ConvAutoencoder` is trained on them with
    :func:`train_autoencoder`: MSE, Adam, batch 32, at most 40 epochs, validation twice per
    epoch, early stopping after 5 validations without a lower loss. The embedding is the
    flattened latent map, ``bottleneck * (image_size / 2**len(channels))**2`` values
    (262,144 at the defaults), reduced by PCA when ``pca_components`` is set. The study's grid
    (Table 2.3): learning rates 1e-4 to 1e-7; PCA not applied, or 100, 500, 1,000 or 10,000
    components (LAPACK, ARPACK or randomised); the best image embedding was the CAE at 1e-6
    with PCA to 500 components.

    Args:
        image_size: side of the square input images, divisible by ``2**len(channels)``.
        channels: the CAE encoder's filters per level.
        bottleneck: the CAE's bottleneck filters.
        learning_rate: Adam's learning rate; 1e-6 was the study's best on 1.3 million images,
            a small archive needs a larger one (1e-4 to 1e-3) to learn in few steps.
        batch_size: mini-batch size, for training and for :meth:`transform`.
        max_epochs: the most training epochs.
        patience: validations without a lower validation loss before training stops.
        validations_per_epoch: validations per epoch.
        pca_components: None for the raw flattened latent; an int fits a PCA (randomised SVD)
            on the training images' embeddings after training and applies it in :meth:`transform`.
        validation_fraction: share of the training paths held out for early stopping when
            :meth:`fit` gets no validation paths (seeded random choice).
        seed: seeds the network's initialisation, the batch order, the held-out paths and PCA.
        device: where the CAE runs; None for ``"cuda"`` if available, else ``"cpu"``.
        num_workers: DataLoader worker processes loading images.
        progress: show a training progress bar (None: only on a terminal).
    """

    _name = "image_encoder"
    _runtime = ("device", "num_workers", "progress")

    def __init__(
        self,
        image_size: int = 256,
        channels: Sequence[int] = (64, 128, 256, 512),
        bottleneck: int = 1024,
        *,
        learning_rate: float = 1e-6,
        batch_size: int = 32,
        max_epochs: int = 40,
        patience: int = 5,
        validations_per_epoch: int = 2,
        pca_components: int | None = None,
        validation_fraction: float = 0.1,
        seed: int = 0,
        device: str | torch.device | None = None,
        num_workers: int = 0,
        progress: bool | None = False,
    ) -> None:
        super().__init__(seed, device, progress)
        self.channels = tuple(int(c) for c in channels)
        factor = 2 ** len(self.channels)
        if int(image_size) != image_size or image_size < 1 or image_size % factor:
            raise ValueError(
                f"image_size must be a positive multiple of 2**len(channels) = {factor} "
                f"({len(self.channels)} pooling levels), got {image_size!r}"
            )
        if pca_components is not None and (int(pca_components) != pca_components or pca_components < 1):
            raise ValueError(f"pca_components must be None or a positive integer, got {pca_components!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
        self.image_size = int(image_size)
        self.bottleneck = int(bottleneck)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.validations_per_epoch = int(validations_per_epoch)
        self.pca_components = None if pca_components is None else int(pca_components)
        self.validation_fraction = float(validation_fraction)
        self.num_workers = int(num_workers)

    def __repr__(self) -> str:
        return (
            f"ImageEncoder(image_size={self.image_size}, channels={self.channels}, bottleneck={self.bottleneck}, "
            f"pca_components={self.pca_components})"
        )

    @property
    def dim(self) -> int:
        """Embedding size: ``pca_components``, or the flattened latent map's size."""
        if self.pca_components is not None:
            return self.pca_components
        return self.bottleneck * (self.image_size // 2 ** len(self.channels)) ** 2

    def _params(self) -> dict:
        return {
            "image_size": self.image_size,
            "channels": list(self.channels),
            "bottleneck": self.bottleneck,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "validations_per_epoch": self.validations_per_epoch,
            "pca_components": self.pca_components,
            "validation_fraction": self.validation_fraction,
            "seed": self.seed,
        }

    def _new_network(self) -> ConvAutoencoder:
        return _seeded(
            lambda: ConvAutoencoder(spatial_dims=2, in_channels=1, channels=self.channels, bottleneck=self.bottleneck),
            self.seed,
        )

    def _loader(self, paths: Sequence[str], shuffle: bool) -> DataLoader:
        return DataLoader(
            _ImageDataset(paths, self.image_size),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def fit(
        self, paths: Sequence[str | os.PathLike], validation_paths: Sequence[str | os.PathLike] | None = None
    ) -> ImageEncoder:
        """Train the CAE on the images at ``paths`` (then fit the PCA, if any, on their embeddings).

        Args:
            paths: training image files (PNG exports of the archive).
            validation_paths: images for early stopping; None holds out ``validation_fraction`` of ``paths``.

        Raises:
            ValueError: an image cannot be read (the message names it).
        """
        paths = _path_list(paths, "paths")
        if validation_paths is None:
            train, held_out = _split_validation(len(paths), self.validation_fraction, self.seed)
            paths, validation_paths = [paths[i] for i in train], [paths[i] for i in held_out]
        else:
            validation_paths = _path_list(validation_paths, "validation_paths")
        self._train(
            self._loader(paths, shuffle=True), self._loader(validation_paths, shuffle=False), self.validations_per_epoch
        )
        self._pca = None
        if self.pca_components is not None:
            latent = _embed(self._network, self._loader(paths, shuffle=False), _device(self.device))
            self._pca = PCA(n_components=self.pca_components, svd_solver="randomized", random_state=self.seed)
            self._pca.fit(latent)
        self._fitted = True
        return self

    def transform(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Embed the images at ``paths``: ``(n, dim)`` float32, in batches of ``batch_size``.

        Raises:
            ValueError: an image cannot be read (the message names it).
        """
        self._check_fitted()
        loader = self._loader(_path_list(paths, "paths"), shuffle=False)
        reduce = self._pca.transform if self._pca is not None else None
        return _embed(self._network, loader, _device(self.device), reduce)

    def fit_transform(
        self, paths: Sequence[str | os.PathLike], validation_paths: Sequence[str | os.PathLike] | None = None
    ) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of ``paths``."""
        return self.fit(paths, validation_paths).transform(paths)
