"""The Apollo paper's own numbers (analysis/reference/apollo_2412.10360/), shaped for figures.

Each loader reads one transcribed table and returns it in the shape the matching
`analysis.axes` summary has, with the paper's ApolloBench overall score (in %) as
`mean`, so that a figure can draw "paper" beside "ours" with the same code. The tables,
their source and their caveats are described in the folder's README.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REFERENCE = Path(__file__).resolve().parent / "reference" / "apollo_2412.10360"
SOURCE = "Apollo (arXiv 2412.10360)"
# our encoder option -> the paper's name for the same checkpoint (Table 9)
ENCODER_NAMES = {
    "siglip": "SigLIP-SO400M",
    "dinov2": "DINOv2",
    "languagebind_image": "LanguageBind-Image",
    "languagebind_video": "LanguageBind-Video",
    "internvideo2": "InternVideo2",
    "videomae": "VideoMAE",
    "vjepa": "V-JEPA",
}


def table(name: str) -> pd.DataFrame:
    """One reference CSV by file name (e.g. `table10_fps_tps_tpf.csv`)."""
    path = REFERENCE / name
    if not path.is_file():
        raise FileNotFoundError(f"reference table {path} is missing; it ships with the project")
    return pd.read_csv(path)


def sampling() -> pd.DataFrame:
    """Table 11: trained with uniform N frames, tested uniform-N or at 2 fps (Fig. 4 left)."""
    t = table("table11_uniform_sampling.csv")
    tested = t["test_sampling"].str.startswith("fps").map({True: "tested at 2 fps", False: "tested uniform"})
    return pd.DataFrame({"train_frames": t["train_uniform_frames"], "tested": tested, "mean": t["Overall"]})


def fps_tps() -> pd.DataFrame:
    """Table 10: the fps × tokens-per-second grid, 28 runs (Fig. 4 right)."""
    t = table("table10_fps_tps_tpf.csv")
    return pd.DataFrame(
        {
            "fps": t["fps"].astype(float),
            "tps": t["tps"].astype(float),
            "tpf": t["tpf"].astype(float),
            "mean": t["Overall"],
            "n": 1,
        }
    )


def trends() -> dict[str, pd.DataFrame]:
    """Table 10 averaged per fps, per tokens per second and per tokens per frame (Fig. 10)."""
    t = fps_tps()
    out = {}
    for col, key in (("design.fps", "fps"), ("design.tokens_per_second", "tps"), ("design.tokens_per_frame", "tpf")):
        g = t.groupby(key)["mean"].agg(["mean", "min", "max", "count"]).rename(columns={"count": "n"})
        out[col] = g.reset_index().rename(columns={key: col})
    return out


def encoders() -> pd.DataFrame:
    """Table 9: 7 single encoders and 12 pairs with Qwen2.5-3B, best first (Fig. 5)."""
    t = table("table9_vision_encoders.csv")
    return pd.DataFrame(
        {"encoder": t["vision_encoders"], "n_encoders": t["n_encoders"], "mean": t["Overall"]}
    ).sort_values("mean", ascending=False, ignore_index=True)


def paper_encoder_name(ours: str) -> str | None:
    """`siglip` -> `SigLIP-SO400M`; a fused pair `siglip+dinov2` -> the paper's pair name order-free."""
    parts = [p for p in ours.split("+") if p]
    names = [ENCODER_NAMES.get(p) for p in parts]
    if not names or None in names:
        return None
    want = set(names)
    for name in encoders()["encoder"]:
        if set(name.split("+")) == want:
            return str(name)
    return None


def mixtures() -> pd.DataFrame:
    """Table 13: the 13 mixtures (our options paper01..paper13), by text share (Fig. 6)."""
    t = table("table13_data_composition.csv")
    return pd.DataFrame(
        {
            "mixture": [f"paper{r:02d}" for r in t["row"]],
            "text": t["text_pct"] / 100,
            "video": t["video_pct"] / 100,
            "mean": t["Overall"],
        }
    ).sort_values(["text", "mixture"], ignore_index=True)
