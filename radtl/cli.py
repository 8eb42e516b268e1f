"""The ``radtl`` command line: a thin ``fire`` layer over the library.

radtl convert SRC OUT [--size 256] [--formula dicom|paper] [--workers N] [--scheduler tcp://host:port]
radtl networks
radtl sweep BUNDLE [--lrs 1e-2,1e-3,1e-4,1e-5] [--repeats 5] [--init random,imagenet:PATH,radiologynet:PATH]
                   [--backbones a,b] [--train_fraction 0.05,0.25,0.5] [--output_dir DIR] [--max_epochs 10 ...]
radtl check-weights NETWORK CHECKPOINT [--source auto|radiologynet|torchvision|radtl] [--strict]
                    [--in_channels 3] [--num_classes 1000] [--out_channels ...]
radtl segment SERIES_DIR --out SEG.dcm [--bundle luna_nodule_seg] [--send URL] [--fractional]
              [--fetch URL --study UID --series UID] [--checkpoint PATH] [--threshold 0.5 ...]
radtl send FILE [FILE ...] --to URL
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import fire

from radtl.dicom.convert import ConversionOptions
from radtl.dicom.export import ExportSettings, convert_tree
from radtl.dicom.series import SeriesError
from radtl.networks import CheckpointError, available, create, load_pretrained
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
    ) -> None:
        """Convert DICOM files under SRC to 8-bit PNGs in OUT, with OUT/manifest.csv.

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
        """
        settings = ExportSettings(
            size=size,
            conversion=ConversionOptions(formula=formula, voi_preference=voi, color=color),
            compress_level=compress_level,
            min_value_fraction=min_value_fraction,
            min_aspect=min_aspect,
        )
        summary = convert_tree(
            src, out, settings, workers=workers, scheduler=scheduler, retry_errors=retry_errors, progress=progress
        )
        print(summary)
        print(f"manifest: {out}/manifest.csv")

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
            bundle_settings: any bundle setting for every run, e.g. --max_epochs 10 --dataset_dir /data/btmr.
        """
        _log_to_console()
        out = run_sweep(bundle, lrs, repeats, init, backbones, train_fraction, output_dir, seed, **bundle_settings)
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
        **bundle_settings,
    ) -> None:
        """Segment a CT series with a bundle and write a DICOM Segmentation; fetch from / send to a PACS.

        Args:
            series_dir: the folder holding one CT series (with --fetch: where the fetched series goes).
            out: the DICOM-SEG file to write.
            bundle: a segmentation bundle's folder or name.
            send: store the SEG in a PACS: dicom://AET@host:port (C-STORE) or http://host:port/dicom-web (STOW-RS).
            fetch: fetch the series from a PACS first (same URL forms: C-GET or WADO-RS), with --study and --series.
            study: Study Instance UID of the series to fetch.
            series: Series Instance UID of the series to fetch.
            checkpoint: trained weights (default: the bundle's models/model.pt).
            fractional: write probabilities (FRACTIONAL) instead of the thresholded mask (BINARY).
            bundle_settings: any bundle setting, e.g. --threshold 0.4 --min_nodule_volume_mm3 30.
        """
        _log_to_console()
        try:
            result = run_segment(
                series_dir, out, bundle, send_to=send, fetch_from=fetch, study_uid=study, series_uid=series,
                checkpoint=checkpoint, fractional=fractional, **bundle_settings,
            )
        except (SeriesError, PacsError, FileNotFoundError, IsADirectoryError, ValueError) as error:
            print(f"radtl segment: {error}", file=sys.stderr)
            if isinstance(error, PacsError) and Path(out).is_file():
                print(f"radtl segment: the SEG is kept at {out}; send it again when the PACS is back", file=sys.stderr)
            raise SystemExit(2) from error
        print(f"SEG: {result.seg}")
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


def _log_to_console() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")


def main(argv: list[str] | None = None) -> None:
    fire.Fire(RadtlCLI, command=argv if argv is not None else sys.argv[1:], name="radtl")


if __name__ == "__main__":
    main()
