"""Every sweep file's grid composes and validates; a bad choice in a sweep file fails first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.config.compose import sweep_file_overrides
from src.config.validate import check_launcher, check_overrides, validate
from src.launch.grid import compose_points
from tests.helpers import ROOT, compose_sweep, grid, run_train

SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def test_there_are_sweep_files() -> None:
    assert SWEEPS and (ROOT / "sweeps" / "demo.yaml") in SWEEPS


@pytest.mark.parametrize("sweep", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_grid_point_composes_and_validates(sweep: Path) -> None:
    # what `python -m src.sweep dry-run --config-dir sweeps --config-name <sweep>` composes
    launch, points = compose_points(["--config-dir", str(sweep.parent), "--config-name", sweep.stem])
    assert len(points) >= 2, f"{sweep.name} sweeps nothing"
    assert [p for p, _, _ in points] == grid(sweep)
    assert len({d for _, _, d in points}) == len(points)  # a directory per grid point
    check_launcher(launch)
    for point, cfg, _ in points:
        check_overrides(point)
        validate(cfg)
        for o in point:
            group, option = o.split("=", 1)
            assert cfg.hydra.runtime.choices.get(group, option) == option


def test_demo_sweep_is_the_readme_grid() -> None:
    assert {tuple(p) for p in grid(ROOT / "sweeps" / "demo.yaml")} == {
        (f"encoder={e}", f"llm={m}") for e in ("siglip", "dinov2") for m in ("qwen0.5b", "qwen4b")
    }


def test_a_bad_choice_in_a_sweep_file_fails_first(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "defaults:\n  - train\n  - _self_\nhydra:\n  sweeper:\n    params:\n      encoder: siglip,sigclip\n"
    )
    proc = run_train(
        ["--config-dir", str(tmp_path), "--config-name", "bad"],
        tmp_path / "data",
        tmp_path / "out",
        multirun=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(n in errors[0] for n in ("encoder", "sigclip", "dinov2", "siglip")), errors[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


def test_a_missing_sweep_file_is_one_line(tmp_path: Path) -> None:
    proc = run_train(
        ["--config-dir", str(tmp_path), "--config-name", "nope"],
        tmp_path / "data",
        tmp_path / "out",
        multirun=True,
        timeout=120,
    )
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "nope" in errors[0] and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("sweep", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_name_is_the_file_name(sweep: Path) -> None:
    # `make sweep SWEEP=<file>` collects outputs/sweeps/<file>/
    assert compose_sweep(sweep, []).sweep == sweep.stem


@pytest.mark.slow
def test_a_sweep_file_runs_its_grid(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text("""\
defaults:
  - train
  - override logger: none
  - _self_
sweep: tiny
profile:
  epochs: 1
data:
  synthetic: {n_train: 24, n_eval: 12, n_image: 4, n_multi_image: 4, n_text: 4,
              min_duration: 2, max_duration: 3}
hydra:
  sweeper:
    params:
      encoder: siglip,dinov2
""")
    proc = run_train(
        ["--config-dir", str(tmp_path), "--config-name", "tiny"], data_dir, tmp_path / "out", multirun=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = [json.loads(p.read_text()) for p in (tmp_path / "out" / "sweeps" / "tiny").rglob("result.json")]
    assert sorted(r["choices"]["encoder"] for r in recs) == ["dinov2", "siglip"]
    assert all(r["status"] == "ok" and r["sweep"] == "tiny" and r["choices"]["logger"] == "none" for r in recs)


def test_a_config_name_is_found_where_hydra_looks(tmp_path: Path) -> None:
    # --config-dir first, then conf/: train.yaml is not in tmp_path, but Hydra finds it
    assert sweep_file_overrides(["--config-dir", str(tmp_path), "--config-name", "train"]) == []
