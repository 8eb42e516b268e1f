"""The radtl MONAI Label app: radtl's bundles served to 3D Slicer and OHIF.

Started by ``radtl-label start_server --app apps/radtl --studies <folder or DICOMweb URL> --conf models
luna_nodule_seg,covid19_cxr`` (see ``docs/label.md``). The ``--conf`` keys it reads:

- ``models``: the bundles to serve, comma-separated (default ``luna_nodule_seg``), or ``all``.
  A segmentation bundle gets an infer task and a train task; a classification or regression bundle an infer task.
- ``<bundle>``: a JSON object of that bundle's settings, e.g. ``--conf luna_nodule_seg '{"threshold": 0.4}'``;
  its ``checkpoint`` names the weights to serve ahead of the app's fine-tuned ``model/<bundle>/model.pt``
  and the bundle's ``models/model.pt``.
- ``validation_every``: one labelled image in this many validates a fine-tuning run (default 5).
- ``allow_overwrite``: ``true`` lets an upload replace an image already in the studies folder (default false).
- ``allow_delete``: ``true`` lets a client delete images and labels (default false).

Every bundle setting is parsed to its type by :func:`radtl.bundle.checked_settings`: nothing given here reaches
MONAI's config parser as text it would evaluate.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

import radtl
from radtl.bundle import (
    Bundle,
    BundleKind,
    Setting,
    bundle_table,
    checked_settings,
    parse_bool,
    resolve_bundle,
)
from radtl.dicom.seg import LUNG_NODULE, Algorithm, checkpoint_parameters, write_segmentation

from .datastore import FolderDatastore, PacsDatastore, checked_label, http_errors
from .tasks import BundleClassification, BundleFineTune, BundleRegression, BundleSegmentation, LabelTaskError

__all__ = ["DEFAULT_MODELS", "RadtlApp", "bundle_kind"]

logger = logging.getLogger(__name__)

DEFAULT_MODELS = "luna_nodule_seg"


#: The kinds of bundle the app serves (:class:`radtl.bundle.BundleKind`, declared in each ``metadata.json``).
SERVABLE = (BundleKind.SEGMENTATION, BundleKind.CLASSIFICATION, BundleKind.REGRESSION)

#: The infer task of each servable kind.
INFER_TASKS = {
    BundleKind.SEGMENTATION: BundleSegmentation,
    BundleKind.CLASSIFICATION: BundleClassification,
    BundleKind.REGRESSION: BundleRegression,
}


def servable_bundles() -> list[str]:
    """radtl's bundles that the app can serve: those of a kind in :data:`SERVABLE`."""
    return [row.name for row in bundle_table() if row.kind in SERVABLE]


def bundle_kind(bundle: str | os.PathLike) -> BundleKind:
    """``segmentation``, ``classification`` or ``regression``: the kind the bundle's ``metadata.json`` declares.

    Raises:
        ValueError: a bundle the app cannot serve (a pretraining bundle).
    """
    kind = Bundle(bundle).kind
    if kind not in SERVABLE:
        raise ValueError(
            f"bundle {Path(bundle).name!r} is not a segmentation, classification or regression bundle; "
            f"servable: {', '.join(servable_bundles())}"
        )
    return kind


class RadtlApp(MONAILabelApp):
    """radtl's bundles as MONAI Label infer and train tasks, over a local folder or a DICOMweb PACS."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        requested = conf.get("models", DEFAULT_MODELS)
        names = (
            servable_bundles() if requested.strip() == "all" else [m.strip() for m in requested.split(",") if m.strip()]
        )
        if not names:
            raise ValueError("--conf models names no bundle; give e.g. luna_nodule_seg,covid19_cxr or all")
        self.model_dir = Path(app_dir) / "model"
        self.kinds = {name: bundle_kind(name) for name in names}
        self.bundle_settings = {name: self._settings(conf, name) for name in names}
        self.chosen_checkpoints = {
            name: settings_.pop("checkpoint", None) for name, settings_ in self.bundle_settings.items()
        }
        self.validation_every = Setting(int, 1, 1000).parse("--conf validation_every", conf.get("validation_every", 5))
        self.allow_overwrite = parse_bool("--conf allow_overwrite", conf.get("allow_overwrite", False))
        self.allow_delete = parse_bool("--conf allow_delete", conf.get("allow_delete", False))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="radtl",
            description="radtl's RadiologyNET bundles: lung-nodule segmentation and radiograph classification",
            version=radtl.__version__,
        )

    @staticmethod
    def _settings(conf: dict[str, str], name: str) -> dict[str, Any]:
        if name not in conf:
            return {}
        try:
            settings_ = json.loads(conf[name])
        except json.JSONDecodeError as error:
            raise ValueError(f"--conf {name} must be a JSON object of bundle settings: {error}") from None
        if not isinstance(settings_, dict):  # a --conf value the user typed, not a caller's type
            raise ValueError(  # noqa: TRY004
                f"--conf {name} must be a JSON object of bundle settings, got {conf[name]!r}"
            )
        return checked_settings(settings_, f"--conf {name}")

    def checkpoints(self, name: str) -> list[Path]:
        """Where bundle ``name``'s weights may be, in order of preference."""
        chosen = self.chosen_checkpoints[name]
        trained = [self.model_dir / name / "model.pt", resolve_bundle(name) / "models" / "model.pt"]
        return [Path(chosen), *trained] if chosen else trained

    def init_datastore(self) -> Datastore:
        if self.studies.startswith(("http://", "https://")):
            self.studies = self.studies.rstrip("/")
            cache = (settings.MONAI_LABEL_DICOMWEB_CACHE_PATH or "").strip() or None
            return PacsDatastore(
                self.studies, settings.MONAI_LABEL_DICOMWEB_SEARCH_FILTER, cache, allow_delete=self.allow_delete
            )
        segmentation = [name for name, kind in self.kinds.items() if kind is BundleKind.SEGMENTATION]
        segments = max((len(Bundle(name).config["labels"]) for name in segmentation), default=1)
        return FolderDatastore(
            self.studies,
            segments=segments,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
            allow_overwrite=self.allow_overwrite,
            allow_delete=self.allow_delete,
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, kind in self.kinds.items():
            infers[name] = INFER_TASKS[kind](name, self.checkpoints(name), self.bundle_settings[name])
            if not infers[name].is_valid():
                logger.warning(
                    "%s has no trained weights yet (%s); train it before inferring",
                    name,
                    ", ".join(map(str, self.checkpoints(name))),
                )
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        return {
            name: BundleFineTune(
                name, self.model_dir / name, self.checkpoints(name), self.bundle_settings[name], self.validation_every
            )
            for name, kind in self.kinds.items()
            if kind is BundleKind.SEGMENTATION
        }

    def infer(self, request: dict, datastore: Datastore | None = None) -> dict:
        """MONAI Label's inference, with a missing model or image and unusable input answered as HTTP errors.

        The image is an id of the datastore: MONAI Label would also take a path on the server (any file the
        server can read), which radtl refuses.
        """
        model, image = request.get("model"), request.get("image")
        if model not in self._infers:
            raise HTTPException(
                status_code=404, detail=f"no model {model!r}; this server serves {', '.join(self._infers)}"
            )
        store = datastore or self.datastore()
        with http_errors(f"{model} on image {image!r}"):
            if not isinstance(image, str) or image not in store.list_images():
                raise HTTPException(status_code=404, detail=f"no image {image!r} in the datastore {store.name()}")
            return super().infer(request, datastore)

    def infer_dicom_seg(self, model: str, image: str) -> Path:
        """``/infer/<model>?output=dicom_seg``: the segmentation of a DICOM series as radtl's DICOM-SEG, in a
        temporary file the caller removes.

        MONAI Label converts there with pydicom-seg, which radtl does not install (see :mod:`radtl.label.compat`);
        :class:`radtl.label.seg_output.DicomSegOutput` routes the request here instead. The label the task infers is
        checked against the series' grid (:func:`radtl.label.datastore.checked_label`) and written by
        :func:`radtl.dicom.seg.write_segmentation`, the writer of ``radtl segment`` and of final labels: Segment
        Algorithm Type AUTOMATIC with the bundle, its version and checkpoint as the Algorithm Identification, every
        frame referencing its source instance (PS3.3 C.8.20.2).

        Raises:
            HTTPException: 404 for a model or image the server does not have, 422 for a model that does not segment
                or an image that is not a DICOM series, 502 for a failing PACS.
        """
        task = self._infers.get(model)
        if task is not None and not isinstance(task, BundleSegmentation):
            raise HTTPException(
                status_code=422, detail=f"output=dicom_seg needs a segmentation model; {model} is a {task.type.value} model"
            )
        result = self.infer({"model": model, "image": image})
        store = self.datastore()
        label = Path(result["file"])
        try:
            with http_errors(f"{model} on image {image!r} as DICOM-SEG"):
                series = Path(store.get_image_uri(image))
                if not series.is_dir():
                    raise LabelTaskError(
                        f"output=dicom_seg needs a DICOM series, and image {image!r} is {series.name}; serve the "
                        "studies from a PACS (--studies http://.../dicom-web), or ask for output=image"
                    )
                mask = checked_label(label, series, segments=1)
                params = result["params"]
                version = str(params.get("version") or "")
                algorithm = Algorithm(task.name, version, checkpoint_parameters(params["checkpoint"]))
                handle, name = tempfile.mkstemp(prefix="radtl-label-", suffix=".seg.dcm")
                os.close(handle)
                try:
                    return write_segmentation(name, mask, series, algorithm, getattr(store, "segment", LUNG_NODULE))
                except BaseException:
                    Path(name).unlink(missing_ok=True)
                    raise
        finally:
            label.unlink(missing_ok=True)

    def train(self, request: dict) -> dict:
        """MONAI Label's training, with the request's bundle settings parsed to their types first (422 otherwise)."""
        with http_errors(f"train request for {request.get('model')!r}"):
            BundleFineTune.request_settings(request)
        return super().train(request)
