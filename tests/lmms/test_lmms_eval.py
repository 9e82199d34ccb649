"""lmms-eval on our runs (src/lmms/): the `apollo_lab` model, the local task, and the logs read back.

lmms-eval is installed by `make lmms-eval` (which `make test` runs); without it these tests
are skipped, except under CI, where its absence fails them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from analysis.items import read_items
from analysis.lmms_logs import read_logs, records
from tests.helpers import ROOT, TINY_DATA, run_train

if not os.environ.get("CI"):  # under CI (`make test` installs it) its absence is a failure
    pytest.importorskip("lmms_eval", reason="lmms-eval is not installed (`make lmms-eval`)")

from src.lmms.model import option_letters, user_turn, visual_media
from src.lmms.task import answer_letter, write_task


def test_the_model_is_registered_by_its_entry_point() -> None:
    from lmms_eval.models import get_model

    from src.lmms.model import ApolloLab

    assert get_model("apollo_lab") is ApolloLab


def test_prompts_visuals_and_answers(tmp_path: Path) -> None:
    from PIL import Image

    prompt = "Which way?\nA. left\nB. right\nC. up\nAnswer with the option's letter from the given choices directly."
    assert option_letters(prompt) == "ABC" and option_letters("no options") == ""
    media = visual_media(["/x/a.mp4", Image.new("RGB", (4, 4))], tmp_path)
    assert media[0] == ("video", "/x/a.mp4") and media[1][0] == "image" and Path(media[1][1]).is_file()
    # the training layout: one tag line per media item in front; a prompt with its tags as it is
    assert user_turn(prompt, media[:1]) == "<video>\n" + prompt
    assert user_turn("<video> " + prompt, media[:1]) == "<video> " + prompt
    assert user_turn(prompt, []) == prompt
    assert answer_letter("The answer is B.", 3) == "B" and answer_letter("D", 3) == "" and answer_letter("", 4) == ""
    with pytest.raises(TypeError, match="a visual must be a path or a PIL image"):
        visual_media([3], tmp_path)


def test_a_directory_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    from src.lmms.model import ApolloLab, RunLoadError

    with pytest.raises(RunLoadError, match=r"no result\.json"):
        ApolloLab(run=str(tmp_path))
    with pytest.raises(ValueError, match="unknown model_args"):
        ApolloLab(run=str(tmp_path), runs="x")
    with pytest.raises(ValueError, match="answer='best'; valid: free, letter"):
        ApolloLab(run=str(tmp_path), answer="best")


def test_a_run_folder_with_commas_comes_back_whole(tmp_path: Path) -> None:
    """lmms-eval splits `run=DIR/encoder=siglip,llm=qwen4b,answer=letter` at the commas."""
    from lmms_eval.utils import simple_parse_args_string

    from src.lmms.model import run_path

    run = tmp_path / "encoder=siglip,llm=qwen0.5b,seed=1"
    run.mkdir()
    args = simple_parse_args_string(f"run={run},answer=letter")
    assert run_path(args.pop("run"), args) == (str(run), {"answer": "letter"})
    args = simple_parse_args_string(f'run="{run}",max_new_tokens=4')
    assert run_path(args.pop("run"), args) == (str(run), {"max_new_tokens": 4})
    assert run_path(str(tmp_path / "nope"), {"llm": "x"}) == (str(tmp_path / "nope"), {"llm": "x"})


@pytest.fixture(scope="module")
def run_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run (the smallest data and training, as tests/run/test_eval.py's)."""
    out = tmp_path_factory.mktemp("runs")
    proc = run_train(["logger=none", *TINY_DATA], data_dir, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = [p.parent for p in out.rglob("result.json")]
    return run


def _manifest(run_dir: Path, data_dir: Path) -> Path:
    """The eval split the run was trained and scored on (the session's data folder holds other
    tests' benchmarks too)."""
    from omegaconf import OmegaConf

    from src.config.container import to_dict
    from src.data.synthetic import SyntheticSpec

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    spec = SyntheticSpec.from_dict(to_dict(cfg.data.synthetic))
    manifest = data_dir / "synthetic" / spec.key() / "eval.jsonl"
    assert manifest.is_file(), manifest
    return manifest


def _chosen(items_csv: Path) -> dict[tuple[str, str], str]:
    return {(r["item"], r["modality"]): r["chosen"] for r in csv.DictReader(items_csv.open())}


@pytest.mark.slow
def test_lmms_eval_answers_as_src_eval_does(run_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    """A tiny trained run under `python -m lmms_eval` on the synthetic eval split (video, and its
    `_no_visual` variant) gives the answers `python -m src.eval` gives, item by item."""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    ours = subprocess.run(
        # asked once each, as lmms-eval asks (by default src.eval asks text items once per
        # rotation of their options, eval.circular; the chosen letters are the same either way)
        [sys.executable, "-m", "src.eval", str(run_dir), "eval.modalities=[video,text]", "eval.circular=[]"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ours.returncode == 0, ours.stderr[-3000:]
    # src.eval's folder for this evaluation is named by its overrides (eval.circular=[])
    [evals] = (run_dir / "evals").glob("synthetic-video+text-eval.circular*")
    expected = _chosen(evals / "items.csv")
    manifest = _manifest(run_dir, data_dir)
    tasks = write_task(manifest, tmp_path / "task")
    out = tmp_path / "lmms"
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "apollo_lab", "--model_args", f'run="{run_dir}",answer=letter']
    cmd += ["--batch_size", "5", "--include_path", str(tmp_path / "task"), "--tasks", ",".join(tasks)]
    lmms = subprocess.run(
        [*cmd, "--log_samples", "--output_path", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    # lmms-eval exits 0 after an error in the evaluation: no samples logs then
    assert lmms.returncode == 0 and list(out.rglob("*_samples_*.jsonl")), lmms.stderr[-3000:]
    frame = read_logs(out)
    assert set(frame["model"]) == {run_dir.name} and set(frame["benchmark"]) == {"synthetic"}
    got = {(r.item, r.modality): r.chosen for r in frame.itertuples()}
    assert got.keys() == expected.keys() and len(got) == 2 * 12
    # answer=letter picks the likeliest option letter, as src.eval scores: every item agrees
    assert got == expected
    # the same logs through analysis/items.py (the audit's and curation's reader) and collect
    table, _ = read_items([out])
    assert len(table) == 24 and set(table["modality"]) == {"video", "text"}
    [rec] = records(out)
    theirs = json.loads((evals / "result.json").read_text())["metrics"]
    for key in ("test/synthetic/overall", "test_text/synthetic/overall"):
        assert rec["metrics"][key] == pytest.approx(theirs[key])


@pytest.mark.slow
def test_loglikelihood_is_the_scorers_option_score(run_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    """`loglikelihood` of an option letter after the prompt is the score src.eval ranks options by."""
    from lmms_eval.api.instance import Instance

    from src.lmms.model import ApolloLab
    from src.run.build import option_token_ids

    manifest = _manifest(run_dir, data_dir)
    write_task(manifest, tmp_path / "task")
    docs = [json.loads(line) for line in (tmp_path / "task" / "apollo_synthetic.jsonl").open()][:3]
    model = ApolloLab(run=str(run_dir), batch_size=2)
    requests = [
        Instance(
            "loglikelihood",
            (d["prompt"], letter, [d["video"]], k, "t", "test"),
            j,
            {"task": "t", "doc_id": k, "repeats": 1},
        )
        for k, d in enumerate(docs)
        for j, letter in enumerate("ABCD")
    ]
    got = torch.tensor([lp for lp, _ in model.loglikelihood(requests)]).view(3, 4)
    batch = model.batch([model.sample(d["prompt"], [d["video"]]) for d in docs])
    batch.num_options = torch.tensor([4, 4, 4])
    scores = model.model.option_scores(batch, torch.tensor(option_token_ids(model.tokenizer, 4)))
    torch.testing.assert_close(got, scores, rtol=1e-4, atol=1e-4)
