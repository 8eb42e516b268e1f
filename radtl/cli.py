"""The ``radtl`` command line: a thin ``fire`` layer over the library.

radtl convert SRC OUT [--size 256] [--formula dicom|paper] [--workers N] [--scheduler tcp://host:port]
radtl networks
radtl check-weights NETWORK CHECKPOINT [--source auto|radiologynet|torchvision|radtl] [--strict]
                    [--in_channels 3] [--num_classes 1000] [--out_channels ...]
"""

from __future__ import annotations

import logging
import sys

import fire

from radtl.dicom.convert import ConversionOptions
from radtl.dicom.export import ExportSettings, convert_tree
from radtl.networks import CheckpointError, available, create, load_pretrained


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


def main(argv: list[str] | None = None) -> None:
    fire.Fire(RadtlCLI, command=argv if argv is not None else sys.argv[1:], name="radtl")


if __name__ == "__main__":
    main()
