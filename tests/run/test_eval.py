"""`python -m src.eval` on a trained run: the same scores as at the end of training, and more."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from src.run.eval import main
from tests.helpers import ROOT, TINY_DATA, records, run_train


def _eval(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "APOLLO_DATA_DIR": str(data_dir / "elsewhere")}  # the run's own paths count
    return subprocess.run(
        [sys.executable, "-m", "src.eval", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_a_trained_run_scores_the_same_again_and_with_the_audit(data_dir: Path, tmp_path: Path) -> None:
    proc = run_train(["logger=none", *TINY_DATA], data_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rec] = records(tmp_path)
    run_dir = Path(rec["run_dir"])
    again = _eval([str(run_dir), "eval.modalities=[video,frame,text]", "eval.batch_size=5"], data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    out = run_dir / "evals" / "synthetic-video+frame+text"
    ev = json.loads((out / "result.json").read_text())
    # the trained weights and tokenizer came back: the video scores are the training run's,
    # at another batch size
    assert {k: v for k, v in ev["metrics"].items() if k.startswith("test/")} == {
        k: v for k, v in rec["metrics"].items() if k.startswith("test/")
    }
    assert {"test_frame/synthetic/overall", "test_text/synthetic/overall"} <= ev["metrics"].keys()
    rows = list(csv.DictReader((out / "items.csv").open()))
    assert {r["modality"] for r in rows} == {"video", "frame", "text"} and len(rows) == 3 * 12
    trained = {r["item"]: r["chosen"] for r in csv.DictReader((run_dir / "items.csv").open())}
    assert {r["item"]: r["chosen"] for r in rows if r["modality"] == "video"} == trained
    # trained with fps sampling, tested with uniform (the paper's Table 11 the other way round)
    swapped = _eval([str(run_dir), "sampler=uniform", "sampler.num_frames=4"], data_dir)
    assert swapped.returncode == 0, swapped.stderr[-3000:]
    ev = json.loads(
        (run_dir / "evals" / "synthetic-video-sampler_uniform-sampler.num_frames_4" / "result.json").read_text()
    )
    assert ev["config"]["sampler"]["_target_"].endswith("UniformSampler")
    assert ev["config"]["sampler"]["num_frames"] == 4 and ev["config"]["sampler"]["frames_per_clip"] == 1


def test_what_cannot_be_evaluated_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no result.json" in capsys.readouterr().err
    (tmp_path / "result.json").write_text(json.dumps({"status": "failed", "reason": "FloatingPointError"}))
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did not finish" in err and "FloatingPointError" in err


def _finished(run_dir: Path) -> Path:
    """A finished run's directory, as far as `src.eval` reads it before loading weights."""
    from omegaconf import OmegaConf, open_dict

    from src.run.records import REQUIRED_KEYS, write_record
    from tests.helpers import cfg_with

    cfg = cfg_with("logger=none", *TINY_DATA)
    with open_dict(cfg):
        cfg.paths = {"data_dir": str(run_dir / "data")}
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    record: dict[str, Any] = {k: {} for k in REQUIRED_KEYS} | {"status": "ok", "reason": None, "sweep": "default"}
    write_record(run_dir, record | {"config": {"paths": {"data_dir": str(run_dir / "data")}}})
    return run_dir


def test_a_typo_in_an_override_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = _finished(tmp_path / "run")
    for override, needle in (
        ("samplr.fps=1", "no key 'samplr.fps'; did you mean sampler.fps?"),
        ("sampler.fsp=1", "no key 'sampler.fsp'; did you mean sampler.fps?"),
        ("encoder=sigl", "encoder=sigl is not an option of 'encoder'"),
    ):
        assert main([str(run_dir), override]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: ") and needle in line, line


def test_each_evaluation_has_its_own_folder_and_none_is_overwritten(tmp_path: Path) -> None:
    from src.config import resolvers
    from src.run.eval import EvalError, _same_evaluation, eval_dir, run_config
    from src.run.records import REQUIRED_KEYS, write_record

    resolvers.register()
    run_dir = _finished(tmp_path / "run")

    def folder(*overrides: str) -> str:
        return eval_dir(run_dir, run_config(run_dir, list(overrides)), list(overrides)).name

    assert folder() == folder("eval.batch_size=5") == "synthetic-video"  # the batch size scores the same
    assert folder("eval.modalities=[video,frame,text]") == "synthetic-video+frame+text"
    uniform = folder("sampler=uniform", "sampler.num_frames=4")
    assert (
        uniform
        == folder("sampler.num_frames=4", "sampler=uniform")
        == "synthetic-video-sampler_uniform-sampler.num_frames_4"
    )
    names = {folder(), uniform, folder("sampler=uniform"), folder("sampler.fps=1"), folder("sampler.fps=2")}
    assert len(names) == 5
    # a value that is no folder name (a path): rewritten, and told apart by a hash of the overrides
    a, b = folder("+x=/a/b"), folder("+x=/a_b")
    assert a != b and a.startswith("synthetic-video-+x__a_b-")
    # a folder holding another evaluation (named the older way) is refused, not overwritten
    out = run_dir / "evals" / uniform
    write_record(
        out,
        {k: {} for k in REQUIRED_KEYS}
        | {"status": "ok", "reason": None, "sweep": "s", "overrides": ["sampler=uniform"]},
    )
    with pytest.raises(EvalError, match="holds another evaluation"):
        _same_evaluation(out, ["sampler=uniform", "sampler.num_frames=4"])
    _same_evaluation(out, ["sampler=uniform", "eval.batch_size=2"])  # the same evaluation: written again


def test_an_unreadable_record_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = _finished(tmp_path / "run")
    (run_dir / "result.json").write_text('{"status": "o')
    assert main([str(run_dir)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {run_dir / 'result.json'}: unreadable (JSONDecodeError")
