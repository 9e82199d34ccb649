"""Connectors: what each projector and resampler computes, and the paper's three connector options.

What every projector and resampler option must do (map a grid to tokens_per_clip tokens, pass
gradients, train in a tiny model) is tested for each option in tests/config/test_configs.py."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hydra.utils import instantiate

from src.config.compose import group_options
from src.config.errors import ConfigError
from src.config.validate import validate
from src.models.connectors.attnpool import AttnPoolResampler
from src.models.connectors.connector import build_connector
from src.models.connectors.conv import ConvProjector
from src.models.connectors.pooling import AvgPoolResampler
from src.models.llm import build_word_tokenizer
from tests.helpers import cfg_with, text_only_batch, tiny_batch, tiny_model

# Apollo Table 1: each row one `connector` option, and the parts it fixes
PAPER = {
    "conv_avgpool": ("conv2", "avgpool"),
    "mlp_avgpool": ("mlp2x_gelu", "avgpool"),
    "perceiver": ("mlp2x_gelu", "perceiver"),
}


def grid(n: int = 3, t: int = 2, side: int = 5, dim: int = 12) -> torch.Tensor:
    return torch.randn(n, t, side, side, dim)


def test_linear_projector_is_one_affine_map() -> None:
    proj = instantiate(cfg_with("projector=linear").projector)(input_dim=12, output_dim=20)
    a, b = grid(), grid()
    zero = proj(torch.zeros_like(a))
    assert torch.allclose(proj(a + b) - zero, (proj(a) - zero) + (proj(b) - zero), atol=1e-5)


def test_mlp_projector_maps_each_cell_alone_but_conv_mixes_neighbours() -> None:
    mlp = instantiate(cfg_with("projector=mlp2x_gelu").projector)(input_dim=12, output_dim=20)
    conv = instantiate(cfg_with("projector=conv2").projector)(input_dim=12, output_dim=20)
    assert isinstance(conv, ConvProjector)
    x = grid(n=1, t=1, side=7)
    y = x.clone()
    y[0, 0, 3, 3] += 1.0  # one cell of one frame changes
    for proj, reach in ((mlp, 0), (conv, 2)):  # two 3x3 convolutions see 2 cells each way
        changed = (proj(y) - proj(x)).abs().sum(-1)[0, 0] > 1e-6
        rows, cols = torch.nonzero(changed, as_tuple=True)
        assert changed[3, 3]
        assert int((rows - 3).abs().max()) == reach and int((cols - 3).abs().max()) == reach


def test_conv_projector_works_frame_by_frame() -> None:
    conv = ConvProjector(input_dim=12, output_dim=20)
    x = grid(n=1, t=3)
    y = x.clone()
    y[0, 1] += 1.0  # only the middle frame changes
    diff = (conv(y) - conv(x)).abs().sum((-1, -2, -3))[0]
    assert diff[1] > 0 and diff[0] == 0 and diff[2] == 0


def test_avgpool_averages_time_and_pools_space() -> None:
    res = AvgPoolResampler(dim=3, tokens_per_clip=4)
    x = torch.zeros(1, 2, 4, 4, 3)
    x[0, 0, :2, :2] = 2.0  # top-left quarter, first frame only
    out = res(x)
    assert torch.allclose(out[0, 0], torch.full((3,), 1.0)) and out[0, 1:].abs().sum() == 0


def test_attnpool_is_one_attention_over_the_clip() -> None:
    res = AttnPoolResampler(dim=16, tokens_per_clip=5, heads=4).eval()
    assert res.queries.shape == (5, 16) and isinstance(res.attn, torch.nn.MultiheadAttention)
    assert not any(isinstance(m, torch.nn.Linear) and m.out_features > 16 for m in res.modules())  # no FFN
    x = grid(n=2, t=2, side=3, dim=16)
    # the cells of a frame are a set to attention: shuffling them changes nothing...
    perm = torch.randperm(9)
    shuffled = x.flatten(2, 3)[:, :, perm].reshape(x.shape)
    assert torch.allclose(res(x), res(shuffled), atol=1e-5)
    # ...but which frame a cell is in does (the learned frame embedding keeps time order)
    with torch.no_grad():
        res.frame_embed[1] += torch.randn(16)  # not a constant: the LayerNorm would remove it
    assert not torch.allclose(res(x), res(x.flip(1)), atol=1e-4)


def test_attnpool_rejects_heads_that_do_not_divide_the_width() -> None:
    with pytest.raises(ValueError, match="not divisible by heads=5"):
        AttnPoolResampler(dim=16, heads=5)


def test_perceiver_depth_latents_and_heads_are_configurable() -> None:
    cfg = cfg_with("resampler=perceiver", "resampler.depth=3", "resampler.tokens_per_clip=5", "resampler.heads=2")
    res = instantiate(cfg.resampler)(dim=8)
    assert len(res.layers) == 3 and res.latents.shape == (5, 8) and res.layers[0][0].heads == 2
    assert res(grid(n=2, dim=8)).shape == (2, 5, 8)


@pytest.mark.parametrize("option", sorted(PAPER))
def test_paper_connector_is_one_option(option: str) -> None:
    cfg = cfg_with(f"connector={option}")
    assert (cfg.projector.name, cfg.resampler.name) == PAPER[option]
    assert cfg.connector.name == option and cfg.resampler.tokens_per_clip == 16  # one token budget


@pytest.mark.parametrize("option", group_options("connector"))
def test_a_connector_option_fixes_its_parts_and_a_contradiction_is_one_line(option: str) -> None:
    cfg = cfg_with(f"connector={option}")
    assert cfg.connector.name == option
    validate(cfg)
    for part in ("projector", "resampler"):
        if part not in cfg.connector:  # left to its group (connector=parts)
            continue
        assert cfg[part].name == cfg.connector[part]
        # a command line that contradicts the option is one clear line, before anything loads
        other = next(o for o in group_options(part) if o != cfg.connector[part])
        with pytest.raises(ConfigError, match=f"{part}={other} contradicts connector={option}"):
            validate(cfg_with(f"connector={option}", f"{part}={other}"))


def test_default_connector_leaves_the_parts_to_their_groups() -> None:
    cfg = cfg_with("resampler=attnpool", "projector=linear")
    assert cfg.connector.name == "parts" and cfg.resampler.name == "attnpool"
    validate(cfg)


@pytest.mark.parametrize("option", sorted(PAPER))
def test_paper_connector_trains_one_batch_in_the_model(option: str) -> None:
    tok = build_word_tokenizer(["what ? B"])
    model = tiny_model(tok, f"connector={option}")
    connector = model.connector
    batch = tiny_batch(tok)
    x, _, _, _ = model._sequences(batch)
    assert x.shape[1] == len(batch.input_ids[0]) - 1 + 3 * 16  # the slot became 3 clips of 16 tokens
    model.loss(batch).backward()
    grads = [p.grad for p in connector.projector.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_a_text_only_batch_gives_every_trained_parameter_a_zero_gradient_and_the_same_loss() -> None:
    # a rank's batch of text-only samples, under DDP: every trained parameter must take part
    tok = build_word_tokenizer(["what ? B"])
    model = tiny_model(tok, "encoder=videomae+siglip", "integration=tokens")
    text = text_only_batch(tok)
    with torch.no_grad():  # no gradient: the media path is not run
        plain = model.loss(text)
    loss = model.loss(text)
    assert torch.equal(loss, plain)
    loss.backward()
    media = [*model.encoder.parameters(), *model.connector.parameters(), *model.integration.parameters()]
    assert media and all(p.grad is not None and not p.grad.any() for p in media)
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    assert any(p.grad.any() for p in model.llm.parameters() if p.grad is not None)  # the LLM still learns


def test_avgpool_needs_a_square_token_count_and_says_so_at_start_up() -> None:
    validate(cfg_with("resampler=avgpool", "resampler.tokens_per_clip=9"))
    validate(cfg_with("connector=mlp_avgpool"))
    with pytest.raises(
        ConfigError,
        match=r"resampler.tokens_per_clip=12 is invalid for resampler=avgpool; "
        r"valid: a square \(1, 4, 9, 16, ...\), e.g. 9 or 16",
    ):
        validate(cfg_with("resampler=avgpool", "resampler.tokens_per_clip=12"))
    validate(cfg_with("resampler=perceiver", "resampler.tokens_per_clip=12"))  # any count


@pytest.mark.parametrize("resampler", ["perceiver", "attnpool"])
def test_a_replicas_attention_resampler_shrinks_its_heads_with_its_llms(resampler: str) -> None:
    """A resampler works at the LLM's width, so a replica 16 times narrower divides its heads
    as it divides the LLM's (by heads_div = 4, rounded up): its heads are 4 times narrower,
    as the LLM's are, not 16. At factors of 1 (fullsize) the config's heads stay."""

    def head_width(profile: str) -> tuple[int, int]:
        cfg = cfg_with(f"resampler={resampler}", "llm=qwen0.5b", f"profile={profile}")
        width = cfg.llm.arch.hidden_size // cfg.profile.width_div
        with torch.device("meta"):
            res: Any = build_connector(cfg, input_dim=12, width=width).resampler
        heads = int(res.layers[0][0].heads if resampler == "perceiver" else res.attn.num_heads)
        return heads, width // heads

    assert cfg_with(f"resampler={resampler}").resampler.heads == 8
    assert head_width("fullsize") == (8, 112)  # Qwen2-0.5B's 896 wide; its LLM's heads are 64
    assert head_width("tiny") == (2, 28)  # 56 wide; its LLM's heads are 14 (4 of them)
