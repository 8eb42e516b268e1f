"""Regenerate ``dicom_samples/tasks/pseudolabels/``: the pretraining bundles' sample set.

Unlike ``make_samples.py`` this script runs radtl itself, because the sample is the output of
radtl's own pipeline: the demo archive of docs/pseudolabelling.md (synthetic phantoms, 80
studies of 3 images) is indexed, converted to 64 px 8-bit PNGs and pseudo-labelled with
``docs/examples/pseudolabel.yaml``; the kept items' PNGs and the pseudo-label datalist are then
copied here, with image paths relative to the datalist so the folder works from any checkout::

    python dicom_samples/make_pseudolabel_sample.py            # into dicom_samples/tasks/pseudolabels

The clustering trains small networks, so a rerun on another machine may number the clusters
differently; the folder is committed as one run's output.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def make_pseudolabel_sample(out: Path) -> Path:
    """Run the demo pipeline in a temporary folder and copy its datalist and images into ``out``."""
    import yaml

    from radtl.dicom.convert import ExportSettings, convert_tree
    from radtl.dicom.index import build_index
    from radtl.dicom.synthetic import write_archive, write_reports
    from radtl.pseudolabel.pipeline import run_pseudolabel

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        files = write_archive(work / "dicom", studies=80, series_per_study=1, instances_per_series=3, image_size=64,
                              pixels="phantom")
        write_reports(files, work / "reports.csv")
        build_index(work / "dicom", work / "index")
        convert_tree(work / "dicom", work / "converted", ExportSettings(size=64))
        config = yaml.safe_load((REPO / "docs" / "examples" / "pseudolabel.yaml").read_text())
        config.update(index=str(work / "index"), out=str(work / "pseudolabels"))
        config["images"]["folder"] = str(work / "converted")
        config["text"]["reports"] = str(work / "reports.csv")
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        run_pseudolabel(work / "config.yaml")

        datalist = json.loads((work / "pseudolabels" / "datalist.json").read_text())
        if out.exists():
            shutil.rmtree(out)
        (out / "images").mkdir(parents=True)
        for split in ("training", "validation", "test"):
            for item in datalist[split]:
                image = Path(item["image"])
                name = f"{len(list((out / 'images').iterdir())):04d}.png"
                shutil.copyfile(image, out / "images" / name)
                item["image"] = f"images/{name}"
                item["source"] = str(Path(item["source"]).relative_to(work))
        (out / "datalist.json").write_text(json.dumps(datalist, indent=1) + "\n")
        shutil.copyfile(work / "pseudolabels" / "clusters.csv", out / "clusters.csv")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "tasks" / "pseudolabels")
    args = parser.parse_args(argv)
    out = make_pseudolabel_sample(args.out)
    datalist = json.loads((out / "datalist.json").read_text())
    print(f"{out}: {len(datalist['labels'])} pseudo-labels, "
          + ", ".join(f"{len(datalist[s])} {s}" for s in ("training", "validation", "test")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
