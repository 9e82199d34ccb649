"""Reading video frames behind one interface: decord by default, PyAV where decord cannot.

`open_video(path)` returns a `Video` with its metadata (frame count, fps, duration,
stream start time, size after rotation, whether the rate is constant) and `get(indices)`,
which returns uint8 frames `(n, H, W, 3)` in the order asked.

Rate. Frame times are the stream's timestamps (pts x time base). The fps is the first
declared rate (container average, codec, FFmpeg's guess) that every timestamp agrees with
to a quarter frame; where none does, the timestamps' average, and `constant_rate` is False
unless they are evenly spaced: a sampler then takes `timestamps()` (variable frame rate).

Stream. The first video stream that is not a cover picture (`ffprobe -select_streams v:0`).
decord cannot be told which stream to read, so it refuses a file with several; "auto"
then reads it with PyAV.

Backends. "auto" tries decord first (fast random access); when decord cannot open
the file or reports no frames or no frame rate (a webm without a duration in the
container, a GIF) it falls back to PyAV and logs a warning. Both honour rotation
metadata: decord applies it itself; for PyAV we rotate by the frame's display matrix.

Timestamps. decord reports frame times from zero even when the stream starts
later, so the stream's start time is read with PyAV and added: `timestamps()`
always starts at `start_time`.

Corrupt streams. A requested frame that fails to decode is replaced by the
nearest frame that did decode (in the same request; if none did, the nearest
decodable frame before it), a warning is logged and `decode_errors` counts the
replaced rows over the Video's life, so the output keeps the shape asked for.
Only when no frame at all can be found is `VideoError` raised.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np

log = logging.getLogger("src.data.video")

BACKENDS = ("auto", "decord", "pyav")
_NONE = np.zeros(0, np.uint8)  # a frame decoded but not kept (`_PyAVReader.scan`)


class VideoError(Exception):
    """A video that cannot be read; the message names the file and the reason."""


def _rates(stream: Any) -> list[float]:
    """The rates a stream declares, most trusted first: the container's average rate, the
    codec's rate (a raw MPEG-2 or H.264 stream has only this one: the raw demuxer's average
    rate is its default of 25), FFmpeg's guess. `Video` keeps the first the timestamps agree with."""
    found: list[float] = []
    for rate in (stream.average_rate, stream.codec_context.framerate, stream.guessed_rate):
        if rate and float(rate) > 0 and float(rate) not in found:
            found.append(float(rate))
    return found


def _video_stream(container: Any) -> tuple[Any, int]:
    """(the stream read, how many video streams the file has): the first video stream that is
    not an attached picture (cover art), as `ffprobe -select_streams v:0` and PyAV's
    `streams.video[0]` take it."""
    disposition = getattr(getattr(av, "stream", None), "Disposition", None)
    pic = int(disposition.attached_pic) if disposition is not None else 1024
    streams = [s for s in container.streams.video if not int(s.disposition or 0) & pic] or list(container.streams.video)
    if not streams:
        raise ValueError("no video stream")
    return streams[0], len(streams)


def _header(path: Path) -> dict[str, Any]:
    """What decord does not say, from the container's header (no packet is read): the video
    stream's start time (decord reports times from zero), its declared rates, and how many
    video streams there are (decord reads the one FFmpeg ranks best, not necessarily the first)."""
    with av.open(str(path)) as container:
        stream, n = _video_stream(container)
        start = 0.0
        if stream.start_time is not None and stream.time_base is not None:
            start = float(stream.start_time * stream.time_base)
        return dict(
            start_time=start,
            rates=_rates(stream),
            stream=stream.index,
            video_streams=n,
            pictures=len(container.streams.video) - n,  # cover art, which decord might pick
            header_frames=int(stream.frames or 0),
        )


class _DecordReader:
    """decord.VideoReader kept open; frames it fails to decode are retried with PyAV.

    Why the retry: decord decodes on a background thread (its threaded_decoder) that
    reads ahead, so an error on a corrupt packet can surface while an earlier, valid
    frame is awaited. Which frames fail then varies from run to run (on corrupted.mp4
    frame 26 or 27, sometimes); PyAV decodes in the caller's thread, the same each time.
    """

    name = "decord"

    def __init__(self, path: Path) -> None:
        from decord import VideoReader, cpu  # imported lazily: it starts threads on import

        self._path = path
        self._vr = VideoReader(str(path), ctx=cpu(0), num_threads=1)
        self._retry: _PyAVReader | bool | None = None  # False: PyAV cannot help here

    def probe(self, path: Path) -> dict[str, Any]:
        n = len(self._vr)
        fps = float(self._vr.get_avg_fps())
        if n <= 0 or not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"decord reports {n} frames at {fps} fps")
        try:
            head = _header(path)
        except (av.FFmpegError, ValueError):  # PyAV cannot read the header: decord's view alone
            head = dict(start_time=0.0, rates=[], stream=None, video_streams=1, pictures=0, header_frames=0)
        if head["video_streams"] > 1:  # decord would pick one by FFmpeg's ranking; PyAV reads the first
            raise ValueError(
                f"{head['video_streams']} video streams; decord cannot be told to read stream #{head['stream']}"
            )
        if head["pictures"] and head["header_frames"] and head["header_frames"] != n:  # it read the cover art
            raise ValueError(f"decord read {n} frames, stream #{head['stream']} has {head['header_frames']}")
        start = head["start_time"]
        times = self._vr.get_frame_timestamp(range(n))[:, 0].astype(np.float64) + start
        # the frame size only when asked (Video.width): decoding frame 0 here would cost a
        # sampled read a tenth of its time
        rates = [fps] + [r for r in head["rates"] if r != fps]
        return dict(
            num_frames=n,
            rates=rates,
            start_time=start,
            times=times,
            width=None,
            height=None,
            **{k: head[k] for k in ("stream", "video_streams")},
        )

    def size(self) -> tuple[int, int]:
        """(width, height) of the frames shown: decord applies rotation, so frame 0's."""
        h, w = self._vr[0].shape[:2]
        self._vr.seek(0)
        return w, h

    def read(self, indices: list[int]) -> dict[int, np.ndarray]:
        try:
            return dict(zip(indices, self._vr.get_batch(indices).asnumpy()))
        except Exception:  # decord raises DECORDError on a bad frame: retry one by one
            pass
        frames: dict[int, np.ndarray] = {}
        for i in indices:
            try:
                frames[i] = self._vr[i].asnumpy()
            except Exception:
                pass
        missing = [i for i in indices if i not in frames]
        if missing and self._retry is None:
            try:
                self._retry = _PyAVReader(self._path)
                # Same frame numbering or no retry: both count packets in presentation order.
                if self._retry.probe(self._path)["num_frames"] != len(self._vr):
                    self._retry.close()
                    self._retry = False
            except Exception:
                self._retry = False
        if missing and isinstance(self._retry, _PyAVReader):
            frames.update(self._retry.read(missing))
        return frames

    def scan(self, chunk: int = 16) -> set[int]:
        """The frames that decode, reading all in order, `chunk` at a time (decord decodes a run
        of consecutive frames in one pass; a chunk holding a bad frame is retried frame by frame)."""
        n = len(self._vr)
        ok: set[int] = set()
        for lo in range(0, n, chunk):
            ok.update(self.read(list(range(lo, min(lo + chunk, n)))))
        return ok

    def close(self) -> None:
        if isinstance(self._retry, _PyAVReader):
            self._retry.close()
        del self._vr


class _PyAVReader:
    """PyAV container kept open; frames found by presentation timestamp after a seek."""

    name = "pyav"

    def __init__(self, path: Path) -> None:
        self._container = av.open(str(path))
        try:
            self._stream, self._n_video = _video_stream(self._container)
        except ValueError:
            self._container.close()
            raise
        self._stream.codec_context.thread_count = 1  # deterministic errors; workers parallelise
        self._pts: np.ndarray = np.zeros(0, np.int64)
        self._rot = 0

    def probe(self, path: Path) -> dict[str, Any]:
        # Count frames from packets, not from the header: webm and GIF have no count.
        pts = [p.pts for p in self._container.demux(self._stream) if p.pts is not None]
        if not pts:
            raise ValueError("no video packets")
        self._pts = np.sort(np.asarray(pts, np.int64))
        time_base = cast(Fraction, self._stream.time_base)  # a demuxed stream's is always set
        tb = float(time_base)
        times = self._pts * tb
        self._container.seek(0)
        first = next(self._container.decode(self._stream))
        self._rot = round(getattr(first, "rotation", 0) / 90) % 4  # display matrix, degrees CCW
        w, h = first.width, first.height
        if self._rot % 2:
            w, h = h, w
        start = float(times[0])
        if self._stream.start_time is not None:
            start = float(self._stream.start_time * time_base)
        return dict(
            num_frames=len(pts),
            rates=_rates(self._stream),
            start_time=start,
            times=times,
            width=w,
            height=h,
            stream=self._stream.index,
            video_streams=self._n_video,
        )

    def read(self, indices: list[int], from_start: bool = False, convert: bool = True) -> dict[int, np.ndarray]:
        """The frames at `indices` that decode (`convert` False: decoded, but not converted or
        kept: each maps to an empty array, for `scan`)."""
        wanted = set(indices)
        first, last = int(self._pts[min(indices)]), int(self._pts[max(indices)])
        frames: dict[int, np.ndarray] = {}
        try:
            if from_start:
                self._container.seek(0)
            else:
                self._container.seek(first, stream=self._stream, backward=True)
            for frame in self._container.decode(self._stream):
                if frame.pts is None:
                    continue
                if frame.pts > first and not frames and not from_start:
                    # The seek went past the first wanted frame: a raw stream (.m2v, .h264) seeks
                    # by a byte position estimated from its bit rate. Decode from the start.
                    return self.read(indices, from_start=True, convert=convert)
                # the frame's index is the rank of its pts among the packets' pts
                i = int(np.clip(np.searchsorted(self._pts, frame.pts), 0, len(self._pts) - 1))
                if i in wanted:
                    frames[i] = np.rot90(frame.to_ndarray(format="rgb24"), self._rot).copy() if convert else _NONE
                if frame.pts >= last:
                    break
        except av.FFmpegError:
            pass  # a corrupt packet ends this pass; the caller fills and counts the gaps
        return frames

    def scan(self) -> set[int]:
        """The frames that decode as `read` decodes them (which is what a loader gets): one pass
        from the start; where a packet fails, the pass ends, that frame counts as bad and the
        next pass starts at the frame after it (from the keyframe before it)."""
        n, ok, i = len(self._pts), set[int](), 0
        while i < n:
            got = self.read(list(range(i, n)), convert=False)
            ok.update(got)
            if n - 1 in got:  # reached the end: what is still missing was dropped, not failed
                break
            i = next((j for j in range(i, n) if j not in ok), n) + 1
        return ok

    def close(self) -> None:
        self._container.close()


_READERS: dict[str, type[_DecordReader] | type[_PyAVReader]] = {"decord": _DecordReader, "pyav": _PyAVReader}


def _off(times: np.ndarray, fps: float) -> float:
    """The largest distance, in seconds, of a frame's time from `start + i / fps`."""
    return float(np.abs(times - times[0] - np.arange(len(times)) / fps).max())


def frame_rate(times: np.ndarray, rates: Sequence[float]) -> tuple[float, bool]:
    """(fps, constant) of a stream whose frames are shown at `times` (seconds, presentation order).

    The first declared rate (`rates`, most trusted first) that the timestamps agree with,
    frame by frame within `_tolerance`; where none does (a variable frame rate, or a
    container's rate that is not the stream's: a raw .m2v's 25 for 29.97), the timestamps'
    own average, frames / (last time - first time + the last frame's interval), with
    `constant` False unless the frames are evenly spaced at that rate.
    """
    n = len(times)
    if n < 2:
        return (rates[0] if rates else 1.0), True  # a single still frame: 1 fps keeps duration finite
    for fps in rates:
        if _off(times, fps) <= _tolerance(fps):
            return float(fps), True
    steps = np.diff(times)
    last = steps[-1] if steps[-1] > 0 else float(np.median(steps))
    span = float(times[-1] - times[0]) + last
    if not span > 0:
        return (rates[0] if rates else 1.0), True  # no usable timestamps: the declared rate
    fps = n / span
    return fps, _off(times, fps) <= _tolerance(fps)


def _tolerance(fps: float) -> float:
    """How far (s) a frame may be from `start + i / fps` in a stream taken as constant-rate: a
    quarter of a frame interval, so that sampling by index at `fps` errs by at most that much
    (a millisecond time base rounds by 0.5 ms; moviepy__no_duration.webm's capture clock
    jitters by 7 ms at 15 fps)."""
    return 0.25 / fps


class Video:
    """An open video: metadata, per-frame timestamps and frame access by index."""

    def __init__(self, path: Path, reader: _DecordReader | _PyAVReader) -> None:
        meta = reader.probe(path)
        self.path = path
        self.backend: str = reader.name
        self.num_frames: int = int(meta["num_frames"])
        self._times: np.ndarray = meta["times"]
        # fps: frames / duration. constant_rate: frame i is shown at start + i / fps (within
        # _tolerance); where not (a variable frame rate), samplers take `timestamps()`.
        self.fps, self.constant_rate = frame_rate(self._times, meta["rates"])
        self.duration: float = self.num_frames / self.fps
        self.start_time: float = float(meta["start_time"])
        self.stream: int | None = meta["stream"]  # the container's index of the stream read
        if meta["video_streams"] > 1:
            log.info("%s: %d video streams; reading stream #%s, the first", path, meta["video_streams"], self.stream)
        self._size = None if meta["width"] is None else (int(meta["width"]), int(meta["height"]))
        self.decode_errors: int = 0
        self._reader: _DecordReader | _PyAVReader | None = reader

    @property
    def width(self) -> int:
        return self._frame_size()[0]

    @property
    def height(self) -> int:
        return self._frame_size()[1]

    def _frame_size(self) -> tuple[int, int]:
        if self._size is None:  # decord's, read from frame 0 the first time it is asked for
            self._size = self._open().size()  # type: ignore[union-attr]
        return self._size

    def __repr__(self) -> str:
        return (
            f"Video({str(self.path)!r}, backend={self.backend!r}, frames={self.num_frames}, "
            f"fps={self.fps:.3f}, size={self.width}x{self.height})"
        )

    def __len__(self) -> int:
        return self.num_frames

    def timestamps(self) -> np.ndarray:
        """Presentation time of each frame in seconds, `(num_frames,)`, from `start_time`."""
        return self._times.copy()

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed) as uint8 `(n, H, W, 3)`."""
        idx = [int(i) for i in indices]
        if not idx:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        bad = [i for i in idx if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(f"{self.path}: frame indices {bad[:5]} outside [0, {self.num_frames})")
        unique = sorted(set(idx))
        frames = self._open().read(unique)
        missing = [i for i in idx if i not in frames]
        if missing:
            if not frames:
                frames = self._find_earlier(min(unique))
            have = np.asarray(sorted(frames))
            n_bad = len(missing)
            self.decode_errors += n_bad
            log.warning(
                "%s: %d of %d requested frames failed to decode (e.g. %s); replaced by the nearest decoded frame",
                self.path,
                n_bad,
                len(idx),
                sorted(set(missing))[:5],
            )
            fill = {i: frames[int(have[np.abs(have - i).argmin()])] for i in set(missing)}
            frames = {**frames, **fill}
        return np.stack([frames[i] for i in idx])

    def bad_frames(self) -> list[int]:
        """Decode every frame (none is kept) and return the indices of those that fail: what
        `python -m src.data.check --full` reports. Costs one decoding pass over the file."""
        good = self._open().scan()
        return [i for i in range(self.num_frames) if i not in good]

    def _find_earlier(self, index: int) -> dict[int, np.ndarray]:
        """The last decodable frame before `index`: doubling steps back, then bisection.

        Assumes the stream decodes up to some frame and not after (a corrupt or cut
        tail), which is the common case; otherwise it still returns a decodable frame.
        """
        reader, bad, step = self._open(), index, 1
        while True:
            probe = max(index - step, 0)
            got = reader.read([probe])
            if got:
                break
            if probe == 0:
                raise VideoError(f"{self.path}: no frame could be decoded at or before {index}")
            bad, step = probe, step * 2
        while bad - probe > 1:
            mid = (bad + probe) // 2
            more = reader.read([mid])
            if more:
                probe, got = mid, more
            else:
                bad = mid
        return got

    def _open(self) -> _DecordReader | _PyAVReader:
        # After unpickling (e.g. in a DataLoader worker) the reader is reopened lazily.
        if self._reader is None:
            reader = _READERS[self.backend](self.path)
            if isinstance(reader, _PyAVReader):
                reader.probe(self.path)  # rebuilds its packet index and rotation
            self._reader = reader
        return self._reader

    def close(self) -> None:
        """Release the decoder; the Video reopens itself if used again."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}


def _short(error: Exception) -> str:
    """One line of an error; decord prefixes its messages with a clock and a C++ source line."""
    lines = str(error).strip().splitlines()
    return re.sub(r"^(\[[\d:]+\] \S+:\d+: )+", "", lines[-1]) if lines else type(error).__name__


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")


def open_video(path: str | Path, backend: str = "auto") -> Video:
    """Open `path` with `backend` ("auto", "decord" or "pyav"); raises VideoError."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}; valid choices: {', '.join(BACKENDS)}")
    path = Path(path)
    _check_file(path)
    order = ["decord", "pyav"] if backend == "auto" else [backend]
    errors: list[str] = []
    for name in order:
        reader = None
        try:
            reader = _READERS[name](path)
            video = Video(path, reader)
        except Exception as e:  # each library raises its own types; report them all
            if reader is not None:
                reader.close()
            errors.append(f"{name}: {_short(e)}")
            continue
        if errors:
            log.warning("%s: decord could not read it (%s); using PyAV", path, errors[0])
        return video
    raise VideoError(f"{path}: not a readable video ({'; '.join(errors)})")
