"""Data mixtures: the shares of text, image, multi-image and video samples in an epoch.

Apollo (Table 13) trains on mixtures such as 15% text, 25% image, 20% multi-image and
40% video and finds that 10 to 15% text is needed. A `MixtureSampler` draws each epoch
`epoch_size` samples with these shares: the counts are rounded by largest remainder, so
every share is met within 1 / epoch_size. A modality with fewer samples than its count
is repeated (every sample once before any twice); one with more is subsampled, a new
draw each epoch. The compute budget (`epoch_size`, by default the number of training
samples) stays the same whatever the mixture, so that mixtures compare fairly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from omegaconf import DictConfig

from src.config.constraints import Constraints, Rule, nullable, positive_int
from src.config.container import to_dict
from src.config.errors import ConfigError
from src.data.errors import DataError
from src.data.manifest import MODALITIES
from src.data.order import Order


def check_shares(shares: Mapping[str, float], name: str = "mixture") -> dict[str, float]:
    """Shares of the four modalities (absent ones 0) that sum to 1."""
    unknown = set(shares) - set(MODALITIES)
    if unknown:
        raise DataError(f"{name}.shares: unknown modality {sorted(unknown)}; valid: {', '.join(MODALITIES)}")
    out = {m: float(shares.get(m, 0.0)) for m in MODALITIES}
    if any(not math.isfinite(v) or v < 0 for v in out.values()):
        raise DataError(f"{name}.shares={out} is invalid; valid: shares >= 0")
    if abs(sum(out.values()) - 1.0) > 1e-6:
        raise DataError(f"{name}.shares={out} sum to {sum(out.values()):.4f}; valid: they sum to 1")
    return out


DROPOUT_MODALITIES = ("frame", "text")  # how a training video may be shown instead (modality dropout)


def check_dropout(shares: Mapping[str, float] | None, name: str = "data.modality_dropout") -> dict[str, float]:
    """{"frame": p, "text": q}: each share in [0, 1), their sum below 1, absent ones 0."""
    if shares is not None and not isinstance(shares, Mapping):
        raise DataError(f"{name}={shares!r} is invalid; valid: {{frame: p, text: q}}, e.g. {name}.text=0.1")
    shares = dict(shares or {})
    unknown = set(shares) - set(DROPOUT_MODALITIES)
    if unknown:
        raise DataError(f"{name}: unknown modality {sorted(unknown)}; valid: {', '.join(DROPOUT_MODALITIES)}")
    try:
        out = {m: float(shares.get(m) or 0.0) for m in DROPOUT_MODALITIES}
    except (TypeError, ValueError):
        raise DataError(f"{name}={shares} is invalid; valid: numbers, e.g. {{frame: 0.1, text: 0.1}}") from None
    if any(not 0 <= v < 1 for v in out.values()) or sum(out.values()) >= 1:
        raise DataError(f"{name}={out} is invalid; valid: each share in [0, 1), their sum below 1")
    return out


def _check_mixture(mixture: DictConfig, key: str, root: DictConfig) -> None:
    if mixture.get("shares") is not None:
        try:
            check_shares(to_dict(mixture.shares), key)
        except DataError as e:
            raise ConfigError(str(e)) from None


CONSTRAINTS = Constraints(  # conf/mixture/*.yaml
    Rule("epoch_size", nullable(positive_int), "an integer > 0, or null"),
    check=_check_mixture,
)


def epoch_counts(shares: Mapping[str, float], size: int) -> dict[str, int]:
    """Samples of each modality in an epoch of `size`, rounded by largest remainder."""
    # rounded so that 0.15 * 36 (5.3999...) and 0.4 * 36 (14.4) tie; ties go in MODALITIES order
    exact = {m: round(shares[m] * size, 9) for m in MODALITIES}
    counts = {m: math.floor(v) for m, v in exact.items()}
    by_remainder = sorted(MODALITIES, key=lambda m: counts[m] - exact[m])
    for m in by_remainder[: size - sum(counts.values())]:
        counts[m] += 1
    return counts


class MixtureSampler(Order):
    """Indices of one epoch with the mixture's shares; a new draw each epoch (see Order)."""

    def __init__(
        self,
        modalities: Sequence[str],
        shares: Mapping[str, float],
        epoch_size: int | None = None,
        seed: int = 0,
        name: str = "mixture",
    ) -> None:
        super().__init__(seed)
        self.shares = check_shares(shares, name)
        self.pools = {m: np.flatnonzero(np.asarray(modalities) == m) for m in MODALITIES}
        lacking = [m for m in MODALITIES if self.shares[m] > 0 and len(self.pools[m]) == 0]
        if lacking:
            have = {m: len(p) for m, p in self.pools.items() if len(p)}
            raise DataError(
                f"{name} asks for {', '.join(f'{self.shares[m]:.0%} {m}' for m in lacking)} "
                f"samples, but the training data has none (it has {have})"
            )
        self._epoch_size = int(epoch_size or len(modalities))
        if self._epoch_size < 1:
            raise DataError(f"{name}.epoch_size={epoch_size} is invalid; valid: an integer >= 1")
        self.counts = epoch_counts(self.shares, self._epoch_size)

    @property
    def epoch_size(self) -> int:
        return self._epoch_size

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        chosen = []
        for m in MODALITIES:
            pool, count = self.pools[m], self.counts[m]
            if count:
                rounds = -(-count // len(pool))  # each sample once per round
                order = np.concatenate([rng.permutation(pool) for _ in range(rounds)])
                chosen.append(order[:count])
        indices = np.concatenate(chosen)
        rng.shuffle(indices)
        return indices
