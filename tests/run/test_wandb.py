"""W&B conventions, failures that never get lost, and secrets that never reach a record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from src.config.compose import axis_keys
from src.config.container import to_dict
from src.config.redact import REDACTED, is_secret_key, redact, redact_override
from src.run.loggers import ablation_axis, wandb_id, wandb_settings
from tests.helpers import TINY_DATA, cfg_with, records, run_train


def test_the_logger_config_holds_the_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APOLLO_AXIS", "encoder+llm")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = cfg_with("logger=wandb", "sweep=encoders")
    logger = to_dict(cfg.logger, resolve=True)
    assert logger["project"] == "apollo-lab" and logger["group"] == "encoders"
    assert logger["job_type"] == "encoder+llm" and logger["mode"] == "offline"  # offline by default
    monkeypatch.setenv("WANDB_MODE", "online")
    assert cfg_with("logger=wandb").logger.mode == "online"


def test_settings_name_tags_and_a_stable_id_kept_in_the_run_dir(tmp_path: Path) -> None:
    cfg = cfg_with("logger=wandb", "sweep=s")
    got = wandb_settings(cfg, tmp_path, "encoder=dinov2,llm=qwen4b", {"encoder": "dinov2", "llm": "qwen4b"})
    assert got["name"] == "encoder=dinov2,llm=qwen4b" and got["resume"] == "allow"
    assert got["tags"] == ["encoder=dinov2", "llm=qwen4b"]
    assert (tmp_path / "wandb_id").read_text().strip() == got["id"]
    assert wandb_id(tmp_path, "s", "encoder=dinov2,llm=qwen4b") == got["id"]
    (tmp_path / "wandb_id").write_text("kept1234\n")  # the file wins: a resumed run keeps its id
    assert wandb_id(tmp_path, "s", "anything") == "kept1234"


@pytest.mark.parametrize(
    ("args", "axis"),
    [
        (["-m", "encoder=siglip,dinov2", "llm=qwen0.5b,qwen4b", "seed=0,1", "logger=csv"], "encoder+llm"),
        (["-m", "resampler=perceiver,avgpool", "llm=qwen4b"], "resampler"),
        (["-m", "--config-dir", "sweeps", "--config-name", "demo"], "encoder+llm"),
        (["sampler.fps=1", "sweep=x"], "sampler.fps"),
        ([], "train"),
    ],
)
def test_the_job_type_is_the_ablation_axis(args: list[str], axis: str) -> None:
    assert ablation_axis(axis_keys(args)) == axis


def test_secret_keys_and_values_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123")
    assert is_secret_key("logger.api_key") and is_secret_key("+hf_token") and is_secret_key("password")
    assert not is_secret_key("resampler.tokens_per_clip") and not is_secret_key("max_tokens")
    cfg = {
        "logger": {"api_key": "abc", "project": "p"},
        "note": "key 0123456789abcdef0123 here",
        "resampler": {"tokens_per_clip": 8},
    }
    assert redact(cfg) == {
        "logger": {"api_key": REDACTED, "project": "p"},
        "note": f"key {REDACTED} here",
        "resampler": {"tokens_per_clip": 8},
    }
    assert redact_override("+hf_token=hf_xyz") == f"+hf_token={REDACTED}"
    assert redact_override("encoder=siglip") == "encoder=siglip"


@pytest.mark.slow
def test_a_multirun_goes_on_past_a_failed_run_and_nothing_leaks(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "wandb-key-0123456789abcdef"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    # the first grid point's loss blows up; the second trains; both leave a record
    proc = run_train(
        ["logger=wandb", "sweep=mixed", "profile.lr.llm=1e30,3e-4", "+hf_token=hf_secret_value", *TINY_DATA],
        data_dir,
        tmp_path,
        multirun=True,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "error: 1 run(s) failed" in proc.stderr and "FloatingPointError" in proc.stderr
    recs = {r["config"]["profile"]["lr"]["llm"]: r for r in records(tmp_path / "sweeps" / "mixed")}
    assert recs[1e30]["status"] == "failed" and "loss is" in recs[1e30]["reason"]
    assert recs[3e-4]["status"] == "ok"
    ok = recs[3e-4]
    assert ok["config"]["hf_token"] == REDACTED and f"+hf_token={REDACTED}" in ok["overrides"]
    assert ok["design"]["params"]["llm"] > 0
    # neither secret is anywhere in what the runs wrote, W&B's own files included,
    # outside Hydra's copy of the command line (.hydra/)
    for path in (tmp_path / "sweeps").rglob("*"):
        if path.is_file() and ".hydra" not in path.parts and path.name != "multirun.yaml":
            data = path.read_bytes()
            assert secret.encode() not in data and b"hf_secret_value" not in data, path
    assert "hf_secret_value" not in "".join(os.listdir(tmp_path / "sweeps" / "mixed"))
    run_dir = Path(ok["run_dir"])
    [offline] = list((run_dir / "wandb").glob("offline-run-*"))
    assert offline.name.endswith((run_dir / "wandb_id").read_text().strip())
    assert json.loads((run_dir / "result.json").read_text())["run_name"].startswith(f"+hf_token={REDACTED}")


def _finished_run(run_dir: Path, video: Path) -> None:
    """A finished run's files as src.train leaves them: record, items.csv, wandb_id, eval manifest."""
    run_dir.mkdir(parents=True)
    manifest = run_dir.parent / "eval.jsonl"
    rows = [
        {"id": f"q{i}", "video": str(video), "question": f"Which colour {i}?", "options": ["red", "green", "blue"]}
        | {"answer": "ABC"[i], "category": "perception" if i else "temporal", "benchmark": "synthetic"}
        for i in range(3)
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    record = {
        "status": "ok",
        "run_name": "encoder=dinov2",
        "config": {
            "logger": {
                "name": "wandb",
                "project": "apollo-lab",
                "entity": None,
                "group": "tiny",
                "job_type": "encoder",
            },
            "sampler": {"_target_": "src.data.samplers.FpsSampler", "fps": 2.0, "frames_per_clip": 1, "max_clips": 8},
        },
        "data": {"eval": {"path": str(manifest)}},
        "metrics": {"test/synthetic/perception": 0.5, "test/synthetic/temporal": 1.0, "test/synthetic/overall": 0.75},
        "costs": {"train_seconds": 3.5, "eval_seconds": 1.25},
    }
    (run_dir / "result.json").write_text(json.dumps(record))
    (run_dir / "items.csv").write_text(
        "run,item,benchmark,category,modality,correct,chosen,seconds\n"
        + "".join(
            f"encoder=dinov2,q{i},synthetic,{r['category']},video,{int(i != 1)},A,0.1\n" for i, r in enumerate(rows)
        )
    )
    wandb_id(run_dir, "tiny", "encoder=dinov2")


def test_a_sweeps_offline_wandb_runs_hold_items_results_summary_and_the_report(
    tmp_path: Path, rgb_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis import report_wandb
    from analysis.wandb_runs import offline_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    sweep = tmp_path / "tiny"
    run_dir = sweep / "encoder=dinov2"
    _finished_run(run_dir, rgb_video)
    (sweep / "results.csv").write_text("run_dir,test/synthetic/overall\nencoder=dinov2,0.75\n")
    (sweep / "report" / "figures").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(sweep / "report" / "figures" / "fig5_encoders.png")
    assert report_wandb.main([str(sweep)]) == 0
    # the run's own W&B run (its id), resumed: the items table with frames, the artifact, the summary
    [offline] = list((run_dir / "wandb").glob("offline-run-*"))
    got = offline_run(offline)
    assert got["run"]["id"] == (run_dir / "wandb_id").read_text().strip() and got["run"]["group"] == "tiny"
    assert got["history"]["eval/items/_type"] == "table-file" and got["history"]["eval/items/nrows"] == 3
    [table] = [a for a in got["artifacts"] if a["type"] == "run_table"]
    assert "eval/items.table.json" in table["files"] and any(f.startswith("media/images/") for f in table["files"])
    [results] = [a for a in got["artifacts"] if a["type"] == "results"]
    assert sorted(results["files"]) == ["items.csv", "result.json"]
    assert got["summary"]["test/synthetic/overall"] == 0.75 and got["summary"]["costs/eval_seconds"] == 1.25
    rows = json.loads(next(offline.rglob("items*.table.json")).read_text())
    columns = ["item", "benchmark", "category", "modality", "question", "options", "answer", "chosen", "correct"]
    assert rows["columns"] == [*columns, "frames"]
    # the frames the run's sampler takes, side by side, for each item (the first 4 items: all 3)
    assert [r[9] for r in rows["data"]] == ["Image"] * 3
    assert rows["data"][0][4] == "Which colour 0?" and rows["data"][0][5] == "A. red\nB. green\nC. blue"
    # the report: a run of job type `report` in the sweep's group, offline in the report folder
    [report] = list((sweep / "report" / "wandb").glob("offline-run-*"))
    rep = offline_run(report)
    assert rep["run"]["group"] == "tiny" and rep["run"]["job_type"] == "report"
    assert {"report/figures/fig5_encoders/_type", "report/results/_type"} <= rep["history"].keys()
