"""An lmms-eval task from a multiple-choice eval manifest (the synthetic benchmark's eval split, or any
`data=mcq_jsonl` file): `python -m src.lmms.task EVAL.jsonl OUT_DIR [--name NAME]`.

Writes, in OUT_DIR: `NAME.jsonl` (the items, video paths absolute), `NAME.yaml` and
`NAME_no_visual.yaml` (the same items without their video: the text modality of the audit),
and `NAME_utils.py` (the task's functions, which are this module's). Run it offline with

    python -m lmms_eval --model apollo_lab --model_args 'run="RUN_DIR"' --include_path OUT_DIR \\
        --tasks NAME,NAME_no_visual --log_samples --output_path OUT

The prompt is the one the runs were trained on (src/data/manifest.py's `mcq_prompt`): the
model puts the `<video>` line in front. Scored by `generate_until` (lmms-eval 0.7.3's
`multiple_choice` tasks fail in `process_results`): the first option letter in the answer.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from src.data.dataset import shown_as
from src.data.manifest import LETTERS, read_manifest

_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: generate_until
doc_to_visual: !function {utils}.{visual}
doc_to_text: !function {utils}.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 8
  until: ["\\n"]
  do_sample: false
  temperature: 0
process_results: !function {utils}.process_results
metric_list:
  - metric: accuracy
    aggregation: !function {utils}.mean_correct
    higher_is_better: true
metadata:
  version: 1.0
"""


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    return [doc["video"]]


def doc_to_no_visual(doc: dict[str, Any]) -> list[str]:
    return []


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: Any = None) -> str:
    return str(doc["prompt"])


def answer_letter(response: str, n_options: int) -> str:
    """The option letter an answer names: the first standalone one of the item's letters, "" if none."""
    letters = LETTERS[:n_options]
    m = re.search(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", response or "")
    return m.group(1) if m else ""


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict[str, Any]]:
    """The item's record, as lmms-eval's video tasks keep theirs (Video-MME's `question_id`,
    `category`, `pred_answer`): the per-sample log holds it, analysis/lmms_logs.py reads it."""
    chosen = answer_letter(results[0], len(doc["options"]))
    return {
        "accuracy": {
            "item": doc["id"],
            "benchmark": doc["benchmark"],
            "category": doc["category"],
            "chosen": chosen,
            "answer": doc["answer"],
            "correct": int(chosen == doc["answer"]),
        }
    }


def mean_correct(results: list[dict[str, Any]]) -> float:
    return sum(r["correct"] for r in results) / max(1, len(results))


def write_task(manifest: str | Path, out_dir: str | Path, name: str = "apollo_synthetic") -> list[str]:
    """Write the task files of `manifest` into `out_dir`; returns the two task names."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    samples, _ = read_manifest(manifest, mcq_only=True)
    items = out / f"{name}.jsonl"
    with items.open("w") as f:
        for s in samples:
            row = {
                "id": s.id,
                "video": s.media[0][1],
                "prompt": shown_as(s, "text").turns[0][1],
                "options": s.options,
                "answer": s.answer,
                "category": s.category,
                "benchmark": s.benchmark,
            }
            f.write(json.dumps(row) + "\n")
    utils = f"{name}_utils"
    (out / f"{utils}.py").write_text(
        "from src.lmms.task import doc_to_no_visual, doc_to_text, doc_to_visual, mean_correct, process_results\n\n"
        '__all__ = ["doc_to_no_visual", "doc_to_text", "doc_to_visual", "mean_correct", "process_results"]\n'
    )
    tasks = [name, f"{name}_no_visual"]
    for task, visual in zip(tasks, ["doc_to_visual", "doc_to_no_visual"]):
        text = _YAML.format(task=task, items=json.dumps(str(items)), utils=utils, visual=visual)
        (out / f"{task}.yaml").write_text(text)
    return tasks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.lmms.task", description=__doc__.split("\n")[0])
    p.add_argument("manifest", help="a multiple-choice eval manifest (JSONL), e.g. DATA/synthetic/v3-*/eval.jsonl")
    p.add_argument("out_dir", help="folder for the task files (pass it to lmms-eval's --include_path)")
    p.add_argument("--name", default="apollo_synthetic", help="the task's name (default: apollo_synthetic)")
    ns = p.parse_args(argv)
    from src.data.errors import ManifestError

    try:
        tasks = write_task(ns.manifest, ns.out_dir, ns.name)
    except ManifestError as e:
        print(f"error: {e}")
        return 2
    print(f"tasks {', '.join(tasks)} in {ns.out_dir}: --include_path {ns.out_dir} --tasks {','.join(tasks)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
