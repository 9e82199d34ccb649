"""A folder of cache files: atomic writes, least-recently-used eviction under a size limit.

Several processes (the runs of a sweep, their DataLoader workers) read and write the same
folder at once, so every write goes to a temporary file in the target's own folder and is
renamed into place (`os.replace` is atomic on POSIX): a reader sees the whole file or no
file, never a part. Two writers of one key both rename a complete file; the last wins, and
the two are the same bytes, since a key names its content.

Recency is a file's modification time: a hit touches it. When the files written since the
last look exceed a twentieth of the limit, the folder is measured and, past the limit,
the oldest files are removed until it holds 90% of it (the margin spares a full scan at
every write). A file removed while another process reads it stays readable to that reader
(POSIX unlink); a reader that comes after finds no file: a miss, never an error.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

STALE_TMP_SECONDS = 3600  # a temporary file this old belongs to a writer that died


class DiskStore:
    """Files `root/<kind>/<key[:2]>/<key><suffix>`, at most `max_bytes` in all (None: no limit)."""

    def __init__(self, root: str | Path, max_bytes: int | None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.evicted = 0  # files this process removed to keep under the limit
        self._written = 0  # bytes written since the folder was last measured

    def __getstate__(self) -> dict:
        # a DataLoader worker gets its own copy; it only reads
        return {**self.__dict__, "_written": 0, "evicted": 0}

    def path(self, kind: str, key: str, suffix: str = "") -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def read(self, path: Path) -> bytes | None:
        """The file's bytes, or None when there is none; a hit makes it the most recent."""
        try:
            data = path.read_bytes()
        except OSError:  # none there (or unreadable): a miss
            return None
        try:
            os.utime(path)
        except OSError:  # evicted by another process meanwhile: the bytes are still good
            pass
        return data

    def write(self, path: Path, data: bytes) -> None:
        """Write `data` to `path` atomically (temporary file, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._written += len(data)
        if self.max_bytes is not None and self._written > self.max_bytes / 20:
            self.evict()

    def files(self) -> list[tuple[float, int, Path]]:
        """(modification time, size, path) of every cache file; stale temporary files removed."""
        out = []
        now = time.time()
        for folder, _, names in os.walk(self.root):
            for name in names:
                p = Path(folder) / name
                try:
                    st = p.stat()
                except FileNotFoundError:  # removed by another process meanwhile
                    continue
                if name.startswith(".tmp-"):
                    if now - st.st_mtime > STALE_TMP_SECONDS:
                        p.unlink(missing_ok=True)
                    continue
                out.append((st.st_mtime, st.st_size, p))
        return out

    def size(self) -> int:
        return sum(size for _, size, _ in self.files())

    def evict(self) -> int:
        """Remove the least recently used files until the folder holds at most 90% of the limit."""
        self._written = 0
        if self.max_bytes is None:
            return 0
        files = self.files()
        total = sum(size for _, size, _ in files)
        if total <= self.max_bytes:
            return 0
        target = 0.9 * self.max_bytes
        removed = 0
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= target:
                break
            p.unlink(missing_ok=True)
            total -= size
            removed += 1
        self.evicted += removed
        log.info(
            "feature cache %s: removed %d least recently used files to stay under %.2f GB",
            self.root,
            removed,
            self.max_bytes / 1e9,
        )
        return removed
