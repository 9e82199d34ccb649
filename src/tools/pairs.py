"""Writes the pair options of the `encoder` group (`conf/encoder/<a>+<b>.yaml`) from the single ones.

    python -m src.tools.pairs           # write every pair file, remove stale ones
    python -m src.tools.pairs --check   # exit 1 if the files differ from what it writes

A pair file is a few lines: its two members are the single options themselves, pulled in
through Hydra's defaults list (`/encoder@members.<name>: <name>`), so a pair never repeats
a member's settings and `encoder.members.<name>.<key>=...` overrides one member. Every
unordered pair of single options gets one file, under one name: the video encoder first
(the paper's `InternVideo2+SigLIP`), alphabetical between two of a kind. The pair's clip
is its longest member's (`frames_per_clip`); `encoder.trust_remote_code` reaches the
members that load remote code. tests/models/test_encoders.py checks the files against this script.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

from src.config.compose import CONF_DIR, SEP, pair_name, single_options


def pair_yaml(name: str, singles: dict[str, dict[str, Any]]) -> str:
    members = name.split(SEP)
    longest = max(members, key=lambda m: singles[m]["frames_per_clip"])  # first on a tie
    remote = [m for m in members if "trust_remote_code" in singles[m]]
    lines = [
        f"# {' + '.join(members)}, fused: each grid interpolated (trilinear) to one (t, h, w) and",
        "# concatenated along channels (src/models/encoders/fused.py). Written by",
        "# `python -m src.tools.pairs` from the single options: do not edit.",
        "defaults:",
        *(f"  - /encoder@members.{m}: {m}" for m in members),
        "  - _self_",
        "_target_: src.models.encoders.fused.FusedEncoder",
        f"name: {name}",
        f"frames_per_clip: ${{.members.{longest}.frames_per_clip}}",
    ]
    if remote:
        lines += ["trust_remote_code: false", "members:"]
        lines += [f"  {m}:\n    trust_remote_code: ${{encoder.trust_remote_code}}" for m in remote]
    return "\n".join(lines) + "\n"


def expected_files(conf_dir: Path = CONF_DIR) -> dict[str, str]:
    """File name -> text of every pair option."""
    singles = single_options(conf_dir)
    names = {pair_name(a, b, singles) for a, b in itertools.combinations(sorted(singles), 2)}
    return {f"{n}.yaml": pair_yaml(n, singles) for n in sorted(names)}


def written_files(conf_dir: Path = CONF_DIR) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((conf_dir / "encoder").glob(f"*{SEP}*.yaml"))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.tools.pairs", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 on any difference")
    args = p.parse_args(argv)
    want, have = expected_files(), written_files()
    stale = sorted(set(have) - set(want))
    changed = sorted(n for n in want if have.get(n) != want[n])
    if args.check:
        for n in stale + changed:
            print(f"differs: conf/encoder/{n}", file=sys.stderr)
        return 1 if stale or changed else 0
    for n in stale:
        (CONF_DIR / "encoder" / n).unlink()
    for n in changed:
        (CONF_DIR / "encoder" / n).write_text(want[n])
    print(f"{len(want)} pair files in conf/encoder/: {len(changed)} written, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
