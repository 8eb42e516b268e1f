"""The ``radtl`` command line: a thin ``fire`` layer over the library.

``radtl`` (or ``radtl --help``) lists the commands; ``radtl COMMAND --help`` shows one command's arguments,
options with their defaults, and an example. The listing, the help and the check of a command line before it runs
(an unknown option is refused, naming the closest one) are read from the methods below by :mod:`radtl.commands`.

Each command imports what it uses when it runs: ``radtl --help``, ``pull``, ``convert``, ``index``, ``query``,
``export``, ``profile``, ``impute-body-part`` and ``send`` never import torch, MONAI or Ignite (``tests/test_cli.py``
checks it), so they start in about the time ``import pydicom`` takes (``benchmarks/cli_startup.py``).

A user error (:class:`radtl.errors.RadtlError`, a missing path, a bad value) prints one line,
``radtl <command>: <what is wrong>; <what to do>``, and exits with status 2; ``--debug`` (or ``RADTL_DEBUG=1``)
shows the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from radtl.bundle import split_values
from radtl.commands import (
    check_arguments,
    commands,
    debug_requested,
    find_command,
    is_user_error,
    listing,
    positional,
    user_error_line,
)
from radtl.errors import UsageError


class RadtlCLI:
    """radtl: radiology transfer learning on MONAI."""

    def pull(
        self,
        url: str,
        out: str,
        query: str | None = None,
        studies: str | None = None,
        series: str | None = None,
        retrieve: str = "get",
        listen: str | None = None,
        workers: int = 2,
        rate: float = 0.0,
        attempts: int = 3,
        max_instance_bytes: int = 2 << 30,
        progress: bool | None = None,
    ) -> None:
        """Pull a cohort from a PACS by query or list into OUT, resumably, with a manifest.

        Files go to OUT/<study>/<series>/<instance>.dcm, with OUT/pull_manifest.csv (a row per series).

        Exactly one of --query, --studies, --series. A series is gathered in OUT/.partial/ and moved into place
        when whole; run the same command again after a kill or a failure to fetch only what is missing.
        Credentials and certificates come from the environment as for send (docs/pacs.md).

        Args:
            url: dicom://AET@host:port (C-FIND, then C-GET or C-MOVE; dicoms:// over TLS) or
                http(s)://host:port/dicom-web (QIDO-RS, WADO-RS).
            out: the cohort folder.
            query: matching keys, "Modality=CT StudyDate=20200101-20201231 BodyPartExamined=CHEST".
            studies: a CSV with a column StudyInstanceUID, or AccessionNumber, or PatientID and StudyDate.
            series: a CSV with columns StudyInstanceUID and SeriesInstanceUID.
            retrieve: DIMSE: get (C-GET) or move (C-MOVE to radtl's calling AE title, which the PACS must know).
            listen: move: HOST:PORT radtl listens on for the C-MOVE (default 127.0.0.1 and a free port).
            workers: series transferred at the same time.
            rate: at most this many instances per second (0: no limit).
            attempts: tries of each PACS operation on network errors (never on refusals).
            max_instance_bytes: the largest instance accepted (default 2 GiB).
            progress: show a progress bar (default: on a terminal).

        Example:
            radtl pull https://pacs.example.org/dicom-web cohort/ --query "Modality=CT StudyDate=20200101-20201231"
        """
        from radtl.cohort.pull import pull_cohort

        summary = pull_cohort(url, out, query=query, studies=studies, series=series, retrieve=retrieve, listen=listen,
                              workers=workers, rate=rate, attempts=attempts, max_instance_bytes=max_instance_bytes,
                              progress=progress)
        print(summary.line())

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
        max_pixel_bytes: int | None = None,
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

        Example:
            radtl convert dicom_samples out/samples --size 256 --workers 2
        """
        from radtl.dicom.convert import ExportSettings, convert_tree
        from radtl.dicom.frames import ConversionOptions

        budget = {} if max_pixel_bytes is None else {"max_pixel_bytes": int(max_pixel_bytes)}
        settings = ExportSettings(
            size=size,
            conversion=ConversionOptions(formula=formula, voi_preference=voi, color=color, **budget),
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
        max_pixel_bytes: int | None = None,
    ) -> None:
        """Index the DICOM headers under SRC into DB (Parquet; a re-run updates it).

        A folder without one DICOM file is indexed too (every file an error row, exit status 0) and the
        summary says that no DICOM file was found.

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

        Example:
            radtl index dicom_samples out/index --workers 2
        """
        from radtl.dicom.index.build import build_index

        budget = {} if max_pixel_bytes is None else {"max_pixel_bytes": int(max_pixel_bytes)}
        summary = build_index(src, db, workers=workers, scheduler=scheduler, include_private=include_private,
                              exclude_phi=exclude_phi, retry_errors=retry_errors, chunk_size=chunk_size,
                              progress=progress, **budget)
        print(summary)
        if summary.found_dicom:
            print(f"query it: radtl query {db} \"SELECT Modality, count(*) FROM dicom GROUP BY ALL\"")

    def query(self, db: str, sql: str, out: str | None = None) -> None:
        """Run SQL over the index DB (the table dicom): CSV on screen, or --out a file.

        The query is DuckDB SQL over the view `dicom` (one row per file); --out FILE.parquet or FILE.csv writes
        the result instead of printing it.

        Args:
            db: the index folder.
            sql: a DuckDB query, e.g. "SELECT Modality, count(*) AS files FROM dicom GROUP BY ALL".
            out: write the result to this .parquet or .csv file instead of printing it.

        Example:
            radtl query out/index "SELECT Modality, count(*) AS files FROM dicom GROUP BY ALL"
        """
        from radtl.dicom.index.store import write_query

        rows = write_query(db, sql, out)
        if out:
            print(f"{rows} row(s) written to {out}")

    def export(self, db: str, sql: str, out: str, profile: str = "basic", options: str | None = None,
               keys: str | None = None, withhold_mapping: bool = False, allow_burned_in: bool = False,
               max_file_bytes: int = 2 * 1024**3, workers: int = 1, progress: bool | None = None) -> None:
        """Copy the files an index query selects into OUT, de-identified (PS3.15 E.1).

        Files go to OUT/STUDY/SERIES/INSTANCE.dcm under new UIDs; OUT/export_manifest.csv has a row per file
        (status ok, ok-burned-in, burned-in or error, and why) and OUT/provenance.json the query, index, profile,
        options and each file's SHA-256. The keys (salt, pseudonyms.csv) stay outside OUT; the same keys give the
        same UIDs, so a re-run writes nothing new and a wider query joins the cohort. See docs/cohorts.md.

        Args:
            db: the index folder (radtl index).
            sql: a DuckDB query over the view dicom returning a path column, e.g. "SELECT path FROM dicom
                WHERE Modality = 'CT'".
            out: the cohort folder.
            profile: the confidentiality profile: basic (PS3.15 E.1).
            options: the profile's options, comma separated: retain-longitudinal-dates,
                retain-patient-characteristics, retain-device-identity, retain-institution-identity,
                retain-safe-private, clean-descriptions.
            keys: the keys folder (salt, pseudonyms.csv, sources.csv), never inside OUT (default: OUT.keys).
            withhold_mapping: write no pseudonyms.csv (pseudonyms cannot be traced back).
            allow_burned_in: export files whose pixels may carry text (burned-in annotation, secondary captures,
                ultrasound), flagged ok-burned-in; by default they are left out.
            max_file_bytes: the largest file read; a larger one gets an error row.
            workers: processes that read and de-identify files (this one writes them).
            progress: show a progress bar (default: on a terminal).

        Example:
            radtl export out/index "SELECT path FROM dicom WHERE Modality='CT'" out/cohort --options clean-descriptions
        """
        from radtl.cohort.export import export_cohort

        chosen = None if options is None else split_values(options, str, "--options")
        summary = export_cohort(db, sql, out, profile=profile, options=chosen, keys=keys,
                                withhold_mapping=withhold_mapping, allow_burned_in=allow_burned_in,
                                max_file_bytes=max_file_bytes, workers=workers, progress=progress)
        print(summary)

    def profile(self, db: str, out: str | None = None, min_fill_rate: float = 0.35, min_distinct: int = 2,
                max_levels: int = 50) -> None:
        """Profile the index's columns and apply the study's tag selection rules.

        Args:
            db: the index folder.
            out: also write the whole profile to this CSV file.
            min_fill_rate: least fraction of files a selected tag is filled in.
            min_distinct: least number of distinct values of a selected tag.
            max_levels: most levels of a selected categorical tag.

        Example:
            radtl profile out/index --out out/profile.csv
        """
        from radtl.dicom.index.profile import profile_columns

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
        """Report BodyPartExamined before and after imputation from the protocol.

        The imputed values are columns of the `dicom` table (BodyPartExaminedImputed, BodyPartExaminedRule,
        BodyPartExaminedSource); this prints their fill rate and what each rule did.

        Args:
            db: the index folder.
            rules: a rules file (default: DB/body_part_rules.yaml when present, else radtl's own).

        Example:
            radtl impute-body-part out/index
        """
        from radtl.dicom.index.profile import body_part_report

        print(body_part_report(db, rules))

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
        """Build the DICOM-tag feature table for pseudo-labelling (MissForest, scaling).

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

        Example:
            radtl tag-features out/index out/tags --sample 20000
        """
        from radtl.pseudolabel import tag_features_from_index

        def names(text):
            return None if text is None else split_values(text)

        target = tag_features_from_index(db, out, names(continuous), names(categorical), fitted=fitted,
                                         sample=sample, seed=seed)
        print(f"features: {target}")

    def pseudolabel(self, config: str, out: str | None = None, progress: bool | None = None) -> None:
        """Pseudo-label an archive from its tags, images and reports (clusters kept).

        Reads the index, the converted images and a reports CSV as CONFIG (YAML) says (see
        docs/pseudolabelling.md); writes OUT/labels.csv, clusters.csv, metrics.json,
        datalist.json (the pretraining datalist), models/ and report/ (report.html).

        Args:
            config: the pipeline's configuration file.
            out: the output folder (default: the configuration's ``out``).
            progress: show progress bars while the encoders train (default: on a terminal).

        Example:
            radtl pseudolabel docs/examples/pseudolabel.yaml --out out/pseudolabels
        """
        from radtl.pseudolabel.pipeline import run_pseudolabel

        print(run_pseudolabel(config, progress=progress, out=out))

    def pack(
        self,
        datalist: str,
        out: str,
        size: int = 224,
        shard_size: int = 4096,
        splits: str = "training,validation,test",
        workers: int = 1,
        scheduler: str | None = None,
        progress: bool | None = None,
    ) -> None:
        """Pack a datalist's images into memory-mapped shards for pretraining.

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
            progress: show a progress bar, one step per shard (default: on a terminal).

        Example:
            radtl pack out/pseudolabels/datalist.json out/pack --size 224
        """
        from radtl.data.pack import write_pack

        # fire hands "a,b" over as a tuple; write_pack takes either
        result = write_pack(datalist, out, size=size, shard_size=shard_size, splits=splits, workers=workers,
                            scheduler=scheduler, progress=progress)
        print(result)
        print(f"pack: {result.out}")

    def networks(self) -> None:
        """List the networks radtl builds (the names radtl.networks.create takes).

        Example:
            radtl networks
        """
        from radtl.networks import available

        print("\n".join(available()))

    def bundles(self) -> None:
        """List the bundles radtl finds: name, kind, default network, task, folder.

        Example:
            radtl bundles
        """
        from radtl.bundle import bundle_table, format_bundle_table

        print(format_bundle_table(bundle_table()))

    def run(self, bundle: str, *configs: str, set: Sequence[str] = ()) -> None:
        """Run a bundle by name (train, evaluate, inference), with --set settings.

        CONFIGS are names in the bundle's configs/ folder (train, evaluate, inference; train.json is read
        first when evaluate or inference is named) or paths; a failure prints radtl's root cause in one line.
        `python -m monai.bundle run --config_file ...` keeps working the MONAI way.

        Args:
            bundle: a bundle name (radtl bundles lists them) or folder.
            configs: the configs to merge, later ones overriding earlier ones (default: train).
            set: a bundle setting as key=value, repeatable; the key must be in the bundle's config.

        Example:
            radtl run btmr evaluate --set dataset_dir=dicom_samples/tasks/btmr --set output_dir=out/btmr
        """
        from radtl.bundle import checked_overrides, run_bundle

        run_bundle(bundle, configs, checked_overrides(set, bundle, configs))

    def check_weights(self, network: str, checkpoint: str, source: str = "auto", strict: bool = False,
                      in_channels: int | None = None, num_classes: int | None = None,
                      out_channels: int | None = None) -> None:
        """Load CHECKPOINT into a fresh NETWORK and print what fits, before any training.

        Args:
            network: a registered name (radtl networks).
            checkpoint: a .pth/.pt file, a RadiologyNET .tar.gz release, or a URL.
            source: auto, radiologynet, torchvision or radtl.
            strict: fail on any missing, unexpected or shape-mismatched tensor.
            in_channels: the network's input channels (default: the network's own).
            num_classes: a classifier's classes (default: the network's own).
            out_channels: a segmentation network's output channels (default: the network's own).

        Example:
            radtl check-weights resnet18 resnet18.pth --in_channels 1 --num_classes 2
        """
        import logging

        from radtl.networks import create, load_pretrained

        given = {"in_channels": in_channels, "num_classes": num_classes, "out_channels": out_channels}
        model = create(network, **{k: v for k, v in given.items() if v is not None})
        logging.getLogger("radtl.networks").setLevel(logging.ERROR)  # the report is printed below, not logged twice
        print(load_pretrained(model, checkpoint, source=source, strict=strict))

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
        set: Sequence[str] = (),
    ) -> None:
        """Run the study's fine-tuning grid (learning rates x repeats x inits) on a bundle.

        Resumable: a re-run skips the runs already done. Writes OUT/results.csv, the validation curves and the
        selection tables (the learning rate chosen on validation per initialisation).

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
            set: a bundle setting for every run as key=value, repeatable (--set max_epochs=10); checked against
                the bundle's config.

        Example:
            radtl sweep btmr --lrs 1e-3,1e-4 --repeats 2 --set max_epochs=5 --output_dir sweeps/btmr
        """
        from radtl.bundle import checked_overrides
        from radtl.sweep import sweep as run_sweep

        settings = checked_overrides(set, bundle, ["evaluate"], reserved=_SWEEP_OPTIONS)
        out = run_sweep(bundle, lrs, repeats, init, backbones, train_fraction, output_dir, seed, energy_country,
                        **settings)
        print(f"results: {out / 'results.csv'}\nselection: {out / 'selection.csv'}")

    @positional("series_dir")
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
        preview: bool = True,
        preview_window: str = "lung",
        sr: str | None = None,
        set: Sequence[str] = (),
    ) -> None:
        """Segment CT series into DICOM-SEGs; fetch from and send to a PACS.

        Beside each SEG goes a PNG preview: the slices with the most segmented voxels, the mask outlined.
        When a send fails the SEGs are kept; `radtl send` stores them once the PACS is back. PACS credentials
        and certificates come from the RADTL_PACS_* environment variables, never the URL (docs/pacs.md).

        Args:
            series_dir: the folder holding one CT series, or a folder of series folders (with --fetch: where
                the fetched series goes).
            out: the DICOM-SEG file (one series); or a folder, ending in / or existing, that gets
                <SeriesInstanceUID>.seg.dcm per series. Several series and one file are refused.
            bundle: a segmentation bundle's folder or name.
            send: store the SEGs in a PACS: dicom://AET@host:port (C-STORE; dicoms:// over TLS) or
                http(s)://host:port/dicom-web (STOW-RS).
            fetch: fetch the series from a PACS first (same URL forms: C-GET or WADO-RS), with --study and --series.
            study: Study Instance UID of the series to fetch.
            series: Series Instance UID of the series to fetch.
            checkpoint: trained weights (default: the bundle's models/model.pt).
            fractional: write probabilities (FRACTIONAL) instead of the thresholded mask (BINARY).
            overwrite: replace SEGs already at the output paths (refused otherwise).
            preview: write X.seg.png beside each X.seg.dcm (--nopreview: none).
            preview_window: the preview's window: lung (-600/1500) or series (each slice's own).
            sr: also write the nodule measurements as a DICOM SR (TID 1500: volume, longest axial diameter,
                centroid per nodule): a file (one series), or a folder that gets <SeriesInstanceUID>.sr.dcm per
                series (give the --out folder to put them beside the SEGs). --send stores them with the SEGs.
            set: a bundle setting as key=value, repeatable (--set threshold=0.4); checked against the bundle's config.

        Examples:
            radtl segment dicom_samples/tasks/luna_nodule_seg/case001 --out out/case001.seg.dcm
            radtl segment --fetch http://localhost:8042/dicom-web --study 1.2.3 --series 1.2.3.4 --out out/segs/
            radtl segment dicom_samples/tasks/luna_nodule_seg/ --out out/segs/ --sr out/segs/ --send dicom://ORTHANC@localhost:4242
        """
        from radtl.bundle import checked_overrides
        from radtl.dicom.pacs import PacsError
        from radtl.dicom.seg_preview import preview_path
        from radtl.segment import segment as run_segment

        if series_dir is None and fetch is None:
            raise UsageError("give a series folder, or --fetch URL with --study and --series",
                             hint="radtl segment --help shows both")
        try:
            result = run_segment(
                series_dir, out, bundle, send_to=send, fetch_from=fetch, study_uid=study, series_uid=series,
                checkpoint=checkpoint, fractional=fractional, overwrite=overwrite, preview=preview,
                preview_window=preview_window, sr=sr,
                **checked_overrides(set, bundle, ["inference"], reserved=_SEGMENT_OPTIONS),
            )
        except PacsError as error:
            kept = "the SEGs are kept in" if Path(out).is_dir() else "the SEG is kept at"
            if Path(out).exists():
                later = f"{kept} {out}; send with `radtl send ... --to {send}` when the PACS is back"
                error.hint = f"{error.hint}; {later}" if error.hint else later
            raise
        for seg in result.segs:
            print(f"SEG: {seg}" + (f"  preview: {preview_path(seg)}" if preview else ""))
        for report in result.srs:
            print(f"SR: {report}")
        print(f"wrote {len(result.segs)} SEG(s)" + (f" and {len(result.srs)} SR(s)" if result.srs else ""))
        if send:
            print(f"sent to {send}: {len(result.sent)} instance(s) stored")

    def send(self, *files: str, to: str) -> None:
        """Store DICOM files (a SEG kept after a failed send, say) in a PACS.

        Credentials and certificates come from the environment, never the URL: RADTL_PACS_USER and
        RADTL_PACS_PASSWORD, RADTL_PACS_TOKEN or RADTL_PACS_NETRC; RADTL_PACS_CA_BUNDLE (docs/pacs.md).

        Args:
            files: the DICOM files.
            to: dicom://AET@host:port (C-STORE; dicoms:// over TLS) or http(s)://host:port/dicom-web (STOW-RS).

        Example:
            RADTL_PACS_NETRC=~/.radtl-netrc radtl send out/case001.seg.dcm --to https://pacs.example.org/dicom-web
        """
        from radtl.dicom.pacs import send as send_to_pacs

        if not files:
            raise UsageError("give the DICOM files to send", hint="usage: radtl send [FILES ...] --to TO")
        stored = send_to_pacs(list(files), to)
        print(f"sent to {to}: {len(stored)} instance(s) stored")

    def seg(
        self,
        action: str,
        *files: str,
        out: str,
        series: str | None = None,
        labels: str | None = None,
        fractional: bool = False,
        algorithm: str | None = None,
        algorithm_version: str = "unknown",
        overwrite: bool = False,
    ) -> None:
        """Label maps (NIfTI, NRRD) to a multi-segment DICOM-SEG and back, exactly, on a CT or MR series' grid.

        from-mask SERIES MASK: one segment per non-zero value, each recording its value (its Tracking ID), so
        to-mask gives the same values back without a labels file. The mask must lie on the series' grid in
        physical space (axes in another order or flipped are reoriented); a mask on another grid is refused,
        naming the spacing and offset that differ. See docs/segmentation.md.

        Args:
            action: from-mask (SERIES MASK) or to-mask (SEG, with --series).
            files: from-mask: the series' folder and the label map; to-mask: the SEG file.
            out: from-mask: the SEG file to write; to-mask: the label map, .nii.gz or .nii (the series' affine, RAS).
            series: to-mask: the folder of the series the SEG segments.
            labels: a labels CSV (value, label, structure or category and type codes), or totalsegmentator;
                from-mask: each segment's label and SNOMED CT codes (values it does not name: label <value>,
                coded Tissue); to-mask: each segment's value, matched by its codes.
            fractional: from-mask: write Segmentation Type FRACTIONAL rather than BINARY.
            algorithm: from-mask: the model that made the label map (Segment Algorithm Type AUTOMATIC); without it
                the segments are MANUAL.
            algorithm_version: from-mask: the model's version, with --algorithm.
            overwrite: replace an output that exists (refused otherwise).

        Examples:
            radtl seg from-mask ct_series/ seg.nii.gz --out seg.dcm --labels totalsegmentator
            radtl seg to-mask seg.dcm --series ct_series/ --out mask.nii.gz
        """
        from radtl.dicom.labelmap import label_map_to_seg, seg_to_label_map
        from radtl.dicom.seg import Algorithm

        actions = {"from-mask": 2, "to-mask": 1}
        action = str(action).replace("_", "-")
        if action not in actions:
            raise UsageError(f"unknown action {action!r}", hint="radtl seg from-mask SERIES MASK --out SEG.dcm, or "
                             "radtl seg to-mask SEG.dcm --series SERIES --out MASK.nii.gz")
        files = tuple(str(f) for f in files)
        if len(files) != actions[action]:
            usage = "SERIES MASK" if action == "from-mask" else "SEG"
            raise UsageError(f"seg {action} takes {usage}, got {len(files)} path(s)", hint="radtl seg --help")
        if action == "to-mask" and series is None:
            raise UsageError("seg to-mask needs --series, the folder of the series the SEG segments")
        if Path(out).exists() and not overwrite:
            raise UsageError(f"{out} exists", hint="pass --overwrite to replace it, or choose another --out")
        if action == "from-mask":
            made_by = Algorithm(str(algorithm), str(algorithm_version)) if algorithm else None
            result = label_map_to_seg(files[0], files[1], out, labels=labels, fractional=fractional,
                                      algorithm=made_by)
            kind = "FRACTIONAL" if fractional else "BINARY"
            print(f"SEG: {result.path} ({kind}, {len(result.values)} segment(s) on {result.shape}: values "
                  f"{', '.join(map(str, result.values))})")
        else:
            result = seg_to_label_map(files[0], series, out, labels=labels)
            print(f"label map: {result.path} ({len(result.values)} segment(s) on {result.shape}: values "
                  f"{', '.join(map(str, result.values))})")

    def results(self, study: str, *, pacs: str, algorithm: str | None = None) -> None:
        """List a study's radtl results in a PACS: its SEG and SR series whose Manufacturer is radtl.

        Args:
            study: the Study Instance UID (the source images' study).
            pacs: dicom://AET@host:port (C-FIND) or http://host:port/dicom-web (QIDO-RS).
            algorithm: only the results of this algorithm (a bundle's name, e.g. luna_nodule_seg).

        Example:
            radtl results 1.2.826.0.1.3680043.8.498.1 --pacs http://localhost:8042/dicom-web --algorithm btmr
        """
        from radtl.dicom.pacs import find_results

        found = find_results(pacs, study, algorithm=algorithm)
        for series in found:
            count = "" if series.instances is None else f"  ({series.instances} instance(s))"
            print(f"{series.modality:<4} {series.series_instance_uid}  {series.series_description}{count}")
        print(f"{len(found)} radtl result series in study {study}")

    def report(self, *results: str, out: str = "report", ratings: str | None = None, key: str | None = None,
               title: str = "Initialisation comparison") -> None:
        """Compare initialisations from sweep results: tables, tests, figures.

        Writes report.md and report.html with the study's tables, statistical tests and figures, tables/*.csv and
        statistics.json.

        Args:
            results: sweep folders (or their results.csv), e.g. sweeps/btmr sweeps/btmr_limited.
            out: the report's folder (figures/, tables/, statistics.json beside the report).
            ratings: heatmap rating sheets filled in by the raters (comma separated), with --key.
            key: the key.csv that unblinds the rating sheets' panels.
            title: the report's title.

        Example:
            radtl report sweeps/btmr --out report/btmr
        """
        from radtl.report.comparison import build_report

        if bool(ratings) != bool(key):
            raise UsageError("--ratings and --key go together", hint="give both, or neither")
        rated = None
        if ratings:
            from radtl.interpret.rating import read_ratings

            rated = read_ratings(split_values(ratings), key)
        markdown, page = build_report(list(results), out, ratings=rated, title=title)
        print(f"report: {markdown}\nhtml: {page}")

    def gradcam(self, bundle: str, checkpoint: str, out: str, split: str = "test", method: str = "gradcam",
                limit: int = 0, set: Sequence[str] = ()) -> None:
        """Grad-CAM (or Grad-CAM++) heatmaps of a classification bundle's split.

        One PNG per image, the input beside its overlay, and heatmaps.csv.

        Args:
            bundle: a classification bundle's folder or name (btmr, covid19_cxr, grazpedwri_osteopenia).
            checkpoint: the fine-tuned model.pt.
            out: the folder of the heatmaps and heatmaps.csv.
            split: datalist split (training, validation, test).
            method: gradcam or gradcam++.
            limit: at most this many images (0: all).
            set: a bundle setting as key=value, repeatable (--set dataset_dir=/data/btmr).

        Example:
            radtl gradcam btmr --checkpoint sweeps/btmr/runs/RUN/model.pt --out out/cam --limit 8
        """
        from radtl.bundle import checked_overrides
        from radtl.evaluation.runs import BundleTask, write_heatmaps

        task = BundleTask(bundle, out, **checked_overrides(set, bundle, reserved={"output_dir": "--out"}))
        print(f"heatmaps: {write_heatmaps(task, checkpoint, split, method, limit)}")

    def rating_sheet(self, sources: str, out: str, n: int = 20, seed: int = 0, raters: str = "rater_1,rater_2") -> None:
        """A blinded rating sheet of heatmaps from several models (thesis 5.1).

        Args:
            sources: NAME=DIR pairs, comma separated, each DIR a radtl gradcam output (heatmaps.csv).
            out: the sheet's folder: sheet.csv and images/ for the raters, key.csv for the organiser.
            n: cases to rate.
            seed: seed of the case choice and the panel order.
            raters: rater names, comma separated.

        Example:
            radtl rating-sheet --sources random=out/cam_random,imagenet=out/cam_imagenet --out out/sheet
        """
        from radtl.evaluation.runs import heatmap_sources
        from radtl.interpret.rating import write_rating_sheet

        folders = _pairs(sources, "--sources")
        sheet = write_rating_sheet(heatmap_sources(folders), out, n=n, seed=seed, raters=tuple(split_values(raters)))
        print(f"rating sheet: {sheet}")

    def probe(self, bundle: str, out: str, checkpoint: str | None = None, ks: str = "1,5,20",
              scales: str = "224,112,56", head_epochs: int = 100, lora_ranks: str = "8,16", lora_epochs: int = 10,
              lora_lr: float = 1e-3, embedding: str = "tsne", set: Sequence[str] = ()) -> None:
        """Frozen-backbone probes of a checkpoint: kNN, logistic, head-only, LoRA.

        The regimes of Radio DINO and OmniRad on a classification bundle's data, for any radtl checkpoint of the
        bundle's backbone.

        Args:
            bundle: a classification bundle's folder or name.
            out: the folder of probe.json, probe.csv and embedding.png.
            checkpoint: a backbone.pt, model.pt or RadiologyNET .tar.gz of the bundle's backbone (none: random).
            ks: kNN neighbours.
            scales: input sizes of the multi-scale logistic probe.
            head_epochs: epochs of the head-only regime.
            lora_ranks: LoRA ranks (alpha = 2 x rank); empty to skip LoRA.
            lora_epochs: epochs per LoRA run.
            lora_lr: learning rate of the adapters and the head.
            embedding: tsne, umap or pca.
            set: a bundle setting as key=value, repeatable (--set backbone=resnet18).

        Example:
            radtl probe btmr --checkpoint out/pretrain/backbone.pt --out out/probe --set backbone=resnet18
        """
        from radtl.bundle import checked_overrides
        from radtl.evaluation.runs import BundleTask, probe_backbone

        task = BundleTask(bundle, out, **checked_overrides(set, bundle, reserved={"output_dir": "--out"}))
        path = probe_backbone(task, checkpoint, split_values(ks, int, "--ks"), split_values(scales, int, "--scales"), head_epochs,
                              split_values(lora_ranks, int, "--lora_ranks"), lora_epochs, lora_lr, embedding)
        print(f"probe: {path}")

    def perturb(self, bundle: str, checkpoints: str, out: str, split: str = "test", shifts: str = "0.1,0.2",
                scales: str = "0.8,1.2", limit: int = 0, set: Sequence[str] = ()) -> None:
        """Robustness of predictions to shifted and scaled ROI boxes (bone-tumour study).

        Predictions under each perturbed box, stability per model, and a paired comparison of the models.

        Args:
            bundle: a classification bundle's folder or name.
            checkpoints: NAME=MODEL.pt pairs, comma separated; two or more are compared pairwise.
            out: the folder of robustness.csv, stability.csv and comparison.csv.
            split: datalist split.
            shifts: box shifts as fractions of its size, each applied in four directions.
            scales: box scale factors about its centre.
            limit: at most this many images (0: all).
            set: a bundle setting as key=value, repeatable.

        Example:
            radtl perturb btmr --checkpoints random=a/model.pt,imagenet=b/model.pt --out out/perturb
        """
        from radtl.bundle import checked_overrides
        from radtl.evaluation.runs import BundleTask, perturbation_robustness

        task = BundleTask(bundle, out, **checked_overrides(set, bundle, reserved={"output_dir": "--out"}))
        path = perturbation_robustness(task, _pairs(checkpoints, "--checkpoints"), split,
                                       split_values(shifts, float, "--shifts"), split_values(scales, float, "--scales"), limit)
        print(f"stability: {path}")


#: Bundle keys that ``radtl sweep`` and ``radtl segment`` set from their own options, refused in ``--set``.
_SWEEP_OPTIONS = {"lr": "--lrs", "init": "--init", "pretrained": "--init", "backbone": "--backbones",
                  "train_fraction": "--train_fraction", "seed": "--seed", "output_dir": "--output_dir",
                  "bundle_root": "the bundle argument"}
_SEGMENT_OPTIONS = {"input_series": "SERIES_DIR", "seg_output": "--out", "ckpt_path": "--checkpoint",
                    "fractional": "--fractional", "bundle_root": "--bundle", "sr_output": "--sr"}


def _pairs(text, option: str) -> dict[str, str]:
    """``NAME=VALUE,NAME=VALUE`` as a dict, or a :class:`UsageError` naming the entry without ``=``."""
    entries = split_values(text)
    bad = [entry for entry in entries if "=" not in entry]
    if bad or not entries:
        raise UsageError(f"{option} takes NAME=VALUE pairs, comma separated; got {bad[0] if bad else text!r}")
    return dict(entry.split("=", 1) for entry in entries)


#: Options that several ``--set`` gather into one list before ``fire`` reads the command line.
_REPEATABLE = ("--set",)


def _gather_repeated(arguments: list[str]) -> list[str]:
    """``--set a=1 --set b=2`` as one ``--set`` holding the list, since ``fire`` keeps only the last."""
    kept, gathered = [], {}
    index = 0
    while index < len(arguments):
        token = arguments[index]
        flag = token.split("=", 1)[0]
        if token == "--":
            kept += arguments[index:]
            break
        if flag in _REPEATABLE:
            if "=" in token:
                gathered.setdefault(flag, []).append(token.split("=", 1)[1])
            elif index + 1 < len(arguments):
                gathered.setdefault(flag, []).append(arguments[index + 1])
                index += 1
            index += 1
            continue
        kept.append(token)
        index += 1
    return kept + [f"{flag}={values!r}" for flag, values in gathered.items()]


def main(argv: list[str] | None = None) -> None:
    """``radtl``: list the commands, show one's help, or check its command line and run it with ``fire``.

    A user error ends the process with one line on standard error and exit status 2 (see :mod:`radtl.commands`).
    Output piped into a reader that stops early (``radtl query ... | head``) ends the command quietly.
    """
    try:
        _main(argv)
    except BrokenPipeError:
        # the reader went away: point stdout at /dev/null so Python's own flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None  # 128 + SIGPIPE, what a shell reports for a command killed by it


def _main(argv: list[str] | None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(arguments)
    verbose = "--verbose" in arguments
    arguments = [a for a in arguments if a not in ("--debug", "--verbose")]
    table = commands(RadtlCLI)
    if not arguments or arguments[0] in ("-h", "--help", "help"):
        print(listing(table))
        return
    if arguments[0] == "--version":
        import radtl

        print(f"radtl {radtl.__version__}")
        return
    name = arguments[0]
    try:
        command = find_command(table, name)
        name = command.name
        rest = arguments[1:]
        if "-h" in rest or "--help" in rest:
            print(command.help())
            return
        check_arguments(command, rest)
        from radtl.logs import configure

        configure(verbose=verbose or None)
        import fire

        fire.Fire(RadtlCLI, command=[command.attribute, *_gather_repeated(rest)], name="radtl")
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"radtl {name}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:  # noqa: BLE001  the one exit path: user errors in one line, radtl's faults traced
        if debug or not is_user_error(error):
            raise
        print(user_error_line(name, error), file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
