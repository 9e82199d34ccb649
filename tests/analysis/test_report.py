"""analysis.report on a small hand-written sweep: every figure and table in report.md/.html."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from analysis import report, report_wandb

SIZES = {"qwen0.5b": 0.5, "qwen4b": 4.0}
TPF = {"perceiver": 8.0, "avgpool": 4.0}
# overall score per (encoder, resampler) at 0.5B; at 4B it is doubled plus a small twist
BASE = {
    ("siglip", "perceiver"): 0.40,
    ("siglip", "avgpool"): 0.35,
    ("dinov2", "perceiver"): 0.33,
    ("dinov2", "avgpool"): 0.30,
}


def record(run_dir: Path, encoder: str, resampler: str, llm: str) -> dict[str, Any]:
    base = BASE[(encoder, resampler)]
    score = base if SIZES[llm] == 0.5 else 2 * base - (0.02 if encoder == "dinov2" else 0)
    cats = {"perception": score + 0.05, "spatial": score - 0.05 + (0.03 if resampler == "avgpool" else 0)}
    metrics = {f"test/synthetic/{c}": v for c, v in cats.items()}
    metrics["test/synthetic/overall"] = score
    metrics.update({f"test_frame/synthetic/{c}": v - 0.1 for c, v in [*cats.items(), ("overall", score)]})
    metrics.update({f"test_text/synthetic/{c}": 0.25 for c in [*cats, "overall"]})
    return {
        "status": "ok",
        "reason": None,
        "sweep": "tiny",
        "run_dir": str(run_dir),
        "choices": {"encoder": encoder, "llm": llm, "resampler": resampler, "sampler": "fps"},
        "config": {"seed": 0, "logger": {"name": "wandb", "project": "my-proj", "entity": None}},
        "design": {
            "llm_size_b": SIZES[llm],
            "fps": 2.0,
            "tokens_per_frame": TPF[resampler],
            "tokens_per_second": 2.0 * TPF[resampler],
            "train_set_size": 100,
            "params": {"total": 10},
        },
        "metrics": {**metrics, "train/loss": 1.0},
        "costs": {"train_seconds": 3.0},
        "versions": {"python": "3.11"},
    }


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "outputs" / "sweeps" / "tiny"
    for i, ((enc, res), llm) in enumerate((k, llm) for k in BASE for llm in SIZES):
        run = root / str(i)
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps(record(run, enc, res, llm)))
    failed = root / "8"
    failed.mkdir()
    (failed / "result.json").write_text(
        json.dumps(
            {
                "status": "failed",
                "reason": "RuntimeError: loss is NaN\n  at step 3",
                "sweep": "tiny",
                "run_dir": str(failed),
                "choices": {"encoder": "siglip", "llm": "qwen7b"},
                "design": {},
                "metrics": {},
            }
        )
    )
    (root / "9" / ".hydra").mkdir(parents=True)  # started, never finished
    return root


def test_report_has_every_figure_and_table(
    sweep: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert report.main([str(sweep), "--bootstrap", "100"]) == 0
    out = sweep / "report"
    stdout = capsys.readouterr().out
    assert f"-> {out / 'report.html'}" in stdout and "W&B: report not logged (WANDB_MODE=offline)" in stdout
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert pngs == [
        "correlations/correlations.png",
        "figures/fig10_fps_tps_tpf.png",
        "figures/fig5_encoders.png",
        "modality/modality_gap.png",
        "scaling/scatter_0.5_vs_4.png",  # no R² curve: two sizes give one R², not a curve
    ]
    for png in pngs:
        assert f"]({png})" in md and f"({png})</figcaption>" in html
    assert html.count('<img src="data:image/png;base64,') == len(pngs)  # self-contained
    for heading in (
        "# Sweep report: tiny",
        "## Runs",
        "### Failed and missing runs",
        "## Scaling Consistency",
        "## Benchmark correlations",
        "## Modality gap",
        "## The paper's axes",
    ):
        assert heading in md
    assert html.count("<table>") == md.count("\n|---") == 5  # runs, pairs, variant scores, correlations, gap
    # each failed and missing run one bullet of one line
    assert "- failed: " in md and "RuntimeError: loss is NaN at step 3\n" in md
    assert "- missing: " in md and "no result.json" in md
    assert "10 runs: 8 ok, 1 failed, 1 missing" in md
    # the pair table, by hand: x = (.30, .33, .35, .40) at 0.5B, y = 2x - (.02 for dinov2) =
    # (.58, .64, .70, .80); dx = (-.045, -.015, .005, .055), dy = (-.10, -.04, .02, .12);
    # Sxy = .0118, Sxx = .0053, Syy = .0264: R² = .0118² / (.0053 · .0264) = 0.99514
    row = re.search(r"\| 0\.500 \| 4\.000 \| 4 \| ([0-9.]+) \|", md)
    assert row is not None and row.group(1) == "0.995"
    assert "fig4_sampling.png: skipped, 'sampler' has 1 value(s)" in md
    assert "fig6_mixtures.png: skipped, no column 'mixture'" in md
    assert (out / "results.csv").is_file() and (out / "scaling" / "scaling.json").is_file()


def test_report_of_an_empty_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no result.json")
    assert report.main([str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_report_with_an_unknown_metric_is_one_line(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(sweep), "--metric", "test/synthetic/nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"error: no column 'test/synthetic/nope' (--metric) in the results of {sweep}"


class FakeWandb(types.ModuleType):
    """Enough of the wandb module for log_report: init, Image, Table, a run that logs."""

    def __init__(self) -> None:
        super().__init__("wandb")
        self.logged: dict[str, Any] = {}
        self.init_kwargs: dict[str, Any] = {}
        outer = self

        class Run:
            url = "https://wandb.example/run"

            def log(self, data: dict[str, Any]) -> None:
                outer.logged.update(data)

            def finish(self) -> None:
                outer.logged["_finished"] = True

        self.Run = Run
        self.Image = lambda path: ("image", path)
        self.Table = lambda dataframe: ("table", list(dataframe.columns))

    def init(self, **kwargs: Any) -> Any:
        self.init_kwargs = kwargs
        return self.Run()


def test_figures_go_to_wandb_only_when_online(
    sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example")
    monkeypatch.setattr(report_wandb, "check_reachable", lambda url: None)
    assert report.main([str(sweep), "--bootstrap", "0"]) == 0
    assert "W&B: logged 5 figures and 5 tables to https://wandb.example/run" in capsys.readouterr().out
    assert (fake.init_kwargs["project"], fake.init_kwargs["group"], fake.init_kwargs["job_type"]) == (
        "my-proj",
        "tiny",
        "report",
    )
    assert fake.logged["report/figures/fig5_encoders"] == ("image", str(sweep / "report/figures/fig5_encoders.png"))
    assert fake.logged["report/scaling_pairs"][0] == "table" and fake.logged["_finished"] is True
    assert not list(sweep.rglob("wandb"))  # W&B's files went to a temporary folder
    # without a key (and no ~/.netrc entry), nothing is logged
    fake.logged.clear()
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("NETRC", str(sweep / "no-netrc"))
    line = report_wandb.log_report("tiny", {}, {})
    assert line == "W&B: report not logged (no W&B API key for https://wandb.example)"
    assert fake.logged == {}


# --- the findings section, on runs with items.csv -------------------------------------------

CATS = ("perception", "spatial")


def write_run(root: Path, name: str, encoder: str, llm: str, seed: int, right: list[set[int]]) -> None:
    """A run dir with result.json and items.csv: 100 items per category, right on `right[c]`."""
    run = root / name
    run.mkdir(parents=True)
    rows = ["run,item,benchmark,category,modality,correct,chosen,seconds"]
    accs = {}
    for cat, ok in zip(CATS, right, strict=True):
        rows += [f"{name},{cat}-{i},synthetic,{cat},video,{int(i in ok)},0,0.1" for i in range(100)]
        accs[cat] = len(ok) / 100
    (run / "items.csv").write_text("\n".join(rows) + "\n")
    metrics = {f"test/synthetic/{c}": a for c, a in accs.items()}
    metrics["test/synthetic/overall"] = sum(accs.values()) / len(accs)
    rec = {
        "status": "ok",
        "reason": None,
        "sweep": "seeds",
        "run_dir": str(run),
        "choices": {"encoder": encoder, "llm": llm},
        "config": {"seed": seed},
        "design": {"llm_size_b": SIZES[llm]},
        "metrics": metrics,
        "costs": {},
    }
    (run / "result.json").write_text(json.dumps(rec))


def findings_text(md: str) -> str:
    start = md.index("## Findings")
    return md[start : md.index("## Runs")]


def test_two_seeds_of_one_design_are_within_noise(tmp_path: Path) -> None:
    root = tmp_path / "sweeps" / "seeds"
    base = [set(range(50)), set(range(40))]
    # seed 1 swaps 3 right items for 3 wrong ones in each category: same scores, b = c = 6
    moved = [(s - {0, 1, 2}) | {60, 61, 62} for s in base]
    write_run(root, "s0", "siglip", "qwen0.5b", 0, base)
    write_run(root, "s1", "siglip", "qwen0.5b", 1, moved)
    assert report.main([str(root), "--bootstrap", "50"]) == 0
    md = (root / "report" / "report.md").read_text()
    text = findings_text(md)  # the findings come first, before the runs table
    assert md.index("## Findings") < md.index("## Runs")
    assert "No design axis varies" in text
    assert "seeds 0, 1 score 0.450, 0.450 (sd 0.000)" in text
    # paired over 200 items, difference 0, McNemar mid-p 1 (b = c = 6)
    assert "seed 1 minus seed 0: +0.000 [" in text and "paired over 200 items, McNemar mid-p 1): within noise" in text
    assert "Within noise: seeds of encoder=siglip,llm=qwen0.5b." in text
    # the runs table carries each score's interval: overall is a bootstrap over both categories
    assert "| 95% interval |" in md


def test_findings_name_the_best_option_its_margin_and_a_flip(tmp_path: Path) -> None:
    root = tmp_path / "sweeps" / "enc"
    r = range
    # 0.5B: siglip 0.55 vs dinov2 0.52 (close); 4B: dinov2 0.90 vs siglip 0.30 (far apart)
    write_run(root, "a", "siglip", "qwen0.5b", 0, [set(r(55)), set(r(55))])
    write_run(root, "b", "dinov2", "qwen0.5b", 0, [set(r(52)), set(r(52))])
    write_run(root, "c", "siglip", "qwen4b", 0, [set(r(30)), set(r(30))])
    write_run(root, "d", "dinov2", "qwen4b", 0, [set(r(90)), set(r(90))])
    assert report.main([str(root), "--bootstrap", "50"]) == 0
    text = findings_text((root / "report" / "report.md").read_text())
    assert "### encoder" in text
    # 0.5B: siglip - dinov2 = 0.03 from items 52-54 of each category: b = 6, c = 0, so McNemar's
    # mid-p = 2·(1/64) - 1/64 = 0.016; paired, three points is beyond the noise of 200 items
    assert "0.5B: best encoder=siglip, 0.550 [" in text
    assert "minus dinov2: +0.030 [" in text and "McNemar mid-p 0.016): beyond noise" in text
    # 4B: dinov2 - siglip = 0.6 exactly; beyond noise
    assert "4B: best encoder=dinov2, 0.900 [" in text and "minus siglip: +0.600 [" in text
    assert "0.5B picks siglip, 4B picks dinov2: at 4B dinov2 minus siglip is +0.600" in text
    assert "the small model would pick wrong" in text


def test_findings_without_items_say_the_noise_is_unknown(sweep: Path) -> None:
    assert report.main([str(sweep), "--bootstrap", "0"]) == 0
    text = findings_text((sweep / "report" / "report.md").read_text())
    # 0.5B: siglip (0.40, 0.35) vs dinov2 (0.33, 0.30): means 0.375 and 0.315
    assert "0.5B: best encoder=siglip, 0.375 over 2 run(s); minus dinov2: +0.060 (no items.csv" in text
    assert ": within noise" not in text and "Within noise:" not in text  # unknown is not "within noise"
    assert "4 difference(s) have no interval" in text and "0.5B picks the same best as 4B (siglip)." in text
