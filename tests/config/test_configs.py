"""Every option of every config group composes and builds, and runs what it builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.config.compose import CONF_DIR, config_groups, group_options
from src.config.container import to_dict
from src.models.llm import build_llm, build_word_tokenizer
from src.models.shrink import shrink_arch
from tests.helpers import cfg_with

ALL = [(g, o) for g in config_groups() for o in group_options(g)]


def test_groups_the_issue_asks_for_exist() -> None:
    needed = {"encoder", "llm", "resampler", "sampler", "data", "schedule", "trainer", "logger", "profile"}
    assert needed <= set(config_groups())
    assert {"siglip", "dinov2"} <= set(group_options("encoder"))
    assert {"qwen0.5b", "qwen1.5b", "qwen4b", "qwen7b", "qwen2.5-1.5b", "qwen2.5-3b",
            "qwen2.5-7b"} <= set(group_options("llm"))


@pytest.mark.parametrize(("group", "option"), ALL)
def test_every_option_composes(group: str, option: str) -> None:
    cfg = cfg_with(f"{group}={option}")
    OmegaConf.to_container(cfg[group], resolve=True)  # every interpolation resolves


@pytest.mark.parametrize("option", group_options("encoder"))
def test_encoder_builds_and_encodes(option: str) -> None:
    enc = instantiate(cfg_with(f"encoder={option}").encoder)
    frames = torch.randint(0, 255, (3, enc.frames_per_clip, 64, 64, 3), dtype=torch.uint8)
    grid = enc.encode(frames)
    assert grid.shape == (3, *enc.grid_shape(enc.frames_per_clip), enc.embed_dim)
    assert torch.isfinite(grid).all()


@pytest.mark.parametrize("option", group_options("llm"))
def test_llm_shrinks_validly_and_runs(option: str) -> None:
    cfg = cfg_with(f"llm={option}")
    tok = build_word_tokenizer(["a tiny corpus of words"])
    llm = build_llm(cfg.llm, cfg.profile, vocab_size=len(tok))
    x = torch.randn(2, 5, llm.config.hidden_size)
    out = llm(inputs_embeds=x).logits
    assert out.shape == (2, 5, len(tok))


def test_tiny_llm_family_keeps_its_order_of_sizes() -> None:
    from src.tools.sizes import TINY, llm_params

    names = ["qwen0.5b", "qwen1.5b", "qwen4b", "qwen7b"]
    tiny = [llm_params(n, TINY, vocab_size=64) for n in names]
    assert tiny == sorted(tiny) and tiny[-1] > 10 * tiny[0]


@pytest.mark.parametrize(("projector", "resampler"),
                         [(p, r) for p in group_options("projector") for r in group_options("resampler")])
def test_connector_shapes_and_backward(projector: str, resampler: str) -> None:
    from src.models.connectors.connector import Connector

    cfg = cfg_with(f"projector={projector}", f"resampler={resampler}")
    conn = Connector(instantiate(cfg.projector)(input_dim=24, output_dim=32), instantiate(cfg.resampler)(dim=32))
    grid = torch.randn(5, 2, 4, 4, 24, requires_grad=True)
    out = conn(grid)
    assert out.shape == (5, cfg.resampler.tokens_per_clip, 32)
    out.sum().backward()
    assert grid.grad is not None and grid.grad.abs().sum() > 0


@pytest.mark.parametrize("option", group_options("sampler"))
def test_sampler_builds_and_samples(option: str) -> None:
    sampler = instantiate(cfg_with(f"sampler={option}").sampler)
    plan = sampler(num_frames=90, native_fps=30.0)
    assert plan.indices.shape[1] == 1 and (plan.indices < 90).all()


# FSDP needs GPUs: tests/run/test_trainers.py builds its strategy
@pytest.mark.parametrize("option", [o for o in group_options("trainer") if o != "fsdp"])
def test_trainer_builds(option: str) -> None:
    cfg = cfg_with(f"trainer={option}")
    # a GPU trainer cannot start on a CPU machine: build it with the CPU accelerator
    trainer = instantiate(cfg.trainer, accelerator="cpu", logger=False, max_epochs=1)
    assert trainer.max_epochs == 1


@pytest.mark.parametrize("option", group_options("logger"))
def test_logger_builds(option: str, tmp_path: Path) -> None:
    from src.run.loggers import build_logger

    cfg = cfg_with(f"logger={option}")
    OmegaConf.set_struct(cfg, False)
    cfg.paths.data_dir = str(tmp_path)
    logger = build_logger(cfg, tmp_path, "run", {"encoder": "siglip"})
    if option == "none":
        assert logger is False
    else:
        logger.log_metrics({"x": 1.0}, step=0)
        if option == "wandb":
            import wandb

            assert logger.experiment.group == "default"
            wandb.finish()
        assert any(tmp_path.iterdir())


@pytest.mark.parametrize("option", group_options("schedule"))
def test_schedule_stages_are_valid(option: str) -> None:
    from src.config.validate import validate

    validate(cfg_with(f"schedule={option}"))


@pytest.mark.parametrize("option", group_options("profile"))
def test_profile_shrink_rule(option: str) -> None:
    cfg = cfg_with(f"profile={option}")
    arch = to_dict(cfg.llm.arch)
    small = shrink_arch(arch, cfg.profile)
    if option == "pretrained":
        assert small == arch
    else:
        assert small["hidden_size"] == arch["hidden_size"] // 16
        assert small["num_hidden_layers"] == arch["num_hidden_layers"] // 4


def test_data_option_builds(data_dir: Path) -> None:
    cfg = cfg_with("data.synthetic.n_train=10", "data.synthetic.n_eval=5", "data.synthetic.n_image=2",
                   "data.synthetic.n_multi_image=2", "data.synthetic.n_text=2", f"paths.data_dir={data_dir}")
    dm = instantiate(cfg.data)
    dm.prepare_data()
    from src.data.manifest import modality_counts

    assert modality_counts(dm.train_samples) == {"text": 2, "image": 2, "multi_image": 2, "video": 10}
    assert len(dm.eval_samples) == 5


def test_model_zoo_options_exist() -> None:
    assert set(group_options("connector")) == {"parts", "conv_avgpool", "mlp_avgpool", "perceiver"}
    assert set(group_options("integration")) == {"none", "tokens", "timestamps", "both"}
    assert {"linear", "mlp2x_gelu", "conv2"} <= set(group_options("projector"))
    assert {"perceiver", "avgpool", "attnpool"} <= set(group_options("resampler"))
    assert {"qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b"} <= set(group_options("llm"))
    assert cfg_with().integration.name == "none" and cfg_with().connector.name == "parts"  # today's defaults


@pytest.mark.parametrize("option", group_options("integration"))
def test_integration_builds_and_lays_out_a_clip(option: str) -> None:
    from src.models.integration import CLIP, timestamp_corpus

    cfg = cfg_with(f"integration={option}")
    tok = build_word_tokenizer(["a corpus", *timestamp_corpus(cfg.integration.timestamps)])
    integ = instantiate(cfg.integration)(dim=8, tokenizer=tok)
    ids = integ.layout(1, 2, torch.tensor([[0.0, 1.0]]))
    assert ids.count(CLIP) == 2 and tok.unk_token_id not in ids
    assert len(ids) == 2 + 2 * cfg.integration.start_end_tokens + (10 if cfg.integration.timestamps else 0)
