"""The 2PL fit, the subset selections and the full-score estimators, on hand-computed and
simulated tables (analysis/irt.py, analysis/subsets.py, analysis/heldout.py)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import heldout, irt
from analysis.subsets import Fit, anchors, estimate, select, top, weighted_mean


def population(
    models: int, items: int, seed: int = 0, difficulty: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(0/1 answers, true abilities, true P(right)) of a simulated 2PL population."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=models)
    a, b = rng.lognormal(0.0, 0.3, items), rng.normal(0.0, 1.0, items)
    p = 1 / (1 + np.exp(-(np.outer(theta, a) - b)))
    if difficulty is not None:
        difficulty[:] = b
    return (rng.random(p.shape) < p).astype(float), theta, p


def test_the_2pl_fit_recovers_a_simulated_population() -> None:
    b = np.zeros(150)
    y, theta, p = population(200, 150, difficulty=b)
    fitted, items = irt.fit(y)
    # abilities are identified up to the prior's scale: their order comes back, and so do
    # the difficulties
    assert np.corrcoef(fitted[:, 0], theta)[0, 1] > 0.95
    assert np.corrcoef(items.b, b)[0, 1] > 0.95
    # each model's expected full score: within 0.04 of its observed score, and as close to
    # the truth (the mean of its true P(right)) as the observed score is (150 items: the
    # sampling error is about 0.03)
    expected = irt.probabilities(fitted, items).mean(1)
    assert np.abs(expected - y.mean(1)).max() < 0.04
    assert np.abs(expected - p.mean(1)).mean() < min(0.035, np.abs(y.mean(1) - p.mean(1)).mean() + 0.005)


def test_abilities_of_new_models_from_a_subset_estimate_their_full_scores() -> None:
    y, theta, p = population(260, 200, seed=1)
    _, items = irt.fit(y[:200])
    subset = np.arange(0, 200, 4)  # 50 items
    new = irt.abilities(y[200:, subset], items.subset(subset))
    assert np.corrcoef(new[:, 0], theta[200:])[0, 1] > 0.85
    fit = Fit(y[:200], items)
    w = np.full(len(subset), 1 / len(subset))
    for method in ("irt", "pirt", "gpirt"):
        est = estimate(method, fit, subset, w, y[200:, subset])
        assert np.abs(est - y[200:].mean(1)).mean() < 0.05, method


def constant_items(n: int) -> irt.Items:
    # a = 0: P(right) = sigmoid(-b) whatever the ability, so every estimate is hand-computable
    return irt.Items(np.zeros((n, 1)), np.zeros(n))


def test_estimators_on_a_hand_computed_table() -> None:
    # two items at P = 0.5; training models right on both and on neither; items[0] seen
    fit = Fit(np.array([[1.0, 1.0], [0.0, 0.0]]), constant_items(2))
    idx, w, y = np.array([0]), np.array([1.0]), np.array([[1.0]])
    assert estimate("mean", fit, idx, w, y) == pytest.approx([1.0])
    assert estimate("irt", fit, idx, w, y) == pytest.approx([0.5])
    assert estimate("pirt", fit, idx, w, y) == pytest.approx([0.75])  # (1 + 0.5) / 2
    # gp-IRT: p-IRT's squared error on training is 0.25^2 = 0.0625, the mean's variance
    # 0.5 * 0.5 = 0.25: lambda = 0.0625 / 0.3125 = 0.2, and 0.2 * 1 + 0.8 * 0.75 = 0.8
    assert estimate("gpirt", fit, idx, w, y) == pytest.approx([0.8])
    assert estimate("gpirt", fit, idx, w, y, unbiased=False) == pytest.approx([0.75])


def test_the_weighted_mean_skips_missing_answers() -> None:
    y = np.array([[1.0, 0.0, np.nan], [0.5, 0.5, 1.0]])
    assert weighted_mean(y, np.array([0.5, 0.25, 0.25])) == pytest.approx([2 / 3, 0.625])


def test_anchor_points_take_the_item_nearest_each_centre_weighted_by_its_cluster() -> None:
    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.04, 0.03], [5.0, 5.0]])
    idx, w = anchors(x, 2, np.random.default_rng(0))
    got = dict(zip(idx.tolist(), w.tolist(), strict=True))
    assert got == {3: pytest.approx(0.8), 4: pytest.approx(0.2)}  # (0.035, 0.0325) is the centre


@pytest.mark.parametrize("method", ["random", "entropy", "pointbiserial", "anchor", "anchor-irt"])
def test_every_selection_keeps_k_eligible_items_with_weights_summing_to_one(method: str) -> None:
    y, _, _ = population(40, 30, seed=2)
    fit = Fit(y, irt.fit(y)[1])
    eligible = np.arange(30) % 3 != 0
    idx, w = select(method, fit, 8, np.random.default_rng(0), eligible=eligible)
    assert len(idx) == 8 and len(set(idx.tolist())) == 8 and eligible[idx].all()
    assert w.sum() == pytest.approx(1.0)


def test_ties_are_broken_at_random_not_by_id() -> None:
    scores = np.zeros(10)  # every item ties
    chosen = {tuple(sorted(top(scores, 3, np.random.default_rng(s)).tolist())) for s in range(10)}
    assert len(chosen) > 1 and chosen != {(0, 1, 2)}
    assert (top(scores, 3, np.random.default_rng(4)) == top(scores, 3, np.random.default_rng(4))).all()
    # balanced: an equal share per category
    cats = np.array(["a"] * 5 + ["b"] * 5)
    assert sorted(cats[top(np.arange(10.0), 4, np.random.default_rng(0), cats)].tolist()) == ["a", "a", "b", "b"]


def test_folds_split_the_models_and_selection_sees_only_the_training_models(monkeypatch) -> None:
    folds = heldout.model_folds(23, 5, seed=3)
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(23))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 23
    assert all((a[1] == b[1]).all() for a, b in zip(folds, heldout.model_folds(23, 5, seed=3), strict=True))
    y, _, _ = population(23, 40, seed=4)
    seen: list[int] = []
    real = heldout.select

    def spy(method, fit, *args, **kwargs):
        seen.append(len(fit.train))
        return real(method, fit, *args, **kwargs)

    monkeypatch.setattr(heldout, "select", spy)
    out = heldout.validate(y, [heldout.Method("random", "random")], 10, folds=5, seed=0)
    assert seen == [len(t) for t, _ in heldout.model_folds(23, 5, seed=0)]  # 18 or 19 of the 23
    assert out["random"]["folds"] == 5 and out["random"]["items"] == 10
    assert out["random"]["mae"] > 0 and out["random"]["mae_sd"] is not None


def test_held_out_irt_beats_the_plain_mean_of_a_ranked_selection() -> None:
    # entropy picks middling items: their mean is biased, p-IRT corrects for it
    y, _, _ = population(120, 200, seed=5)
    methods = [heldout.Method("entropy", "entropy"), heldout.Method("entropy + pirt", "entropy", "pirt")]
    out = heldout.validate(y, methods, 30, folds=3, seed=0)
    assert out["entropy + pirt"]["mae"] < out["entropy"]["mae"]
