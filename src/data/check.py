"""Check that videos open: `python -m src.data.check <videos or manifests...> [--json] [--full]`.

Reports, for every video, whether it is readable, the backend used, its frame
count, fps, duration and size, or the error. By default a video is opened and its first
frame decoded; `--full` decodes every frame (one pass over each file) and reports the ones
that fail (`bad_frames`, and their indices in `error`): a file damaged after its start. Arguments are video files or
manifests listing them: `.jsonl` (rows with a `video` key), `.json` (a list of
such rows, or of paths), `.csv` (a `video`, `path` or `file` column) or `.txt` (one path
per line). Relative paths in a manifest resolve against the manifest's folder. Rows of
a LLaVA-style manifest that hold images or text only are counted on stderr, not checked.
Every bad line of a manifest (not UTF-8, not JSON, no video entry) is printed on stderr as
`FILE:LINE: why`, and the other lines are still checked.

Exit code 0 when every video is readable and every manifest line good, 1 otherwise (2 for
usage errors, and for a manifest that cannot be read at all: a binary file, a .json file
that is not UTF-8 JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from src.data.errors import ManifestError
from src.data.manifest import RowSkip, parse_json, parse_jsonl, text_lines
from src.data.video import VideoError, open_video

MANIFEST_SUFFIXES = {".json", ".jsonl", ".csv", ".txt"}
KEYS = ("path", "ok", "backend", "frames", "fps", "duration", "width", "height", "bad_frames", "error")


def _row_path(row: Any) -> str | None:
    """The row's video; None for a row of images or text only (LLaVA-style); ValueError otherwise."""
    if isinstance(row, str):
        return row
    if isinstance(row, dict):
        for key in ("video", "path", "file"):
            if row.get(key):
                return str(row[key])
        if "image" in row or "conversations" in row:
            return None
    raise ValueError(f"no video, path or file entry: {str(row)[:80]}")


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    """("FILE:LINE" or "FILE row N", row) of a manifest; the row is a `RowSkip` for a bad line."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for lineno, row in parse_jsonl(path):
            yield f"{path}:{lineno}", row
        return
    if suffix == ".json":
        rows = parse_json(path)
        if not isinstance(rows, list):
            raise ManifestError(f"{path}: expected a JSON list of rows")
        for k, row in enumerate(rows, 1):
            yield f"{path} row {k}", row
        return
    lines = list(text_lines(path))
    bad = [(n, line) for n, line in lines if isinstance(line, RowSkip)]
    for lineno, skip in bad:
        yield f"{path}:{lineno}", skip
    good = [(n, line) for n, line in lines if isinstance(line, str)]
    if suffix == ".csv":
        header, *body = good or [(0, "")]
        for (lineno, _), row in zip(body, csv.DictReader([header[1]] + [line for _, line in body])):
            yield f"{path}:{lineno}", row
    else:
        for lineno, line in good:
            if not line.startswith("#"):
                yield f"{path}:{lineno}", line.strip()


def read_manifest(path: Path, problems: list[str] | None = None) -> list[Path]:
    """The videos a manifest lists, relative paths resolved against its folder. Every bad line
    (not UTF-8, not JSON, no video entry) goes to `problems` as "FILE:LINE: why" and the
    others are still read; without `problems`, the first bad line is a ManifestError."""
    found: list[str | None] = []
    for where, row in _rows(path):
        try:
            if isinstance(row, RowSkip):
                raise ValueError(row.detail)
            found.append(_row_path(row))
        except ValueError as e:
            if problems is None:
                raise ManifestError(f"{where}: {e}") from None
            problems.append(f"{where}: {e}")
    others = sum(p is None for p in found)
    if others:
        print(f"{path}: {others} row(s) of images or text only, not checked", file=sys.stderr)
    return [path.parent / p for p in found if p is not None]


def expand(args: Iterable[str], problems: list[str] | None = None) -> list[Path]:
    """Video paths from the command line, with manifests replaced by what they list."""
    videos: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            videos.extend(read_manifest(path, problems))
        else:
            videos.append(path)
    return videos


def _spans(indices: Sequence[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    out: list[str] = []
    for i in indices:
        if out and int(out[-1].split("-")[-1]) == i - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ", ".join(out)


def check_video(path: Path, full: bool = False) -> dict[str, Any]:
    """One report row with exactly the keys in `KEYS`. `full`: every frame is decoded, and
    the row is not ok when one fails (`bad_frames` counts them; None when not decoded)."""
    row: dict[str, Any] = dict.fromkeys(KEYS)
    row.update(path=str(path), ok=False)
    try:
        with open_video(path) as video:
            video.get([0])  # opening is not enough: a stream can open and still not decode
            bad = video.bad_frames() if full else []
            row.update(
                ok=not bad,
                bad_frames=len(bad) if full else None,
                error=f"{len(bad)} of {video.num_frames} frames do not decode: {_spans(bad)}" if bad else None,
                backend=video.backend,
                frames=video.num_frames,
                fps=round(video.fps, 6),
                duration=round(video.duration, 6),
                width=video.width,
                height=video.height,
            )
    except VideoError as e:
        row["error"] = str(e)
    except Exception as e:  # a checker reports every file; it must not stop at the first surprise
        row["error"] = f"{path}: {type(e).__name__}: {e}"
    return row


def _table(rows: Sequence[dict[str, Any]]) -> str:
    cols = KEYS
    cells = [
        [("" if r[c] is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c])) for c in cols] for r in rows
    ]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(cols)]
    fmt = lambda line: "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(list(cols)), fmt(["-" * w for w in widths])] + [fmt(line) for line in cells])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.data.check", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="video files or manifests (.json/.jsonl/.csv/.txt)")
    parser.add_argument("--json", action="store_true", help="one JSON object per video per line")
    parser.add_argument("--full", action="store_true", help="decode every frame and report those that fail")
    args = parser.parse_args(argv)
    # Fallback warnings would interleave with the report; the report has the facts.
    logging.getLogger("src.data.video").setLevel(logging.ERROR)
    problems: list[str] = []
    try:
        videos = expand(args.inputs, problems)
    except (OSError, ValueError) as e:  # ManifestError is a ValueError: a file that is no manifest at all
        parser.error(str(e))
    for problem in problems:
        print(problem, file=sys.stderr)
    rows = [check_video(v, args.full) for v in videos]
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(_table(rows))
        good = sum(r["ok"] for r in rows)
        bad_lines = f", {len(problems)} bad manifest line(s)" if problems else ""
        print(f"{good} readable, {len(rows) - good} unreadable{bad_lines}")
    return 0 if all(r["ok"] for r in rows) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
