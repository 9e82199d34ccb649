"""The paper's studies as sweep files: each exists, has the paper's grid, and composes.

Compose only, no training. tests/launch/test_sweeps.py composes every grid point of every
sweep file; here each distinct design of a study is composed once (the LLM axis of the
scaling studies only swaps the `llm` node, so each LLM is composed once, with the base
variant) and checked against the paper's table that defines it. Each file's leading comment
states its commands (`make sweep SWEEP=<name>` and the `--config-dir sweeps` form), its
paper table and its number of runs."""

from __future__ import annotations

import dataclasses
import re
from functools import cache

import pytest
from omegaconf import DictConfig, OmegaConf

from analysis.paper import ENCODER_NAMES, table
from src.config.container import to_dict, to_list
from src.config.validate import check_overrides, validate
from src.data.synthetic import SyntheticSpec
from tests.helpers import ROOT, compose_sweep, grid

SWEEPS = ROOT / "sweeps"
# study -> (the paper's table or figure its header names, runs)
STUDIES = {
    "uniform_vs_fps": ("Table 11", 5),
    "fps_tpf": ("Table 10", 28),
    "encoders": ("Table 9", 19),
    "connectors": ("Table 1", 3),
    "token_integration": ("Table 2", 4),
    "schedules": ("Table 12", 7),
    "schedules_vision_lr": ("Table 12", 15),
    "mixtures": ("Table 13", 13),
    "scaling": ("Tables 14-15", 84),
    "data_size": ("Fig. 3 (right)", 80),
}
SCALING_LLMS = ["qwen0.5b", "qwen1.5b", "qwen4b", "qwen7b"]  # Qwen2 0.5B/1.5B, Qwen1.5 4B, Qwen2 7B


def points(name: str) -> list[tuple[str, ...]]:
    return [tuple(p) for p in grid(SWEEPS / f"{name}.yaml")]


@cache
def composed(name: str, point: tuple[str, ...], profile: str = "tiny") -> DictConfig:
    """One grid point of a sweep file, composed as `--config-dir sweeps` does, and validated."""
    check_overrides(list(point))
    extra = [] if profile == "tiny" else [f"profile={profile}"]
    cfg = compose_sweep(SWEEPS / f"{name}.yaml", [*point, *extra])
    validate(cfg)
    return cfg


def axis(point: tuple[str, ...], key: str) -> str | None:
    """The value a grid point gives `key`."""
    return next((o.split("=", 1)[1] for o in point if o.split("=", 1)[0] == key), None)


def value(point: tuple[str, ...], key: str) -> str:
    """The value a grid point gives `key`, which it must give."""
    found = axis(point, key)
    assert found is not None, (point, key)
    return found


def designs(name: str) -> list[tuple[str, ...]]:
    """The grid points to compose: all of them, except that an LLM axis crossed with others
    is covered by each LLM once, with the other axes' first values."""
    pts = points(name)
    first_llm = axis(pts[0], "llm")
    if first_llm is None or all(axis(p, "llm") == first_llm for p in pts):
        return pts
    others = [o for o in pts[0] if not o.startswith("llm=")]
    return [p for p in pts if axis(p, "llm") == first_llm or all(o in p for o in others)]


def choice(cfg: DictConfig, group: str) -> str:
    return str(cfg.hydra.runtime.choices[group])


def tokens_per_frame(cfg: DictConfig) -> float:
    return cfg.resampler.tokens_per_clip / cfg.encoder.frames_per_clip


@pytest.mark.parametrize("name", STUDIES)
def test_study_file_runs_its_documented_grid(name: str) -> None:
    path = SWEEPS / f"{name}.yaml"
    assert path.is_file(), f"{path} is missing"
    paper, runs = STUDIES[name]
    assert len(points(name)) == runs
    header = "".join(ln for ln in path.read_text().splitlines(keepends=True) if ln.startswith("#"))
    assert paper in header
    assert f"make sweep SWEEP={name}" in header
    assert f"--config-dir sweeps --config-name {name}" in header
    stated = [int(n) for n in re.findall(r"(\d+) runs", header.replace(",", ""))]
    assert set(stated) == {runs}, f"{name}: the header says {stated} runs, the grid has {runs}"


@pytest.mark.parametrize("name", STUDIES)
def test_every_design_composes_and_validates(name: str) -> None:
    for point in designs(name):
        cfg = composed(name, point)
        assert cfg.sweep == name
        for o in point:
            key, v = o.split("=", 1)
            if key in cfg.hydra.runtime.choices:
                assert choice(cfg, key) == v
        if cfg.data.name == "synthetic":  # the data spec a run would generate is valid
            SyntheticSpec.from_dict(to_dict(cfg.data.synthetic))


def test_local_groups_are_used_and_no_option_is_orphaned() -> None:
    used = {o for name in STUDIES for p in points(name) for o in p}
    for folder in (p for p in SWEEPS.iterdir() if p.is_dir()):
        for option in folder.glob("*.yaml"):
            assert f"{folder.name}={option.stem}" in used, f"{option} is in no sweep"
            assert option.read_text().startswith("# @package _global_"), option


def test_uniform_vs_fps_is_table11() -> None:
    t = table("table11_uniform_sampling.csv")
    cfgs = [composed("uniform_vs_fps", p) for p in points("uniform_vs_fps")]
    uniform = sorted(c.sampler.num_frames for c in cfgs if choice(c, "sampler") == "uniform")
    assert uniform == sorted(set(t["train_uniform_frames"]))
    tested_fps = {float(s.split("-")[1]) for s in t["test_sampling"] if s.startswith("fps")}
    assert {c.sampler.fps for c in cfgs if choice(c, "sampler") == "fps"} == tested_fps
    assert {tokens_per_frame(c) for c in cfgs} == {16}  # one token budget per frame throughout


def test_fps_tpf_is_table10_grid() -> None:
    t = table("table10_fps_tps_tpf.csv")
    cells = set()
    for p in points("fps_tpf"):
        c = composed("fps_tpf", p)
        assert choice(c, "sampler") == "fps" and c.encoder.frames_per_clip == 1
        cells.add((c.sampler.fps, tokens_per_frame(c), c.sampler.fps * tokens_per_frame(c)))
    assert cells == {(float(r.fps), float(r.tpf), float(r.tps)) for r in t.itertuples()}


def test_encoders_is_table9() -> None:
    t = table("table9_vision_encoders.csv")
    ours = {paper: option for option, paper in ENCODER_NAMES.items()}
    expected = ["+".join(ours[n] for n in row.split("+")) for row in t["vision_encoders"]]
    cfgs = [composed("encoders", p) for p in points("encoders")]
    assert sorted(choice(c, "encoder") for c in cfgs) == sorted(expected)
    assert {c.llm.pretrained.split("/")[-1] for c in cfgs} == set(t["llm"])
    # 32 tokens a second, whatever the encoder's clip length
    assert {c.sampler.fps * tokens_per_frame(c) for c in cfgs} == {32.0}


def test_connectors_are_table1() -> None:
    rows = table("table1_2_8_connector_integration_arch.csv").query("table == 'T1'")["variant"]
    matched = []
    for p in points("connectors"):
        c = composed("connectors", p)
        assert c.resampler.tokens_per_clip == 16
        match = [
            v
            for v in rows
            if ("Conv" in v) == (c.projector.name == "conv2")
            and ("average pooling" in v) == (c.resampler.name == "avgpool")
            and ("Perceiver" in v) == (c.resampler.name == "perceiver")
        ]
        assert len(match) == 1, (p, match)
        matched += match
    assert sorted(matched) == sorted(rows)


def test_token_integration_is_table2() -> None:
    rows = table("table1_2_8_connector_integration_arch.csv").query("table == 'T2'")["variant"]
    matched = []
    for p in points("token_integration"):
        c = composed("token_integration", p)
        assert choice(c, "connector") == "perceiver"  # Table 2's first row is Table 1's Perceiver
        match = [
            v
            for v in rows
            if ("<vid_start>" in v) == c.integration.start_end_tokens
            and ("clip from" in v) == (c.integration.timestamps is not None)
        ]
        assert len(match) == 1, (p, match)
        if c.integration.timestamps is not None:
            assert c.integration.timestamps in match[0].replace("{MM:SS}-{MM:SS}", "{start}-{end}")
        matched += match
    assert sorted(matched) == sorted(rows)


def _rate(cell: object) -> float:
    """A Table 12 learning rate; `5e-5(sic; likely 5e-6)` reads as its leading number."""
    text = str(cell)
    if text in ("", "nan"):
        return float("nan")
    match = re.match(r"[0-9.eE+-]+", text)
    assert match is not None, text
    return float(match.group())


def table12() -> list[tuple[str, float, list[dict[str, float]]]]:
    """(schedule name, vision rate, each stage's rates) of every row of Table 12."""
    out = []
    for row in table("table12_training_schedules.csv").to_dict("records"):
        stages = [
            {part: _rate(row[f"s{i}_lr_{part}"]) for part in ("vision", "connector", "llm")}
            for i in range(1, int(row["n_stages"]) + 1)
        ]
        name = "_".join(
            "".join(letter for part, letter in (("vision", "v"), ("connector", "c"), ("llm", "l")) if s[part] > 0)
            for s in stages
        )
        vision = next((s["vision"] for s in stages if s["vision"] > 0), 0.0)
        out.append((name, vision, stages))
    return out


def _check_stages(cfg: DictConfig, expected: list[dict[str, float]]) -> None:
    stages = to_list(cfg.schedule.stages, resolve=True)
    assert len(stages) == len(expected)
    for got, want in zip(stages, expected):
        assert {p: got["lr"][p] > 0 for p in want} == {p: want[p] > 0 for p in want}
        assert got["data"] == ("mixture" if want["llm"] > 0 else "video")  # frozen LLM: video only


def test_schedules_are_table12() -> None:
    rows = table12()
    by_name = {name: stages for name, _, stages in rows}
    cfgs = [composed("schedules", p) for p in points("schedules")]
    assert sorted(choice(c, "schedule") for c in cfgs) == sorted(by_name)
    for c in cfgs:
        _check_stages(c, by_name[choice(c, "schedule")])
        assert OmegaConf.select(c, "llm.lr") == 3e-5


def test_schedules_vision_lr_are_table12_rows_that_train_the_encoder() -> None:
    rows = {(name, vision) for name, vision, _ in table12() if vision > 0}
    got = set()
    for p in points("schedules_vision_lr"):
        c = composed("schedules_vision_lr", p)
        stages = to_list(c.schedule.stages, resolve=True)
        assert {s["lr"]["vision"] for s in stages} - {0.0} == {c.profile.lr.vision}
        got.add((choice(c, "schedule"), c.profile.lr.vision))
    assert got == rows and len(rows) == 15


def test_schedules_win_over_the_pretrained_profiles_default() -> None:
    for p in points("schedules"):
        c = composed("schedules", p, "pretrained")
        assert choice(c, "schedule") == p[0].split("=")[1]
        assert c.profile.lr.llm == 3e-5  # the paper's LLM rate reaches the stages


def test_mixtures_are_table13() -> None:
    t = table("table13_data_composition.csv")
    modalities = ("text", "image", "multi_image", "video")
    want = {f"paper{r['row']:02d}": tuple(r[f"{m}_pct"] for m in modalities) for r in t.to_dict("records")}
    got = {}
    for p in points("mixtures"):
        c = composed("mixtures", p)
        got[choice(c, "mixture")] = tuple(round(100 * c.mixture.shares[m], 1) for m in modalities)
    assert got == want


def signature(cfg: DictConfig) -> dict[str, object]:
    """What a run's record says about its design: group choices and design numbers."""
    groups = ("encoder", "connector", "projector", "resampler", "integration", "sampler", "mixture", "schedule")
    return {
        **{g: choice(cfg, g) for g in groups},
        "fps": OmegaConf.select(cfg, "sampler.fps"),
        "num_frames": OmegaConf.select(cfg, "sampler.num_frames"),
        "tokens_per_clip": cfg.resampler.tokens_per_clip,
    }


def variants(name: str) -> dict[str, DictConfig]:
    """Each scaling variant of a study, composed with the other axes' first values."""
    others = [o for o in points(name)[0] if not o.startswith("scaling_variant=")]
    return {value(p, "scaling_variant"): composed(name, p) for p in points(name) if all(o in p for o in others)}


def test_scaling_is_21_variants_by_4_llm_sizes_of_one_family() -> None:
    pts = points("scaling")
    found = {o.split("=")[1] for p in pts for o in p if o.startswith("llm=")}
    assert sorted(found) == sorted(SCALING_LLMS)
    llms = [composed("scaling", next(p for p in pts if f"llm={m}" in p)).llm for m in SCALING_LLMS]
    assert [m.size_b for m in llms] == [0.5, 1.5, 4.0, 7.0]
    assert {m.model_class for m in llms} == {"transformers.Qwen2ForCausalLM"}
    var = variants("scaling")
    assert len(var) == 21
    signatures = {tuple(signature(c).items()) for c in var.values()}
    assert len(signatures) == 21, "two variants would look alike in the records"
    base = signature(var["base"])
    moved = {k for c in var.values() for k, v in signature(c).items() if v != base[k]}
    assert {
        "encoder",
        "connector",
        "integration",
        "sampler",
        "mixture",
        "schedule",
        "fps",
        "num_frames",
        "tokens_per_clip",
    } <= moved  # every axis the paper ablates
    for name, c in var.items():  # 16 tokens per frame (32 a second at 2 fps), but where tokens vary
        assert tokens_per_frame(c) == (int(name[3:]) if name.startswith("tpf") else 16), name


def test_scaling_composes_at_scale() -> None:
    # no encoder runs checkpoint code (which would need encoder.trust_remote_code=true)
    for name, c in variants("scaling").items():
        members = [c.encoder, *(c.encoder.get("members") or {}).values()]
        assert not any("trust_remote_code" in m for m in members), name
    # at profile=pretrained the schedule defaults to c_vc_cl; a schedule variant keeps its own
    expected = {"base": "c_vc_cl", "videomae+siglip": "c_vc_cl", "c_cl": "c_cl", "vcl": "vcl"}
    for p in points("scaling"):
        if axis(p, "llm") == "qwen7b" and axis(p, "scaling_variant") in expected:
            c = composed("scaling", p, "pretrained")
            assert choice(c, "schedule") == expected[value(p, "scaling_variant")]


def test_data_size_crosses_training_set_sizes_with_variants_and_llm_sizes() -> None:
    pts = points("data_size")
    assert {axis(p, "llm") for p in pts} == set(SCALING_LLMS)
    names = {axis(p, "scaling_variant") for p in pts}
    assert len(names) == 5 and names <= set(variants("scaling"))
    specs = {}
    for size in sorted({value(p, "train_size") for p in pts}):
        c = composed("data_size", next(p for p in pts if axis(p, "train_size") == size))
        specs[size] = SyntheticSpec.from_dict(to_dict(c.data.synthetic))
    totals = sorted(s.n_train + s.n_image + s.n_multi_image + s.n_text for s in specs.values())
    assert totals == [161, 325, 650, 1300]
    sizes = ("n_train", "n_image", "n_multi_image", "n_text")
    rest = [{k: v for k, v in dataclasses.asdict(s).items() if k not in sizes} for s in specs.values()]
    assert all(r == rest[0] for r in rest)  # one eval set, one generator: only the sizes differ


def test_the_audit_sweep_trains_models_that_can_answer_without_the_video() -> None:
    pts = points("audit")
    assert len(pts) == 8 and "make sweep SWEEP=audit" in (SWEEPS / "audit.yaml").read_text()
    for point in pts:
        cfg = composed("audit", point)
        assert cfg.sweep == "audit" and list(cfg.eval.modalities) == ["video", "frame", "text"]
        assert list(cfg.eval.circular) == [] and cfg.schedule.stages[-1].epochs == 20
        assert dict(cfg.data.modality_dropout) == {"frame": 0.3, "text": 0.3}
        spec = SyntheticSpec.from_dict(to_dict(cfg.data.synthetic))
        assert spec.train_control_share == 0.3 and spec.control_share == 0.1
