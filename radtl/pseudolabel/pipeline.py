"""``radtl pseudolabel CONFIG``: an unlabelled archive to pseudo-labels, the RadiologyNET way (thesis 2.4).

From a metadata index (:mod:`radtl.dicom.index`), the 8-bit images ``radtl convert`` wrote and
a CSV of report texts, the pipeline

1. lists the items: one per converted image (a frame of a file), or one per file whose
   conversion failed (it still has tags and a report);
2. splits them into training / validation / test by patient, so that no patient's images are
   on both sides;
3. embeds each source it has: DICOM tags (the tag feature table, then the autoencoder or PCA),
   images (the convolutional autoencoder), report text (BoW, TF-IDF or Doc2Vec), every
   extractor fitted on the training split and saved under ``OUT/models``;
4. fuses the sources (``embeddings``, ``clusterdists`` or ``clusterprobs``), clusters the
   training items (k given, or at the Kneedle elbow) and assigns every item to its nearest centre;
5. scores the clusters on each split (HS, NMI, S, D_I, D_D, D_score, against a shuffled-label
   baseline), drops the clusters whose Modality or body-part mix is too mixed, and writes ``OUT/labels.csv``,
   ``OUT/clusters.csv``, ``OUT/metrics.json``, ``OUT/datalist.json`` (the kept items as a
   MONAI datalist for pretraining) and ``OUT/report/`` (mosaic, composition charts, embedding
   map, report.md and report.html).

A source the configuration asks for but the archive lacks (no reports CSV, an index without
the report key, no converted images) is left out with a note; items that lack one source (a
study without a report, an image that failed conversion) are counted per source and reason,
and fused with that source's mean training embedding (:mod:`radtl.pseudolabel.fusion`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from radtl.atomic import write_json_atomic
from radtl.dicom.index import connect, profile_columns, selected_columns, sql_identifier
from radtl.pseudolabel.cluster import STUDY_KS, ClusterModel, cluster_stability, elbow
from radtl.pseudolabel.fusion import SourceFusion, missing_rows
from radtl.pseudolabel.metrics import ClusterRule, cluster_composition, clustering_scores, distance_scores
from radtl.pseudolabel.tag_features import ARCHIVE_IMPUTER_PARAMS, TagFeatureTable

__all__ = [
    "SOURCES",
    "ClusteringConfig",
    "FusionConfig",
    "PseudolabelConfig",
    "PseudolabelResult",
    "ReportConfig",
    "SplitConfig",
    "load_config",
    "run_pseudolabel",
]

logger = logging.getLogger(__name__)

#: The sources, in the order their blocks are concatenated (the thesis' ``[f(x_D), f(x_T), f(x_I)]``).
SOURCES = ("text", "tags", "images")
SPLIT_NAMES = ("training", "validation", "test")


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass
class SplitConfig:
    """How items are split: by ``group_by`` (a patient's items stay together), seeded.

    Args:
        validation: fraction of the groups in the validation split.
        test: fraction of the groups in the test split.
        group_by: the index column that groups items (files without it are their own group).
        seed: the shuffling seed (the study's 1221).
    """

    validation: float = 0.1
    test: float = 0.1
    group_by: str = "PatientID"
    seed: int = 1221


@dataclass
class FusionConfig:
    """How the sources are fused (:class:`~radtl.pseudolabel.fusion.SourceFusion`).

    Args:
        method: ``embeddings``, ``clusterdists`` or ``clusterprobs``.
        balance: scale each source's block to the same mean norm (the study: False).
        k: the clusters of each source's own clustering for ``clusterdists`` / ``clusterprobs``:
            a number, ``"elbow"``, or a mapping from source to either.
    """

    method: str = "embeddings"
    balance: bool = False
    k: Any = "elbow"


@dataclass
class ClusteringConfig:
    """The final clustering (:class:`~radtl.pseudolabel.cluster.ClusterModel`).

    Args:
        algorithm: ``kmeans``, ``minibatch-kmeans`` or ``kmedoids``.
        metric: ``euclidean`` or (k-medoids) ``cosine``.
        k: the number of clusters, or ``"elbow"`` for Kneedle over ``ks``.
        ks: the k values the elbow tries (the study's by default).
        seed: the clustering seed.
        stability_runs: reruns with seeds 0, 1, ... whose agreement is reported (the study: 11).
        batch_size: rows per mini-batch.
        medoid_sample: rows FasterPAM sees.
    """

    algorithm: str = "kmeans"
    metric: str = "euclidean"
    k: Any = "elbow"
    ks: tuple[int, ...] = STUDY_KS
    seed: int = 0
    stability_runs: int = 1
    batch_size: int = 4096
    medoid_sample: int = 5000


@dataclass
class ReportConfig:
    """What the report draws.

    Args:
        per_cluster: images per cluster in the mosaic.
        tile: mosaic tile size in pixels.
        embedding: the 2-D map of the fused embedding: ``tsne``, ``umap``, ``pca``, or ``none``.
        max_points: most items in the map.
    """

    per_cluster: int = 8
    tile: int = 64
    embedding: str = "tsne"
    max_points: int = 5000


@dataclass
class PseudolabelConfig:
    """Everything ``radtl pseudolabel`` does, as read from a YAML or JSON file (:func:`load_config`).

    Args:
        index: the metadata index folder.
        out: the output folder.
        tags: the tag source: :class:`~radtl.pseudolabel.encoders.TagEncoder` arguments, plus
            optional ``continuous`` / ``categorical`` column lists (default: the profile's
            selection), ``features`` (a ``tag_features.parquet`` from ``radtl tag-features``
            instead of fitting the table here), ``sample`` (training files the table is fitted
            on, at most; default 20,000). None leaves the source out.
        images: the image source: ``folder`` (what ``radtl convert`` wrote, with its
            ``manifest.csv``) and :class:`~radtl.pseudolabel.encoders.ImageEncoder` arguments.
        text: the report source: ``reports`` (a CSV), ``key`` (the index column the CSV's
            ``id_column`` matches, default AccessionNumber), ``id_column`` (default: ``key``),
            ``text_column`` (default ``text``) and :class:`~radtl.pseudolabel.text.TextEmbedder`
            arguments.
        split: :class:`SplitConfig`.
        fusion: :class:`FusionConfig`.
        clustering: :class:`ClusteringConfig`.
        keep: :class:`~radtl.pseudolabel.metrics.ClusterRule` arguments.
        report: :class:`ReportConfig`.
    """

    index: str
    out: str
    tags: dict | None = None
    images: dict | None = None
    text: dict | None = None
    split: SplitConfig = field(default_factory=SplitConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    keep: ClusterRule = field(default_factory=ClusterRule)
    report: ReportConfig = field(default_factory=ReportConfig)


def _build(cls, values: Mapping | None, where: str):
    if values is None:
        return cls()
    if not isinstance(values, Mapping):
        raise TypeError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return cls(**values)


def _resolve(path: str | None, base: Path) -> str | None:
    return None if path is None else str((base / Path(path).expanduser()).resolve())


def load_config(source: str | os.PathLike | Mapping, **overrides) -> PseudolabelConfig:
    """Read a configuration (a YAML or JSON file, or a mapping); relative paths are relative to the file.

    Args:
        source: the file, or the settings as a mapping (paths then relative to the working folder).
        overrides: top-level settings that replace the file's (``out=...``).
    """
    if isinstance(source, Mapping):
        values, base = dict(source), Path.cwd()
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no pseudo-labelling configuration at {path}")
        values, base = yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path.resolve().parent
        if not isinstance(values, Mapping):
            raise TypeError(f"{path}: the configuration must be a mapping of settings")
    values = {**values, **{k: v for k, v in overrides.items() if v is not None}}
    missing = [name for name in ("index", "out") if not values.get(name)]
    if missing:
        raise ValueError(f"the configuration needs {' and '.join(missing)}")
    sections = {"split": SplitConfig, "fusion": FusionConfig, "clustering": ClusteringConfig, "keep": ClusterRule,
                "report": ReportConfig}
    built = {name: _build(cls, values.get(name), name) for name, cls in sections.items()}
    sources = {}
    for name in SOURCES:
        section = values.get(name)
        if section is not None and not isinstance(section, Mapping):
            raise TypeError(f"{name}: expected a mapping of settings (or leave it out), got {section!r}")
        sources[name] = None if section is None else dict(section)
    for name, key in (("tags", "features"), ("images", "folder"), ("text", "reports")):
        if sources[name] is not None and sources[name].get(key) is not None:
            sources[name][key] = _resolve(sources[name][key], base)
    if sources["images"] is not None and not sources["images"].get("folder"):
        raise ValueError("images: name the folder radtl convert wrote (images: {folder: ...})")
    if sources["text"] is not None and not sources["text"].get("reports"):
        raise ValueError("text: name the reports CSV (text: {reports: ...})")
    known = {"index", "out", *SOURCES, *sections}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if isinstance(built["clustering"].ks, list):
        built["clustering"].ks = tuple(built["clustering"].ks)
    return PseudolabelConfig(index=_resolve(values["index"], base), out=_resolve(values["out"], base), **sources, **built)


# --------------------------------------------------------------------------------------------
# Items and splits
# --------------------------------------------------------------------------------------------


@dataclass
class SourceStatus:
    """How many items a source covers, and why the others have no embedding."""

    used: bool
    items: int = 0
    missing: Counter = field(default_factory=Counter)
    note: str = ""

    def as_dict(self) -> dict:
        return {"used": self.used, "items": self.items, "missing": dict(self.missing), "note": self.note}


def _index_columns(con) -> set[str]:
    return {row[0] for row in con.execute("DESCRIBE dicom").fetchall()}


def _read_files(config: PseudolabelConfig) -> tuple[pd.DataFrame, int, set[str]]:
    """The index's readable files with what the pipeline needs of them, and the count of unreadable ones."""
    with connect(config.index) as con:
        columns = _index_columns(con)
        wanted = {"Modality": "Modality", "BodyPartExaminedImputed": "BodyPart", config.split.group_by: "group"}
        text = config.text or {}
        if config.text is not None and text.get("key", "AccessionNumber") in columns:
            wanted[text.get("key", "AccessionNumber")] = "report_key"
        select = ", ".join(["path"] + [f"{sql_identifier(c)} AS {sql_identifier(alias)}" if c in columns else f"NULL AS {sql_identifier(alias)}"
                                       for c, alias in wanted.items()])
        files = con.execute(f"SELECT {select} FROM dicom WHERE status = 'ok' ORDER BY path").df()
        failed = int(con.execute("SELECT count(*) FROM dicom WHERE status <> 'ok'").fetchone()[0])
    if "report_key" not in files:
        files["report_key"] = None
    return files, failed, columns


def _items(files: pd.DataFrame, images: dict | None, status: SourceStatus) -> pd.DataFrame:
    """One row per converted image, or per file without one (``image`` empty, reason recorded)."""
    if images is None:
        return files.assign(frame=0, image="")
    folder = Path(images["folder"])
    manifest_path = folder / "manifest.csv"
    if not manifest_path.is_file():
        status.used, status.note = False, f"no conversion manifest at {manifest_path}: images left out"
        return files.assign(frame=0, image="")
    manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    ok = manifest[manifest["status"] == "ok"]
    converted = files.merge(ok[["source", "frame", "output"]], left_on="path", right_on="source", how="inner")
    converted = converted.assign(frame=converted["frame"].astype(int),
                                 image=[str(folder / output) for output in converted["output"]])
    rest = files[~files["path"].isin(ok["source"])]
    reasons = manifest[manifest["status"] != "ok"].groupby("source")["reason"].first()
    for path in rest["path"]:
        reason = reasons.get(path)
        status.missing[f"conversion: {reason}" if reason else "not in the conversion manifest"] += 1
    items = pd.concat([converted.drop(columns=["source", "output"]), rest.assign(frame=0, image="")], ignore_index=True)
    return items.sort_values(["path", "frame"], ignore_index=True)


def _split(items: pd.DataFrame, config: SplitConfig) -> np.ndarray:
    """``training`` / ``validation`` / ``test`` for each item, whole groups at a time."""
    if config.validation < 0 or config.test < 0 or config.validation + config.test >= 1:
        raise ValueError(f"split fractions validation={config.validation}, test={config.test} leave no training split")
    groups = items["group"].astype(object).where(items["group"].notna() & (items["group"].astype(str) != ""), items["path"])
    names = np.array(sorted(set(groups.astype(str))))
    order = np.random.default_rng(config.seed).permutation(len(names))
    n_test, n_validation = round(config.test * len(names)), round(config.validation * len(names))
    assigned = np.empty(len(names), dtype=object)
    assigned[order[:n_test]] = "test"
    assigned[order[n_test:n_test + n_validation]] = "validation"
    assigned[order[n_test + n_validation:]] = "training"
    lookup = dict(zip(names, assigned))
    return groups.astype(str).map(lookup).to_numpy()


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------

_TAG_TABLE_KEYS = ("continuous", "categorical", "features", "sample", "imputer_params")
#: Training files the tag feature table is fitted on at most (``tags.sample``), as ``radtl tag-features``.
TAG_TABLE_SAMPLE = 20_000


def _tag_embeddings(config: PseudolabelConfig, items: pd.DataFrame, split: np.ndarray, models: Path,
                    status: SourceStatus, progress: bool | None) -> np.ndarray:
    from radtl.pseudolabel.encoders import TagEncoder

    settings = dict(config.tags)
    table_settings = {k: settings.pop(k) for k in _TAG_TABLE_KEYS if k in settings}
    if table_settings.get("features"):
        features = pd.read_parquet(table_settings["features"]).set_index("path")
    else:
        continuous, categorical = table_settings.get("continuous"), table_settings.get("categorical")
        if continuous is None and categorical is None:
            continuous, categorical = selected_columns(profile_columns(config.index))
        columns = list(continuous or ()) + list(categorical or ())
        if not columns:
            status.used, status.note = False, "no tag column passes the selection rules: tags left out"
            return np.full((len(items), 0), np.nan, np.float32)
        with connect(config.index) as con:
            frame = con.execute(f"SELECT path, {', '.join(map(sql_identifier, columns))} FROM dicom "
                                "WHERE status = 'ok' ORDER BY path").df().set_index("path")
        training_files = items.loc[split == "training", "path"].unique()
        sample = frame.loc[training_files]
        rows = int(table_settings.get("sample") or TAG_TABLE_SAMPLE)
        if len(sample) > rows:
            sample = sample.sample(rows, random_state=config.split.seed)
        logger.info("tags: fitting the feature table (%d tags) on %d training files", len(columns), len(sample))
        table = TagFeatureTable(list(continuous or ()), list(categorical or ()),
                                imputer_params=table_settings.get("imputer_params") or ARCHIVE_IMPUTER_PARAMS,
                                random_state=config.split.seed).fit(sample)
        table.save(models / "tag_features.joblib")
        features = table.transform(frame)
    missing = ~items["path"].isin(features.index)
    status.missing.update({"no tag features": int(missing.sum())} if missing.any() else {})
    per_item = features.reindex(items["path"]).to_numpy(dtype=np.float32)
    training, validation = (split == "training") & ~missing, (split == "validation") & ~missing
    encoder = TagEncoder(**{"progress": progress, **settings})
    encoder.fit(_unique_rows(per_item, items["path"], training),
                validation=_unique_rows(per_item, items["path"], validation) if validation.any() else None)
    encoder.save(models / "tags")
    embedding = np.full((len(items), encoder.dim), np.nan, np.float32)
    embedding[~missing] = encoder.transform(per_item[~missing])
    status.items = int((~missing).sum())
    return embedding


def _unique_rows(matrix: np.ndarray, keys: pd.Series, rows: np.ndarray) -> np.ndarray:
    """The rows of ``matrix`` selected by ``rows``, one per key (frames of one file share tags)."""
    first = ~keys.duplicated().to_numpy()
    return matrix[rows & first]


def _image_embeddings(config: PseudolabelConfig, items: pd.DataFrame, split: np.ndarray, models: Path,
                      status: SourceStatus, progress: bool | None) -> np.ndarray:
    from radtl.pseudolabel.encoders import ImageEncoder

    settings = {k: v for k, v in config.images.items() if k != "folder"}
    has_image = (items["image"] != "").to_numpy()
    training, validation = has_image & (split == "training"), has_image & (split == "validation")
    if not training.any():
        status.used, status.note = False, "no training item has a converted image: images left out"
        return np.full((len(items), 0), np.nan, np.float32)
    encoder = ImageEncoder(**{"progress": progress, **settings})
    encoder.fit(list(items.loc[training, "image"]),
                validation_paths=list(items.loc[validation, "image"]) if validation.any() else None)
    encoder.save(models / "images")
    embedding = np.full((len(items), encoder.dim), np.nan, np.float32)
    embedding[has_image] = encoder.transform(list(items.loc[has_image, "image"]))
    status.items = int(has_image.sum())
    return embedding


def _read_reports(text: dict) -> pd.Series:
    """Report text by id; several rows with one id are joined in file order."""
    key = text.get("key", "AccessionNumber")
    id_column, text_column = text.get("id_column") or key, text.get("text_column", "text")
    reports = pd.read_csv(text["reports"], dtype=str, keep_default_na=False)
    absent = [c for c in (id_column, text_column) if c not in reports.columns]
    if absent:
        raise ValueError(f"{text['reports']}: no column {' or '.join(absent)} (it has {', '.join(reports.columns)})")
    return reports.groupby(id_column, sort=False)[text_column].agg(lambda texts: " ".join(t for t in texts if t))


def _text_embeddings(config: PseudolabelConfig, items: pd.DataFrame, split: np.ndarray, models: Path,
                     status: SourceStatus, index_columns: set[str]) -> np.ndarray:
    from radtl.pseudolabel.text import TextEmbedder, usable_report

    settings = {k: v for k, v in config.text.items() if k not in ("reports", "key", "id_column", "text_column")}
    key = config.text.get("key", "AccessionNumber")
    if key not in index_columns:
        status.used, status.note = False, f"the index has no {key} column to match reports on: text left out"
        return np.full((len(items), 0), np.nan, np.float32)
    if not Path(config.text["reports"]).is_file():
        status.used, status.note = False, f"no reports file at {config.text['reports']}: text left out"
        return np.full((len(items), 0), np.nan, np.float32)
    reports = _read_reports(config.text)
    keys = items["report_key"].astype(object).where(items["report_key"].notna(), None)
    texts = keys.map(lambda k: reports.get(k) if k is not None else None)
    usable = texts.map(lambda t: t is not None and usable_report(t)).to_numpy(dtype=bool)
    reasons = np.where(keys.isna(), f"no {key}", np.where(texts.isna(), "no report", "report too short"))
    status.missing.update(Counter(reasons[~usable]))
    training = usable & (split == "training")
    if not training.any():
        status.used, status.note = False, "no training item has a usable report: text left out"
        return np.full((len(items), 0), np.nan, np.float32)
    embedder = TextEmbedder(**settings).fit(list(pd.unique(texts[training])))
    embedder.save(models / "text")
    distinct = list(pd.unique(texts[usable]))
    vectors = dict(zip(distinct, embedder.transform(distinct)))
    embedding = np.full((len(items), embedder.dim), np.nan, np.float32)
    embedding[usable] = np.stack([vectors[t] for t in texts[usable]])
    status.items = int(usable.sum())
    return embedding


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


@dataclass
class PseudolabelResult:
    """What :func:`run_pseudolabel` wrote and measured.

    Attributes:
        out: the output folder.
        k: the number of clusters.
        kept: the clusters kept as pseudo-labels.
        metrics: the content of ``metrics.json``.
        notes: what was missing or left out, one line each.
    """

    out: Path
    k: int
    kept: list[int]
    metrics: dict
    notes: list[str]

    def __str__(self) -> str:
        lines = [f"{self.k} clusters, {len(self.kept)} kept as pseudo-labels; written to {self.out}"]
        def shown(value) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        for split, scores in self.metrics["splits"].items():
            if scores["items"]:
                lines.append(f"  {split:<10} items {scores['items']:>7}  S {shown(scores['S'])} "
                             f"(shuffled {shown(scores['S_shuffled'])})  HS_M {shown(scores['HS_M'])}  "
                             f"HS_B {shown(scores['HS_B'])}  D_score {shown(scores['D_score'])}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _choose_k(X: np.ndarray, setting, clustering: ClusteringConfig, where: str, metrics: dict) -> int:
    if setting != "elbow":
        return int(setting)
    result = elbow(X, clustering.ks, clustering.algorithm, clustering.metric, clustering.seed,
                   batch_size=clustering.batch_size, medoid_sample=clustering.medoid_sample)
    metrics[where] = {"ks": list(result.ks), "objective": list(result.inertias), "k": result.k, "note": result.note}
    return result.k


def _split_scores(clusters: np.ndarray, items: pd.DataFrame, embeddings: Mapping[str, np.ndarray], seed: int) -> dict:
    if not len(clusters):
        return {"items": 0}
    scores = clustering_scores(clusters, items["Modality"], items["BodyPart"])
    shuffled = np.random.default_rng(seed).permutation(clusters)
    scores["S_shuffled"] = clustering_scores(shuffled, items["Modality"], items["BodyPart"])["S"]
    scores.update(distance_scores(clusters, embeddings.get("images"), embeddings.get("text")))
    return {"items": len(clusters), **scores}


def _json_value(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return _json_value(value.item())
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def run_pseudolabel(config: PseudolabelConfig | str | os.PathLike | Mapping, progress: bool | None = None,
                    **overrides) -> PseudolabelResult:
    """Run the whole pipeline of the module docstring; return what it wrote and measured.

    Args:
        config: a :class:`PseudolabelConfig`, or what :func:`load_config` reads.
        progress: show progress bars while the encoders train; None (default) only on a terminal
            (:func:`radtl.logs.show_progress`). Each encoder logs one line per epoch either way.
        overrides: top-level settings replacing the file's (``out=...``).
    """
    if not isinstance(config, PseudolabelConfig):
        config = load_config(config, **overrides)
    out = Path(config.out)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", _json_value(dataclasses.asdict(config)))

    files, failed, index_columns = _read_files(config)
    if files.empty:
        raise ValueError(f"{config.index} has no file read without error: nothing to label")
    status = {name: SourceStatus(used=getattr(config, name) is not None) for name in SOURCES}
    for name in SOURCES:
        if not status[name].used:
            status[name].note = f"{name}: not configured"
    items = _items(files, config.images, status["images"])
    split = _split(items, config.split)
    items["split"] = split
    logger.info("%d items from %d files (%d unreadable files in the index)", len(items), len(files), failed)

    embeddings: dict[str, np.ndarray] = {}
    extractors = {"tags": lambda s: _tag_embeddings(config, items, split, models, s, progress),
                  "images": lambda s: _image_embeddings(config, items, split, models, s, progress),
                  "text": lambda s: _text_embeddings(config, items, split, models, s, index_columns)}
    for name in SOURCES:
        if status[name].used:
            logger.info("embedding source %s", name)
            embedding = extractors[name](status[name])
            if status[name].used:
                logger.info("%s: %d-d embeddings of %d of %d items", name, embedding.shape[1], status[name].items, len(items))
                embeddings[name] = embedding
                np.save(out / f"embeddings_{name}.npy", embedding)
    if not embeddings:
        raise ValueError("no source left to cluster: " + "; ".join(s.note for s in status.values() if s.note))

    metrics: dict[str, Any] = {}
    cluster_models = {}
    training = split == "training"
    if config.fusion.method != "embeddings":
        for name, embedding in embeddings.items():
            present = training & ~missing_rows(embedding)
            setting = config.fusion.k.get(name, "elbow") if isinstance(config.fusion.k, Mapping) else config.fusion.k
            k = _choose_k(embedding[present], setting, config.clustering, f"elbow_{name}", metrics)
            cluster_models[name] = ClusterModel(k, config.clustering.algorithm, config.clustering.metric,
                                                config.clustering.seed, config.clustering.batch_size,
                                                config.clustering.medoid_sample)
    fusion = SourceFusion(config.fusion.method, cluster_models, config.fusion.balance)
    fusion.fit({name: embedding[training] for name, embedding in embeddings.items()})
    fused = fusion.transform(embeddings)
    fusion.save(models / "fusion.joblib")

    k = _choose_k(fused[training], config.clustering.k, config.clustering, "elbow", metrics)
    logger.info("clustering %d training items of %d fused features into k=%d clusters (%s)",
                int(training.sum()), fused.shape[1], k, config.clustering.algorithm)
    model = ClusterModel(k, config.clustering.algorithm, config.clustering.metric, config.clustering.seed,
                         config.clustering.batch_size, config.clustering.medoid_sample).fit(fused[training])
    model.save(models / "clusters.joblib")
    clusters = model.predict(fused)
    if config.clustering.stability_runs > 1:
        stability = cluster_stability(fused[training], k, tuple(range(config.clustering.stability_runs)),
                                      config.clustering.algorithm, config.clustering.metric,
                                      batch_size=config.clustering.batch_size, medoid_sample=config.clustering.medoid_sample)
        metrics["stability"] = {"seeds": list(stability.seeds), "objective": list(stability.inertias),
                                "adjusted_rand_mean": stability.mean_adjusted_rand,
                                "adjusted_rand_min": min(stability.adjusted_rand)}

    composition = cluster_composition(clusters, items["Modality"], items["BodyPart"], config.keep)
    kept = [int(c) for c in composition.loc[composition["kept"], "cluster"]]
    lacking = {name: missing_rows(embedding) for name, embedding in embeddings.items()}
    missing_sources = [";".join(name for name, rows in lacking.items() if rows[row]) for row in range(len(items))]
    labels = items.assign(cluster=clusters, kept=np.isin(clusters, kept), missing_sources=missing_sources)
    labels[["path", "frame", "image", "split", "cluster", "kept", "missing_sources", "Modality", "BodyPart"]].to_csv(
        out / "labels.csv", index=False)
    composition.to_csv(out / "clusters.csv", index=False)

    metrics["k"] = k
    metrics["kept"] = kept
    metrics["items"] = len(items)
    metrics["unreadable_files"] = failed
    metrics["sources"] = {name: s.as_dict() for name, s in status.items()}
    metrics["splits"] = {name: _split_scores(clusters[split == name], items[split == name],
                                             {n: e[split == name] for n, e in embeddings.items()}, config.split.seed)
                         for name in SPLIT_NAMES}
    notes = _notes(status, len(items), failed)
    metrics["notes"] = notes
    write_json_atomic(out / "metrics.json", _json_value(metrics))
    _write_datalist(labels, composition, out / "datalist.json")

    _write_report(out / "report", labels, composition, metrics, fused, config.report, config.split.seed)
    return PseudolabelResult(out, k, kept, _json_value(metrics), notes)


def _notes(status: Mapping[str, SourceStatus], items: int, failed: int) -> list[str]:
    notes = [f"{failed} file(s) in the index could not be read: not labelled"] if failed else []
    for name, source in status.items():
        if source.note:
            notes.append(source.note)
        for reason, count in sorted(source.missing.items()):
            notes.append(f"{name} missing for {count} of {items} items: {reason}")
    return notes


def _write_datalist(labels: pd.DataFrame, composition: pd.DataFrame, path: Path) -> None:
    """The kept items with images as a MONAI datalist; classes numbered 0.. in cluster order."""
    from radtl.data.datalist import write_datalist

    kept = composition[composition["kept"]].reset_index(drop=True)
    classes = {int(row.cluster): i for i, row in enumerate(kept.itertuples())}
    names = {str(i): f"cluster {int(row.cluster)}: {row.modality} {row.body_part}" for i, row in enumerate(kept.itertuples())}
    datalist: dict[str, Any] = {"task": {"name": "radtl_pseudolabels", "kind": "multiclass"}, "labels": names}
    usable = labels[labels["kept"] & (labels["image"] != "")]
    for split in SPLIT_NAMES:
        rows = usable[usable["split"] == split]
        datalist[split] = [{"image": row.image, "label": classes[int(row.cluster)], "cluster": int(row.cluster),
                            "source": row.path, "frame": int(row.frame),
                            "modality": row.Modality, "body_part": row.BodyPart} for row in rows.itertuples()]
    write_datalist(datalist, path)


def _write_report(folder: Path, labels: pd.DataFrame, composition: pd.DataFrame, metrics: Mapping, fused: np.ndarray,
                  settings: ReportConfig, seed: int) -> Path:
    """``report/``: mosaic, composition charts, elbow, 2-D map, and report.md / report.html tying them together."""
    from radtl.pseudolabel import report

    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    with_image = labels[labels["image"] != ""]
    if len(with_image):
        kept = set(metrics["kept"])
        figures["Random images per cluster (thesis Fig. 2.12)"] = report.cluster_mosaic(
            with_image.groupby("cluster")["image"].apply(list).to_dict(), folder / "mosaic.png",
            per_cluster=settings.per_cluster, tile=settings.tile, seed=seed,
            labels={c: "kept" if c in kept else "dropped" for c in with_image["cluster"].unique()})
    for column, title in (("BodyPart", "BodyPartExamined per cluster"), ("Modality", "Modality per cluster")):
        figures[f"{title} (thesis Fig. 2.11)"] = report.composition_chart(
            labels["cluster"], labels[column], folder / f"composition_{column.lower()}.png", title=title)
    if "elbow" in metrics:
        elbow_metrics = metrics["elbow"]
        figures["Elbow of the clustering objective (Kneedle)"] = report.elbow_plot(
            elbow_metrics["ks"], elbow_metrics["objective"], elbow_metrics["k"], folder / "elbow.png")
    if settings.embedding != "none" and len(fused) >= 3:
        figures[f"Fused embeddings ({settings.embedding})"] = report.embedding_plot(
            fused, {"Modality": labels["Modality"].tolist(), "BodyPartExamined": labels["BodyPart"].tolist(),
                    "cluster": labels["cluster"].astype(str).tolist()},
            folder / "embedding.png", method=settings.embedding, max_points=settings.max_points, seed=seed)
    scores = pd.DataFrame({split: {name: value for name, value in values.items()}
                           for split, values in metrics["splits"].items() if values["items"]}).T
    scores = scores.astype({column: int for column in ("items", "n_M", "n_B") if column in scores})
    sources = pd.DataFrame({name: {"used": s["used"], "items": s["items"], "missing": sum(s["missing"].values())}
                            for name, s in metrics["sources"].items()}).T
    summary = {"items": metrics["items"], "clusters (k)": metrics["k"], "kept as pseudo-labels": len(metrics["kept"]),
               "unreadable files": metrics["unreadable_files"]}
    if "stability" in metrics:
        summary["stability (mean adjusted Rand)"] = metrics["stability"]["adjusted_rand_mean"]
    report.write_report(folder, title="Pseudo-labels", summary=summary,
                        tables={"Scores per split (thesis Eq. 2.6-2.9)": scores, "Sources": sources,
                                "Clusters": composition},
                        figures=figures, notes=metrics["notes"])
    return folder
