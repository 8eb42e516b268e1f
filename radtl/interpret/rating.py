"""The blinded rating of heatmaps by radiologists, as the RadiologyNET study ran it.

Two radiologists rated 20 random test heatmaps per source (the same test image's Grad-CAM from the
Baseline, ImageNet and RadiologyNET models: GRAZPEDWRI-DX with DenseNet-121, BTMR with ResNet-50)
from 1 (irrelevant) to 5 (only relevant regions), the sources hidden as (a)/(b)/(c)
(shared/science/radiologynet.md, "Grad-CAM"; thesis 5.1). The three steps:

1. :func:`write_rating_sheet`: draw the cases, shuffle each case's sources into panels, and write
   the images, a sheet for the raters (``sheet.csv``, no sources), the key for the organiser
   (``key.csv``) and the instructions (``README.txt``);
2. the raters fill the ``rating`` column (one combined sheet, or one copy per rater);
3. :func:`read_ratings` validates the sheets and joins the key; :func:`rating_summary` gives each
   source's mean, SD, median and per-rater means.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from radtl.atomic import write_bytes_atomic, write_text_atomic
from radtl.png import encode_png

__all__ = [
    "KEY_COLUMNS",
    "RATING_SCALE",
    "SHEET_COLUMNS",
    "rating_summary",
    "read_ratings",
    "write_rating_sheet",
]

logger = logging.getLogger(__name__)

#: The study's scale, 1 (irrelevant) to 5 (only relevant regions). The study names the two ends only;
#: the wording of 2-4 is radtl's, for the raters' instructions.
RATING_SCALE = {
    1: "irrelevant: the heatmap highlights no region that matters for the finding",
    2: "mostly irrelevant: a relevant region is touched, but irrelevant regions dominate",
    3: "mixed: relevant and irrelevant regions are highlighted about equally",
    4: "mostly relevant: the relevant regions dominate, with some irrelevant highlights",
    5: "only relevant regions are highlighted",
}
SHEET_COLUMNS = ("case", "panel", "image", "rater", "rating", "comment")
KEY_COLUMNS = ("case", "panel", "source")

_PANELS = "abcdefghijklmnopqrstuvwxyz"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

PathLike = str | os.PathLike


def _file_stem(case: str) -> str:
    """A case id as a file-name stem: anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``."""
    return _UNSAFE.sub("_", case).strip("._") or "case"


def _png_bytes(path: Path) -> bytes:
    """The image re-encoded as an RGB PNG, without the original's format or metadata."""
    with Image.open(path) as image:
        return encode_png(np.asarray(image.convert("RGB")))


def _readme(n_cases: int, panels: str, raters: Sequence[str]) -> str:
    scale = "\n".join(f"  {score} = {text}" for score, text in RATING_SCALE.items())
    labels = ", ".join(f"({panel})" for panel in panels)
    names = ", ".join(raters)
    return f"""Heatmap rating
==============

Each of the {n_cases} cases shows one image with {len(panels)} heatmaps, panels {labels},
in images/<case>_<panel>.png: the input on the left, the heatmap over it on the right (warm colours
mark the regions the model relied on most). The panels of a case come from different models, in an
order shuffled per case; nothing in a file tells which model made it.

For every row of sheet.csv with your rater name ({names}), enter in the column
"rating" a whole number from 1 to 5 for how relevant the highlighted regions are to the finding:

{scale}

Rate each panel on its own; the same score may be given to several panels of a case. Leave the
rating blank if you cannot judge a panel (say why under "comment"). Do not change the columns
case, panel, image or rater. Save the sheet as CSV (you may keep only your own rows).
"""


def write_rating_sheet(
    sources: Mapping[str, Mapping[str, PathLike]],
    out_dir: PathLike,
    n: int = 20,
    seed: int = 0,
    raters: Sequence[str] = ("rater_1", "rater_2"),
    overwrite: bool = False,
) -> Path:
    """Draw ``n`` cases and write a blinded rating sheet of their heatmaps from every source.

    Cases are drawn from those every source has, and each case's sources are shuffled into panels
    ``a``, ``b``, ``c``, ... with one seeded generator, so the same inputs and seed give the same
    sheet. Images are re-encoded as RGB PNGs, so that neither a file's name, its format nor its
    metadata reveals the source. Written into ``out_dir``:

    - ``images/<case>_<panel>.png`` (case ids with characters unsafe in file names replaced by ``_``);
    - ``sheet.csv`` for the raters: ``case, panel, image, rater, rating, comment``, one row per
      case, panel and rater, ``rating`` and ``comment`` blank, cases in their drawn order;
    - ``key.csv`` for the organiser alone: ``case, panel, source``;
    - ``README.txt``: the instructions and the 1-5 scale (:data:`RATING_SCALE`).

    Args:
        sources: source name (``"RadiologyNET"``) -> case id -> heatmap image file (any format
            PIL reads, e.g. from :func:`~radtl.interpret.gradcam.save_heatmap`).
        out_dir: the folder to write.
        n: cases to draw; when fewer cases are common to all sources, all are used (logged).
        seed: seed of the draw and of the panel order.
        raters: the raters' names, one block of rows each.
        overwrite: replace an existing sheet and key in ``out_dir``; by default refused, since a
            new key no longer matches the sheets already handed out.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: no sources, more than 26, no case common to all, ``n`` < 1, no or repeated
            raters, or two case ids with the same file name.
        FileExistsError: ``out_dir`` holds a sheet or key and ``overwrite`` is False.
        FileNotFoundError: a heatmap file that does not exist.
    """
    if not sources:
        raise ValueError("no sources to rate")
    if len(sources) > len(_PANELS):
        raise ValueError(f"{len(sources)} sources, but panels run from a to z ({len(_PANELS)})")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    raters = [str(rater) for rater in raters]
    if not raters or len(set(raters)) != len(raters) or not all(raters):
        raise ValueError(f"raters must be distinct non-empty names, got {raters}")
    out_dir = Path(out_dir)
    existing = [name for name in ("sheet.csv", "key.csv") if (out_dir / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir} already holds {', '.join(existing)}; pass overwrite=True or a new folder")

    names = list(sources)
    files = {name: {str(case): Path(path) for case, path in cases.items()} for name, cases in sources.items()}
    common = sorted(set.intersection(*(set(cases) for cases in files.values())))
    if not common:
        raise ValueError(f"no case is common to every source ({', '.join(names)})")
    stems: dict[str, str] = {}
    for case in common:
        stem = _file_stem(case)
        if stem in stems:
            raise ValueError(f"case ids {stems[stem]!r} and {case!r} both become the file name {stem!r}")
        stems[stem] = case
    if len(common) < n:
        logger.warning("only %d case(s) are common to every source; rating all of them, not %d", len(common), n)

    rng = np.random.default_rng(seed)
    drawn = [common[i] for i in rng.permutation(len(common))[: min(n, len(common))]]
    panels = _PANELS[: len(names)]
    key_rows, images = [], []
    for case in drawn:
        order = rng.permutation(len(names))
        for panel, source_index in zip(panels, order):
            source = names[source_index]
            image = f"images/{_file_stem(case)}_{panel}.png"
            key_rows.append({"case": case, "panel": panel, "source": source})
            images.append((case, panel, image))
            write_bytes_atomic(out_dir / image, _png_bytes(files[source][case]))
    sheet = pd.DataFrame(
        [
            {"case": case, "panel": panel, "image": image, "rater": rater, "rating": "", "comment": ""}
            for rater in raters
            for case, panel, image in images
        ],
        columns=list(SHEET_COLUMNS),
    )
    write_text_atomic(out_dir / "sheet.csv", sheet.to_csv(index=False))
    write_text_atomic(out_dir / "key.csv", pd.DataFrame(key_rows, columns=list(KEY_COLUMNS)).to_csv(index=False))
    write_text_atomic(out_dir / "README.txt", _readme(len(drawn), panels, raters))
    return out_dir


def _read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """A CSV as strings (case ids like ``007`` stay as written; blanks are ``""``)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(table.columns)}")
    return table.apply(lambda column: column.str.strip())


def _parse_rating(value: str) -> int | None:
    """An integer 1-5 (``"4"``, also ``"4.0"`` as spreadsheets may save it), or None when not one."""
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() and 1 <= number <= 5 else None


def read_ratings(sheets: PathLike | Sequence[PathLike], key: PathLike) -> pd.DataFrame:
    """The filled sheets joined with the key: one row per rating given.

    Args:
        sheets: the filled ``sheet.csv``, or several files (one per rater, or any split of the
            rows); each needs the columns ``case, panel, rater, rating``.
        key: the ``key.csv`` :func:`write_rating_sheet` wrote.

    Returns:
        A DataFrame ``case, panel, source, rater, rating`` (``rating`` int 1-5), in the sheets'
        order. Blank ratings (a panel the rater could not judge) are left out, counted in the log
        and in ``frame.attrs["notes"]``, e.g. ``["3 blank rating(s) excluded (sheet.csv: 3)"]``.

    Raises:
        ValueError: a rating that is not a whole number from 1 to 5, naming the file, the row (as
            a spreadsheet counts them, the header being row 1) and the value; a row without a
            rater; a (case, panel) that is not in the key; the same (case, panel, rater) rated
            twice; a key that repeats a (case, panel) or lacks a column.
    """
    paths = [Path(sheets)] if isinstance(sheets, (str, os.PathLike)) else [Path(sheet) for sheet in sheets]
    if not paths:
        raise ValueError("no rating sheets given")
    key_path = Path(key)
    key_table = _read_table(key_path, KEY_COLUMNS)
    repeated = key_table.duplicated(["case", "panel"])
    if repeated.any():
        case, panel = key_table.loc[repeated.idxmax(), ["case", "panel"]]
        raise ValueError(f"{key_path}: case {case!r} panel {panel!r} appears more than once")
    sources = {(case, panel): source for case, panel, source in key_table[list(KEY_COLUMNS)].itertuples(index=False)}

    rows, blanks, seen = [], {}, {}
    for path in paths:
        table = _read_table(path, ("case", "panel", "rater", "rating"))
        for index, case, panel, rater, value in table[["case", "panel", "rater", "rating"]].itertuples():
            where = f"{path}: row {index + 2} (case {case!r}, panel {panel!r}, rater {rater!r})"
            if (case, panel) not in sources:
                raise ValueError(f"{where}: case {case!r} panel {panel!r} is not in the key {key_path}")
            if not rater:
                raise ValueError(f"{where}: no rater named")
            if not value:
                blanks[path.name] = blanks.get(path.name, 0) + 1
                continue
            rating = _parse_rating(value)
            if rating is None:
                raise ValueError(f"{where}: rating {value!r} is not a whole number from 1 to 5")
            if (case, panel, rater) in seen:
                raise ValueError(f"{where}: already rated at {seen[case, panel, rater]}")
            seen[case, panel, rater] = f"{path}: row {index + 2}"
            rows.append(
                {"case": case, "panel": panel, "source": sources[case, panel], "rater": rater, "rating": rating}
            )

    ratings = pd.DataFrame(rows, columns=["case", "panel", "source", "rater", "rating"]).astype({"rating": int})
    notes = []
    if blanks:
        counts = ", ".join(f"{name}: {count}" for name, count in blanks.items())
        notes.append(f"{sum(blanks.values())} blank rating(s) excluded ({counts})")
        logger.warning(notes[-1])
    ratings.attrs["notes"] = notes
    return ratings


def rating_summary(ratings: pd.DataFrame) -> pd.DataFrame:
    """Each source's ratings: ``n``, ``mean``, ``sd``, ``median`` and ``mean_<rater>`` per rater.

    Args:
        ratings: the frame :func:`read_ratings` returns (columns ``source``, ``rater``, ``rating``).

    Returns:
        One row per source (index ``source``), sorted by ``mean``, highest first. ``sd`` is the
        sample standard deviation (``ddof=1``; NaN for a single rating); a rater who rated none
        of a source's panels has NaN in that source's ``mean_<rater>``. ``attrs["notes"]`` is
        carried over.
    """
    missing = [column for column in ("source", "rater", "rating") if column not in ratings.columns]
    if missing:
        raise ValueError(f"ratings lack column(s) {', '.join(missing)}")
    grouped = ratings.groupby("source")["rating"]
    summary = pd.DataFrame(
        {"n": grouped.size(), "mean": grouped.mean(), "sd": grouped.std(ddof=1), "median": grouped.median()}
    )
    per_rater = ratings.pivot_table(index="source", columns="rater", values="rating", aggfunc="mean")
    for rater in per_rater.columns:
        summary[f"mean_{rater}"] = per_rater[rater]
    summary = summary.sort_values("mean", ascending=False, kind="stable")
    summary.index.name = "source"
    summary.attrs["notes"] = list(ratings.attrs.get("notes", []))
    return summary
