"""Check that videos open: `python -m src.data.check <videos or manifests...> [--json]`.

Reports, for every video, whether it is readable, the backend used, its frame
count, fps, duration and size, or the error. Arguments are video files or
manifests listing them: `.jsonl` (rows with a `video` key), `.json` (a list of
such rows, or of paths), `.csv` (a `video`, `path` or `file` column) or `.txt` (one path
per line). Relative paths in a manifest resolve against the manifest's folder. Rows of
a LLaVA-style manifest that hold images or text only are counted on stderr, not checked.

Exit code 0 when every video is readable, 1 otherwise (2 for usage errors).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from src.data.video import VideoError, open_video

MANIFEST_SUFFIXES = {".json", ".jsonl", ".csv", ".txt"}
KEYS = ("path", "ok", "backend", "frames", "fps", "duration", "width", "height", "error")


def _row_path(row: Any, source: Path) -> str | None:
    """The row's video; None for a row of images or text only (LLaVA-style)."""
    if isinstance(row, str):
        return row
    if isinstance(row, dict):
        for key in ("video", "path", "file"):
            if row.get(key):
                return str(row[key])
        if "image" in row or "conversations" in row:
            return None
    raise ValueError(f"{source}: a row has no video, path or file entry: {str(row)[:80]}")


def read_manifest(path: Path) -> list[Path]:
    """The videos a manifest lists, relative paths resolved against its folder."""
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        rows: list[Any] = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif suffix == ".json":
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of rows")
    elif suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        rows = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    found = [_row_path(row, path) for row in rows]
    others = sum(p is None for p in found)
    if others:
        print(f"{path}: {others} row(s) of images or text only, not checked", file=sys.stderr)
    return [path.parent / p for p in found if p is not None]


def expand(args: Iterable[str]) -> list[Path]:
    """Video paths from the command line, with manifests replaced by what they list."""
    videos: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            videos.extend(read_manifest(path))
        else:
            videos.append(path)
    return videos


def check_video(path: Path) -> dict[str, Any]:
    """One report row with exactly the keys in `KEYS`."""
    row: dict[str, Any] = dict.fromkeys(KEYS)
    row.update(path=str(path), ok=False)
    try:
        with open_video(path) as video:
            video.get([0])  # opening is not enough: a stream can open and still not decode
            row.update(
                ok=True,
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
    cols = ("path", "ok", "backend", "frames", "fps", "duration", "width", "height", "error")
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
    args = parser.parse_args(argv)
    # Fallback warnings would interleave with the report; the report has the facts.
    logging.getLogger("src.data.video").setLevel(logging.ERROR)
    try:
        videos = expand(args.inputs)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    rows = [check_video(v) for v in videos]
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(_table(rows))
        good = sum(r["ok"] for r in rows)
        print(f"{good} readable, {len(rows) - good} unreadable")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
