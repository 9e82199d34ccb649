"""profile=pretrained loads with from_pretrained from a local directory, through the same code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from src.run.build import build_parts
from tests.helpers import cfg_with


def test_pretrained_loads_tiny_checkpoints_saved_locally(tmp_path: Path, data_dir: Path) -> None:
    small = [
        "data.synthetic.n_train=10",
        "data.synthetic.n_eval=5",
        "data.synthetic.n_image=2",
        "data.synthetic.n_multi_image=2",
        "data.synthetic.n_text=2",
        f"paths.data_dir={data_dir}",
    ]
    # save a tiny encoder, LLM and tokenizer as if they were checkpoints
    tiny = build_parts(cfg_with(*small))
    encoder: Any = tiny.model.encoder  # a transformers tower's wrapper (it has a `model`)
    encoder.model.save_pretrained(tmp_path / "enc")
    tiny.model.llm.save_pretrained(tmp_path / "llm")
    tiny.tokenizer.save_pretrained(tmp_path / "llm")

    # float32, as the checkpoints were saved (profile=pretrained's default bfloat16 would round
    # them; tests/models/test_llm_family.py checks that path)
    cfg = cfg_with(
        *small,
        "profile=pretrained",
        "profile.dtype=float32",
        f"encoder.pretrained={tmp_path / 'enc'}",
        f"llm.pretrained={tmp_path / 'llm'}",
        f"encoder.input_size={tiny.model.encoder.input_size}",
    )
    parts = build_parts(cfg)
    for a, b in ((tiny.model.encoder, parts.model.encoder), (tiny.model.llm, parts.model.llm)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert parts.tokenizer.get_vocab() == tiny.tokenizer.get_vocab()
    frames = torch.randint(0, 255, (2, 1, 64, 64, 3), dtype=torch.uint8)
    assert torch.equal(tiny.model.encoder.encode(frames), parts.model.encoder.encode(frames))
    assert instantiate(cfg.sampler) is not None
