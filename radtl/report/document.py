"""One document, written as Markdown and as HTML with the same content: radtl's reports.

A report is a list of blocks (:class:`Heading`, :class:`Paragraph`, :class:`Table`,
:class:`Image`, :class:`Bullets`); :func:`write_document` renders it twice, ``<stem>.md``
(CommonMark with pipe tables) and ``<stem>.html`` (one self-contained page with inline CSS,
every text escaped), with image links relative to the report's folder so the folder can be
moved or zipped with its figures. The pseudo-labelling report and the comparison report
(``radtl report``) are both written this way.
"""

from __future__ import annotations

import html
import numbers
import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from radtl.atomic import write_atomic, write_text_atomic

__all__ = [
    "Bullets",
    "Heading",
    "Image",
    "Paragraph",
    "Table",
    "format_cell",
    "is_missing",
    "save_figure",
    "table_from_frame",
    "write_document",
]

#: Resolution of every saved figure.
DPI = 100


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    """A figure file with its caption; the file must exist when the document is written."""

    path: str | os.PathLike
    caption: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


def is_missing(value: object) -> bool:
    """None, NaN / NaT, or a blank string."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-likes: not a single missing scalar
        return False


def format_cell(value: object, decimals: int = 3) -> str:
    """A table cell: missing -> "", floats with ``decimals`` decimals, tuples joined by " / ", else ``str``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, tuple):
        return " / ".join(format_cell(v, decimals) for v in value)
    if is_missing(value):
        return ""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{decimals}f}"
    return str(value)


def table_from_frame(frame: pd.DataFrame, decimals: int = 3) -> Table:
    """``frame`` as a :class:`Table`; its index becomes the first column unless it is the default 0..n-1."""
    index = frame.index
    default_index = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None
    header = [format_cell(c) for c in frame.columns]
    rows = [[format_cell(v, decimals) for v in record] for record in frame.itertuples(index=False, name=None)]
    if not default_index:
        header = [" / ".join(str(name) for name in index.names if name is not None)] + header
        rows = [[format_cell(key, decimals)] + row for key, row in zip(index, rows)]
    return Table(header, rows)


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Save ``fig`` as PNG under a temporary name, then rename it over ``path``."""
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))


def _markdown_text(text: str) -> str:
    """Backslash-escape the characters that would change meaning in Markdown (CommonMark 2.4)."""
    text = " ".join(str(text).split())
    return "".join(f"\\{ch}" if ch in "\\`*[]<>|#" else ch for ch in text)


def _relative_src(path: str | os.PathLike, out_dir: Path) -> str:
    target = Path(path).resolve()
    if not target.is_file():
        raise FileNotFoundError(f"report: figure file {path} does not exist")
    return urllib.parse.quote(Path(os.path.relpath(target, out_dir.resolve())).as_posix(), safe="/")


def _markdown(blocks: Sequence, out_dir: Path) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {_markdown_text(block.text)}")
        elif isinstance(block, Paragraph):
            out.append(_markdown_text(block.text))
        elif isinstance(block, Table):
            out.append("| " + " | ".join(_markdown_text(h) for h in block.header) + " |")
            out.append("|" + "|".join("---" for _ in block.header) + "|")
            out.extend("| " + " | ".join(_markdown_text(c) for c in row) + " |" for row in block.rows)
        elif isinstance(block, Image):
            caption = _markdown_text(block.caption)
            out.append(f"![{caption}]({_relative_src(block.path, out_dir)})\n\n*{caption}*")
        elif isinstance(block, Bullets):
            out.extend(f"- {_markdown_text(item)}" for item in block.items)
        else:
            raise TypeError(f"report: unknown block {block!r}")
        out.append("")
    return "\n".join(out)


_CSS = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.2em 0.6em;text-align:left}"
    "th{background:#f2f2f2}tbody tr:nth-child(even){background:#fafafa}"
    "figure{margin:1.5em 0}img{max-width:100%}figcaption{font-style:italic;color:#555}"
)


def _html(title: str, blocks: Sequence, out_dir: Path) -> str:
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{esc(title)}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Table):
            out.append("<table>")
            out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in block.header) + "</tr></thead>")
            out.append("<tbody>")
            out.extend("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            out.append("</tbody>")
            out.append("</table>")
        elif isinstance(block, Image):
            out.append(f'<figure><img src="{esc(_relative_src(block.path, out_dir))}" alt="{esc(block.caption)}">'
                       f"<figcaption>{esc(block.caption)}</figcaption></figure>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def write_document(
    out_dir: str | os.PathLike, title: str, blocks: Sequence, stem: str = "report"
) -> tuple[Path, Path]:
    """Write ``out_dir/<stem>.md`` and ``out_dir/<stem>.html``: ``title`` as the first heading, then ``blocks``.

    A figure file that does not exist raises :class:`FileNotFoundError` before anything is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = [Heading(title, 1), *blocks]
    markdown, page = _markdown(blocks, out_dir), _html(title, blocks, out_dir)
    return write_text_atomic(out_dir / f"{stem}.md", markdown), write_text_atomic(out_dir / f"{stem}.html", page)
