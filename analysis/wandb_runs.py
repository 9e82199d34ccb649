"""Run records from a W&B project, through the W&B public API, shaped like result.json.

    python -m analysis.collect wandb:ENTITY/PROJECT [--group SWEEP] -o results.csv

Each W&B run becomes the record `analysis.collect` would read from its run directory, so
the table has the same columns either way: choices from the run's `group=choice` tags
(src.run.build tags every run so), the seed and the resolved config from the run's config,
design numbers from the config's `design` section (or, for runs logged before it was
there, from `llm.size_b`, `sampler.fps`, `sampler.num_frames` and `params`), metrics from
the summary, the W&B run's duration as `costs.wandb_runtime_seconds`.

Status: a W&B run still `running` is "missing"; `crashed`, `failed`, `killed` are
"failed" with the state as reason; a `finished` run without any `test/` metric in its
summary is "failed" too (src.train finishes the W&B run even when training raised).
Nothing needs the network until `fetch_records` is called; without a key or without a
route to the W&B host it raises `WandbUnavailable` with one line saying which.
"""

from __future__ import annotations

import netrc
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

PREFIX = "wandb:"
FAILED_STATES = {"crashed", "failed", "killed", "preempted"}
RUNNING_STATES = {"running", "pending", "preempting"}
METRIC_PREFIXES = ("test", "test_frame", "test_text", "train", "val")


class WandbUnavailable(Exception):
    """No key, no network, or a W&B error: the CLI prints it as one line and exits 2."""


def parse_source(arg: str) -> str:
    """`wandb:entity/project` -> `entity/project`; a one-line error for any other shape."""
    path = arg.removeprefix(PREFIX)
    parts = path.split("/")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise WandbUnavailable(f"{arg!r} is not a W&B project; expected wandb:ENTITY/PROJECT")
    return path


def base_url() -> str:
    """The W&B server the public API talks to (WANDB_BASE_URL, or wandb's default)."""
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    import wandb

    return str(wandb.Settings().base_url)


def key_available(url: str) -> bool:
    """True when WANDB_API_KEY is set or ~/.netrc (or $NETRC) has an entry for the host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    file = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(file).authenticators(urlparse(url).hostname or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """Fail fast without a route to the host (wandb itself retries for minutes)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "", port), timeout=timeout).close()
    except OSError as err:
        raise WandbUnavailable(
            f"cannot reach the W&B server {url} ({err}); collect needs network for wandb: sources"
        ) from None


def _summary(run: Any) -> dict[str, Any]:
    """The summary as a plain dict (the public API's HTTPSummary, or a dict in tests)."""
    summary = getattr(run, "summary_metrics", None)
    if not isinstance(summary, Mapping):
        summary = getattr(run, "summary", None) or {}
        summary = getattr(summary, "_json_dict", summary)
    return {str(k): v for k, v in dict(summary).items()}


def _select(config: Mapping[str, Any], dotted: str) -> Any:
    """`config["a"]["b"]` for "a.b", or `config["a.b"]` when the config was flattened."""
    if dotted in config:
        return config[dotted]
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def choices_of(run: Any, config: Mapping[str, Any]) -> dict[str, str]:
    """`group=choice` tags; for untagged runs, the `name` of each config group."""
    tags = [t for t in (getattr(run, "tags", None) or []) if isinstance(t, str) and "=" in t]
    if tags:
        return dict(t.split("=", 1) for t in tags)
    return {k: v["name"] for k, v in config.items() if isinstance(v, Mapping) and isinstance(v.get("name"), str)}


def design_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The record's design section: the config's own, or what the resolved config implies."""
    design = _select(config, "design")
    if isinstance(design, Mapping):
        return dict(design)
    derived = {
        "llm_size_b": _select(config, "llm.size_b"),
        "fps": _select(config, "sampler.fps"),
        "num_frames": _select(config, "sampler.num_frames"),
        "params": _select(config, "params"),
    }
    return {k: v for k, v in derived.items() if v is not None}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def status_of(state: str, metrics: Mapping[str, Any]) -> tuple[str, str | None]:
    """(status, reason) of a W&B run, as the run record would say it."""
    if state in RUNNING_STATES:
        return "missing", f"W&B state {state}"
    if state in FAILED_STATES:
        return "failed", f"W&B state {state}"
    if state != "finished":
        return "failed", f"W&B state {state!r} (unknown)"
    if not any(k.startswith("test/") for k in metrics):
        return "failed", "W&B state finished, but no test/ metric in its summary (failed before evaluation?)"
    return "ok", None


def run_to_record(run: Any) -> dict[str, Any]:
    """One public-API Run (config, summary, state, name, group, id, tags) as a run record."""
    config = dict(getattr(run, "config", None) or {})
    summary = _summary(run)
    metrics = {k: v for k, v in summary.items() if k.split("/", 1)[0] in METRIC_PREFIXES and "/" in k and _is_number(v)}
    status, reason = status_of(str(getattr(run, "state", "unknown")), metrics)
    path = getattr(run, "path", None)
    where = "/".join(map(str, path)) if path else str(getattr(run, "id", "?"))
    costs = {"wandb_runtime_seconds": summary["_runtime"]} if _is_number(summary.get("_runtime")) else {}
    return {
        "status": status,
        "reason": reason,
        "sweep": getattr(run, "group", None),
        "run_dir": f"{PREFIX}{where}",
        "run_name": getattr(run, "name", None),
        "choices": choices_of(run, config),
        "config": config,
        "design": design_of(config),
        "metrics": metrics,
        "costs": costs,
    }


def fetch_records(
    project: str, group: str | None = None, api_factory: Callable[[], Any] | None = None
) -> list[dict[str, Any]]:
    """Records of every run of `project` (`entity/project`), or of one group (sweep).

    `api_factory` makes the public API object (default `wandb.Api`, after checking for a
    key and a route to the server); tests pass a fake one.
    """
    if api_factory is None:
        url = base_url()
        if not key_available(url):
            raise WandbUnavailable(f"no W&B API key for {url}: set WANDB_API_KEY or run `wandb login`")
        check_reachable(url)
        import wandb

        api_factory = lambda: wandb.Api(timeout=30)  # noqa: E731
    try:
        api = api_factory()
        runs: Iterable[Any] = api.runs(project, filters={"group": group} if group else None)
        return [run_to_record(run) for run in runs]
    except WandbUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - any API failure is one line for the user
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise WandbUnavailable(f"W&B project {project}: {type(err).__name__}: {first}") from None


# An offline run's `.wandb` file: wandb's record log (leveldb's log format: 32 KiB blocks of
# chunks, each with a CRC32, a little-endian length and a type; a 7-byte header ":W&B",
# 0xBEE1, version 0), each record a `wandb_internal_pb2.Record`. Read here because wandb
# 0.2x+ keeps its own reader in the wandb-core binary.
_HEADER = b":W&B\xe1\xbe\x00"
_BLOCK = 32768
_CHUNK_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def offline_records(path: str | os.PathLike[str]) -> list[Any]:
    """The records of an offline run's `run-<id>.wandb` file, in order (protobuf messages)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_HEADER):
        raise WandbUnavailable(f"{path}: not a W&B run file (no :W&B header)")
    out, pending, pos = [], b"", len(_HEADER)
    while pos + _CHUNK_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER:  # the block's tail is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _CHUNK_HEADER])
        chunk = data[pos + _CHUNK_HEADER : pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        if kind == 0 and length == 0:  # zeroes: the end of what was written
            break
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            record = pb.Record()  # type: ignore[attr-defined]  # generated protobuf module
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def offline_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What an offline run (`wandb/offline-run-*`) holds: its run settings (group, job type),
    the keys it logged (and each's last value, JSON), its summary, and its artifacts (type, name, files)."""
    import glob
    import json

    [file] = glob.glob(os.path.join(run_dir, "run-*.wandb"))
    got: dict[str, Any] = {"run": {}, "history": {}, "summary": {}, "artifacts": []}
    for record in offline_records(file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            got["run"] = {"id": record.run.run_id, "group": record.run.run_group, "job_type": record.run.job_type}
        elif kind == "history":
            got["history"].update(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            )
        elif kind == "summary":
            got["summary"].update(
                {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in record.summary.update}
            )
        elif kind == "artifact":
            files = [c.path for c in record.artifact.manifest.contents]
            got["artifacts"].append({"type": record.artifact.type, "name": record.artifact.name, "files": files})
    return got
