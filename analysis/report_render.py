"""A report as a list of blocks, rendered to Markdown and to one self-contained HTML file.

Blocks are headings, paragraphs, bullet lists, tables (pandas DataFrames) and images
(PNG paths relative to the report's folder). Markdown links the PNGs; HTML embeds them as
base64 data URIs, so `report.html` opens in a browser on its own, copied anywhere.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Image:
    path: str  # relative to the report's folder
    caption: str


Block = Heading | Para | Bullets | Table | Image


def cell(value: object) -> str:
    """A table cell: floats to 3 decimals, missing values as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.4g}"
    try:
        if pd.isna(value):  # pandas NA / NaT
            return "-"
    except (TypeError, ValueError):
        pass
    return str(value)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown; images as relative links."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Bullets):
            # a multi-line reason (a Hydra error) stays one bullet
            out.append("\n".join(f"- {' '.join(item.split())}" for item in b.items))
        elif isinstance(b, Table):
            cols = [str(c) for c in b.frame.columns]
            rows = ["| " + " | ".join(_md_escape(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
            rows += ["| " + " | ".join(_md_escape(cell(v)) for v in r) + " |" for r in b.frame.itertuples(index=False)]
            out.append((f"*{b.caption}*\n\n" if b.caption else "") + "\n".join(rows))
        elif isinstance(b, Image):
            out.append(f"![{b.caption}]({b.path})\n\n*{b.caption}*")
    return "\n\n".join(out) + "\n"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td{text-align:right;white-space:nowrap}td:first-child{text-align:left}figure{margin:1em 0 2em}
img{max-width:100%;border:1px solid #eee}.wide{overflow-x:auto}figcaption{font-style:italic;color:#555}code{background:#f5f5f5}"""  # noqa: E501


def _image_src(root: Path, rel: str, embed: bool) -> str:
    if not embed:
        return html.escape(rel)
    data = base64.b64encode((root / rel).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def to_html(blocks: list[Block], root: Path, title: str, embed: bool = True) -> str:
    """One HTML page; with `embed`, every PNG (read from `root`) inlined as base64."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in b.frame.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>"
                for r in b.frame.itertuples(index=False)
            )
            cap = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
            body.append(f'<div class="wide"><table>{cap}<tr>{head}</tr>{rows}</table></div>')
        elif isinstance(b, Image):
            src = _image_src(root, b.path, embed)
            body.append(
                f'<figure><img src="{src}" alt="{html.escape(b.caption)}">'
                f"<figcaption>{html.escape(b.caption)} ({html.escape(b.path)})</figcaption></figure>"
            )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
