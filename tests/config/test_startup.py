"""Start-up checks that used to come late or not at all (issue 19, item 6): each one is one
line before any data or model loads, and the legitimate uses stay open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.config.checks import check_machine
from src.config.compose import config_groups
from src.config.errors import ConfigError
from src.config.keys import check_added_keys
from src.config.validate import check_overrides, validate
from tests.helpers import ROOT, TINY_DATA, cfg_with, records, train_env


def added_keys(*overrides: str) -> None:
    """The `+key` check of `python -m src.train`, on the config composed with `overrides`."""
    check_added_keys(cfg_with(*overrides), overrides, groups=config_groups())


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["+foo=1"], "+foo=1: the config has no key 'foo' that anything reads; valid: encoder, llm,"),
        (["+sampler.fsp=2"], "sampler (src.data.samplers.FpsSampler) has no key 'fsp'"),
        (["+sampler.fsp=2"], "did you mean sampler.fps=2?"),
        (["+checkpoint.every_step=5"], "did you mean checkpoint.every_steps=5?"),
        (["+trainer.limt_train_batches=2"], "did you mean +trainer.limit_train_batches=2?"),  # not shipped: '+'
        (["+eval.modality=[text]"], "eval has no key 'modality'"),
        (["+cache.dir2=x"], "cache has no key 'dir2'"),
    ],
)
def test_a_key_nothing_reads_is_refused(overrides: list[str], says: str) -> None:
    with pytest.raises(ConfigError) as e:
        added_keys(*overrides)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["+trainer.limit_train_batches=2", "+trainer.limit_test_batches=1"],  # benchmarks/startup.py
        ["+trainer.max_steps=3"],
        ["trainer=gpu", "+trainer.num_nodes=2"],
        ["optimizer._target_=torch.optim.SGD", "~optimizer.betas", "~optimizer.eps", "+optimizer.momentum=0.9"],
        ["+perf.peak_tflops=300"],  # docs/training.md
        ["+llm.resources.devices=2", "+llm.resources.time_h=3"],  # src/launch/resources.py checks them
        ["+mixture.shares.audio=0.0"],  # src/data/mixture.py refuses the modality itself
        ["+llm.arch.attention_dropout=0.1"],  # a transformers config's own
        ["+hf_token=hf_secret"],  # a secret: redacted, never recorded
    ],
)
def test_keys_the_code_reads_may_be_added(overrides: list[str]) -> None:
    added_keys(*overrides)


def test_hydra_keys_are_hydras_own() -> None:
    check_added_keys(cfg_with(), ["+hydra.launcher.site.options.qwen4b.devices=2"], groups=config_groups())


def test_a_dry_run_refuses_an_added_key_too() -> None:
    # src.sweep dry-run validates configs composed with their `hydra` node, overrides included
    with pytest.raises(ConfigError, match=r"\+foo=1: the config has no key 'foo'"):
        validate(cfg_with("+foo=1", hydra=True))
    validate(cfg_with("+trainer.max_steps=3", hydra=True))


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            ["encoder=videomae", "sampler=uniform"],
            "sampler.num_frames=8 is invalid with encoder=videomae, whose clips have 16 frames "
            "(encoder.frames_per_clip=16); valid: a multiple of 16 (sampler.num_frames=16, 32, 48 ...), or sampler=fps",
        ),
        (["encoder=videomae+siglip", "sampler=uniform", "sampler.num_frames=24"], "sampler.num_frames=24 is invalid"),
        (
            ["data.synthetic.min_duration=5", "data.synthetic.max_duration=2"],
            "data.synthetic.min_duration=5 is invalid with data.synthetic.max_duration=2; "
            "valid: 0 < min_duration <= max_duration (seconds)",
        ),
        (["data.synthetic.min_duration=0"], "data.synthetic.min_duration=0 is invalid"),
        (["+data.synthetic.n_trian=5"], "data.synthetic.n_trian is not a field of the synthetic benchmark"),
        (["+data.synthetic.n_trian=5"], "did you mean data.synthetic.n_train?"),
        (["data.synthetic.size=40"], "data.synthetic is invalid: size must be a multiple of 16"),
    ],
)
def test_a_value_that_fails_when_built_fails_at_start_up(overrides: list[str], says: str) -> None:
    with pytest.raises(ConfigError) as e:
        validate(cfg_with(*overrides))
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["encoder=videomae", "sampler=uniform", "sampler.num_frames=32"],
        ["encoder=siglip", "sampler=uniform"],
        ["encoder=videomae"],  # fps sampling: clips of 16 frames at any rate
        ["+data.synthetic.train_control_share=0.5"],
        ["data=mcq_jsonl", "data.train=a.jsonl", "data.eval=b.jsonl"],  # no synthetic benchmark
    ],
)
def test_valid_choices_pass(overrides: list[str]) -> None:
    validate(cfg_with(*overrides))


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["trainer=gpu"], "trainer=gpu needs a CUDA device and this machine has none"),
        (["trainer=cpu", "trainer.accelerator=cuda"], "needs a CUDA device"),
        (["trainer=fsdp"], "trainer=fsdp: trainer.accelerator=auto finds no CUDA device on this machine"),
        (["trainer=ddp"], "valid: trainer.accelerator=cpu (gloo on the CPU), or trainer=cpu"),
    ],
)
@pytest.mark.usefixtures("no_gpu")
def test_a_gpu_trainer_without_a_gpu_is_refused(overrides: list[str], says: str) -> None:
    cfg = cfg_with(*overrides)
    with pytest.raises(ConfigError) as e:
        check_machine(cfg, overrides[0].split("=")[1])
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer=cpu"],
        ["trainer=fsdp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"],  # tests/run
        ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"],  # tests/launch/test_ddp.py
    ],
)
@pytest.mark.usefixtures("no_gpu")
def test_the_cpu_named_runs_without_a_gpu(overrides: list[str]) -> None:
    check_machine(cfg_with(*overrides), overrides[0].split("=")[1])


def test_a_gpu_trainer_with_a_gpu_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for trainer in ("gpu", "fsdp", "ddp"):
        check_machine(cfg_with(f"trainer={trainer}"), trainer)


@pytest.mark.parametrize(
    ("arg", "says"),
    [
        ("encoder=siglip,", "encoder=siglip,: a value of the comma-separated list is empty; valid: values"),
        ("encoder=,siglip,dinov2", "e.g. encoder=siglip,dinov2"),
        ("llm.lr=[1,2", "llm.lr=[1,2: '[' and ']' do not pair up"),
        ("sweep='a", "sweep='a: an unclosed '"),
    ],
)
def test_an_override_that_does_not_parse_is_named_with_what_is_wrong(arg: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_overrides(["-m", "seed=1", arg])
    assert str(e.value).startswith(arg) and says in str(e.value)
    assert "\n" not in str(e.value) and "mismatched input" not in str(e.value)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["+foo=1"], "error: +foo=1: the config has no key 'foo'"),
        (["+sampler.fsp=2"], "did you mean sampler.fps=2?"),
        (["trainer=gpu"], "error: trainer=gpu needs a CUDA device and this machine has none"),
        (["trainer=fsdp"], "error: trainer=fsdp: trainer.accelerator=auto finds no CUDA device"),
        (["-m", "encoder=siglip,"], "error: encoder=siglip,: a value of the comma-separated list is empty"),
    ],
)
def test_src_train_refuses_in_one_line_before_anything_loads(args: list[str], says: str, tmp_path: Path) -> None:
    # CUDA hidden, so that a GPU machine refuses too
    env = train_env(tmp_path / "data", tmp_path / "out", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "src.train", "logger=none", *TINY_DATA, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and says in proc.stderr, proc.stderr
    assert not (tmp_path / "data").exists() and not records(tmp_path / "out")  # nothing generated, nothing ran


@pytest.mark.parametrize(
    "args",
    [["encoder=videomae", "sampler=uniform"], ["data.synthetic.min_duration=5", "data.synthetic.max_duration=2"]],
)
def test_src_train_refuses_an_invalid_combination_before_building(args: list[str], tmp_path: Path) -> None:
    env = train_env(tmp_path / "data", tmp_path / "out")
    cmd = [sys.executable, "-m", "src.train", "logger=none", *TINY_DATA, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "is invalid with" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "data").exists()
    [rec] = records(tmp_path / "out")  # the run's record says why, and nothing was built
    assert rec["reason"].startswith("invalid config") and rec["design"] == {}
