"""The `debug` group: debug=fast (one batch a stage, a few eval items) and debug=overfit (one
batch over and over), as lightning-hydra-template users expect, and the data limits under them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from src.config.compose import run_name_excluded
from src.config.errors import ConfigError
from src.config.resolvers import run_name
from src.config.validate import validate
from tests.helpers import TINY_DATA, cfg_with, records, run_train

SMALL = [
    "data.synthetic.n_train=10",
    "data.synthetic.n_eval=5",
    "data.synthetic.n_image=2",
    "data.synthetic.n_multi_image=2",
    "data.synthetic.n_text=2",
]


def _losses(run_dir: Path) -> list[float]:
    """Every logged train/loss of a `logger=csv` run (debug modes log every step), in order."""
    [metrics] = run_dir.glob("csv/*/metrics.csv")
    return [float(r["train/loss"]) for r in csv.DictReader(metrics.open()) if r.get("train/loss")]


def test_no_debug_by_default_and_each_mode_trains_afresh() -> None:
    assert cfg_with().get("debug") is None and cfg_with().data.train_limit is None
    for mode in ("fast", "overfit"):
        cfg = cfg_with(f"debug={mode}")
        validate(cfg)
        # a check of the code as it is: never skipped for a finished record, nor resumed
        assert cfg.overwrite is True and cfg.checkpoint.resume is False
    assert cfg_with("debug=fast").trainer.max_steps == 1
    assert cfg_with("debug=overfit").data.train_limit == cfg_with().data.batch_size
    assert cfg_with("debug=overfit", "profile.epochs=5").profile.epochs == 5  # the command line wins


@pytest.mark.parametrize("override", ["data.train_limit=0", "data.eval_limit=-1", "data.eval_limit=2.5"])
def test_bad_limits_are_one_line(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=f"^{key}=.* is invalid; valid: an integer > 0, or null$"):
        validate(cfg_with(override))


def test_limits_fix_the_training_samples_and_cut_the_eval_items(data_dir: Path) -> None:
    cfg = cfg_with(*SMALL, f"paths.data_dir={data_dir}", "data.train_limit=3", "data.eval_limit=2")
    dm = instantiate(cfg.data)
    dm.prepare_data()
    for data, pool in (("mixture", [0, 1, 2]), ("video", dm._video_indices()[:3])):
        dm.use_stage(0, data)
        order = dm.train_order()
        epochs = []
        for epoch in range(3):
            order.set_epoch(epoch)
            epochs.append(list(order))
        assert all(sorted(e) == sorted(pool) for e in epochs)  # the same samples every epoch
        assert len({tuple(e) for e in epochs}) > 1  # in a new order
        assert dm.epoch_size_of(data) == 3 and dm.train_batches() == 1
    dm.attach(lambda **_: None, tokenizer=None)
    assert [len(loader.dataset) for loader in dm.test_dataloader()] == [2]
    assert len(dm.eval_samples) == 5  # the tokenizer still reads every item


@pytest.mark.slow
def test_debug_fast_trains_one_batch_a_stage_and_scores_a_few_items(data_dir: Path, tmp_path: Path) -> None:
    proc = run_train(["debug=fast", "schedule=c_cl", "logger=csv", *TINY_DATA], data_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rec] = records(tmp_path)
    assert rec["status"] == "ok" and rec["choices"]["debug"] == "fast"
    # in the run's name (Hydra's override_dirname, less the excluded keys): its own folder,
    # never the real run's, whose finished record would then skip the real run
    named = sorted(o for o in rec["overrides"] if o.split("=")[0] not in run_name_excluded())
    assert "debug=fast" in named and rec["run_name"] == run_name(",".join(named))
    run_dir = Path(rec["run_dir"])
    assert len(_losses(run_dir)) == len(rec["schedule"]["stages"]) == 2  # one step a stage
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["global_step"] == 1 and ckpt["apollo"]["stage"] == 1 and ckpt["apollo"]["stage_done"]
    items = list(csv.DictReader((run_dir / "items.csv").open()))
    assert len(items) == 4 and rec["data"]["eval"]["kept"] == 12  # scored 4 of the 12


@pytest.mark.slow
def test_debug_overfit_drives_the_train_loss_down(data_dir: Path, tmp_path: Path) -> None:
    # the tiny profile's own rates take hundreds of steps (conf/debug/overfit.yaml): faster here
    fast = ["profile.lr.connector=3e-3", "profile.lr.llm=3e-3", "profile.epochs=40", "data.batch_size=4"]
    data = [o for o in TINY_DATA if not o.startswith("profile.epochs=")]
    proc = run_train(["debug=overfit", "logger=csv", *fast, *data], data_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rec] = records(tmp_path)
    assert rec["status"] == "ok"
    assert rec["design"]["training_samples"] == 40 * 4  # one batch of 4 samples, 40 times
    losses = _losses(Path(rec["run_dir"]))
    assert len(losses) == 40
    assert losses[-1] < losses[0] / 4, losses
