"""`python -m src.data.check`: every bad manifest line reported with its file and line, and
`--full`, which decodes every frame, finding a file damaged after its start."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from src.data.check import KEYS, main
from tests.helpers import VIDEOS

GOOD = VIDEOS / "decord__video_0.mov"  # 3 frames


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mp4 of 40 frames (one keyframe) whose bytes at 70% of its media data are overwritten:
    frames 28 and 29 do not decode; frame 0 does."""
    if "libx264" not in av.codecs_available:
        pytest.skip("PyAV built without libx264")
    path = tmp_path_factory.mktemp("damaged") / "damaged.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"g": "100", "bf": "0"}
        for i in range(40):  # noise: every frame is a large packet
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    data = bytearray(path.read_bytes())
    mdat, moov = data.find(b"mdat"), data.find(b"moov")
    assert 0 < mdat < moov  # the media data first, the index after it
    at = mdat + int(0.7 * (moov - mdat))
    data[at : at + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    return path


def test_full_decodes_every_frame(damaged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(damaged), str(GOOD), "--json"]) == 0  # the quick check decodes frame 0 only
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["ok"] for r in rows] == [True, True] and rows[0]["bad_frames"] is None
    assert main([str(damaged), str(GOOD), "--json", "--full"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(tuple(r) == KEYS for r in rows)
    assert (rows[0]["ok"], rows[0]["bad_frames"], rows[0]["frames"]) == (False, 2, 40)
    assert rows[0]["error"] == "2 of 40 frames do not decode: 28-29"
    assert (rows[1]["ok"], rows[1]["bad_frames"], rows[1]["error"]) == (True, 0, None)


def test_full_agrees_across_backends_on_a_real_corrupt_file() -> None:
    from src.data.video import open_video

    path = VIDEOS / "decord__corrupted.mp4"  # 50 frames, 0..27 decode
    for backend in ("decord", "pyav"):
        with open_video(path, backend=backend) as video:
            assert video.bad_frames() == list(range(28, 50))


def test_every_bad_manifest_line_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "v.mov").write_bytes(GOOD.read_bytes())
    lines = [b'{"video": "v.mov"}', b"", b'{"video": ', b'{"video": "v.mov"}', b'{"vid\xffeo": "v.mov"}', b'{"q": 2}']
    (tmp_path / "m.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "m.txt").write_bytes(b"v.mov\n# a comment\nv\xe9.mov\n")
    assert main([str(tmp_path / "m.jsonl"), str(tmp_path / "m.txt")]) == 1
    out, err = capsys.readouterr()
    m, t = tmp_path / "m.jsonl", tmp_path / "m.txt"
    assert err.splitlines() == [
        f"{m}:3: not valid JSON (Expecting value at column 11)",
        f"{m}:5: not valid UTF-8 (byte 0xff at column 6)",
        f"{m}:6: no video, path or file entry: {{'q': 2}}",
        f"{t}:3: not valid UTF-8 (byte 0xe9 at column 2)",
    ]
    assert "3 readable, 0 unreadable, 4 bad manifest line(s)" in out  # the good lines still checked


def test_a_binary_file_given_as_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "clip.jsonl"
    fake.write_bytes((VIDEOS / "decord__corrupted.mp4").read_bytes())
    with pytest.raises(SystemExit) as info:
        main([str(fake)])
    assert info.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(f"error: {fake}: a binary file, not a manifest (expected JSONL or JSON text)")
    )
