"""radtl's bundles as MONAI Label tasks: the parts come from each bundle's own configs, by name.

- :class:`BundleSegmentation` runs a segmentation bundle (``luna_nodule_seg``) the way its
  ``inference.json`` does: ``inference_transforms`` + ``network_input``, the bundle's ``inferer``,
  sigmoid, then ``infer#mask`` (threshold, small-component removal); the mask goes back to the
  client as a NIfTI label on the image's grid, with the image's RAS affine.
- :class:`BundleClassification` runs a classification bundle (``covid19_cxr``, ``btmr``,
  ``grazpedwri_osteopenia``): ``image_transforms`` + ``network_input``, the network, the bundle's
  ``postprocessing`` (sigmoid or softmax); the answer is a label and a score per class, as JSON.
- :class:`BundleRegression` runs a regression bundle (``bone_age``) the same way, with the patient's sex
  read from the image's DICOM header (Patient's Sex (0010,0040), M or F) as the network's second input;
  the answer is the predicted value in the bundle's ``unit`` (months), as JSON.
- :class:`BundleFineTune` fine-tunes a segmentation bundle on the final labels in the datastore by
  running the bundle's ``train.json`` with the datastore's images and labels as its datalist,
  starting from the weights being served, and writes the new ``model.pt`` where the infer task finds it.

A task serves the first checkpoint of its list that exists: the app's own fine-tuned model, then the
bundle's ``models/model.pt``. A checkpoint replaced on disk is loaded again at the next request.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import torch
from monai.data import MetaTensor
from monai.transforms import Activationsd, Compose
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
from monailabel.interfaces.tasks.train import TrainTask

from radtl.atomic import write_json_atomic
from radtl.bundle import (
    Bundle,
    check_inert,
    checked_settings,
    resolve_bundle,
    root_cause,
    run_workflow,
)
from radtl.dicom.series import series_files
from radtl.errors import RadtlError

__all__ = [
    "BundleClassification",
    "BundleFineTune",
    "BundleRegression",
    "BundleSegmentation",
    "LabelTaskError",
    "patient_sex",
    "write_label",
]

logger = logging.getLogger(__name__)


class LabelTaskError(RadtlError, ValueError):
    """A request a task cannot serve as given: no trained weights, an image it cannot read, too few labels."""


def write_label(mask: np.ndarray, affine: np.ndarray | torch.Tensor, path: str | os.PathLike | None = None) -> Path:
    """Write an ``(X, Y, Z)`` label as NIfTI with the image's voxel-to-RAS ``affine``; a temporary file by default."""
    if path is None:
        handle, name = tempfile.mkstemp(prefix="radtl-label-", suffix=".nii.gz")
        os.close(handle)
        path = name
    affine = affine.numpy() if isinstance(affine, torch.Tensor) else np.asarray(affine)
    image = nib.Nifti1Image(np.asarray(mask, dtype=np.uint8), affine.astype(np.float64))
    image.set_qform(affine, code=1)  # scanner coordinates, as the image's own
    image.set_sform(affine, code=1)
    nib.save(image, str(path))
    return Path(path)


class _BundleTask:
    """What every task shares: the bundle's parsed configs, its metadata and the checkpoint being served."""

    def __init__(
        self,
        bundle: str | os.PathLike,
        checkpoints: Sequence[str | os.PathLike],
        settings: dict,
        configs: Sequence[str],
    ) -> None:
        self.bundle = Bundle(bundle, dict(settings), configs)
        self.root, self.name, self.metadata = self.bundle.root, self.bundle.name, self.bundle.metadata
        self.bundle_config = self.bundle.config
        self.checkpoints = [Path(c) for c in checkpoints]
        self.device = self.bundle.device
        self._lock = threading.Lock()
        self._network: torch.nn.Module | None = None
        self._loaded: tuple[Path, float] | None = None

    def checkpoint(self) -> Path | None:
        """The checkpoint served now: the first of the list that exists."""
        return next((path for path in self.checkpoints if path.is_file()), None)

    def is_valid(self) -> bool:
        """MONAI Label lists only valid tasks in ``/info/``: those with weights to serve."""
        return self.checkpoint() is not None

    def network(self) -> tuple[torch.nn.Module, Path]:
        """The bundle's network with the served checkpoint, loaded again when the file changed."""
        checkpoint = self.checkpoint()
        if checkpoint is None:
            raise LabelTaskError(
                f"{self.name} has no trained weights (looked for {', '.join(map(str, self.checkpoints))}); "
                f"train the bundle or the app's {self.name} train task first"
            )
        with self._lock:
            stamp = (checkpoint, checkpoint.stat().st_mtime)
            if self._network is None or self._loaded != stamp:
                self._network, self._loaded = self.bundle.network(checkpoint), stamp
                logger.info("%s: serving %s", self.name, checkpoint)
            return self._network, checkpoint

    def image_pipeline(self) -> None:
        """An image-level bundle's ``image_transforms`` + ``network_input`` and its ``postprocessing``."""
        self.preprocess = self.bundle.transforms("image_transforms", "network_input")
        self.postprocess = self.bundle_config.get_parsed_content("postprocessing")

    def network_input(self, image_path: str) -> torch.Tensor:
        """The image as the network takes it, ``(1, C, H, W)`` on the task's device (:meth:`image_pipeline`)."""
        try:
            image = self.preprocess({"image": image_path})["image"]
        except Exception as error:  # MONAI wraps the reader's error; the client gets the real one
            raise LabelTaskError(f"{self.name} cannot read {image_path}: {root_cause(error)}") from error
        return image.as_tensor()[None].to(self.device)

    def served_by(self, checkpoint: Path) -> dict[str, str | None]:
        """The part of every answer that names the model: bundle, version and checkpoint."""
        return {"bundle": self.name, "version": self.metadata.get("version"), "checkpoint": str(checkpoint)}

    def image_file(self, image_path: str) -> str:
        """A radiograph is one file; a series folder fetched from a PACS must hold exactly one instance."""
        if not Path(image_path).is_dir():
            return image_path
        files = series_files(image_path)
        if len(files) != 1:
            raise LabelTaskError(
                f"{self.name} classifies one image; series folder {image_path} holds {len(files)} files"
            )
        return str(files[0])

    def summary(self) -> str:
        """The task's description for clients: the bundle's task, name and version."""
        return f"{self.metadata.get('task', self.name)} (radtl bundle {self.name} {self.metadata.get('version', '')})"


class BundleSegmentation(_BundleTask, InferTask):
    """A segmentation bundle as a MONAI Label infer task: an image in, a NIfTI label on its grid out.

    Args:
        bundle: the bundle's folder or name (``luna_nodule_seg``).
        checkpoints: where the weights may be, in order of preference.
        settings: bundle settings to override (``threshold``, ``backbone``, ``init``...).
    """

    def __init__(
        self, bundle: str | os.PathLike, checkpoints: Sequence[str | os.PathLike], settings: dict | None = None
    ):
        binary = {**(settings or {}), "fractional": False}  # the label goes back as a mask, whatever ``fractional`` says
        _BundleTask.__init__(self, bundle, checkpoints, binary, ["train.json", "inference.json"])
        self.labels_list = [str(label) for label in self.bundle_config["labels"]]
        InferTask.__init__(
            self,
            type=InferType.SEGMENTATION,
            labels={label: number for number, label in enumerate(self.labels_list, start=1)},
            dimension=3,
            description=self.summary(),
            config={"threshold": self.bundle_config["threshold"]},
        )
        self.preprocess = self.bundle.transforms("inference_transforms", "network_input")
        self.inferer = self.bundle_config.get_parsed_content("inferer")
        self.postprocess = Compose(
            [Activationsd(keys="pred", sigmoid=True), self.bundle_config.get_parsed_content("infer#mask")]
        )

    def __call__(self, request: dict) -> tuple[str, dict]:
        network, checkpoint = self.network()
        image_path = request["image"]
        try:
            image = self.preprocess({"image": image_path})["image"]
        except Exception as error:  # MONAI wraps the reader's error; the client gets the real one
            raise LabelTaskError(f"{self.name} cannot read {image_path}: {root_cause(error)}") from error
        with torch.no_grad():
            logits = self.inferer(image.as_tensor()[None].to(self.device), network)[0].float().cpu()
        pred = self.postprocess({"pred": MetaTensor(logits, affine=image.affine, meta=dict(image.meta))})["pred"]
        mask = np.asarray(pred[0].numpy() > 0, dtype=np.uint8)
        path = write_label(mask, image.affine)
        return str(path), {
            "label_names": self.labels,
            **self.served_by(checkpoint),
            "foreground_voxels": int(mask.sum()),
        }


class BundleClassification(_BundleTask, InferTask):
    """A classification bundle as a MONAI Label infer task: an image in, a label and a score per class out.

    Args:
        bundle: the bundle's folder or name (``covid19_cxr``, ``btmr``, ``grazpedwri_osteopenia``).
        checkpoints: where the weights may be, in order of preference.
        settings: bundle settings to override (``image_size``, ``backbone``, ``init``...).
    """

    def __init__(
        self, bundle: str | os.PathLike, checkpoints: Sequence[str | os.PathLike], settings: dict | None = None
    ):
        _BundleTask.__init__(self, bundle, checkpoints, settings or {}, ["train.json"])
        if "image_transforms" not in self.bundle_config.get() or "labels" not in self.bundle_config.get():
            raise ValueError(f"{self.name}: not an image classification bundle (no labels / image_transforms)")
        self.class_names = [str(label) for label in self.bundle_config["labels"]]
        InferTask.__init__(
            self,
            type=InferType.CLASSIFICATION,
            labels=self.class_names,
            dimension=2,
            description=self.summary(),
        )
        self.image_pipeline()

    def __call__(self, request: dict) -> tuple[None, dict]:
        network, checkpoint = self.network()
        image = self.network_input(self.image_file(request["image"]))
        with torch.no_grad():
            logits = network(image)[0].float().cpu()
        probabilities = self.postprocess({"pred": logits})["pred"].reshape(-1).tolist()
        if len(probabilities) == 1 and len(self.class_names) == 2:  # one logit: the positive class's probability
            probabilities = [1.0 - probabilities[0], probabilities[0]]
        if len(probabilities) != len(self.class_names):
            raise LabelTaskError(f"{self.name} gave {len(probabilities)} outputs for labels {self.class_names}")
        scores = {label: round(float(p), 6) for label, p in zip(self.class_names, probabilities)}
        return None, {
            "prediction": max(scores, key=scores.get),
            "scores": scores,
            **self.served_by(checkpoint),
        }


#: Patient's Sex (0010,0040) as the bone-age network takes it (PS3.3 C.7.1.1: M male, F female, O other).
SEX_INPUT = {"M": 1.0, "F": 0.0}


def patient_sex(image_path: str | os.PathLike, model: str) -> float:
    """The patient's sex from the image's DICOM header as ``model``'s input: 1.0 male, 0.0 female.

    Args:
        image_path: the image file.
        model: the model that needs it, for the message.

    Raises:
        LabelTaskError: a file that is not DICOM, or Patient's Sex (0010,0040) absent, empty, ``O`` or another
            value than M or F.
    """
    name = Path(image_path).name
    try:
        header = pydicom.dcmread(image_path, stop_before_pixels=True, specific_tags=["PatientSex"])
    except (pydicom.errors.InvalidDicomError, OSError) as error:
        raise LabelTaskError(
            f"{model} needs the patient's sex from the image's DICOM header, and {name} is not DICOM ({error})"
        ) from error
    value = str(header.get("PatientSex", None) or "").strip().upper()
    if value not in SEX_INPUT:
        found = f"is {value!r}" if value else "is absent or empty"
        raise LabelTaskError(
            f"{model} needs the patient's sex: Patient's Sex (0010,0040) of {name} {found}; "
            "it must be M or F (set it in the PACS, or run the bundle with --sex_csv)"
        )
    return SEX_INPUT[value]


class BundleRegression(_BundleTask, InferTask):
    """A regression bundle as a MONAI Label infer task: a radiograph and its patient's sex in, a value out.

    ``bone_age``: the image goes through ``image_transforms`` + ``network_input``, the network takes it with the
    sex read from the DICOM header by :func:`patient_sex` (the same 1.0 male / 0.0 female the bundle's datalists
    give), and the bundle's ``postprocessing`` turns the output back into months.

    Args:
        bundle: the bundle's folder or name (``bone_age``).
        checkpoints: where the weights may be, in order of preference.
        settings: bundle settings to override (``image_size``, ``backbone``, ``init``...).
    """

    def __init__(
        self, bundle: str | os.PathLike, checkpoints: Sequence[str | os.PathLike], settings: dict | None = None
    ):
        _BundleTask.__init__(self, bundle, checkpoints, settings or {}, ["train.json"])
        self.unit = str(self.bundle_config.get("unit", "") or "")
        InferTask.__init__(
            self,
            type=InferType.CLASSIFICATION,  # MONAI Label's nearest type: one answer per image, as JSON
            labels=[self.unit] if self.unit else [],
            dimension=2,
            description=self.summary(),
        )
        self.image_pipeline()

    def __call__(self, request: dict) -> tuple[None, dict]:
        network, checkpoint = self.network()
        image_path = self.image_file(request["image"])
        sex = patient_sex(image_path, self.name)
        image = self.network_input(image_path)
        with torch.no_grad():
            output = network(image, torch.tensor([sex], device=self.device))
        value = float(self.postprocess({"pred": output[0].float().cpu()})["pred"].reshape(-1)[0])
        return None, {
            "prediction": round(value, 3),
            "unit": self.unit,
            "sex": "M" if sex else "F",
            **self.served_by(checkpoint),
        }


class BundleFineTune(TrainTask):
    """Fine-tune a segmentation bundle on the datastore's final labels with the bundle's own ``train.json``.

    Every ``validation_every``-th labelled image (at least one) validates; the rest train. The run starts
    from the weights being served and writes ``model.pt`` (best validation Dice), ``history.json`` and
    ``datalist.json`` to ``output_dir``, the first place the infer task looks.

    Args:
        bundle: the bundle's folder or name.
        output_dir: where the fine-tuned model goes (``<app>/model/<bundle>``).
        start_from: checkpoints to start from, in order of preference (the infer task's list).
        settings: bundle settings (``max_epochs``, ``lr``, ``batch_size``...); a request's
            ``max_epochs``, ``lr``, ``patience`` and ``batch_size`` override them per run, each parsed
            to its type by :func:`request_settings` (a value of another type is refused, never evaluated).
        validation_every: the share of labelled images kept for validation, one in this many.
    """

    REQUEST_SETTINGS = ("max_epochs", "lr", "patience", "batch_size")

    @classmethod
    def request_settings(cls, request: dict) -> dict:
        """The bundle settings a train request gives (:attr:`REQUEST_SETTINGS`), parsed to their types.

        MONAI Label's own keys in the request (``model``, ``device``, ``name``...) are not bundle settings and stay out.

        Raises:
            radtl.bundle.SettingError: a setting of another type or out of its bounds, named.
        """
        given = {key: request[key] for key in cls.REQUEST_SETTINGS if key in request}
        return checked_settings(given, "a train request", cls.REQUEST_SETTINGS)

    def __init__(
        self,
        bundle: str | os.PathLike,
        output_dir: str | os.PathLike,
        start_from: Sequence[str | os.PathLike] = (),
        settings: dict | None = None,
        validation_every: int = 5,
    ) -> None:
        self.root = resolve_bundle(bundle)
        self.name = self.root.name
        self.output_dir = Path(output_dir)
        self.start_from = [Path(p) for p in start_from]
        self.settings = dict(settings or {})
        self.validation_every = int(validation_every)
        super().__init__(f"Fine-tune {self.name} on the datastore's final labels with the bundle's train.json")

    def config(self) -> dict:
        return {
            "max_epochs": self.settings.get("max_epochs", 50),
            "lr": self.settings.get("lr", 1e-4),
            "validation_every": self.validation_every,
        }

    def split(self, items: list[dict]) -> dict[str, list[dict]]:
        """The datalist: every ``validation_every``-th item validates, the rest train (each part at least one)."""
        if len(items) < 2:
            raise LabelTaskError(
                f"fine-tuning {self.name} needs at least 2 images with final labels (1 to validate); the datastore has "
                f"{len(items)}"
            )
        ordered = sorted(items, key=lambda item: item["image"])
        validation = ordered[:: self.validation_every]
        training = [item for item in ordered if item not in validation]
        return {"training": training, "validation": validation}

    def __call__(self, request: dict, datastore: Datastore) -> dict:
        requested = self.request_settings(request)
        items = [{"image": item["image"], "label": item["label"]} for item in datastore.datalist()]
        datalist = self.split(items)
        check_inert(datalist, "datalist")
        start = next((path for path in self.start_from if path.is_file()), None)
        settings = {**self.config(), **self.settings}
        settings.pop("validation_every", None)
        settings.update(requested)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.output_dir / "datalist.json", datalist, indent=2)
        overrides = {
            **settings,
            "bundle_root": str(self.root),
            "output_dir": str(self.output_dir),
            "datalist": datalist,
            "pretrained": str(start) if start else "",
        }
        logger.info(
            "%s: fine-tuning on %d image(s), validating on %d, from %s",
            self.name,
            len(datalist["training"]),
            len(datalist["validation"]),
            start or "random weights",
        )
        configs = self.root / "configs"
        run_workflow([configs / "train.json"], overrides)
        model = self.output_dir / "model.pt"
        if not model.is_file():
            raise RuntimeError(f"{self.name}'s training ran but wrote no {model}")
        return {
            "model": str(model),
            "started_from": str(start) if start else None,
            "training": len(datalist["training"]),
            "validation": len(datalist["validation"]),
        }
