"""Every option of every config group composes, passes start-up validation, builds, and runs
what it builds. Option lists come from conf/ (group_options), so a new option file is tested
here with no edit: a resampler or projector through the Connector, and every option of the
groups the model is built from in a tiny model that trains one batch."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.config.compose import CONF_DIR, config_groups, group_options
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.config.validate import validate
from src.data.dataset import SampleDataset, collate
from src.data.manifest import Sample, mcq_prompt
from src.models.connectors.connector import Connector
from src.models.integration import timestamp_corpus
from src.models.llm import build_llm, build_word_tokenizer
from src.models.shrink import shrink_arch
from src.models.videolmm import VideoLMM
from tests.helpers import cfg_with, tiny_model, word_tokenizer

ALL = [(g, o) for g in config_groups() for o in group_options(g)]
# the groups the model is built from, and what one loss must reach through the group's
# part: the encoder; the whole connector (a resampler's own parameters, if any, and through
# it the projector's); the integration's; None: the sampler cuts the clips, no part
MODEL_PARTS: dict[str, Callable[[VideoLMM], nn.Module] | None] = {
    "encoder": lambda model: model.encoder,
    "projector": lambda model: model.connector,
    "resampler": lambda model: model.connector,
    "integration": lambda model: model.integration,
    "sampler": None,
}
# the other groups whose options are built (`_target_`), and the test here that builds them
BUILT_BY = {
    "data": "test_data_option_builds",
    "trainer": "test_trainer_builds",
    "logger": "test_logger_builds",
    "optimizer": "test_optimizer_option_builds_and_steps",
}


def unset(cfg: DictConfig, group: str) -> list[str]:
    """Overrides for the values an option leaves to the command line (`???`)."""
    node = cfg[group]
    return [f"{group}.{k}=/nowhere/{k}.jsonl" for k in node.keys() if OmegaConf.is_missing(node, k)]  # noqa: SIM118 - iterating skips ???


def test_groups_the_issue_asks_for_exist() -> None:
    needed = {"encoder", "llm", "resampler", "sampler", "data", "schedule", "trainer", "logger", "profile"}
    assert needed <= set(config_groups())
    assert {"siglip", "dinov2"} <= set(group_options("encoder"))
    assert {"qwen0.5b", "qwen1.5b", "qwen4b", "qwen7b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b"} <= set(
        group_options("llm")
    )


@pytest.mark.parametrize(("group", "option"), ALL)
def test_every_option_composes_and_passes_start_up_validation(group: str, option: str) -> None:
    cfg = cfg_with(f"{group}={option}")
    OmegaConf.to_container(cfg[group], resolve=True)  # every interpolation resolves
    fills = unset(cfg, group)
    validate(cfg_with(f"{group}={option}", *fills))  # what `python -m src.train` checks first
    if fills:  # ...and without them, it names what is missing
        with pytest.raises(ConfigError, match="is not set"):
            validate(cfg)


def test_every_built_group_is_built_here() -> None:
    built = {
        g
        for g in config_groups()
        if any("_target_" in OmegaConf.load(CONF_DIR / g / f"{o}.yaml") for o in group_options(g))
    }
    assert built <= set(MODEL_PARTS) | set(BUILT_BY), built - set(MODEL_PARTS) - set(BUILT_BY)
    assert all(name in globals() for name in BUILT_BY.values())


@pytest.mark.parametrize("option", group_options("optimizer"))
def test_optimizer_option_builds_and_steps(option: str) -> None:
    """A partial the module calls with its per-part groups: each group keeps its rate, and a
    step moves the weights."""
    factory = instantiate(cfg_with(f"optimizer={option}").optimizer)
    a, b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    before = a.weight.detach().clone()
    opt = factory(
        [
            {"params": a.parameters(), "lr": 1e-2, "name": "connector"},
            {"params": b.parameters(), "lr": 1e-3, "name": "llm"},
        ]
    )
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    (a(torch.ones(2, 3)).sum() + b(torch.ones(2, 3)).sum()).backward()
    opt.step()
    assert not torch.equal(a.weight, before)


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


@pytest.mark.parametrize(
    ("projector", "resampler"), [(p, r) for p in group_options("projector") for r in group_options("resampler")]
)
def test_connector_shapes_and_backward(projector: str, resampler: str) -> None:
    cfg = cfg_with(f"projector={projector}", f"resampler={resampler}")
    validate(cfg)
    proj = instantiate(cfg.projector)(input_dim=24, output_dim=32)
    res = instantiate(cfg.resampler)(dim=32)
    conn = Connector(proj, res)
    grid = torch.randn(5, 2, 4, 4, 24, requires_grad=True)  # 5 clips of a (t, h, w) = (2, 4, 4) grid
    assert proj(grid).shape == (5, 2, 4, 4, 32)  # the projector keeps the grid, changes the width
    out = conn(grid)
    tokens = cfg.resampler.tokens_per_clip
    assert out.shape == (5, tokens, 32) and conn.tokens_per_clip == res.tokens_per_clip == tokens
    (out * torch.randn_like(out)).sum().backward()  # a random readout: no sum a LayerNorm cancels
    assert grid.grad is not None and grid.grad.abs().sum() > 0
    dead = [n for n, p in conn.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, f"no gradient reaches {dead}"


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("group", "option"), [(g, o) for g in MODEL_PARTS for o in group_options(g)])
def test_every_model_option_builds_tiny_and_trains_one_batch(group: str, option: str, rgb_video: Path) -> None:
    # a 3 s video through the option's sampler, the model built as a run builds it, one loss
    cfg = cfg_with(f"{group}={option}")
    validate(cfg)
    sample = Sample(
        "v",
        [("video", str(rgb_video))],
        [("user", mcq_prompt("Which colour?", ["red", "green"])), ("assistant", "B")],
        "perception",
        "toy",
        options=["red", "green"],
        answer="B",
    )
    tok = word_tokenizer([sample], *timestamp_corpus(cfg.integration.timestamps))
    model = tiny_model(tok, cfg=cfg)
    batch = collate([SampleDataset([sample], instantiate(cfg.sampler), tok)[0]])
    [[clips]] = batch.media
    assert clips.shape[1] == model.encoder.frames_per_clip  # the sampler cuts the encoder's clips
    [tokens] = model.clip_tokens([clips])
    assert tokens.shape == (len(clips) * cfg.resampler.tokens_per_clip, model.llm.config.hidden_size)
    loss = model.loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    take = MODEL_PARTS[group]
    if take is None:
        return
    part = take(model)
    if group == "encoder":  # select_layer leaves later layers unused: the gradient reaches each tower
        for tower in (getattr(part, "members", None) or {"": part}).values():
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.parameters())
    else:
        dead = [n for n, p in part.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not dead, f"no gradient reaches {dead}"


@pytest.mark.parametrize("option", group_options("sampler"))
def test_sampler_builds_and_samples(option: str) -> None:
    cfg = cfg_with(f"sampler={option}")
    sampler = instantiate(cfg.sampler)
    plan = sampler(num_frames=90, native_fps=30.0)
    assert plan.indices.shape[1] == cfg.encoder.frames_per_clip and (plan.indices < 90).all()


@pytest.mark.parametrize("option", group_options("trainer"))
def test_trainer_builds(option: str) -> None:
    from lightning.pytorch.strategies import Strategy

    cfg = cfg_with(f"trainer={option}")
    if isinstance(cfg.trainer.get("strategy"), DictConfig):
        # a strategy of its own (FSDP) needs GPUs to start a Trainer: its strategy builds here
        assert isinstance(instantiate(cfg.trainer.strategy), Strategy)
        return
    # a GPU trainer cannot start on a CPU machine: build it with the CPU accelerator
    trainer = instantiate(cfg.trainer, accelerator="cpu", logger=False, max_epochs=1)
    assert trainer.max_epochs == 1


@pytest.mark.parametrize("option", group_options("logger"))
def test_logger_builds(option: str, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import WandbLogger

    from src.run.loggers import build_logger

    cfg = cfg_with(f"logger={option}")
    OmegaConf.set_struct(cfg, False)
    cfg.paths.data_dir = str(tmp_path)
    logger = build_logger(cfg, tmp_path, "run", {"encoder": "siglip"})
    if "_target_" not in cfg.logger:  # an option that builds nothing: no logger
        assert logger is False
        return
    logger.log_metrics({"x": 1.0}, step=0)
    if isinstance(logger, WandbLogger):
        import wandb

        assert logger.experiment.group == "default"
        wandb.finish()
    assert any(tmp_path.iterdir())


@pytest.mark.parametrize("option", group_options("profile"))
def test_profile_shrink_rule(option: str) -> None:
    cfg = cfg_with(f"profile={option}")
    arch = to_dict(cfg.llm.arch)
    small = shrink_arch(arch, cfg.profile)
    assert small["hidden_size"] == math.ceil(arch["hidden_size"] / cfg.profile.width_div)
    assert small["num_hidden_layers"] == math.ceil(arch["num_hidden_layers"] / cfg.profile.depth_div)
    assert small["num_attention_heads"] == math.ceil(arch["num_attention_heads"] / cfg.profile.heads_div)
    if all(cfg.profile[k] == 1 for k in ("width_div", "depth_div", "heads_div")):
        assert small == arch  # the real architecture


def test_data_option_builds(data_dir: Path) -> None:
    cfg = cfg_with(
        "data.synthetic.n_train=10",
        "data.synthetic.n_eval=5",
        "data.synthetic.n_image=2",
        "data.synthetic.n_multi_image=2",
        "data.synthetic.n_text=2",
        f"paths.data_dir={data_dir}",
    )
    dm = instantiate(cfg.data)
    dm.prepare_data()
    from src.data.manifest import modality_counts

    assert modality_counts(dm.train_samples) == {"text": 2, "image": 2, "multi_image": 2, "video": 10}
    assert len(dm.eval_samples) == 5


def test_model_zoo_options_exist() -> None:
    # the paper's options (Apollo Tables 1 and 2) and the study's extras: more may be added
    assert {"parts", "conv_avgpool", "mlp_avgpool", "perceiver"} <= set(group_options("connector"))
    assert {"none", "tokens", "timestamps", "both"} <= set(group_options("integration"))
    assert {"linear", "mlp2x_gelu", "conv2"} <= set(group_options("projector"))
    assert {"perceiver", "avgpool", "attnpool"} <= set(group_options("resampler"))
    assert {"qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b"} <= set(group_options("llm"))
    assert cfg_with().integration.name == "none" and cfg_with().connector.name == "parts"  # today's defaults


@pytest.mark.parametrize("option", group_options("integration"))
def test_integration_builds_and_lays_out_a_clip(option: str) -> None:
    from src.models.integration import CLIP, timestamp_text

    cfg = cfg_with(f"integration={option}")
    template = cfg.integration.timestamps
    tok = build_word_tokenizer(["a corpus", *timestamp_corpus(template)])
    integ = instantiate(cfg.integration)(dim=8, tokenizer=tok)
    ids = integ.layout(1, 2, torch.tensor([[0.0, 1.0]]))
    assert ids.count(CLIP) == 2 and tok.unk_token_id not in ids
    stamp = tok.encode(timestamp_text(template, 0.0, 1.0), add_special_tokens=False) if template else []
    assert len(ids) == 2 + 2 * cfg.integration.start_end_tokens + len(stamp)
    assert not template or ids[: len(stamp)] == stamp  # the clip's time before it
