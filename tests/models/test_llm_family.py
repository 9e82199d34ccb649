"""The LLM options: Qwen3, each family's chat format, loss on the answer only, and the GPU switches."""

from __future__ import annotations

import copy

import pytest
import torch
from hydra.utils import instantiate

from src.batch import IGNORE
from src.config.compose import group_options
from src.data.dataset import SampleDataset, collate
from src.data.manifest import Sample, mcq_prompt
from src.data.samplers import FpsSampler
from src.models.llm import build_llm
from src.models.precision import apply_switches
from src.models.shrink import replica_init_std, shrink_arch
from tests.helpers import cfg_with, tiny_model, word_tokenizer

QWEN3 = ["qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b"]
SAMPLES = [
    Sample(
        "t",
        [],
        [("user", mcq_prompt("Which digit follows 3?", ["4", "5"], tag="")), ("assistant", "A")],
        "reasoning",
        "toy",
        options=["4", "5"],
        answer="A",
    ),
    Sample(
        "m",
        [],
        [("user", "Say yes"), ("assistant", "yes"), ("user", "Again"), ("assistant", "yes again")],
        "none",
        "toy",
    ),
]


def tokenizer(chat: str):
    return word_tokenizer(SAMPLES, chat=chat)


def test_qwen3_options_have_the_real_architecture() -> None:
    from src.tools.sizes import REAL, llm_params

    assert set(QWEN3) <= set(group_options("llm"))
    real = {o: llm_params(o, REAL) / 1e9 for o in QWEN3}  # meta device: no memory, no download
    assert real == pytest.approx(
        {"qwen3-0.6b": 0.596, "qwen3-1.7b": 1.721, "qwen3-4b": 4.022, "qwen3-8b": 8.191}, abs=0.001
    )
    cfg = cfg_with("llm=qwen3-4b")
    arch = cfg.llm.arch
    assert arch.head_dim == 128 and arch.head_dim * arch.num_attention_heads != arch.hidden_size


@pytest.mark.parametrize("option", group_options("llm"))
def test_each_llm_declares_its_rate_and_chat_format(option: str) -> None:
    llm = cfg_with(f"llm={option}").llm
    assert llm.chat_template == ("qwen3_chatml" if "Qwen3" in llm.model_class else "chatml")
    paper = {1.5: 5e-5, 3.0: 2e-5, 7.0: 1e-5}  # Apollo's LLM rates for its three sizes
    if llm.size_b in paper:
        assert llm.lr == paper[llm.size_b]
    assert cfg_with(f"llm={option}", "profile=pretrained").profile.lr.llm == llm.lr
    assert cfg_with(f"llm={option}").profile.lr.llm == 3e-4  # tiny keeps its own


@pytest.mark.parametrize(
    ("chat", "prompt_end"),
    [("chatml", "<|im_start|> assistant"), ("qwen3_chatml", "<|im_start|> assistant <think> </think>")],
)
def test_chat_format_and_loss_on_the_answer_only(chat: str, prompt_end: str) -> None:
    tok = tokenizer(chat)
    train = SampleDataset(SAMPLES, FpsSampler(fps=1), tok)
    id_list, label_list = train.tokens(SAMPLES[1])  # two turns: rendered turn by turn
    ids, labels = torch.tensor(id_list), torch.tensor(label_list)
    trained = tok.decode(ids[labels != IGNORE].tolist()).split()
    assert trained == ["yes", "<|im_end|>", "yes", "again", "<|im_end|>"]
    assert tok.unk_token_id not in ids.tolist()
    prompt = SampleDataset(SAMPLES, FpsSampler(fps=1), tok, train=False).tokens(SAMPLES[0])[0]
    assert tok.decode(prompt).endswith(prompt_end)
    # the loss is the cross-entropy of exactly the labelled tokens
    cfg = cfg_with("llm=qwen3-0.6b" if chat == "qwen3_chatml" else "llm=qwen0.5b")
    model = tiny_model(tok, cfg=cfg)
    batch = collate([train[0], train[1]])
    x, mask, y, _ = model._sequences(batch)
    logits = model.llm(inputs_embeds=x, attention_mask=mask).logits[:, :-1]
    target = y[:, 1:]
    manual = torch.nn.functional.cross_entropy(logits[target != IGNORE], target[target != IGNORE])
    assert torch.allclose(model.loss(batch), manual, atol=1e-5)
    assert int((target != IGNORE).sum()) == 2 + 5  # "A <|im_end|>" and the two answers above


def test_pretrained_templates_are_rendered_without_thinking() -> None:
    tok = tokenizer("qwen3_chatml")  # knows <think>; its own template replaced below
    # a template that, like Qwen3's own, writes an empty think block when thinking is off
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant"
        "{% if enable_thinking is defined and enable_thinking is false %} <think> </think>"
        "{% endif %}{% endif %}"
    )
    ev = SampleDataset(SAMPLES, FpsSampler(fps=1), tok, train=False)
    assert tok.decode(ev.tokens(SAMPLES[0])[0]).endswith("assistant <think> </think>")


# tied and untied embeddings (every option builds in test_configs)
@pytest.mark.parametrize("option", ["qwen3-0.6b", "qwen3-8b"])
def test_qwen3_tiny_trains_one_batch(option: str) -> None:
    cfg = cfg_with(f"llm={option}")
    tok = tokenizer(cfg.llm.chat_template)
    torch.manual_seed(0)
    model = tiny_model(tok, cfg=cfg)
    arch = shrink_arch(cfg.llm.arch, cfg.profile)
    assert model.llm.config.head_dim == arch["head_dim"] == 32  # 128 / (16 / 4): width / heads, shrunk
    batch = collate([SampleDataset(SAMPLES, FpsSampler(fps=1), tok)[k] for k in range(2)])
    opt = torch.optim.SGD(model.llm.parameters(), lr=1e-2)  # a small step down the gradient
    first = model.loss(batch)
    first.backward()
    opt.step()
    assert torch.isfinite(first) and model.loss(batch) < first  # one step on the batch lowers its loss


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    cfg = cfg_with("llm=qwen0.5b")
    plain = build_llm(cfg.llm, cfg.profile, vocab_size=40)
    ckpt = apply_switches(copy.deepcopy(plain), "float32", True, "llm")
    assert ckpt.is_activation_checkpointing and not plain.is_activation_checkpointing
    x = torch.randn(2, 7, plain.config.hidden_size)
    for m in (plain, ckpt):
        m.train()
        m(inputs_embeds=x).logits.square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert a.grad is not None and b.grad is not None, name
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_switches_come_from_the_config_when_building() -> None:
    cfg = cfg_with("llm=qwen3-0.6b", "llm.dtype=bfloat16", "llm.gradient_checkpointing=true")
    llm = build_llm(cfg.llm, cfg.profile, vocab_size=40)
    assert {p.dtype for p in llm.parameters()} == {torch.bfloat16} and llm.is_activation_checkpointing
    llm.train()
    llm(inputs_embeds=torch.randn(1, 5, llm.config.hidden_size, dtype=torch.bfloat16)).logits.sum().backward()
    assert all(p.grad is not None for p in llm.parameters() if p.requires_grad)
    pre = cfg_with("profile=pretrained")
    assert (pre.llm.dtype, pre.llm.gradient_checkpointing) == ("bfloat16", True)
    tiny = cfg_with()
    assert (tiny.llm.dtype, tiny.llm.gradient_checkpointing) == ("float32", False)


def test_encoder_switches() -> None:
    from transformers import PreTrainedModel

    enc = apply_switches(instantiate(cfg_with().encoder), "bfloat16", True, "encoder")
    hf = [m for m in enc.modules() if isinstance(m, PreTrainedModel)]
    assert hf and hf[0].is_activation_checkpointing and {p.dtype for p in enc.parameters()} == {torch.bfloat16}
    grid = enc.encode(torch.randint(0, 255, (2, enc.frames_per_clip, 32, 32, 3), dtype=torch.uint8))
    assert grid.dtype == torch.bfloat16 and torch.isfinite(grid.float()).all()


def test_pretrained_checkpoint_loads_into_bf16_with_checkpointing(tmp_path) -> None:
    cfg = cfg_with("llm=qwen3-0.6b")
    saved = build_llm(cfg.llm, cfg.profile, vocab_size=40)
    saved.save_pretrained(tmp_path / "llm")
    pre = cfg_with("llm=qwen3-0.6b", "profile=pretrained", f"llm.pretrained={tmp_path / 'llm'}")
    loaded = build_llm(pre.llm, pre.profile, vocab_size=40)
    assert loaded.is_activation_checkpointing and {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    for (name, a), b in zip(saved.named_parameters(), loaded.parameters()):
        assert torch.equal(a.to(torch.bfloat16), b), name


@pytest.mark.parametrize("option", ["qwen0.5b", "qwen4b", "qwen3-0.6b"])
def test_a_replica_starts_with_its_real_models_layer_gain(option: str) -> None:
    """transformers draws the weights from N(0, initializer_range²), 0.02 for every Qwen; a
    replica width_div times narrower draws them sqrt(width_div) times wider, so that a
    layer's gain std·sqrt(width) is the real model's (replica_init_std)."""
    cfg = cfg_with(f"llm={option}")
    torch.manual_seed(0)
    tiny = build_llm(cfg.llm, cfg.profile, vocab_size=64)
    real_width, width = cfg.llm.arch.hidden_size, tiny.config.hidden_size
    assert real_width / width == cfg.profile.width_div == 16
    assert tiny.config.initializer_range == pytest.approx(0.02 * 4)
    w = tiny.model.layers[0].mlp.down_proj.weight  # drawn from N(0, initializer_range²)
    assert float(w.std()) == pytest.approx(0.08, rel=0.05)
    assert float(w.std()) * width**0.5 == pytest.approx(0.02 * real_width**0.5, rel=0.05)
    full = cfg_with(f"llm={option}", "profile=fullsize")
    assert replica_init_std(full.llm.arch, full.profile) == 0.02  # factors of 1: the real value
