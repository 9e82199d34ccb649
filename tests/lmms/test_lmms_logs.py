"""lmms-eval's per-sample logs read as our item tables (analysis/lmms_logs.py): no lmms-eval needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.collect import main as collect_main
from analysis.items import ItemsError, read_items
from analysis.lmms_logs import read_samples, records


def _log(folder: Path, task: str, lines: list[dict], model_args: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model": "apollo_lab", "model_args": model_args}
    (folder / "20260101_000000_results.json").write_text(json.dumps({"config": config}))
    path = folder / f"20260101_000000_samples_{task}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _videomme(doc_id: int, qid: str, task_type: str, pred: str, answer: str) -> dict:
    """A line as Video-MME's process_results leaves it (lmms-eval 0.7.3 drops the doc)."""
    score = {"question_id": qid, "task_category": task_type, "category": "Knowledge"}
    score |= {"pred_answer": pred, "answer": answer}
    return {"doc_id": doc_id, "target": answer, "filtered_resps": pred, "videomme_perception_score": score}


def test_stock_and_no_visual_tasks_become_the_long_frame(tmp_path: Path) -> None:
    run = "outputs/sweeps/demo/encoder=siglip,llm=qwen4b"
    video = [_videomme(0, "001-1", "OCR Problems", "A", "A"), _videomme(1, "001-2", "Counting Problem", "B", "C")]
    text = [_videomme(0, "001-1", "OCR Problems", "C", "A"), _videomme(1, "001-2", "Counting Problem", "C", "C")]
    _log(tmp_path / "out", "videomme", video, f'run="{run}",answer=letter')
    _log(tmp_path / "out", "videomme_no_visual", text, f'run="{run}",answer=letter')
    frame, _ = read_items([tmp_path / "out"])
    assert set(frame["model"]) == {"encoder=siglip,llm=qwen4b"} and set(frame["benchmark"]) == {"videomme"}
    got = {(r.item, r.modality): (r.category, r.correct) for r in frame.itertuples()}
    assert got == {
        ("001-1", "video"): ("OCR Problems", 1),
        ("001-2", "video"): ("Counting Problem", 0),
        ("001-1", "text"): ("OCR Problems", 0),
        ("001-2", "text"): ("Counting Problem", 1),
    }
    [rec] = records(tmp_path / "out")
    m = rec["metrics"]
    assert m["test/videomme/overall"] == 0.5 and m["test_text/videomme/overall"] == 0.5
    assert m["n/test/videomme/overall"] == 2 and m["se/test/videomme/OCR Problems"] == 0.0
    assert collect_main([str(tmp_path / "out"), "-o", str(tmp_path / "r.csv")]) == 0
    assert "test/videomme/overall" in (tmp_path / "r.csv").read_text().splitlines()[0]


def test_a_published_model_and_lines_without_a_score(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        {"doc_id": 0, "target": "A", "mvbench_accuracy": {"pred_answer": "A", "gt_answer": "A", "score": 1}},
        {"doc_id": 1, "target": "B", "exact_match": False},
        {"doc_id": 2, "target": "B", "submission": {"x": 1}},  # nothing to score: counted, logged
    ]
    path = _log(tmp_path, "mvbench_action_count", lines, "pretrained=lmms-lab/LLaVA-Video-7B-Qwen2,conv=qwen")
    frame = read_samples(path)
    assert list(frame["model"].unique()) == ["lmms-lab/LLaVA-Video-7B-Qwen2"]
    # no ids in the records: the log's doc_id is the item; no category: the task's name
    assert list(frame["item"]) == ["0", "1"] and list(frame["correct"]) == [1.0, 0.0]
    assert set(frame["category"]) == {"mvbench_action_count"}
    assert "1 line(s) skipped" in caplog.text
    empty = _log(tmp_path / "e", "t", [{"doc_id": 0, "submission": {}}], "pretrained=m")
    with pytest.raises(ItemsError, match="no sample with a per-item score"):
        read_items([empty])
