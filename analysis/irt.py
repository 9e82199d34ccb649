"""A two-parameter logistic IRT model (2PL, optionally multidimensional), fitted by MAP.

    P(model j right on item i) = sigmoid(theta_j . a_i - b_i)

`theta_j` (D numbers) is a model's ability, `a_i` (D numbers) an item's discrimination
and `b_i` its difficulty; D = 1 is the classic 2PL. Scores in [0, 1] (win probabilities,
judge ratings) enter the Bernoulli likelihood as soft labels; NaN cells (missing answers)
are left out of it. Priors: theta ~ N(0, 1), a ~ N(1, 1) on the first dimension and
N(0, 1) on the others, b ~ N(0, 3^2): they make the joint fit well posed (a model right
on every item gets a finite ability) and fix the scale.

The fit is joint maximum a posteriori by L-BFGS (scipy) on analytic gradients: a few
hundred iterations on a 200 x 1000 table take about a second. Why not a library: py-irt
pulls in pyro, scikit-learn, typer and wants Python < 3.12; girth (numpy and scipy only)
takes 0/1 answers only and has not had a release since 2021; neither takes soft labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

PRIOR_B = 3.0


@dataclass(frozen=True)
class Items:
    """Item parameters: `a` (items x D) discriminations, `b` (items,) difficulties."""

    a: np.ndarray
    b: np.ndarray

    def subset(self, idx: np.ndarray) -> Items:
        return Items(self.a[idx], self.b[idx])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def probabilities(theta: np.ndarray, items: Items) -> np.ndarray:
    """P(right), models x items, for abilities `theta` (models x D)."""
    return _sigmoid(theta @ items.a.T - items.b)


def _nll(logits: np.ndarray, y: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """Masked Bernoulli negative log-likelihood of soft labels `y` and its gradient in the logits."""
    # -[y log s + (1-y) log(1-s)] = softplus(z) - y z
    e = np.exp(-np.abs(logits))
    softplus = np.maximum(logits, 0.0) + np.log1p(e)
    loss = float((mask * (softplus - y * logits)).sum())
    return loss, mask * (np.where(logits >= 0, 1.0, e) / (1.0 + e) - y)


def _prep(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"an IRT table is models x items; got {y.ndim} dimensions")
    mask = np.isfinite(y)
    if (y[mask] < 0).any() or (y[mask] > 1).any():
        raise ValueError("IRT scores must lie in [0, 1]")
    return np.where(mask, y, 0.0), mask.astype(float)


def fit(y: np.ndarray, dim: int = 1, iters: int = 150, seed: int = 0) -> tuple[np.ndarray, Items]:
    """(abilities, models x dim; item parameters) fitted jointly on `y` (models x items)."""
    y, mask = _prep(y)
    m, n = y.shape
    rng = np.random.default_rng(seed)
    acc = (y * mask).sum(1) / np.maximum(mask.sum(1), 1)
    easy = (y * mask).sum(0) / np.maximum(mask.sum(0), 1)
    theta0 = np.zeros((m, dim))
    logit_acc = np.log((acc + 0.02) / (1.02 - acc))
    theta0[:, 0] = (logit_acc - logit_acc.mean()) / (logit_acc.std() + 1e-9)
    theta0[:, 1:] = 0.1 * rng.standard_normal((m, dim - 1))
    a0 = np.zeros((n, dim))
    a0[:, 0] = 1.0
    a0[:, 1:] = 0.1 * rng.standard_normal((n, dim - 1))
    b0 = -np.log((easy + 0.02) / (1.02 - easy))
    prior_a = np.zeros((1, dim))
    prior_a[0, 0] = 1.0

    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return x[: m * dim].reshape(m, dim), x[m * dim : (m + n) * dim].reshape(n, dim), x[(m + n) * dim :]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta, a, b = split(x)
        loss, g = _nll(theta @ a.T - b, y, mask)
        loss += 0.5 * ((theta**2).sum() + ((a - prior_a) ** 2).sum() + (b**2).sum() / PRIOR_B**2)
        grad = np.concatenate(
            [(g @ a + theta).ravel(), (g.T @ theta + a - prior_a).ravel(), -g.sum(0) + b / PRIOR_B**2]
        )
        return loss, grad

    x0 = np.concatenate([theta0.ravel(), a0.ravel(), b0])
    res = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": iters})
    theta, a, b = split(res.x)
    return theta.copy(), Items(a.copy(), b.copy())


def abilities(y: np.ndarray, items: Items, iters: int = 200) -> np.ndarray:
    """Each model's ability (models x D), MAP on its answers `y` (models x items, NaN
    missing) with the item parameters fixed; a model with no answer gets the prior mean."""
    y, mask = _prep(y)
    m, dim = y.shape[0], items.a.shape[1]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = x.reshape(m, dim)
        loss, g = _nll(theta @ items.a.T - items.b, y, mask)
        return loss + 0.5 * float((theta**2).sum()), (g @ items.a + theta).ravel()

    res = minimize(objective, np.zeros(m * dim), jac=True, method="L-BFGS-B", options={"maxiter": iters})
    return res.x.reshape(m, dim)
