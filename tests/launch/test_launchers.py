"""Launchers (conf/hydra/launcher): every preset composes, matches the trainer or fails in one
line, reads the site's local config; the local launcher keeps N runs at once; Lightning's
SLURM requeue is off."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment
from omegaconf import DictConfig

from hydra_plugins.apollo_launcher.local_parallel import slot_cpus, slot_gpus
from src.config.compose import CONF_DIR, config_groups
from src.config.errors import ConfigError
from src.config.validate import check_launcher
from src.launch.cluster import cluster_environment
from tests.helpers import ROOT, cfg_with, run_train

PRESETS = sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml"))


def composed(*overrides: str) -> DictConfig:
    return cfg_with(*overrides, hydra=True)


def fits(preset: str) -> list[str]:
    """The trainer a preset is meant for, read from the preset: one process per GPU it
    reserves (or per task, on CPUs), on as many nodes."""
    launcher = composed(f"hydra/launcher={preset}").hydra.launcher
    tasks, nodes = launcher.get("tasks_per_node") or 1, launcher.get("nodes") or 1
    gpus = launcher.get("gpus_per_node") or 0
    if tasks == 1 and nodes == 1:
        return ["trainer=gpu" if gpus else "trainer=cpu"]
    return [
        "trainer=ddp",
        f"trainer.accelerator={'gpu' if gpus else 'cpu'}",
        f"trainer.devices={tasks}",
        f"trainer.num_nodes={nodes}",
    ]


def test_the_presets_the_issue_asks_for_exist() -> None:
    assert {"local", "slurm_cpu", "slurm_1gpu", "slurm_8gpu"} <= set(PRESETS)  # more may be added
    assert fits("slurm_8gpu") == ["trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=8", "trainer.num_nodes=1"]
    assert fits("slurm_1gpu") == ["trainer=gpu"] and fits("slurm_cpu") == fits("local") == ["trainer=cpu"]
    assert "hydra" not in config_groups() and "local" not in config_groups()


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_fits_its_trainer(preset: str) -> None:
    cfg = composed(f"hydra/launcher={preset}", *fits(preset))
    check_launcher(cfg)
    launcher = cfg.hydra.launcher
    if preset == "slurm_auto":  # its allocations and trainer come per group from the plan
        from hydra.utils import get_class

        # by name: Hydra's plugin scan may import submitit's launcher module a second time
        assert "SlurmLauncher" in [c.__name__ for c in get_class(launcher._target_).__mro__]
        assert launcher.max_num_timeout > 0 and "%j" in launcher.submitit_folder
        assert launcher.site.gpu_memory_gb > 0
        return
    if preset.startswith("slurm_"):
        assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
        assert launcher.tasks_per_node == cfg.trainer.devices
        assert (launcher.gpus_per_node or 0) == (cfg.trainer.devices if cfg.trainer.accelerator == "gpu" else 0)
        assert launcher.max_num_timeout > 0  # a timed-out run is requeued, and resumes
        assert ".submitit/" in launcher.submitit_folder and "%j" in launcher.submitit_folder


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["hydra/launcher=slurm_8gpu", "trainer=gpu"], ["trainer.devices=1", "tasks_per_node=8", "slurm_8gpu"]),
        (["hydra/launcher=slurm_1gpu", "trainer=cpu"], ["gpus_per_node=1", "trainer.accelerator=cpu", "slurm_cpu"]),
        (
            ["hydra/launcher=slurm_1gpu", "trainer=gpu", "hydra.launcher.gpus_per_node=2"],
            ["gpus_per_node=2", "tasks_per_node=1"],
        ),
        (
            ["hydra/launcher=slurm_cpu", "trainer=ddp", "trainer.accelerator=cpu"],
            ["trainer.devices=2", "tasks_per_node=1"],
        ),
        (
            ["hydra/launcher=slurm_8gpu", "trainer=gpu", "trainer.devices=8", "+trainer.num_nodes=2"],
            ["trainer.num_nodes=2", "nodes=1"],
        ),
        (["hydra/launcher=local", "trainer=ddp"], ["trainer.devices=2", "hydra/launcher=local", "basic"]),
    ],
)
def test_a_launcher_that_does_not_fit_the_trainer_is_one_line(overrides: list[str], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        check_launcher(composed(*overrides))
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in needles), str(e.value)


def test_the_mismatch_stops_the_command_before_anything_runs(tmp_path: Path) -> None:
    proc = run_train(
        ["hydra/launcher=slurm_8gpu", "trainer=gpu", "encoder=siglip,dinov2"],
        tmp_path / "data",
        tmp_path / "out",
        multirun=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "tasks_per_node=8" in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_the_site_settings_come_from_the_local_config(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "slurm.yaml").write_text(
        "partition: gpu-a100\naccount: vlm-study\nmem_gb: 200\n"
        "setup: [module load cuda/12.4, export NCCL_DEBUG=WARN]\n"
        "additional_parameters: {qos: high, mail-type: FAIL}\n"
    )
    search = f"hydra.searchpath=[file://{tmp_path}]"
    for preset in ("slurm_1gpu", "slurm_8gpu"):
        launcher = composed(search, f"hydra/launcher={preset}", *fits(preset)).hydra.launcher
        assert (launcher.partition, launcher.account, launcher.mem_gb) == ("gpu-a100", "vlm-study", 200)
        assert list(launcher.setup) == ["module load cuda/12.4", "export NCCL_DEBUG=WARN"]
        assert dict(launcher.additional_parameters) == {"qos": "high", "mail-type": "FAIL"}
        assert launcher.gpus_per_node == launcher.tasks_per_node  # the preset's own keys stay
    # the command line wins over the site's file; the test cluster's preset ignores it
    assert (
        composed(
            search, "hydra/launcher=slurm_1gpu", "trainer=gpu", "hydra.launcher.partition=debug"
        ).hydra.launcher.partition
        == "debug"
    )
    cpu = composed(search, "hydra/launcher=slurm_cpu").hydra.launcher
    assert cpu.partition == "debug" and cpu.account is None and not cpu.setup
    # without the file, the presets compose all the same
    assert composed("hydra/launcher=slurm_1gpu", "trainer=gpu").hydra.launcher.partition is None


def test_lightning_requeue_is_off_in_a_slurm_job(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert type(cluster_environment()) is LightningEnvironment
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    monkeypatch.setenv("SLURM_NODELIST", "node1")
    for var in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID"):
        monkeypatch.setenv(var, "0" if var != "SLURM_JOB_ID" else "17")
    for trainer in ("cpu", "ddp"):
        tr = instantiate(composed(f"trainer={trainer}", "trainer.devices=1").trainer, logger=False)
        env = tr._accelerator_connector.cluster_environment
        assert isinstance(env, SLURMEnvironment) and env.auto_requeue is False
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")  # an interactive allocation is not a job
    assert type(cluster_environment()) is LightningEnvironment


def test_slot_gpus_are_disjoint() -> None:
    assert slot_gpus(0, None) == () and slot_gpus(3, 0) == ()
    assert [slot_gpus(i, 2) for i in range(3)] == [(0, 1), (2, 3), (4, 5)]


def test_slot_cpus_share_the_machine_out() -> None:
    four = [0, 1, 2, 3]
    assert [slot_cpus(i, 2, "auto", four) for i in range(2)] == [(0, 1), (2, 3)]
    assert [slot_cpus(i, 3, None, [0, 1]) for i in range(3)] == [(0,), (1,), (0,)]  # more runs than CPUs share
    assert slot_cpus(1, 2, 1, [4, 6, 8]) == (6,) and slot_cpus(0, 1, 9, [0, 1]) == (0, 1)
    with pytest.raises(ConfigError, match="cpus_per_run=0 is invalid"):
        slot_cpus(0, 2, 0, four)


@pytest.mark.parametrize(
    ("setting", "needle"),
    [("cpus_per_run=0", "cpus_per_run=0 is invalid"), ("order=biggest", "order='biggest' is invalid")],
)
def test_a_bad_local_launcher_setting_is_one_line(tmp_path: Path, setting: str, needle: str) -> None:
    cmd = [sys.executable, "-m", "tests.launch.launcher_app", "-m", "job=0,1", f"out={tmp_path}"]
    proc = subprocess.run([*cmd, f"hydra.launcher.{setting}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    [error] = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert needle in error
    assert not list(tmp_path.glob("*.json"))  # no run started


def test_the_local_launcher_runs_n_at_once_each_in_its_own_process(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "tests.launch.launcher_app",
        "-m",
        "job=0,1,2,3,4",
        f"out={tmp_path}",
        "hydra.launcher.parallel=2",
        "hydra.launcher.gpus_per_node=1",
        "sleep=1.5",
    ]
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads((tmp_path / f"{j}.json").read_text()) for j in range(5)]
    assert len({r["pid"] for r in runs} | {os.getpid()}) == 6  # a fresh process per run
    events = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs])
    running, most = 0, 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == 2
    share = max(len(os.sched_getaffinity(0)) // 2, 1)  # each run's CPUs: the machine's / parallel
    for a in runs:  # runs at the same time hold different GPUs (slot 0: GPU 0, slot 1: GPU 1) and CPUs
        assert a["gpus"] in ("0", "1")
        assert len(a["cpus"]) == share and a["threads"] == str(share)
        for b in runs:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["gpus"] != b["gpus"]
                assert len(os.sched_getaffinity(0)) < 2 or not set(a["cpus"]) & set(b["cpus"])
    assert (tmp_path / "sweep" / ".submitit").is_dir()


@pytest.mark.slow
def test_runs_that_fail_in_other_processes_are_named_and_the_sweep_exits_1(tmp_path: Path) -> None:
    # the local launcher's runs, like SLURM's, run in processes of their own; the largest
    # (by training FLOPs) start first, whatever the order on the command line
    proc = run_train(
        [
            "hydra/launcher=local",
            "logger=none",
            "sweep=bad",
            "data=mcq_jsonl",
            "llm=qwen0.5b,qwen4b,qwen1.5b",
            f"data.train={tmp_path}/none.jsonl",
            f"data.eval={tmp_path}/none.jsonl",
        ],
        tmp_path / "data",
        tmp_path / "out",
        multirun=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    [error] = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert error.startswith("error: 3 run(s) failed: ") and error.count("no such manifest file") == 3
    assert all(f"llm={size}" in error for size in ("qwen0.5b", "qwen4b", "qwen1.5b"))
    started = re.findall(r"#(\d) : .*llm=(\S+)", proc.stdout + proc.stderr)
    assert started == [("1", "qwen4b"), ("2", "qwen1.5b"), ("0", "qwen0.5b")]


def test_sigterm_stops_a_local_sweep_after_its_current_runs(tmp_path: Path) -> None:
    import signal
    import time

    cmd = [sys.executable, "-m", "tests.launch.launcher_app", "-m", "job=0,1,2,3", f"out={tmp_path}"]
    cmd += ["hydra.launcher.parallel=1", "sleep=3"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "sweep" / "0" / ".hydra").is_dir() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: SIGTERM: sweep stopped; 1 run(s) stopped after a checkpoint, 3 not started")
    assert f"python -m src.sweep status {tmp_path / 'sweep'}" in line
    assert not any((tmp_path / "sweep" / str(j)).exists() for j in (1, 2, 3))  # none started after the signal


def test_a_local_job_controller_that_starts_first_makes_its_jobs_folder(tmp_path: Path) -> None:
    """The state of the race that failed a CI run: the controller starts before the submitting
    process has made `.submitit/<job id>/`; submitit's own controller then cannot open its logs."""
    folder = tmp_path / ".submitit" / "%j"
    env = {
        **os.environ,
        "SUBMITIT_LOCAL_NTASKS": "1",
        "SUBMITIT_LOCAL_COMMAND": f"{sys.executable} -c \"print('task ran')\"",
        "SUBMITIT_LOCAL_TIMEOUT_S": "60",
        "SUBMITIT_LOCAL_SIGNAL_DELAY_S": "5",
        "SUBMITIT_STDERR_TO_STDOUT": "1",
        "SUBMITIT_LOCAL_WITH_SHELL": "",
    }
    proc = subprocess.Popen([sys.executable, "-m", "src.launch.local_jobs", str(folder)], cwd=ROOT, env=env)
    assert proc.wait(timeout=120) == 0
    log = tmp_path / ".submitit" / str(proc.pid) / f"{proc.pid}_0_log.out"
    assert log.read_text().strip() == "task ran"


def test_the_local_executor_runs_a_function_in_a_job_of_its_own(tmp_path: Path) -> None:
    from src.launch.local_jobs import LocalExecutor

    executor = LocalExecutor(folder=tmp_path / ".submitit" / "%j")
    executor.update_parameters(timeout_min=2, tasks_per_node=1)
    job = executor.submit(divmod, 17, 5)
    assert job.result() == (3, 2)
    assert job.state == "FINISHED" and (tmp_path / ".submitit" / job.job_id / f"{job.job_id}_0_result.pkl").is_file()
