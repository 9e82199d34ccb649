"""The loading benchmark measures videos, clips and frames per second for each sampler and
decode mode, and prints one row per source, sampler, decode mode and worker count."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import loading
from src.data.dataset import SampleDataset
from src.data.samplers import FpsSampler, UniformSampler
from src.data.synthetic import SyntheticSpec, ensure
from tests.helpers import word_tokenizer


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = ensure(
        SyntheticSpec(n_train=8, n_eval=1, min_duration=2, max_duration=3, n_image=0, n_multi_image=0, n_text=0),
        tmp_path_factory.mktemp("loading"),
        progress=False,
    )
    return folder / "train.jsonl"


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_loading_measures_each_sampler_and_decode_mode(manifest: Path, source: str) -> None:
    rows = loading.synthetic_rows(4, manifest) if source == "synthetic" else loading.real_rows(4, loading.REAL)
    tok = word_tokenizer(rows)
    for name, sampler in (("fps", FpsSampler(fps=2.0)), ("uniform", UniformSampler(num_frames=8))):
        for dataset in (SampleDataset, loading.DecodeAllDataset):
            r = loading.measure(dataset(rows, sampler, tok), workers=0, seconds=0.2, batch_size=2)
            assert r["videos/s"] > 0 and r["clips/s"] >= r["videos/s"], (name, dataset, r)
            assert r["frames/s"] == r["clips/s"]  # image-encoder clips: one frame each
            if name == "uniform":  # 8 frames of every video, whatever its length
                assert r["clips/s"] == pytest.approx(8 * r["videos/s"])


def test_loading_benchmark_prints_its_table(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        loading.main(
            ["--manifest", str(manifest), "--videos", "2", "--batch", "2", "--seconds", "0.05", "--workers", "0"]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["source", "sampler"]
    assert len(lines[2:]) == 2 * 2 * 2 * 1  # sources x samplers x decode modes x worker counts
