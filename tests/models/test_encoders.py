"""The encoder zoo: every option builds tiny, encodes to its grid, trains, honours select_layer;
checkpoints load through the pretrained path; pairs fuse trilinearly; Table 9 is one sweep."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from src.config.compose import CONF_DIR, SEP, group_options, single_options
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.config.validate import validate
from src.models.encoders.base import FULL_DEPTH, VisionEncoder, layer_list
from src.models.encoders.fused import FusedEncoder
from src.tools.pairs import expected_files, written_files
from tests.helpers import ROOT, TINY_DATA, cfg_with, grid, records, run_train

SINGLE_CFGS = single_options()  # each single option's own YAML, unresolved
SINGLES = sorted(SINGLE_CFGS)
PAIRS = [o for o in group_options("encoder") if SEP in o]
TINY = to_dict(OmegaConf.load(CONF_DIR / "profile" / "tiny.yaml"))
PAPER_NAMES = {
    "DINOv2": "dinov2",
    "LanguageBind-Image": "languagebind_image",
    "SigLIP-SO400M": "siglip",
    "VideoMAE": "videomae",
    "V-JEPA": "vjepa",
    "LanguageBind-Video": "languagebind_video",
    "InternVideo2": "internvideo2",
}
TABLE9_CSV = ROOT / "analysis" / "reference" / "apollo_2412.10360" / "table9_vision_encoders.csv"
TABLE9 = [
    "+".join(PAPER_NAMES[n] for n in row["vision_encoders"].split("+")) for row in csv.DictReader(TABLE9_CSV.open())
]
# the options that load a checkpoint's own code, with consent; the others are transformers' classes
REMOTE = [o for o in SINGLES if "trust_remote_code" in SINGLE_CFGS[o]]

# a layer's weights: `<...>.layers.3.<...>` (`layer`, `blocks` in some towers)
LAYER_KEY = re.compile(r"\.(?:layers|layer|blocks)\.(\d+)\.")

pytestmark = pytest.mark.usefixtures("one_thread")


def build(option: str, *overrides: str) -> Any:  # a VisionEncoder, of the option's own class
    return instantiate(cfg_with(f"encoder={option}", *overrides).encoder)


def expected(option: str) -> tuple[tuple[int, int, int], int, int]:
    """(t, h, w), D and frames per clip of an option under profile=tiny, from its own YAML.

    One encoder: its clip (`frames_per_clip`) in tubelets of `arch.tubelet_size` frames (1
    without one) gives t; its patch grid `input_size // arch.patch_size` divided by the
    profile's grid_div (rounded up) gives h = w; `arch.hidden_size` / width_div gives D;
    clips keep their real length. A pair: the longer clip; the video members' time steps
    over it (its frames without a video member); the larger h and w; the members' D summed.
    """
    if SEP not in option:
        cfg = SINGLE_CFGS[option]
        arch, clip = cfg["arch"], cfg["frames_per_clip"]
        side = math.ceil(cfg["input_size"] // arch["patch_size"] / TINY["grid_div"])
        dim = math.ceil(arch["hidden_size"] / TINY["width_div"])
        return (clip // arch.get("tubelet_size", 1), side, side), dim, clip
    members = [expected(m) for m in option.split(SEP)]
    clip = max(f for _, _, f in members)
    t = max((clip // f * g[0] for g, _, f in members if f > 1), default=clip)
    h, w = (max(g[i] for g, _, _ in members) for i in (1, 2))
    return (t, h, w), sum(d for _, d, _ in members), clip


def frames(n: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, t, 40, 48, 3), dtype=torch.uint8, generator=g)


def test_the_options_are_the_papers_encoders_and_every_pair() -> None:
    assert set(PAPER_NAMES.values()) <= set(SINGLES)  # the paper's seven; more may be added
    assert len(PAIRS) == math.comb(len(SINGLES), 2)
    assert {frozenset(p.split("+")) for p in PAIRS} == {frozenset((a, b)) for a in SINGLES for b in SINGLES if a < b}
    assert len(TABLE9) == 19 and set(TABLE9) <= set(group_options("encoder"))


def test_the_grid_rule_gives_what_the_papers_encoders_are_known_to_give() -> None:
    # worked by hand: SigLIP 384 px / 14 = 27 patches a side, / 4 -> 7; InternVideo2 clips of
    # 4 frames (tubelet 1) inside VideoMAE's 16 (tubelet 2: 8 steps) -> 16 steps, 88 + 64 wide
    assert expected("siglip") == ((1, 7, 7), 72, 1)
    assert expected("videomae") == ((8, 4, 4), 64, 16)
    assert expected("internvideo2+siglip") == ((4, 7, 7), 88 + 72, 4)
    assert expected("internvideo2+videomae") == ((16, 4, 4), 152, 16)
    assert expected("dinov2+siglip") == ((1, 7, 7), 136, 1)


def test_pair_files_are_what_the_script_writes() -> None:
    # `python -m src.tools.pairs` rewrites them; a stale or hand-edited file fails here
    assert written_files() == expected_files()


def test_the_table9_sweep_is_the_papers_19_encoders() -> None:
    points = grid(ROOT / "sweeps" / "encoders.yaml")
    assert sorted(p[0] for p in points) == sorted(f"encoder={o}" for o in TABLE9)


@pytest.mark.parametrize("option", group_options("encoder"))
def test_tiny_encoder_shape_and_one_backward_pass_reaching_every_parameter(option: str) -> None:
    cfg = cfg_with(f"encoder={option}")
    enc = instantiate(cfg.encoder).requires_grad_(True)
    (t, h, w), dim, fpc = expected(option)
    assert enc.frames_per_clip == fpc == cfg.sampler.frames_per_clip  # the sampler's clip length
    assert enc.embed_dim == dim and enc.grid_shape(fpc) == (t, h, w)
    grid = enc.encode(frames(2, fpc))
    assert grid.shape == (2, t, h, w, dim) and torch.isfinite(grid).all()
    head = nn.Linear(dim, 3)  # a small head: pooled features to 3 classes
    loss = F.cross_entropy(head(grid.mean(dim=(1, 2, 3))), torch.tensor([0, 2]))
    loss.backward()
    patches = {n: p for n, p in enc.named_parameters() if "patch" in n and n.endswith("weight")}
    assert patches and len(patches) == (2 if "+" in option else 1)
    # the gradient reaches the input end of every member
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in patches.values()), list(patches)
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
    # every parameter takes part: none after select_layer is left (DDP, find_unused_parameters=False,
    # fails on a trained tower that has one)
    idle = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not idle, idle


@pytest.mark.parametrize("option", SINGLES)
def test_the_cut_tower_gives_the_whole_towers_hidden_state_bit_for_bit(option: str) -> None:
    # select_layer=-1 keeps every layer: the whole tower; its blocks' outputs are its hidden states
    whole = build(option, "encoder.select_layer=-1")
    depth = whole.layers_kept
    _, blocks = layer_list(whole.model, option)
    assert len(blocks) == depth == int(getattr(whole.model.config, FULL_DEPTH))
    captured: list[torch.Tensor] = []
    for block in blocks:
        block.register_forward_hook(lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o))
    x = frames(2, expected(option)[2])
    with torch.no_grad():
        last = whole.encode(x)
    outs = {}
    for layer, kept in ((-2, depth - 1), (1, 1)):
        cut = build(option, f"encoder.select_layer={layer}")
        # the layers after select_layer are gone, and the config says so
        assert cut.layers_kept == kept == len(layer_list(cut.model, option)[1])
        assert int(getattr(cut.model.config, FULL_DEPTH)) == depth
        # the same weights: the whole tower's, whose dropped layers are simply not loaded
        missing, unexpected = cut.load_state_dict(whole.state_dict(), strict=False)
        assert not missing and unexpected
        assert all((m := LAYER_KEY.search(u)) and int(m.group(1)) >= kept for u in unexpected), unexpected
        with torch.no_grad():
            out = cut.encode(x)
        ref = captured[kept - 1]  # hidden state k >= 1 is block k - 1's output
        per_row = out[..., 0].numel() // ref.shape[0]  # tokens per image (or clip) after the prefix
        assert torch.equal(out.reshape(-1, cut.embed_dim), ref[:, -per_row:].reshape(-1, cut.embed_dim))
        outs[layer] = out
    assert not torch.equal(last, outs[-2]) and not torch.equal(outs[1], outs[-2])


def test_select_layer_out_of_range_fails_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"encoder.select_layer=-12 is invalid; valid: an integer from -11 to 10"):
        validate(cfg_with("encoder=internvideo2", "encoder.select_layer=-12"))
    with pytest.raises(ConfigError, match=r"encoder.members.siglip.select_layer=9 is invalid"):
        validate(cfg_with("encoder=internvideo2+siglip", "encoder.members.siglip.select_layer=9"))
    with pytest.raises(InstantiationException, match="select_layer=30 is out of range for its 6 layers"):
        build("videomae", "encoder.select_layer=30")


def _same(a: VisionEncoder, b: VisionEncoder, t: int) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = frames(2, t, seed=1)
    with torch.no_grad():
        assert torch.equal(a.encode(x), b.encode(x))


@pytest.mark.parametrize("option", [o for o in SINGLES if o not in REMOTE])
def test_pretrained_path_loads_a_checkpoint_saved_locally(option: str, tmp_path: Path) -> None:
    tiny = build(option)
    tiny.model.save_pretrained(tmp_path)
    loaded = build(
        option, "profile=pretrained", f"encoder.pretrained={tmp_path}", f"encoder.input_size={tiny.input_size}"
    )
    _same(tiny, loaded, tiny.frames_per_clip)


def test_a_whole_towers_checkpoint_loads_cut_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a real checkpoint holds the whole tower: every layer, SigLIP's post-norm and pooling head
    from transformers import SiglipVisionConfig, SiglipVisionModel

    cut = build("siglip")
    config = cut.model.config.to_dict()
    depth = config.pop(FULL_DEPTH)
    config.update(num_hidden_layers=depth, vision_use_head=True)
    whole = SiglipVisionModel(SiglipVisionConfig(**config)).eval()
    whole.save_pretrained(tmp_path)
    pretrained = ["profile=pretrained", f"encoder.pretrained={tmp_path}", f"encoder.input_size={cut.input_size}"]
    with caplog.at_level(logging.INFO):
        loaded = build("siglip", *pretrained)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loaded.layers_kept == depth - 1 and not loaded.model.use_head
    assert not [n for n, _ in loaded.named_parameters() if "head" in n or "post_layernorm" in n]
    x = frames(2, 1, seed=2)
    with torch.no_grad():
        ref = whole(pixel_values=loaded.preprocess(x).flatten(0, 1), output_hidden_states=True).hidden_states[-2]
        assert torch.equal(loaded.encode(x).flatten(1, 3), ref)
    # saved cut and loaded again: the same tower, its missing tail (the post-norm) not reported
    loaded.model.save_pretrained(tmp_path / "cut")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = build("siglip", *pretrained, f"encoder.pretrained={tmp_path / 'cut'}")
    assert not caplog.records and again.layers_kept == depth - 1
    _same(loaded, again, 1)


def test_languagebind_image_loads_its_whole_clip_checkpoint(tmp_path: Path) -> None:
    # LanguageBind_Image's checkpoint is a whole CLIP (text tower too) of model_type LanguageBindImage
    from transformers import CLIPConfig, CLIPModel

    tiny = build("languagebind_image")
    text = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        vocab_size=64,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    whole = CLIPModel(CLIPConfig(vision_config=tiny.model.config.to_dict(), text_config=text, projection_dim=8))
    # the tiny tower is cut at select_layer: the whole CLIP's post-norm is all it lacks
    missing, unexpected = whole.vision_model.load_state_dict(tiny.model.state_dict(), strict=False)
    assert sorted(missing) == ["post_layernorm.bias", "post_layernorm.weight"] and not unexpected
    whole.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(model_type="LanguageBindImage", architectures=["LanguageBindImage"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = build(
        "languagebind_image",
        "profile=pretrained",
        f"encoder.pretrained={tmp_path}",
        f"encoder.input_size={tiny.input_size}",
    )
    _same(tiny, loaded, 1)


@pytest.mark.parametrize("option", REMOTE)
def test_remote_code_loads_only_with_consent(option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = build(option)
    # saved as remote code: config.json names the classes (auto_map), their file goes beside it
    monkeypatch.setattr(type(tiny.model.config), "_auto_class", "AutoConfig")
    monkeypatch.setattr(type(tiny.model), "_auto_class", "AutoModel")
    tiny.model.save_pretrained(tmp_path)
    assert "auto_map" in json.loads((tmp_path / "config.json").read_text())
    pretrained = ["profile=pretrained", f"encoder.pretrained={tmp_path}", "encoder.subfolder=null"]
    with pytest.raises(ConfigError, match=r"set encoder.trust_remote_code=true to allow it"):
        validate(cfg_with(f"encoder={option}", *pretrained))
    with pytest.raises(InstantiationException, match=r"set encoder.trust_remote_code=true"):
        build(option, *pretrained)
    loaded = build(option, *pretrained, "encoder.trust_remote_code=true")
    assert type(loaded.model).__module__.startswith("transformers_modules")  # the checkpoint's code ran
    _same(tiny, loaded, tiny.frames_per_clip)


def test_a_pair_passes_consent_to_its_remote_member() -> None:
    cfg = cfg_with("encoder=internvideo2+siglip", "profile=pretrained")
    with pytest.raises(ConfigError, match=r"encoder.trust_remote_code=false"):
        validate(cfg)
    cfg = cfg_with("encoder=internvideo2+siglip", "profile=pretrained", "encoder.trust_remote_code=true")
    validate(cfg)
    assert cfg.encoder.members.internvideo2.trust_remote_code is True


def test_fused_grid_is_each_member_trilinearly_resampled() -> None:
    enc = build("internvideo2+videomae")  # videomae's 8 time steps meet internvideo2's 16, on 4x4
    x = frames(2, 16)
    with torch.no_grad():
        fused = enc.encode(x)
        own = enc.member_grids(x)
    assert own["internvideo2"].shape[1:4] == (16, 4, 4) and own["videomae"].shape[1:4] == (8, 4, 4)
    trilinear = F.interpolate(
        own["videomae"].permute(0, 4, 1, 2, 3), size=(16, 4, 4), mode="trilinear", align_corners=False
    ).permute(0, 2, 3, 4, 1)
    nearest = own["videomae"].repeat_interleave(2, dim=1)
    assert torch.equal(fused[..., :88], own["internvideo2"])
    assert torch.allclose(fused[..., 88:], trilinear, atol=1e-6)
    assert not torch.allclose(fused[..., 88:], nearest, atol=1e-3)  # not a copy of each step


def test_image_member_sees_evenly_spaced_frames_of_the_clip() -> None:
    enc = build("videomae+dinov2")
    x = frames(2, 16)
    with torch.no_grad():
        own = enc.member_grids(x)
        alone = enc.members["dinov2"].encode(x[:, ::2])  # 8 of the 16 frames, for 8 time steps
        fused = enc.encode(x)
    assert torch.equal(own["dinov2"], alone)
    spatial = F.interpolate(
        own["dinov2"].permute(0, 4, 1, 2, 3), size=(8, 4, 4), mode="trilinear", align_corners=False
    ).permute(0, 2, 3, 4, 1)
    assert torch.allclose(fused[..., 64:], spatial, atol=1e-6)


def test_fused_encoder_checks_its_clip_length() -> None:
    members = {"internvideo2": build("internvideo2"), "videomae": build("videomae")}
    with pytest.raises(ValueError, match="not a multiple"):
        FusedEncoder(members, name="bad", frames_per_clip=6)


@pytest.mark.parametrize("option", ["internvideo2", "languagebind_video", "videomae"])
def test_bf16_and_gradient_checkpointing_switches_reach_the_encoder(option: str) -> None:
    # profile=pretrained's defaults (src/models/precision.py) on the in-house towers and one
    # whose embedding does not cast its input
    from src.models.precision import apply_switches, enable_gradient_checkpointing

    enc = apply_switches(build(option), "bfloat16", False, "encoder")
    assert enable_gradient_checkpointing(enc, "encoder") == 1
    enc.train()
    grid = enc.encode(frames(2, enc.frames_per_clip))
    assert grid.dtype == torch.bfloat16
    grid.float().pow(2).mean().backward()
    assert all(p.grad is not None for n, p in enc.named_parameters() if "patch" in n)


def test_sizes_count_pairs_as_sums_and_internvideo2_at_1b() -> None:
    from src.tools.sizes import REAL, encoder_params

    assert encoder_params("internvideo2+siglip", TINY) == (
        encoder_params("internvideo2", TINY) + encoder_params("siglip", TINY)
    )
    assert 0.95e9 < encoder_params("internvideo2", REAL) < 1.1e9  # the 1B architecture, at full size


@pytest.mark.slow
def test_a_pair_trains_end_to_end(data_dir: Path, tmp_path: Path) -> None:
    # the model issue's command: `python -m src.train encoder=internvideo2+siglip
    # resampler=perceiver integration=timestamps`, on tiny data
    proc = run_train(
        ["encoder=internvideo2+siglip", "resampler=perceiver", "integration=timestamps", "logger=none", *TINY_DATA],
        data_dir,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [rec] = records(tmp_path)
    assert rec["status"] == "ok" and rec["choices"]["encoder"] == "internvideo2+siglip"
    assert rec["choices"]["resampler"] == "perceiver" and rec["choices"]["integration"] == "timestamps"
    assert rec["design"]["frames_per_clip"] == 4
    params = rec["design"]["params"]  # every component's parameter count
    assert min(params[k] for k in ("encoder", "projector", "resampler", "llm")) > 0
    assert params["total"] == params["encoder"] + params["connector"] + params["integration"] + params["llm"]
    assert 0 <= rec["metrics"]["test/synthetic/overall"] <= 1
