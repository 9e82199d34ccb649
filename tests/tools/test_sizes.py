"""`python -m src.tools.sizes`: real and tiny parameter counts, one row per single option."""

from __future__ import annotations

import pytest

from src.config.compose import SEP, group_options
from src.tools import sizes


def test_the_command_prints_a_row_per_llm_and_single_encoder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def count(option: str, profile: dict, **_: object) -> int:
        return 2_000_000_000 if profile is sizes.REAL else 1_000_000

    monkeypatch.setattr(sizes, "llm_params", count)
    monkeypatch.setattr(sizes, "encoder_params", count)
    assert sizes.main([]) == 0
    out = capsys.readouterr().out
    rows = [f"{g}={o}" for g in ("llm", "encoder") for o in group_options(g) if SEP not in o]
    assert all(f"| {r} | 2.00 B | 1.00 M | 2,000 |" in out for r in rows)
    printed = [ln for ln in out.splitlines() if ln.startswith(("| llm=", "| encoder="))]
    assert len(printed) == len(rows)  # no pair of encoders: a pair is its members' sum
