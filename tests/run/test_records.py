"""A record that cannot be written or read: never a traceback, never a point that is stuck."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from src.run import records
from src.run.records import UnreadableRecord, is_finished, read_record, remove_temporary, write_record

RECORD: dict[str, Any] = {k: {} for k in records.REQUIRED_KEYS} | {
    "status": "ok",
    "reason": None,
    "sweep": "s",
    "metrics": {"x": 1.0},
}


def test_the_record_is_readable_by_others_as_the_other_files(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_record(tmp_path, RECORD)
        other = tmp_path / "other.txt"
        other.write_text("x")
    finally:
        os.umask(old)
    assert path is not None
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(other.stat().st_mode) == 0o644


def test_a_truncated_record_is_unreadable_and_counts_as_not_finished(tmp_path: Path) -> None:
    write_record(tmp_path, RECORD)
    full = (tmp_path / "result.json").read_text()
    (tmp_path / "result.json").write_text(full[: len(full) // 2])
    with pytest.raises(UnreadableRecord, match=r"result.json: unreadable \(JSONDecodeError"):
        read_record(tmp_path)
    assert not is_finished(tmp_path)  # the sweep's re-run trains it again


def _disk_with_room_for(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    real = records._write_all

    def write_all(fd: int, data: bytes) -> None:
        if len(data) > room:
            real(fd, data[:room])  # what fitted, then the disk was full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(records, "_write_all", write_all)


def test_a_full_disk_still_leaves_a_failed_record_where_a_small_one_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _disk_with_room_for(monkeypatch, 600)
    big = RECORD | {"config": {"k": "v" * 5000}}
    path = write_record(tmp_path, big)
    assert path == tmp_path / "result.json"
    rec = json.loads(path.read_text())
    assert rec["status"] == "failed" and "No space left on device" in rec["reason"]
    assert set(records.REQUIRED_KEYS) <= rec.keys()
    assert "a failed record written in its place" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary left behind


def test_a_disk_with_no_room_at_all_says_so_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _disk_with_room_for(monkeypatch, 0)
    assert write_record(tmp_path, RECORD | {"status": "failed", "reason": "RuntimeError: boom"}) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'result.json'}: no record written")
    assert "No space left on device" in err[0] and "RuntimeError: boom" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_a_killed_write_are_removed_at_the_next_start(tmp_path: Path) -> None:
    from src.run import checkpoints

    stale = tmp_path / ".result.123.abcdef12.json"
    stale.write_text("")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.ckpt.tmp").write_bytes(b"half")
    assert remove_temporary(tmp_path) == [stale]
    assert checkpoints.remove_temporary(tmp_path) == tmp_path / "checkpoints" / ".last.ckpt.tmp"
    assert list(tmp_path.rglob("*.tmp")) == [] and not stale.exists()


class _FullDiskTrainer:
    """A trainer whose checkpoint write runs out of disk half way (what `save` needs of one)."""

    is_global_zero = True

    def save_checkpoint(self, path: Path, weights_only: bool = False) -> None:
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_checkpoint_save_keeps_the_last_one_and_leaves_no_temporary(tmp_path: Path) -> None:
    from src.run import checkpoints

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"the previous one")
    with pytest.raises(OSError, match="No space left"):
        checkpoints.save(_FullDiskTrainer(), tmp_path)  # type: ignore[arg-type]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"]
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == b"the previous one"
