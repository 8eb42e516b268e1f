"""``tasks/covid19_radiography/``: the layout of the COVID-19 Radiography Database, chest radiographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import RLELossless

from radtl.dicom.synthetic.iods import dx_image
from radtl.dicom.synthetic.modules import Study, add_window, birth_date, code, write
from radtl.dicom.synthetic.phantoms import covid_chest, percentile_window, to_12bit
from radtl.dicom.synthetic.registry import TASKS, sample_set

COVID_CLASSES = {"COVID": 40, "Normal": 56, "Lung_Opacity": 4}


@sample_set("covid19_radiography")
def build_covid19_radiography(out_dir: Path) -> list[Path]:
    """100 DX chest radiographs in ``<class>/images/`` (40 COVID, 56 Normal, 4 Lung_Opacity), RLE."""
    written = []
    for label, (finding, count) in enumerate(COVID_CLASSES.items()):
        rng = np.random.default_rng(7301 + label)
        for i in range(1, count + 1):
            n = 1000 * label + i
            years = int(rng.integers(18, 90))
            study = Study(
                f"covid-{finding}-{i}", f"RADTL^COVID^{n}", f"RADTL-COV-{n:04d}", birth_date(12 * years + 6),
                str(rng.choice(["F", "M"])), "Chest PA", f"{years:03d}Y", f"ACC-COV-{n:04d}",
            )
            arr = to_12bit(covid_chest(rng, finding), 0.0, 3.0, 100, 1100)
            ds = dx_image(
                study, "img", arr, "MONOCHROME2", code("51185008", "SCT", "Thorax"), "CHEST", "U", ["L", "F"], 6.0
            )
            center, width = percentile_window(arr, 1, 99)
            add_window(ds, [center], [width])
            path = out_dir / TASKS / "covid19_radiography" / finding / "images" / f"{finding}-{i}.dcm"
            written.append(write(ds, path, RLELossless))
    return written
