"""`python -m src.eval` on a trained run: the same scores as at the end of training, and more."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

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
    ev = json.loads((run_dir / "evals" / "synthetic-video-sampler_uniform" / "result.json").read_text())
    assert ev["config"]["sampler"]["_target_"].endswith("UniformSampler")
    assert ev["config"]["sampler"]["num_frames"] == 4 and ev["config"]["sampler"]["frames_per_clip"] == 1


def test_what_cannot_be_evaluated_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 2
    assert "no result.json" in capsys.readouterr().err
    (tmp_path / "result.json").write_text(json.dumps({"status": "failed", "reason": "FloatingPointError"}))
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did not finish" in err and "FloatingPointError" in err
