"""analysis.curate: every number it writes, checked against a small table worked out by hand."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.curate import balanced_quotas, binary_entropy, curate, main, point_biserial
from analysis.items import read_items
from tests.helpers import ROOT

MODELS = ["m1", "m2", "m3", "m4"]
# item: (category, video correctness of m1..m4, seconds, control flag)
VIDEO = {
    "a1": ("A", [1, 1, 0, 0], 1.0, ""),
    "a2": ("A", [1, 0, 0, 0], 2.0, ""),
    "a3": ("A", [1, 1, 1, 1], 3.0, "text"),
    "a4": ("A", [1, 1, 1, 0], 4.0, "frame"),
    "b1": ("B", [0, 1, 0, 0], 1.0, "frame"),
    "b2": ("B", [1, 1, 0, 0], 2.0, ""),
    "b3": ("B", [0, 0, 0, 0], 3.0, ""),
    "b4": ("B", [0, 0, 1, 1], 4.0, ""),  # the weak models right, the strong wrong
}
TEXT = {"a3": [1, 1, 1, 0], "b1": [1, 0, 1, 0]}  # 3/4 > 0.5 drops a3; 2/4 is not more than half
FRAME = {"a3": [1, 1, 1, 1], "a4": [0, 1, 1, 1], "b2": [1, 1, 1, 0], "b3": [0, 0, 0, 0]}
H_QUARTER = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))  # 0.8113 bits


def table(flags: bool = True, seconds: bool = True) -> pd.DataFrame:
    rows = []
    for item, (cat, right, secs, flag) in VIDEO.items():
        for modality, source in (("video", {item: right}), ("text", TEXT), ("frame", FRAME)):
            for model, ok in zip(MODELS, source.get(item, [])):
                rows.append(
                    {
                        "model": model,
                        "item": item,
                        "category": cat,
                        "modality": modality,
                        "correct": ok,
                        "seconds": secs if modality == "video" else 9.0,
                        "control": flag,
                    }
                )
    frame = pd.DataFrame(rows)
    return frame.drop(columns=[c for c, keep in (("control", flags), ("seconds", seconds)) if not keep])


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def items(tmp_path: Path) -> pd.DataFrame:
    frame, _ = read_items([write(table(), tmp_path / "t.csv")])
    return frame


def test_entropy_and_point_biserial() -> None:
    p = np.array([0, 0.25, 0.5, 0.75, 1])
    assert binary_entropy(p).tolist() == pytest.approx([0, H_QUARTER, 1, H_QUARTER, 0])
    # totals 5, 5, 3, 2 (of 8): dt = 1.25, 1.25, -0.75, -1.75, sum dt² = 6.75
    r = point_biserial(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]]), np.array([5, 5, 3, 2]))
    assert r.tolist() == pytest.approx([2.5 / math.sqrt(6.75), 5 / 9, -2.5 / math.sqrt(6.75), 0.0])


def test_balanced_quotas() -> None:
    five, four = [0.9, 0.8, 0.7, 0.6, 0.5], [0.9, 0.85, 0.8, 0.75, 0.1]
    # y has 1 < 7 // 3: it gives its 1; then x, z share 6; z has 3 = 6 // 2: all of it
    assert balanced_quotas({"x": five, "y": [1.0], "z": four[:3]}, 7) == {"x": 3, "y": 1, "z": 3}
    # 7 left for x and z: 3 each, and the odd one goes to z, whose 4th (0.75) beats x's (0.6)
    assert balanced_quotas({"x": five, "y": [1.0], "z": four}, 8) == {"x": 3, "y": 1, "z": 4}
    # equal next scores: the remainder goes by name
    assert balanced_quotas({"q": [1, 0.5], "p": [1, 0.5]}, 3) == {"p": 2, "q": 1}
    assert balanced_quotas({"x": five, "y": [1.0]}, 100) == {"x": 5, "y": 1}


def test_drops_counts_and_entropy_selection(items: pd.DataFrame) -> None:
    kept, audit, report = curate(items, budget=3, threshold=0.5, rank="entropy", audit_rule="share")
    fate = audit.reset_index().set_index("item")
    assert fate["drop_text"][fate["drop_text"]].index.tolist() == ["a3"]
    assert sorted(fate["drop_frame"][fate["drop_frame"]].index) == ["a3", "a4", "b2"]
    assert fate.loc["b1", "text_accuracy"] == 0.5 and not fate.loc["b1", "drop_text"]
    assert math.isnan(fate.loc["a1", "text_accuracy"])  # not audited: never dropped
    assert report["items"] == {
        "full": 8,
        "kept": 3,
        "dropped": 3,
        "dropped_text": 1,
        "dropped_frame": 3,
        "dropped_both": 1,
        "not_selected": 2,
        "incomplete": 0,
        "missing_answers": 0,
        "not_audited": {"text": 6, "frame": 4},
        "tied_at_cut": 0,
    }
    assert report["categories"] == {
        "A": {
            "full": 4,
            "kept": 2,
            "dropped": 2,
            "dropped_text": 1,
            "dropped_frame": 2,
            "dropped_both": 1,
            "not_selected": 0,
        },
        "B": {
            "full": 4,
            "kept": 1,
            "dropped": 1,
            "dropped_text": 0,
            "dropped_frame": 1,
            "dropped_both": 0,
            "not_selected": 2,
        },
    }
    # candidates A: a1 (H 1), a2 (0.811); B: b4 (1), b1 (0.811), b3 (0). A budget of 3:
    # one each, and the third to the better next candidate: a2 and b1 tie at 0.811, A by name
    k = kept.reset_index()
    assert k[["item", "category", "rank"]].values.tolist() == [["a1", "A", 1], ["a2", "A", 2], ["b4", "B", 1]]
    assert k["score"].tolist() == pytest.approx([1.0, H_QUARTER, 1.0])
    assert k["accuracy"].tolist() == [0.5, 0.25, 0.5] and k["control"].tolist() == ["", "", ""]


def corr(report: dict, convention: str) -> tuple[float, float]:
    c = report["correlation"][convention]
    return c["spearman"], c["pearson"]


def test_scores_and_correlations_entropy(items: pd.DataFrame) -> None:
    _, _, report = curate(items, budget=3, rank="entropy")
    # full: m1 A 4/4 B 1/4 -> 0.625; m2 3/4, 2/4; m3 2/4, 1/4; m4 1/4, 1/4
    # curated {a1, a2, b4}: m1 A 1 B 0; m2 0.5, 0; m3 0, 1; m4 0, 1
    assert report["scores"] == {
        "m1": {"full": 0.625, "curated": 0.5, "full_item_mean": 5 / 8, "curated_item_mean": 2 / 3},
        "m2": {"full": 0.625, "curated": 0.25, "full_item_mean": 5 / 8, "curated_item_mean": 1 / 3},
        "m3": {"full": 0.375, "curated": 0.5, "full_item_mean": 3 / 8, "curated_item_mean": 1 / 3},
        "m4": {"full": 0.25, "curated": 0.5, "full_item_mean": 2 / 8, "curated_item_mean": 1 / 3},
    }
    assert report["headline"] == "category_mean"
    # ranks full 3.5 3.5 2 1, curated 3 1 3 3: rho = -2 / sqrt(4.5 * 3); Pearson -5/9 by hand
    assert corr(report, "category_mean") == pytest.approx((-2 / math.sqrt(13.5), -5 / 9))
    assert corr(report, "item_mean") == pytest.approx((2 / math.sqrt(13.5), 5 / 9))


def test_point_biserial_keeps_what_tracks_the_totals(items: pd.DataFrame) -> None:
    kept, _, report = curate(items, budget=3, rank="pointbiserial")
    k = kept.reset_index()
    # B by r: b1 5/9, b3 0, b4 -0.962; the odd item to A (a2 5/9 beats b3 0)
    assert k["item"].tolist() == ["a1", "a2", "b1"]
    assert k["score"].tolist() == pytest.approx([2.5 / math.sqrt(6.75), 5 / 9, 5 / 9])
    assert [report["scores"][m]["curated"] for m in MODELS] == [0.5, 0.75, 0.0, 0.0]
    assert corr(report, "category_mean") == pytest.approx((8 / 9, 25 / 27))


def test_cost_reduction(items: pd.DataFrame, tmp_path: Path) -> None:
    _, _, report = curate(items, budget=3)
    assert report["cost"] == {
        "items_full": 8,
        "items_kept": 3,
        "items_reduction": 8 / 3,
        "seconds": {"full": 20.0, "kept": 7.0, "reduction": 20 / 7, "models": 4, "source": "items (per-item seconds)"},
    }
    # without a seconds column, the run records' eval_seconds (the video share of the rows)
    for model in MODELS:
        run = tmp_path / "sweep" / model
        rows = table(seconds=False)
        write(rows[rows["model"] == model].rename(columns={"model": "run"}), run / "items.csv")
        (run / "result.json").write_text(json.dumps({"costs": {"eval_seconds": 15.0}}))
    out = tmp_path / "out"
    assert main([str(tmp_path / "sweep"), "--out", str(out), "--budget", "3"]) == 0
    seconds = json.loads((out / "curation.json").read_text())["cost"]["seconds"]
    # each run's table: 8 video rows, 2 text, 4 frame; its video share of 15 s is 8/14
    share = 8 / (8 + len(TEXT) + len(FRAME))
    assert seconds["full"] == pytest.approx(15.0 * share) and seconds["models"] == 4
    assert seconds["kept"] == pytest.approx(15.0 * share * 3 / 8)
    assert seconds["reduction"] == pytest.approx(8 / 3) and seconds["source"].startswith("run records")


def test_precision_and_recall_against_the_flags(items: pd.DataFrame) -> None:
    _, _, report = curate(items, budget=3)
    c = report["controls"]
    assert c["items_with_flags"] == 8 and c["flagged"] == {"frame": 2, "text": 1}
    # dropped {a3, a4, b2}, flagged {a3 text, a4 frame, b1 frame}
    assert c["overall"] == {"flagged": 3, "dropped": 3, "true_positives": 2, "precision": 2 / 3, "recall": 2 / 3}
    assert c["text"] == {"flagged": 1, "dropped": 1, "true_positives": 1, "precision": 1.0, "recall": 1.0}
    assert c["frame"] == {"flagged": 2, "dropped": 3, "true_positives": 1, "precision": 1 / 3, "recall": 0.5}
    # kept a1, a2, b4: no control made it into the curated set; with one more, b1 (a frame
    # control the audit missed, ranked with a2 at 0.811 bits) does
    assert c["kept"] == {"overall": 0, "text": 0, "frame": 0}
    assert curate(items, budget=4)[2]["controls"]["kept"] == {"overall": 1, "text": 0, "frame": 1}
    unflagged, _ = read_items([write(table(flags=False), Path(items["source"][0]).with_name("u.csv"))])
    assert curate(unflagged, budget=3)[2]["controls"] is None


def test_cli_writes_tables_and_reads_flags_from_a_manifest(tmp_path: Path) -> None:
    src = write(table(flags=False), tmp_path / "t.csv")
    manifest = tmp_path / "eval.jsonl"
    manifest.write_text(
        "".join(json.dumps({"id": i, "control": f or None}) + "\n" for i, (_, _, _, f) in VIDEO.items() if i != "b3")
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.curate",
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--budget",
            "3",
            "--flags",
            str(manifest),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "kept 3" in proc.stdout and "1 item(s) are not in" in proc.stderr
    curated = pd.read_csv(tmp_path / "o" / "curated.csv", keep_default_na=False)
    assert curated.columns.tolist() == [
        "item",
        "category",
        "score",
        "rank",
        "accuracy",
        "text_accuracy",
        "frame_accuracy",
        "control",
    ]
    assert curated["item"].tolist() == ["a1", "a2", "b4"]
    report = json.loads((tmp_path / "o" / "curation.json").read_text())
    assert report["flags"] == str(manifest) and report["controls"]["items_with_flags"] == 7
    assert report["controls"]["overall"]["true_positives"] == 2
    assert len(pd.read_csv(tmp_path / "o" / "audit.csv")) == 8
    assert (tmp_path / "o" / "curation.png").stat().st_size > 0


def test_our_items_csv_runs_benchmarks_and_missing_modality(tmp_path: Path) -> None:
    rows = table(flags=False).rename(columns={"model": "run"})
    rows["benchmark"] = "one"
    other = rows[rows["modality"] == "video"].assign(benchmark="two")  # the same ids, other items
    other["modality"] = ""  # no modality: video
    frame, _ = read_items([write(pd.concat([rows, other]), tmp_path / "items.csv")])
    assert set(frame["model"]) == set(MODELS) and set(frame["modality"]) == {"video", "text", "frame"}
    _, audit, report = curate(frame, budget=100)
    assert report["items"]["full"] == 16 and report["items"]["dropped"] == 3  # "two" is not audited
    assert sorted(audit.index.get_level_values("benchmark").unique()) == ["one", "two"]


def test_a_run_evaluated_again_is_read_once(tmp_path: Path) -> None:
    # a run's own items.csv (video) and src.eval's evals/*/items.csv (all three modalities)
    rows = table().rename(columns={"model": "run"})
    for model in MODELS:
        mine = rows[rows["run"] == model]
        write(mine[mine["modality"] == "video"], tmp_path / model / "items.csv")
        write(mine, tmp_path / model / "evals" / "synthetic-video_frame_text" / "items.csv")
    frame, tables = read_items([tmp_path])
    assert len(tables) == 8 and len(frame) == len(rows)
    assert curate(frame, budget=3)[2]["items"]["dropped"] == 3


def test_a_missing_answer_is_missing_and_counted(items: pd.DataFrame) -> None:
    # an absent row and an empty cell alike: the item stays, scored on the models that answered
    partial = items[~((items["model"] == "m2") & (items["item"] == "b3"))].copy()
    partial.loc[
        (partial["model"] == "m1") & (partial["item"] == "a1") & (partial["modality"] == "video"), "correct"
    ] = np.nan
    _, audit, report = curate(partial, budget=3, folds=0)
    assert report["items"]["incomplete"] == 2 and report["items"]["full"] == 8
    assert report["items"]["missing_answers"] == 2
    assert audit.loc[("", "a1"), "accuracy"] == pytest.approx(1 / 3)  # m2 right, m3 and m4 wrong


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda t: t.drop(columns=["correct"]), ["t.csv", "missing column 'correct'"]),
        (lambda t: t.drop(columns=["model"]), ["t.csv", "missing column 'model (or run)'"]),
        (lambda t: t.assign(modality="audio"), ["t.csv", "modality 'audio' is invalid", "video, frame, text"]),
        (lambda t: t.assign(correct="yes"), ["t.csv", "correct='yes' is invalid", "0 or 1"]),
        (
            lambda t: pd.concat([t, t.head(1).assign(correct=0)]),
            ["t.csv", "model 'm1' has item 'a1' (video) twice, once right and once wrong"],
        ),
    ],
)
def test_a_bad_table_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, edit, needles) -> None:
    src = write(edit(table()), tmp_path / "t.csv")
    assert main([str(src), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and all(n in err[0] for n in needles), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nowhere.csv"], "nowhere.csv: no such file or directory"),
        (["DIR"], "no items.csv beneath"),
        (["T", "--budget", "0"], "--budget=0 is invalid"),
        (["T", "--threshold", "1.5"], "--threshold=1.5 is invalid"),
        (["T", "--flags", "none.jsonl"], "none.jsonl: no such flags manifest"),
        (["T", "--level", "0"], "--level=0.0 is invalid"),
        (["T", "--folds", "1"], "--folds=1 is invalid"),
        (["T", "--irt-dim", "0"], "--irt-dim=0 is invalid"),
    ],
)
def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], needle: str) -> None:
    src = write(table(), tmp_path / "t.csv")
    (tmp_path / "empty").mkdir()
    args = [str(src) if a == "T" else str(tmp_path / "empty") if a == "DIR" else a for a in args]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_the_figure_shows_every_model_and_every_item(items: pd.DataFrame) -> None:
    from analysis.curate_plot import curation_figure

    _, _, report = curate(items, budget=3)
    left, right = curation_figure(report).axes
    points = left.collections[0].get_offsets()
    assert sorted(map(tuple, np.asarray(points).tolist())) == sorted(
        (s["full"], s["curated"]) for s in report["scores"].values()
    )
    # stacked bars: A = kept 2, dropped both 1 (a3), frame only 1 (a4); B = kept 1, 2 not
    # selected, frame only 1 (b2)
    heights = {}
    for bars in right.containers:
        heights[bars.get_label()] = [b.get_height() for b in bars]
    assert heights == {
        "kept": [2, 1],
        "not selected": [0, 2],
        "dropped: text": [0, 0],
        "dropped: frame": [1, 1],
        "dropped: both": [1, 0],
    }


def test_parquet_tables(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "t.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        src.write_bytes(b"PAR1")
        assert main([str(src), "--out", str(tmp_path / "o")]) == 2
        [err] = capsys.readouterr().err.strip().splitlines()
        assert "t.parquet" in err and "pyarrow" in err
        return
    table().to_parquet(src, index=False)
    frame, _ = read_items([src])
    assert curate(frame, budget=3)[2]["items"]["kept"] == 3


def test_a_wide_table_of_scores_with_empty_cells_and_an_item_table(tmp_path: Path) -> None:
    wide = pd.DataFrame(
        {"model": ["m1", "m2", "m3"], "q1": ["0.25", "1", ""], "q2": ["0", "0.5", "1"], "q3": ["1", "1", "0"]}
    )
    wide.to_csv(tmp_path / "board.csv.gz", index=False)
    pd.DataFrame({"item": ["q1", "q2", "q3"], "category": ["x", "x", "y"], "options": ["4", "", "2"]}).to_csv(
        tmp_path / "board_items.csv", index=False
    )
    frame, _ = read_items([tmp_path / "board.csv.gz"])
    assert len(frame) == 9 and frame["correct"].isna().sum() == 1
    row = frame[(frame["model"] == "m1") & (frame["item"] == "q1")].iloc[0]
    assert row["correct"] == 0.25 and row["category"] == "x" and row["options"] == 4
    assert frame[frame["item"] == "q2"]["options"].isna().all()
    # no category anywhere: one category, "all"
    bare, _ = read_items([write(table(flags=False).drop(columns=["category"]), tmp_path / "bare.csv")])
    assert set(bare["category"]) == {"all"}
    _, audit, report = curate(frame, budget=2, folds=0)
    assert report["items"]["missing_answers"] == 1 and report["items"]["incomplete"] == 1
    assert audit.loc[("", "q1"), "accuracy"] == pytest.approx(0.625)  # (0.25 + 1) / 2


@pytest.mark.parametrize("value", ["1.5", "-0.1", "yes"])
def test_a_score_outside_0_1_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, value: str) -> None:
    src = write(
        table().astype({"correct": str}).assign(correct=lambda t: t["correct"].where(t.index > 0, value)),
        tmp_path / "t.csv",
    )
    assert main([str(src), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"correct={value!r} is invalid (row 1)" in err[0] and "[0, 1]" in err[0], err


def test_benchmarks_with_different_models_are_refused_or_curated_one_at_a_time(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    one = table(flags=False).assign(benchmark="one")
    two = one[one["model"] != "m4"].assign(benchmark="two")
    two.loc[two["model"] == "m1", "model"] = "m9"
    src = write(pd.concat([one, two]), tmp_path / "t.csv")
    assert main([str(src), "--out", str(tmp_path / "o"), "--folds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'one' and 'two' have different models" in err[0], err
    assert "only in 'one': m1, m4; only in 'two': m9" in err[0] and "--per-benchmark" in err[0]
    assert main([str(src), "--out", str(tmp_path / "o"), "--folds", "0", "--per-benchmark"]) == 0
    for bench, models in (("one", 4), ("two", 3)):
        report = json.loads((tmp_path / "o" / bench / "curation.json").read_text())
        assert len(report["models"]) == models and report["items"]["full"] == 8


def test_the_chance_rule_tests_against_one_over_the_options() -> None:
    from analysis.curation_checks import audit_counts, chance_pvalue, drop_mask

    # 8 text-only models; items with 2 options (5 right: p = 93/256; 8 right: 1/256) and
    # 4 options (4 right: p = 0.114; 5 right: p = 0.027)
    assert chance_pvalue(np.array([5, 8]), np.array([8, 8]), np.array([2, 2])) == pytest.approx([93 / 256, 1 / 256])
    assert chance_pvalue(np.array([4, 5]), np.array([8, 8]), np.array([4, 4])) == pytest.approx(
        [0.1138, 0.0273], abs=1e-4
    )
    rows = pd.DataFrame(
        {
            "item": np.repeat(["p", "q", "r", "s", "t"], 8),
            "correct": [1] * 5 + [0] * 3 + [1] * 8 + [1] * 4 + [0] * 4 + [1] * 5 + [0] * 3 + [1] * 5 + [0] * 3,
        }
    )
    counts = audit_counts(rows, ["item"])
    options = pd.Series({"p": 2, "q": 2, "r": 4, "s": 4})  # t: unknown, share rule
    chance = drop_mask(counts, options, "chance", 0.5, 0.05)
    assert chance["drop"].to_dict() == {"p": False, "q": True, "r": False, "s": True, "t": True}
    assert chance["rule"].tolist() == ["chance"] * 4 + ["share"]
    share = drop_mask(counts, options, "share", 0.5, 0.05)
    assert share["drop"].to_dict() == {"p": True, "q": True, "r": False, "s": True, "t": True}


def test_nothing_audited_is_said_not_reported_as_recall_zero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # issue 19 item 8: video rows only, controls flagged
    src = write(table()[lambda t: t["modality"] == "video"], tmp_path / "t.csv")
    assert main([str(src), "--out", str(tmp_path / "o"), "--budget", "3"]) == 0
    out = capsys.readouterr().out
    assert "nothing audited (no frame or text rows)" in out and "recall 0.000" not in out
    report = json.loads((tmp_path / "o" / "curation.json").read_text())
    assert report["controls"]["overall"]["recall"] is None
    assert report["controls"]["text"]["note"] == "not audited: no text rows"


def test_warnings_in_the_terminal_and_the_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = write(table(), tmp_path / "t.csv")
    assert main([str(src), "--out", str(tmp_path / "o"), "--budget", "1"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "o" / "curation.json").read_text())
    warned = report["warnings"]
    assert any("only 4 models (fewer than 10)" in w for w in warned)
    assert any(w.startswith("categories with no item kept: ") for w in warned)  # budget 1, two categories
    assert all(f"warning: {w}" in out for w in warned)
    assert "held-out (" in out and "random" in out and "in-sample" in out
    assert set(report["heldout"]) >= {"random", "curated", "curated + gpirt", "random + gpirt"}


def test_the_seed_breaks_ties_not_the_item_ids(items: pd.DataFrame) -> None:
    # every item of one category ties: which are kept depends on the seed, not on the ids
    same = items.assign(category="A")
    same.loc[same["modality"] == "video", "correct"] = np.tile([1, 1, 0, 0], 8)
    picks = {tuple(sorted(curate(same, budget=2, seed=s, folds=0)[0].index.get_level_values("item"))) for s in range(8)}
    assert len(picks) > 1
    report = curate(same, budget=2, seed=0, folds=0)[2]
    assert report["items"]["tied_at_cut"] == 2 and any("chosen at random (seed 0)" in w for w in report["warnings"])


def test_the_reference_alpaca_eval_table_reads_with_its_categories_and_empty_cells() -> None:
    path = ROOT / "analysis" / "reference" / "item_matrices" / "alpaca_eval2.csv.gz"
    frame, _ = read_items([path])
    assert frame["model"].nunique() == 57 and frame["item"].nunique() == 805
    assert int(frame["correct"].isna().sum()) == 10  # the README's 10 empty cells
    assert frame["correct"].between(0, 1).sum() == len(frame) - 10
    assert "all" not in set(frame["category"]) and frame["category"].nunique() > 1


def test_warnings_for_tied_models_and_correlations_far_apart() -> None:
    from analysis.curation_checks import warnings_for

    report = {
        "models": [f"m{i}" for i in range(60)],
        "items": {"tied_at_cut": 0},
        "settings": {"seed": 0},
        "correlation": {"category_mean": {"spearman": 0.70, "pearson": 0.971}},
        "categories": {"A": {"full": 3, "kept": 1}},
        "heldout": {"random": {"tau": 0.8, "items": 5}, "curated": {"tau": 0.7, "items": 5}},
    }
    curated = pd.Series([0.0] * 52 + [0.1 * i for i in range(1, 9)])  # a 52-way tie at 0
    warned = warnings_for(report, curated)
    assert warned == [
        "52 of 60 models have the same score on the curated set: its ranking ties them",
        "in-sample Spearman 0.700 and Pearson 0.971 are far apart: outliers or ties drive one",
        "on held-out models the curated set ranks worse than 5 random items (Kendall tau 0.700 vs 0.800)",
    ]
    assert warnings_for(report | {"heldout": None}, pd.Series(np.linspace(0, 1, 60)))[-1].startswith("in-sample")


@pytest.mark.parametrize("rank", ["anchor", "anchor-irt"])
def test_anchor_points_as_the_curated_set(items: pd.DataFrame, rank: str) -> None:
    kept, audit, report = curate(items, budget=3, rank=rank, audit_rule="share", folds=0)
    assert len(kept) == 3 and not audit.loc[kept.index, "dropped"].any()
    assert kept["score"].sum() == pytest.approx(1.0)  # the 5 items left: cluster shares
    assert report["settings"]["rank"] == rank
