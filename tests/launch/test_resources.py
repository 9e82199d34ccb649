"""The resources planner (src/launch/resources.py) on composed configs, the dry run's plan,
and `hydra/launcher=slurm_auto`'s groups (SLURM's executor stood in for; the real cluster:
tests/launch/test_slurm.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from src.config.compose import CONF_DIR
from src.config.errors import ConfigError
from src.config.resolvers import register
from src.launch.resources import SITE, plan, site_settings, with_plan
from tests.helpers import ROOT

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def composed(*overrides: str, hydra: bool = False) -> Any:
    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra)


def test_qwen05b_pretrained_takes_one_gpu_and_the_gpu_trainer() -> None:
    p = plan(composed("llm=qwen0.5b", "profile=pretrained"), site_settings())
    assert (p.trainer, p.devices, p.nodes, p.accelerator, p.precision) == ("gpu", 1, 1, "gpu", "bf16-mixed")
    assert p.peak_gb < SITE["gpu_memory_gb"] - SITE["headroom_gb"]
    assert p.slurm() == {
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 1,
        "cpus_per_task": 8,
        "mem_gb": 100,
        "timeout_min": p.time_h * 60,
    }
    assert p.overrides() == [
        "trainer=gpu",
        "trainer.accelerator=gpu",
        "trainer.devices=1",
        "trainer.precision=bf16-mixed",
    ]
    assert 1 <= p.time_h <= 72 and p.gpu_hours == p.hours and p.time_h >= min(p.hours, 72)


def test_a_7b_full_fine_tune_is_sharded_with_fsdp_over_the_fewest_gpus_that_hold_it() -> None:
    cfg = composed("llm=qwen2.5-7b", "profile=pretrained")
    p = plan(cfg, site_settings())
    assert p.need_gb > 80  # one GPU cannot hold it
    assert (p.trainer, p.nodes) == ("fsdp", 1) and p.devices in (2, 4, 8)
    assert p.peak_gb <= 76
    # half as many would not fit: the fewest
    from src.launch.resources import per_device_gb
    from src.tools.memory import estimate

    stages = [estimate(cfg, i) for i in range(len(cfg.schedule.stages))]
    assert max(per_device_gb(s, p.devices // 2) for s in stages) > 76
    assert "trainer.num_nodes=1" in p.overrides() and p.gpu_hours == p.devices * p.hours
    # more than a node's GPUs: whole nodes, one task a GPU
    multi = plan(cfg, site_settings(gpus_per_node=2))
    assert (multi.trainer, multi.devices, multi.nodes) == ("fsdp", 2, p.devices // 2)
    assert multi.slurm()["nodes"] == p.devices // 2 and "trainer.num_nodes=2" in multi.overrides()


def test_a_site_too_small_refuses_the_point_with_one_line() -> None:
    with pytest.raises(ConfigError) as e:
        plan(composed("llm=qwen2.5-7b", "profile=pretrained"), site_settings(gpus_per_node=1, max_nodes=1))
    msg = str(e.value)
    assert "\n" not in msg and "llm=qwen2.5-7b" in msg and "needs" in msg and "1 node(s) x 1 x 80" in msg


def test_pins_per_option_and_per_site() -> None:
    # pinned devices beyond what memory needs: data parallel
    p = plan(composed("llm=qwen0.5b", "profile=pretrained", "+llm.resources.devices=2", "+llm.resources.time_h=3"))
    assert (p.trainer, p.devices, p.time_h, p.gpu_hours) == ("ddp", 2, 3, 6)
    # the site's options, by llm option; a CPU site: each device a gloo process, 32-bit
    site = site_settings(
        accelerator="cpu", cpus_per_device=1, mem_gb_per_device=None, options={"qwen4b": {"devices": 2}}
    )
    small, large = plan(composed("llm=qwen0.5b"), site), plan(composed("llm=qwen4b"), site)
    assert (small.trainer, small.devices, small.slurm()["gpus_per_node"]) == ("cpu", 1, None)
    assert (large.trainer, large.devices, large.precision, large.mem_gb) == ("ddp", 2, "32-true", None)
    assert large.overrides() == [
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.num_nodes=1",
    ]
    with pytest.raises(ConfigError, match=r"^llm.resources.gpus is not a resource"):
        plan(composed("llm=qwen0.5b", "+llm.resources.gpus=2"))
    with pytest.raises(ConfigError, match=r"^hydra.launcher.site.gpu_mem is not a site setting"):
        site_settings(gpu_mem=40)


def test_with_plan_replaces_the_points_trainer_and_keeps_the_rest() -> None:
    point = ["llm=qwen4b", "trainer=gpu", "trainer.devices=1", "trainer.gradient_clip_val=0.5"]
    planned = ["trainer=fsdp", "trainer.accelerator=gpu", "trainer.devices=4", "trainer.precision=bf16-mixed"]
    assert with_plan(point, planned) == ["llm=qwen4b", "trainer.gradient_clip_val=0.5", *planned]


def test_the_launcher_config_composes_with_its_site_and_the_local_files(tmp_path: Path) -> None:
    cfg = composed("hydra/launcher=slurm_auto", "hydra.launcher.site.gpu_memory_gb=141", hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.apollo_launcher.slurm_auto.SlurmAutoLauncher"
    assert site_settings(cfg)["gpu_memory_gb"] == 141 and site_settings(cfg)["gpus_per_node"] == 8
    # a site's conf/local/site.yaml and slurm.yaml (here on another search path: conf/local is the user's)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "site.yaml").write_text("gpus_per_node: 4\noptions: {qwen7b: {devices: 8}}\n")
    (tmp_path / "local" / "slurm.yaml").write_text("partition: gpu\n")
    cfg = composed("hydra/launcher=slurm_auto", f"hydra.searchpath=[file://{tmp_path}]", hydra=True)
    if not (CONF_DIR / "local" / "site.yaml").is_file():
        assert site_settings(cfg)["gpus_per_node"] == 4 and site_settings(cfg)["options"] == {"qwen7b": {"devices": 8}}
    if not (CONF_DIR / "local" / "slurm.yaml").is_file():
        assert cfg.hydra.launcher.partition == "gpu"


def test_dry_run_with_resources_plans_for_any_launcher_on_the_default_site(capsys: pytest.CaptureFixture[str]) -> None:
    from src.launch.grid import dry_run

    assert dry_run(["llm=qwen0.5b", "profile=pretrained", "seed=0,1"], brief=True, resources=True) == 0
    out = capsys.readouterr().out
    p = plan(composed("llm=qwen0.5b", "profile=pretrained"))
    assert out.count(f"   resources: {p.describe()}") == 2 and "(hydra/launcher=basic)" in out
    assert "1 group(s), one SLURM array each:" in out and f"total: {2 * p.gpu_hours:.0f} GPU-hours" in out


def test_dry_run_prints_each_points_resources_and_the_gpu_hours_by_group(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.sweep",
            "dry-run",
            "--brief",
            "hydra/launcher=slurm_auto",
            "profile=pretrained",
            "llm=qwen0.5b,qwen2.5-7b",
            "sweep=plan",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "APOLLO_OUTPUT_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[0] == f"sweep plan: 2 runs into {tmp_path}/sweeps/plan (hydra/launcher=slurm_auto)"
    small, large = (plan(composed("llm=" + m, "profile=pretrained")) for m in ("qwen0.5b", "qwen2.5-7b"))
    assert f"   resources: {small.describe()}" in out and f"   resources: {large.describe()}" in out
    assert f"   trainer: {' '.join(large.overrides())}" in out
    assert "2 group(s), one SLURM array each:" in out
    assert f"total: {small.gpu_hours + large.gpu_hours:.0f} GPU-hours" in out
    # a point no allocation holds: one line, exit 2, nothing else
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.sweep",
            "dry-run",
            "hydra/launcher=slurm_auto",
            "hydra.launcher.site.gpus_per_node=1",
            "hydra.launcher.site.max_nodes=1",
            "profile=pretrained",
            "llm=qwen0.5b,qwen2.5-7b",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "APOLLO_OUTPUT_DIR": str(tmp_path)},
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: profile=pretrained llm=qwen2.5-7b needs") and proc.stderr.count("\n") == 1


def test_slurm_auto_submits_one_array_per_group_with_its_own_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    import submitit
    from hydra.core.utils import JobReturn

    from hydra_plugins.apollo_launcher.slurm_auto import SlurmAutoLauncher

    submitted: list[tuple[dict[str, Any], Any, list[list[str]]]] = []

    class Job:
        def results(self) -> list[Any]:
            return [JobReturn()]

    class Executor:
        def __init__(self, **kw: Any) -> None:
            self.params: dict[str, Any] = {}

        def update_parameters(self, **kw: Any) -> None:
            self.params.update(kw)

        def map_array(self, fn: Any, overrides: list[list[str]], *rest: Any) -> list[Job]:
            submitted.append((self.params, fn, list(overrides)))
            return [Job() for _ in overrides]

    monkeypatch.setattr(submitit, "AutoExecutor", Executor)
    cfg = composed("hydra/launcher=slurm_auto", "hydra.sweep.dir=/tmp/none", hydra=True)

    class Loader:  # what Hydra's config loader gives the launcher: each point composed
        def load_sweep_config(self, master: Any, overrides: list[str]) -> Any:
            return composed(*overrides)

    launcher = SlurmAutoLauncher(
        site={
            "accelerator": "cpu",
            "cpus_per_device": 1,
            "mem_gb_per_device": None,
            "options": {"qwen4b": {"devices": 2}},
        },
        submitit_folder="/tmp/none/.submitit/%j",
        max_num_timeout=3,
        partition="debug",
    )
    launcher.config, launcher.hydra_context = cfg, type("Ctx", (), {"config_loader": Loader()})()
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: None)
    points = [["llm=qwen0.5b", "seed=0"], ["llm=qwen4b", "seed=0"], ["llm=qwen0.5b", "seed=1"]]
    returns = launcher.launch(points, initial_job_idx=0)
    assert len(returns) == 3 and len(submitted) == 2
    (small, run_small, pts_small), (large, run_large, pts_large) = submitted
    assert pts_small == [points[0], points[2]] and pts_large == [points[1]]  # the points keep their overrides
    assert (small["tasks_per_node"], small["cpus_per_task"], small["slurm_partition"]) == (1, 1, "debug")
    assert (large["tasks_per_node"], large["nodes"], large["cpus_per_task"]) == (2, 1, 1)
    assert small["gpus_per_node"] is None and large["gpus_per_node"] is None
    assert run_small.planned[:3] == ["trainer=cpu", "trainer.accelerator=cpu", "trainer.devices=1"]
    assert run_large.planned[:3] == ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    assert launcher.planned == []  # the groups' copies carry the plans
