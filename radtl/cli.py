"""The ``radtl`` command line: a thin ``fire`` layer over the library.

radtl convert SRC OUT [--size 256] [--formula dicom|paper] [--workers N] [--scheduler tcp://host:port]
              [--max_pixel_bytes 1073741824]
radtl index SRC DB [--workers N] [--scheduler tcp://host:port] [--include_private] [--exclude_phi] [--retry_errors]
            [--max_pixel_bytes 1073741824]
radtl query DB "SQL" [--out FILE.parquet|FILE.csv]
radtl profile DB [--out profile.csv] [--min_fill_rate 0.35] [--max_levels 50]
radtl impute-body-part DB [--rules FILE.yaml]
radtl tag-features DB OUT [--sample 100000] [--continuous a,b] [--categorical c,d]
radtl pseudolabel CONFIG.yaml [--out DIR]
radtl pack DATALIST.json OUT [--size 224] [--shard_size 4096] [--splits training,validation,test] [--workers N]
           [--scheduler tcp://host:port]
radtl networks
radtl sweep BUNDLE [--lrs 1e-2,1e-3,1e-4,1e-5] [--repeats 5] [--init random,imagenet:PATH,radiologynet:PATH]
                   [--backbones a,b] [--train_fraction 0.05,0.25,0.5] [--output_dir DIR] [--max_epochs 10 ...]
radtl check-weights NETWORK CHECKPOINT [--source auto|radiologynet|torchvision|radtl] [--strict]
                    [--in_channels 3] [--num_classes 1000] [--out_channels ...]
radtl segment SERIES_DIR --out SEG.dcm|FOLDER/ [--overwrite] [--bundle luna_nodule_seg] [--send URL] [--fractional]
              [--fetch URL --study UID --series UID] [--checkpoint PATH] [--threshold 0.5 ...]
radtl send FILE [FILE ...] --to URL
radtl report SWEEP_DIR [SWEEP_DIR ...] --out DIR [--ratings SHEET.csv[,SHEET.csv] --key KEY.csv]
radtl gradcam BUNDLE --checkpoint MODEL.pt --out DIR [--split test] [--method gradcam|gradcam++] [--limit N]
radtl rating-sheet --sources NAME=HEATMAP_DIR,NAME=HEATMAP_DIR --out DIR [--n 20] [--seed 0]
radtl probe BUNDLE --checkpoint CKPT --out DIR [--ks 1,5,20] [--scales 224,112,56] [--lora_ranks 8,16]
radtl perturb BUNDLE --checkpoints NAME=MODEL.pt[,NAME=MODEL.pt] --out DIR [--shifts 0.1,0.2] [--scales 0.8,1.2]
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import fire

from radtl.data.packed import PackError, write_pack
from radtl.dicom.convert import ConversionOptions
from radtl.dicom.export import ExportSettings, convert_tree
from radtl.dicom.index import IndexStoreError, body_part_report, build_index, profile_columns, write_query
from radtl.dicom.io import DEFAULT_MAX_PIXEL_BYTES
from radtl.dicom.series import SeriesError
from radtl.networks import CheckpointError, available, create, load_pretrained
from radtl.pseudolabel import tag_features_from_index
from radtl.pseudolabel.pipeline import run_pseudolabel
from radtl.seg.pacs import PacsError
from radtl.seg.pacs import send as send_to_pacs
from radtl.seg.segment import segment as run_segment
from radtl.sweep import sweep as run_sweep


class RadtlCLI:
    """radtl: radiology transfer learning on MONAI."""

    def convert(
        self,
        src: str,
        out: str,
        size: int = 256,
        formula: str = "dicom",
        workers: int = 1,
        scheduler: str | None = None,
        color: str = "gray",
        voi: str = "lut",
        compress_level: int = 1,
        min_value_fraction: float = 0.1,
        min_aspect: float = 0.1,
        retry_errors: bool = False,
        progress: bool | None = None,
        max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES,
    ) -> None:
        """Convert DICOM files under SRC to 8-bit PNGs in OUT, with OUT/manifest.csv.

        OUT/settings.json records the options that shape the images; a re-run on OUT with other
        ones stops with exit status 2 naming the difference (workers, scheduler, retry_errors,
        compress_level and max_pixel_bytes may change).

        Args:
            src: a DICOM file, or a folder searched recursively.
            out: output folder (re-running on it resumes).
            size: output side N of the N x N image (aspect kept, zero padded); 0 keeps native size.
            formula: dicom (PS3.3 C.11.2 windowing) or paper (RadiologyNET's formula).
            workers: processes on this machine (a local Dask cluster when > 1).
            scheduler: address of a Dask scheduler (tcp://host:port) to run on a cluster.
            color: gray (colour images to luma) or rgb (kept as RGB).
            voi: lut or window: which VOI transform to try first when a file has both.
            compress_level: PNG compression 0-9 (all lossless; 1 is fast).
            min_value_fraction: value policy: drop frames with <= this fraction of 256 grey levels.
            min_aspect: shape policy: drop frames whose short/long side ratio is <= this.
            retry_errors: try again the files that ended in error on an earlier run.
            progress: show a progress bar (default: on a terminal).
            max_pixel_bytes: per-file budget: decoded pixel bytes declared by the header, and the
                size a deflated file may inflate to (default 1 GiB); a file beyond is an error row.
        """
        with _exit_on_bad_input("radtl convert"):
            settings = ExportSettings(
                size=size,
                conversion=ConversionOptions(formula=formula, voi_preference=voi, color=color,
                                             max_pixel_bytes=int(max_pixel_bytes)),
                compress_level=compress_level,
                min_value_fraction=min_value_fraction,
                min_aspect=min_aspect,
            )
            summary = convert_tree(
                src, out, settings, workers=workers, scheduler=scheduler, retry_errors=retry_errors, progress=progress
            )
        print(summary)
        print(f"manifest: {out}/manifest.csv")

    def index(
        self,
        src: str,
        db: str,
        workers: int = 1,
        scheduler: str | None = None,
        include_private: bool = False,
        exclude_phi: bool = False,
        retry_errors: bool = False,
        chunk_size: int = 1000,
        progress: bool | None = None,
        max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES,
    ) -> None:
        """Index the headers of every DICOM file under SRC into the Parquet dataset DB (re-running updates it).

        Args:
            src: the archive: a folder searched recursively, or one file.
            db: the index folder; a re-run indexes only new and changed files.
            workers: processes on this machine (a local Dask cluster when > 1).
            scheduler: address of a Dask scheduler (tcp://host:port) to run on a cluster.
            include_private: index private attributes too (Private_GGGG_EEEE text columns).
            exclude_phi: leave out the PS3.15 basic de-identification profile's attributes (UIDs hashed).
            retry_errors: read again the files that ended in error on an earlier run.
            chunk_size: files per task and per Parquet part.
            progress: show a progress bar (default: on a terminal).
            max_pixel_bytes: the most a deflated file's data set may inflate to (default 1 GiB).
        """
        try:
            summary = build_index(src, db, workers=workers, scheduler=scheduler, include_private=include_private,
                                  exclude_phi=exclude_phi, retry_errors=retry_errors, chunk_size=chunk_size,
                                  progress=progress, max_pixel_bytes=int(max_pixel_bytes))
        except (IndexStoreError, FileNotFoundError) as error:
            print(f"radtl index: {error}", file=sys.stderr)
            raise SystemExit(2) from error
        print(summary)
        print(f"query it: radtl query {db} \"SELECT Modality, count(*) FROM dicom GROUP BY ALL\"")

    def query(self, db: str, sql: str, out: str | None = None) -> None:
        """Run SQL over the index DB (the table is `dicom`); print CSV, or write --out FILE.parquet / FILE.csv.

        Args:
            db: the index folder.
            sql: a DuckDB query, e.g. "SELECT Modality, count(*) AS files FROM dicom GROUP BY ALL".
            out: write the result to this .parquet or .csv file instead of printing it.
        """
        try:
            rows = write_query(db, sql, out)
        except (IndexStoreError, ValueError, duckdb.Error) as error:
            print(f"radtl query: {error}", file=sys.stderr)
            raise SystemExit(2) from error
        if out:
            print(f"{rows} row(s) written to {out}")

    def profile(self, db: str, out: str | None = None, min_fill_rate: float = 0.35, min_distinct: int = 2,
                max_levels: int = 50) -> None:
        """Profile the index's columns (fill rate, distinct values) and apply the study's tag selection rules.

        Args:
            db: the index folder.
            out: also write the whole profile to this CSV file.
            min_fill_rate: least fraction of files a selected tag is filled in.
            min_distinct: least number of distinct values of a selected tag.
            max_levels: most levels of a selected categorical tag.
        """
        table = profile_columns(db, min_fill_rate=min_fill_rate, min_distinct=min_distinct, max_levels=max_levels)
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(out, index=False)
        chosen = table[table["selected"]]
        print(chosen[["column", "role", "fill_rate", "distinct"]].to_string(index=False))
        roles = chosen["role"].value_counts()
        print(f"{len(chosen)} of {len(table)} columns selected ({roles.get('continuous', 0)} continuous, "
              f"{roles.get('categorical', 0)} categorical); {int((table['filled'] == 0).sum())} empty everywhere")
        if out:
            print(f"profile: {out}")

    def impute_body_part(self, db: str, rules: str | None = None) -> None:
        """Report BodyPartExamined before and after imputation from ProtocolName and the descriptions.

        The imputed values are columns of the `dicom` table (BodyPartExaminedImputed, BodyPartExaminedRule,
        BodyPartExaminedSource); this prints their fill rate and what each rule did.

        Args:
            db: the index folder.
            rules: a rules file (default: DB/body_part_rules.yaml when present, else radtl's own).
        """
        report = body_part_report(db, rules)
        print(report)

    def tag_features(
        self,
        db: str,
        out: str,
        continuous: str | None = None,
        categorical: str | None = None,
        fitted: str | None = None,
        sample: int = 20_000,
        seed: int = 0,
    ) -> None:
        """Build the DICOM-tag feature table for pseudo-labelling: MissForest imputation, [0, 1] scaling, one-hot.

        Writes OUT/tag_features.parquet (path + features), OUT/tag_features.joblib (the fitted
        preprocessing) and OUT/profile.csv.

        Args:
            db: the index folder.
            out: the output folder.
            continuous: continuous tag columns, comma separated (default: the study's selection rules).
            categorical: categorical tag columns, comma separated (default: the study's selection rules).
            fitted: apply this saved tag_features.joblib instead of fitting (new data, same preprocessing).
            sample: rows the preprocessing is fitted on.
            seed: the sample's and the forests' seed.
        """
        def names(text):
            return None if text is None else [n for n in (text if isinstance(text, (list, tuple)) else text.split(",")) if n]

        try:
            target = tag_features_from_index(db, out, names(continuous), names(categorical), fitted=fitted,
                                             sample=sample, seed=seed)
        except (IndexStoreError, ValueError, duckdb.Error) as error:
            print(f"radtl tag-features: {error}", file=sys.stderr)
            raise SystemExit(2) from error
        print(f"features: {target}")

    def pseudolabel(self, config: str, out: str | None = None, progress: bool = True) -> None:
        """Pseudo-label an archive: embed tags, images and reports, fuse, cluster, score, keep the homogeneous clusters.

        Reads the index, the converted images and a reports CSV as CONFIG (YAML) says (see
        docs/pseudolabelling.md); writes OUT/labels.csv, clusters.csv, metrics.json,
        datalist.json (the pretraining datalist), models/ and report/ (report.html).

        Args:
            config: the pipeline's configuration file.
            out: the output folder (default: the configuration's ``out``).
            progress: show progress bars while the encoders train.
        """
        _log_to_console()
        try:
            result = run_pseudolabel(config, progress=progress, out=out)
        except (FileNotFoundError, IndexStoreError, TypeError, ValueError, duckdb.Error) as error:
            print(f"radtl pseudolabel: {error}", file=sys.stderr)
            raise SystemExit(2) from error
        print(result)

    def pack(
        self,
        datalist: str,
        out: str,
        size: int = 224,
        shard_size: int = 4096,
        splits: str = "training,validation,test",
        workers: int = 1,
        scheduler: str | None = None,
        progress: bool = True,
    ) -> None:
        """Pack a datalist's images into OUT: uint8 S x S images in .npy shards (memory-mapped) with a Parquet index.

        The images are what the bundles feed the network (longest side resized to S, zero padded
        to S x S), so pretraining reads them without decoding. Unreadable images are listed in
        OUT/errors.csv; re-running on OUT reuses the shards already written.

        Args:
            datalist: a MONAI datalist JSON (relative image paths are taken from its folder).
            out: the pack folder.
            size: side S of the packed images.
            shard_size: images per .npy shard.
            splits: the datalist's splits to pack, comma separated.
            workers: processes on this machine (a local Dask cluster when > 1).
            scheduler: address of a Dask scheduler (tcp://host:port) to run on a cluster.
            progress: show a progress bar (one step per shard).
        """
        try:  # fire hands "a,b" over as a tuple; write_pack takes either
            result = write_pack(datalist, out, size=size, shard_size=shard_size, splits=splits, workers=workers,
                                scheduler=scheduler, progress=progress)
        except (PackError, FileNotFoundError) as error:
            print(f"radtl pack: {error}", file=sys.stderr)
            raise SystemExit(2) from error
        print(result)
        print(f"pack: {result.out}")

    def networks(self) -> None:
        """List the networks radtl builds (the names ``radtl.networks.create`` takes)."""
        print("\n".join(available()))

    def check_weights(
        self, network: str, checkpoint: str, source: str = "auto", strict: bool = False, **network_kwargs
    ):
        """Load CHECKPOINT into a fresh NETWORK and print what fits, before any training.

        Args:
            network: a registered name (``radtl networks``).
            checkpoint: a .pth/.pt file, a RadiologyNET .tar.gz release, or a URL.
            source: auto, radiologynet, torchvision or radtl.
            strict: fail on any missing, unexpected or shape-mismatched tensor.
            network_kwargs: arguments for the network, e.g. --in_channels 1 --num_classes 4.
        """
        model = create(network, **network_kwargs)
        logging.getLogger("radtl.networks").setLevel(logging.ERROR)  # the report is printed below, not logged twice
        try:
            report = load_pretrained(model, checkpoint, source=source, strict=strict)
        except CheckpointError as error:
            print(error, file=sys.stderr)
            raise SystemExit(2) from error
        print(report)

    def sweep(
        self,
        bundle: str,
        lrs: str = "1e-2,1e-3,1e-4,1e-5",
        repeats: int = 5,
        init: str = "random",
        backbones: str | None = None,
        train_fraction: str = "1.0",
        output_dir: str | None = None,
        seed: int = 1221,
        energy_country: str = "HRV",
        **bundle_settings,
    ) -> None:
        """Run the study's fine-tuning grid over BUNDLE, resumably; write results, curves and selection tables.

        Args:
            bundle: a bundle folder or name (btmr, bone_age, grazpedwri_osteopenia, covid19_cxr).
            lrs: learning rates, comma separated.
            repeats: runs per setting (seeds seed, seed+1, ...).
            init: random, imagenet:PATH, radiologynet:PATH, comma separated.
            backbones: architectures, comma separated (default: the two the study used for the task).
            train_fraction: fractions of the training split, comma separated (0.05,0.25,0.5).
            output_dir: where runs and tables go (default sweeps/<bundle>).
            seed: the first repeat's seed.
            energy_country: grid (ISO alpha-3) for emissions_kg, recorded with energy_kwh when codecarbon is installed.
            bundle_settings: any bundle setting for every run, e.g. --max_epochs 10 --dataset_dir /data/btmr.
        """
        _log_to_console()
        with _exit_on_bad_input("radtl sweep"):  # a setting refused by radtl.bundle.checked_settings, before any run
            out = run_sweep(
                bundle, lrs, repeats, init, backbones, train_fraction, output_dir, seed, energy_country,
                **bundle_settings,
            )
        print(f"results: {out / 'results.csv'}\nselection: {out / 'selection.csv'}")

    def segment(
        self,
        series_dir: str | None = None,
        out: str = "SEG.dcm",
        bundle: str = "luna_nodule_seg",
        send: str | None = None,
        fetch: str | None = None,
        study: str | None = None,
        series: str | None = None,
        checkpoint: str | None = None,
        fractional: bool = False,
        overwrite: bool = False,
        **bundle_settings,
    ) -> None:
        """Segment CT series with a bundle and write one DICOM Segmentation per series; fetch from / send to a PACS.

        Args:
            series_dir: the folder holding one CT series, or a folder of series folders (with --fetch: where
                the fetched series goes).
            out: the DICOM-SEG file (one series); or a folder, ending in / or existing, that gets
                <SeriesInstanceUID>.seg.dcm per series. Several series and one file are refused.
            bundle: a segmentation bundle's folder or name.
            send: store the SEGs in a PACS: dicom://AET@host:port (C-STORE) or http://host:port/dicom-web (STOW-RS).
            fetch: fetch the series from a PACS first (same URL forms: C-GET or WADO-RS), with --study and --series.
            study: Study Instance UID of the series to fetch.
            series: Series Instance UID of the series to fetch.
            checkpoint: trained weights (default: the bundle's models/model.pt).
            fractional: write probabilities (FRACTIONAL) instead of the thresholded mask (BINARY).
            overwrite: replace SEGs already at the output paths (refused otherwise).
            bundle_settings: any bundle setting, e.g. --threshold 0.4 --min_nodule_volume_mm3 30.
        """
        _log_to_console()
        try:
            result = run_segment(
                series_dir, out, bundle, send_to=send, fetch_from=fetch, study_uid=study, series_uid=series,
                checkpoint=checkpoint, fractional=fractional, overwrite=overwrite, **bundle_settings,
            )
        except (SeriesError, PacsError, FileNotFoundError, ValueError) as error:
            print(f"radtl segment: {error}", file=sys.stderr)
            if isinstance(error, PacsError) and Path(out).is_dir():
                print(f"radtl segment: the SEGs are kept in {out}; send them when the PACS is back", file=sys.stderr)
            elif isinstance(error, PacsError) and Path(out).is_file():
                print(f"radtl segment: the SEG is kept at {out}; send it again when the PACS is back", file=sys.stderr)
            raise SystemExit(2) from error
        for seg in result.segs:
            print(f"SEG: {seg}")
        print(f"wrote {len(result.segs)} SEG(s)")
        if send:
            print(f"sent to {send}: {len(result.sent)} instance(s) stored")

    def send(self, *paths: str, to: str) -> None:
        """Store DICOM files (a SEG kept after a failed send, say) in a PACS, checking every status.

        Args:
            paths: the DICOM files.
            to: dicom://AET@host:port (C-STORE) or http://host:port/dicom-web (STOW-RS).
        """
        _log_to_console()
        try:
            stored = send_to_pacs(list(paths), to)
        except (PacsError, ValueError) as error:
            print(f"radtl send: {error}", file=sys.stderr)
            raise SystemExit(2) from error
        print(f"sent to {to}: {len(stored)} instance(s) stored")


    def report(self, *results: str, out: str = "report", ratings: str | None = None, key: str | None = None,
               title: str = "Initialisation comparison") -> None:
        """The study's tables, statistical tests and figures from sweep results, as report.md and report.html.

        Args:
            results: sweep folders (or their results.csv), e.g. sweeps/btmr sweeps/btmr_limited.
            out: the report's folder (figures/, tables/, statistics.json beside the report).
            ratings: heatmap rating sheets filled in by the raters (comma separated), with --key.
            key: the key.csv that unblinds the rating sheets' panels.
            title: the report's title.
        """
        from radtl.report.comparison import build_report

        _log_to_console()
        if bool(ratings) != bool(key):
            raise SystemExit("radtl report: --ratings and --key go together")
        with _exit_on_bad_input("radtl report"):
            rated = None
            if ratings:
                from radtl.interpret.rating import read_ratings

                rated = read_ratings(_split_list(ratings), key)
            markdown, page = build_report(list(results), out, ratings=rated, title=title)
        print(f"report: {markdown}\nhtml: {page}")

    def gradcam(self, bundle: str, checkpoint: str, out: str, split: str = "test", method: str = "gradcam",
                limit: int = 0, **bundle_settings) -> None:
        """Grad-CAM (or Grad-CAM++) heatmaps of a classification bundle's split: input beside overlay, as PNGs.

        Args:
            bundle: a classification bundle's folder or name (btmr, covid19_cxr, grazpedwri_osteopenia).
            checkpoint: the fine-tuned model.pt.
            out: the folder of the heatmaps and heatmaps.csv.
            split: datalist split (training, validation, test).
            method: gradcam or gradcam++.
            limit: at most this many images (0: all).
            bundle_settings: any bundle setting, e.g. --dataset_dir /data/btmr.
        """
        from radtl.evaluation.runs import BundleTask, write_heatmaps

        _log_to_console()
        with _exit_on_bad_input("radtl gradcam"):
            table = write_heatmaps(BundleTask(bundle, out, **bundle_settings), checkpoint, split, method, limit)
        print(f"heatmaps: {table}")

    def rating_sheet(self, sources: str, out: str, n: int = 20, seed: int = 0, raters: str = "rater_1,rater_2") -> None:
        """A blinded rating sheet of the same cases' heatmaps from several models (thesis 5.1).

        Args:
            sources: NAME=DIR pairs, comma separated, each DIR a ``radtl gradcam`` output (heatmaps.csv).
            out: the sheet's folder: sheet.csv and images/ for the raters, key.csv for the organiser.
            n: cases to rate.
            seed: seed of the case choice and the panel order.
            raters: rater names, comma separated.
        """
        from radtl.evaluation.runs import heatmap_sources
        from radtl.interpret.rating import write_rating_sheet

        _log_to_console()
        folders = dict(entry.split("=", 1) for entry in _split_list(sources))
        with _exit_on_bad_input("radtl rating-sheet"):
            sheet = write_rating_sheet(heatmap_sources(folders), out, n=n, seed=seed, raters=tuple(_split_list(raters)))
        print(f"rating sheet: {sheet}")

    def probe(self, bundle: str, out: str, checkpoint: str | None = None, ks: str = "1,5,20",
              scales: str = "224,112,56", head_epochs: int = 100, lora_ranks: str = "8,16", lora_epochs: int = 10,
              lora_lr: float = 1e-3, embedding: str = "tsne", **bundle_settings) -> None:
        """Frozen-backbone evaluation of any radtl checkpoint on a classification bundle's data (Radio DINO / OmniRad).

        Args:
            bundle: a classification bundle's folder or name.
            out: the folder of probe.json, probe.csv and embedding.png.
            checkpoint: a backbone.pt, model.pt or RadiologyNET .tar.gz of the bundle's --backbone (none: random).
            ks: kNN neighbours.
            scales: input sizes of the multi-scale logistic probe.
            head_epochs: epochs of the head-only regime.
            lora_ranks: LoRA ranks (alpha = 2 x rank); empty to skip LoRA.
            lora_epochs: epochs per LoRA run.
            lora_lr: learning rate of the adapters and the head.
            embedding: tsne, umap or pca.
            bundle_settings: any bundle setting, e.g. --backbone resnet18 --dataset_dir /data/btmr.
        """
        from radtl.evaluation.runs import BundleTask, probe_backbone

        _log_to_console()
        with _exit_on_bad_input("radtl probe"):
            path = probe_backbone(BundleTask(bundle, out, **bundle_settings), checkpoint, _split_list(ks, int),
                                  _split_list(scales, int), head_epochs, _split_list(lora_ranks, int), lora_epochs,
                                  lora_lr, embedding)
        print(f"probe: {path}")

    def perturb(self, bundle: str, checkpoints: str, out: str, split: str = "test", shifts: str = "0.1,0.2",
                scales: str = "0.8,1.2", limit: int = 0, **bundle_settings) -> None:
        """Robustness to ROI perturbation (the bone-tumour study): predictions under shifted and scaled boxes.

        Args:
            bundle: a classification bundle's folder or name.
            checkpoints: NAME=MODEL.pt pairs, comma separated; two or more are compared pairwise.
            out: the folder of robustness.csv, stability.csv and comparison.csv.
            split: datalist split.
            shifts: box shifts as fractions of its size, each applied in four directions.
            scales: box scale factors about its centre.
            limit: at most this many images (0: all).
            bundle_settings: any bundle setting.
        """
        from radtl.evaluation.runs import BundleTask, perturbation_robustness

        _log_to_console()
        models = dict(entry.split("=", 1) for entry in _split_list(checkpoints))
        with _exit_on_bad_input("radtl perturb"):
            path = perturbation_robustness(BundleTask(bundle, out, **bundle_settings), models, split,
                                           _split_list(shifts, float), _split_list(scales, float), limit)
        print(f"stability: {path}")


@contextlib.contextmanager
def _exit_on_bad_input(command: str) -> Iterator[None]:
    """Bad input (a checkpoint of another architecture, a missing file or package) as one line and exit status 2."""
    try:
        yield
    except (CheckpointError, FileNotFoundError, FileExistsError, ImportError, ValueError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        raise SystemExit(2) from error


def _split_list(values, kind=str) -> list:
    """A comma-separated string (or what fire made of one: a number, a tuple) as a list of ``kind``."""
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    elif not isinstance(values, (list, tuple)):
        values = [values]
    return [kind(v.strip() if isinstance(v, str) else v) for v in values]


def _log_to_console() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")


def main(argv: list[str] | None = None) -> None:
    fire.Fire(RadtlCLI, command=argv if argv is not None else sys.argv[1:], name="radtl")


if __name__ == "__main__":
    main()
