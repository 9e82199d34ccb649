"""Tests of analysis.collect: run records on disk -> one tidy table, nothing dropped."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from analysis.collect import find_runs, load_records, records_to_frame, summary
from tests.helpers import ROOT

METRIC = "test/synthetic/overall"


def ok_record(run_dir: Path, encoder: str, llm: str, size: float, score: float) -> dict[str, Any]:
    return {
        "status": "ok",
        "reason": None,
        "sweep": "demo",
        "run_dir": str(run_dir),
        "overrides": [f"encoder={encoder}", f"llm={llm}"],
        "choices": {"encoder": encoder, "llm": llm, "resampler": "perceiver"},
        "config": {"model": {"lr": 1e-3}},
        "design": {
            "fps": 2.0,
            "tokens_per_frame": 4,
            "llm_size_b": size,
            "params": {"encoder": 10, "llm": 20, "total": 30},
        },
        "metrics": {METRIC: score, "train/loss": 1.0 - score},
        "costs": {"train_seconds": 4.0, "eval_seconds": 1.0},
        "versions": {"python": "3.11"},
        "started_at": "t0",
        "finished_at": "t1",
    }


def write_json(path: Path, record: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    """outputs/sweeps/demo with one ok run, one failed run, one missing run, one non-run dir."""
    root = tmp_path / "outputs" / "sweeps" / "demo"
    ok = root / "encoder=siglip,llm=qwen0.5b"
    write_json(ok / "result.json", ok_record(ok, "siglip", "qwen0.5b", 0.5, 0.6))
    (ok / "wandb" / "offline-run-1").mkdir(parents=True)  # a run's own subtree: not a run
    (ok / "ckpt").mkdir()
    failed = root / "nested" / "deeper" / "encoder=dinov2,llm=qwen0.5b"
    write_json(
        failed / "result.json",
        {
            "status": "failed",
            "reason": "RuntimeError: CUDA out of memory",
            "sweep": "demo",
            "run_dir": str(failed),
            "choices": {"encoder": "dinov2", "llm": "qwen0.5b"},
            "design": {"llm_size_b": 0.5},
            "metrics": {},
        },
    )
    missing = root / "encoder=siglip,llm=qwen4b"
    (missing / ".hydra").mkdir(parents=True)
    (missing / ".hydra" / "overrides.yaml").write_text("- encoder=siglip\n- llm=qwen4b\n- trainer.max_epochs=1\n")
    (root / "notes").mkdir()  # neither a result nor a run marker: ignored
    return root


def test_find_runs_separates_results_from_missing(sweep: Path) -> None:
    results, missing = find_runs([sweep])
    assert sorted(p.parent.name for p in results) == ["encoder=dinov2,llm=qwen0.5b", "encoder=siglip,llm=qwen0.5b"]
    assert [p.name for p in missing] == ["encoder=siglip,llm=qwen4b"]


def test_sweep_level_marker_is_not_a_missing_run(tmp_path: Path) -> None:
    (tmp_path / "wandb").mkdir()  # e.g. a shared WANDB_DIR at the sweep level
    run = tmp_path / "a"
    write_json(run / "result.json", ok_record(run, "siglip", "qwen0.5b", 0.5, 0.6))
    results, missing = find_runs([tmp_path])
    assert len(results) == 1 and missing == []


def test_frame_columns_and_rows(sweep: Path) -> None:
    frame = records_to_frame(load_records([sweep]))
    assert list(frame.columns) == [
        "run_dir",
        "status",
        "reason",
        "sweep",
        "encoder",
        "llm",
        "resampler",
        "llm_size_b",
        "design.fps",
        "design.tokens_per_frame",
        "design.params.encoder",
        "design.params.llm",
        "design.params.total",
        "costs.train_seconds",
        "costs.eval_seconds",
        METRIC,
        "train/loss",
    ]
    by_status = frame.set_index("status")
    assert sorted(frame["status"]) == ["failed", "missing", "ok"]
    ok = by_status.loc["ok"]
    assert (ok["encoder"], ok["llm"], ok["llm_size_b"], ok[METRIC]) == ("siglip", "qwen0.5b", 0.5, 0.6)
    assert ok["design.params.total"] == 30 and ok["costs.train_seconds"] == 4.0
    failed = by_status.loc["failed"]
    assert failed["reason"] == "RuntimeError: CUDA out of memory"
    assert failed["encoder"] == "dinov2" and pd.isna(failed[METRIC])
    missing = by_status.loc["missing"]
    assert missing["reason"] == "no result.json" and missing["sweep"] == "demo"
    assert (missing["encoder"], missing["llm"]) == ("siglip", "qwen4b")  # from .hydra/overrides.yaml
    assert pd.isna(missing["llm_size_b"])


def test_result_file_argument_and_duplicates(sweep: Path) -> None:
    file = sweep / "encoder=siglip,llm=qwen0.5b" / "result.json"
    records = load_records([file, sweep])
    assert len(records) == 3  # the file given twice (directly and via its sweep) is one row


def test_unreadable_result_is_a_failed_row(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text("{not json")
    [record] = load_records([tmp_path])
    assert record["status"] == "failed" and record["reason"].startswith("unreadable result.json")
    assert record["run_dir"] == str(tmp_path / "r")


def test_metric_named_like_a_setting_does_not_overwrite_it(tmp_path: Path) -> None:
    rec = ok_record(tmp_path, "siglip", "qwen0.5b", 0.5, 0.6)
    rec["metrics"]["encoder"] = 1.0
    frame = records_to_frame([rec])
    assert frame.loc[0, "encoder"] == "siglip" and frame.loc[0, "metrics.encoder"] == 1.0


def test_the_seed_is_a_column(tmp_path: Path) -> None:
    records = [
        {**ok_record(tmp_path / f"s{k}", "siglip", "qwen0.5b", 0.5, 0.6), "config": {"seed": k}} for k in range(2)
    ]
    frame = records_to_frame(records)
    assert list(frame["seed"]) == [0, 1] and list(frame.columns)[4:8] == ["encoder", "llm", "resampler", "seed"]


def test_empty_records_give_the_base_columns() -> None:
    frame = records_to_frame([])
    assert list(frame.columns) == ["run_dir", "status", "reason", "sweep", "llm_size_b"]
    assert summary(frame, Path("x.csv")) == "0 ok, 0 failed, 0 missing -> x.csv"


def run_collect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analysis.collect", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_cli_writes_csv_and_lists_problems(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "tables" / "results.csv"
    proc = run_collect(str(sweep), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"1 ok, 1 failed, 1 missing -> {out}"
    assert "failed: " in proc.stderr and "CUDA out of memory" in proc.stderr
    assert "missing: " in proc.stderr and "encoder=siglip,llm=qwen4b" in proc.stderr
    table = pd.read_csv(out)
    assert len(table) == 3 and METRIC in table.columns


def test_cli_bad_path_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = run_collect(str(tmp_path / "nope"), "-o", str(tmp_path / "r.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file or directory" in proc.stderr


def test_cli_parquet(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.parquet"
    proc = run_collect(str(sweep), "-o", str(out))
    if importlib.util.find_spec("pyarrow") is None:
        assert proc.returncode == 2 and "pyarrow" in proc.stderr and "Traceback" not in proc.stderr
        assert not out.exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert len(pd.read_parquet(out)) == 3


# --- W&B projects through the public API (faked: no network, no key) ---------------------


class FakeRun:
    """Shaped like wandb.apis.public.Run: config and summary dicts, state, name, group, id."""

    def __init__(
        self,
        rid: str,
        state: str,
        tags: list[str],
        config: dict[str, Any],
        summary: dict[str, Any],
        group: str = "demo",
    ) -> None:
        self.id, self.name, self.state, self.group, self.tags = rid, f"run-{rid}", state, group, tags
        self.path = ["me", "proj", rid]
        self.config, self.summary = config, summary


def fake_runs() -> list[FakeRun]:
    design = {"fps": 2.0, "tokens_per_frame": 4, "llm_size_b": 0.5, "params": {"llm": 20, "total": 30}}
    ok = FakeRun(
        "a1",
        "finished",
        ["encoder=siglip", "llm=qwen0.5b"],
        {"seed": 3, "llm": {"name": "qwen0.5b", "size_b": 0.5}, "design": design},
        {
            METRIC: 0.6,
            "test/synthetic/spatial": 0.5,
            "train/loss": 0.4,
            "_runtime": 12.5,
            "_step": 7,
            "epoch": 1,
            "_wandb": {"runtime": 12},
        },
    )
    # logged before the design section existed: sizes and fps come from the resolved config
    old = FakeRun(
        "b2",
        "finished",
        [],
        {
            "encoder": {"name": "dinov2"},
            "llm": {"name": "qwen4b", "size_b": 4.0},
            "sampler": {"fps": 1.0},
            "params": {"total": 99},
        },
        {METRIC: 0.7},
    )
    crashed = FakeRun("c3", "crashed", ["encoder=dinov2", "llm=qwen0.5b"], {}, {"train/loss": 2.0})
    no_eval = FakeRun("d4", "finished", ["encoder=siglip", "llm=qwen4b"], {}, {"train/loss": 1.0})
    running = FakeRun("e5", "running", ["encoder=siglip", "llm=qwen7b"], {}, {}, group="other")
    return [ok, old, crashed, no_eval, running]


class FakeApi:
    calls: ClassVar[list[tuple[str, Any]]] = []

    def runs(self, path: str, filters: dict[str, Any] | None = None) -> list[FakeRun]:
        FakeApi.calls.append((path, filters))
        runs = fake_runs()
        return [r for r in runs if not filters or r.group == filters["group"]]


def test_wandb_runs_become_the_same_rows() -> None:
    from analysis.wandb_runs import fetch_records

    frame = records_to_frame(fetch_records("me/proj", api_factory=FakeApi))
    rows = frame.set_index("run_dir")
    ok = rows.loc["wandb:me/proj/a1"]
    assert (ok["status"], ok["sweep"], ok["encoder"], ok["llm"], ok["seed"]) == ("ok", "demo", "siglip", "qwen0.5b", 3)
    design = (ok["llm_size_b"], ok["design.fps"], ok["design.tokens_per_frame"], ok["design.params.total"])
    assert design == (0.5, 2.0, 4, 30)
    assert (ok[METRIC], ok["train/loss"], ok["costs.wandb_runtime_seconds"]) == (0.6, 0.4, 12.5)
    assert "_step" not in frame.columns and "epoch" not in frame.columns and "_wandb" not in frame.columns
    old = rows.loc["wandb:me/proj/b2"]
    assert (old["encoder"], old["llm"], old["llm_size_b"], old["design.fps"], old["design.params.total"]) == (
        "dinov2",
        "qwen4b",
        4.0,
        1.0,
        99,
    )
    assert rows.loc["wandb:me/proj/c3", "status"] == "failed"
    assert rows.loc["wandb:me/proj/c3", "reason"] == "W&B state crashed"
    assert rows.loc["wandb:me/proj/d4", "status"] == "failed"
    assert "no test/ metric" in rows.loc["wandb:me/proj/d4", "reason"]
    assert tuple(rows.loc["wandb:me/proj/e5", ["status", "reason"]]) == ("missing", "W&B state running")


def test_cli_reads_a_wandb_project_group(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import wandb

    from analysis import collect, wandb_runs

    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setattr(wandb_runs, "check_reachable", lambda url: None)
    monkeypatch.setattr(wandb, "Api", lambda **kw: FakeApi())
    FakeApi.calls.clear()
    out = tmp_path / "w.csv"
    assert collect.main(["wandb:me/proj", "--group", "demo", "-o", str(out)]) == 0
    assert FakeApi.calls == [("me/proj", {"group": "demo"})]
    stdout, stderr = capsys.readouterr()
    assert stdout.strip() == f"2 ok, 2 failed, 0 missing -> {out}"
    assert "failed: wandb:me/proj/c3: W&B state crashed" in stderr
    table = pd.read_csv(out)
    assert len(table) == 4 and set(table["sweep"]) == {"demo"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["wandb:me/proj"], "no W&B API key"),
        (["wandb:just-a-name"], "expected wandb:ENTITY/PROJECT"),
        ([".", "--group", "demo"], "--group demo applies to wandb: sources only"),
    ],
)
def test_cli_wandb_without_key_is_one_line(
    args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis import collect

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")
    assert collect.main([*args, "-o", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0]
    assert not (tmp_path / "r.csv").exists()


def test_unreachable_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis.wandb_runs import WandbUnavailable, check_reachable

    with pytest.raises(WandbUnavailable, match=r"cannot reach the W&B server http://127.0.0.1:9"):
        check_reachable("http://127.0.0.1:9", timeout=1.0)  # the discard port: nothing listens


def test_api_errors_are_one_line() -> None:
    from analysis.wandb_runs import WandbUnavailable, fetch_records

    class Broken:
        def runs(self, path: str, filters: Any = None) -> Any:
            raise ValueError("Could not find project proj\nmore detail")

    with pytest.raises(WandbUnavailable, match=r"^W&B project me/proj: ValueError: Could not find project proj$"):
        fetch_records("me/proj", api_factory=Broken)


def test_moved_record_shows_where_it_is_and_gets_intervals_from_items(tmp_path: Path) -> None:
    old = tmp_path / "elsewhere" / "run"
    here = tmp_path / "outputs" / "sweeps" / "demo" / "run"
    rec = ok_record(old, "siglip", "qwen0.5b", 0.5, 0.5)
    rec["metrics"] = {"test/synthetic/a": 0.5, "test/synthetic/overall": 0.5}
    write_json(here / "result.json", rec)
    rows = ["run,item,benchmark,category,modality,correct,chosen,seconds"]
    rows += [f"run,{i},synthetic,a,video,{int(i < 50)},0,0.1" for i in range(100)]
    (here / "items.csv").write_text("\n".join(rows) + "\n")
    [row] = records_to_frame(load_records([tmp_path / "outputs"])).to_dict("records")
    assert row["run_dir"] == str(here.resolve()) and row["moved_from"] == str(old)
    # Wilson's interval of 50/100 (one category: overall is the same)
    assert row["ci_lo/test/synthetic/a"] == pytest.approx(0.40383, abs=1e-5)
    assert row["ci_hi/test/synthetic/overall"] == pytest.approx(0.59617, abs=1e-5)


def test_cli_averages_seeds_with_their_spread(tmp_path: Path) -> None:
    root = tmp_path / "outputs" / "sweeps" / "demo"
    for seed, score in ((0, 0.4), (1, 0.5)):
        rec = ok_record(root / f"s{seed}", "siglip", "qwen0.5b", 0.5, score)
        rec["config"]["seed"] = seed
        write_json(root / f"s{seed}" / "result.json", rec)
    out = tmp_path / "results.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.collect", str(root), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"1 design(s) repeated over seeds: means and spread -> {tmp_path / 'results_by_design.csv'}" in proc.stdout
    [row] = pd.read_csv(tmp_path / "results_by_design.csv").to_dict("records")
    assert (row["n_seeds"], row["seeds"], row[METRIC]) == (2, "0,1", pytest.approx(0.45))
    assert row[f"sd/{METRIC}"] == pytest.approx(0.0707107, abs=1e-6)
