"""Slow, obviously-correct twins of rtm.selection used by the tests.

No collapsing, no kernels: statsmodels fits on the raw rows, scipy's L-BFGS-B on
the penalized objective, plain loops for the folds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import optimize
from statsmodels.discrete.discrete_model import NegativeBinomial


@dataclass
class NaiveFit:
    params: np.ndarray  # intercept first, then the columns (dispersion excluded)
    bse: np.ndarray
    pvalues: np.ndarray
    llf: float
    bic: float
    converged: bool
    alpha: float | None  # statsmodels' NB alpha (1/theta for nb2, sigma for nb1)


def naive_fit(X: np.ndarray, y: np.ndarray, distribution: str) -> NaiveFit:
    """Fit with statsmodels on the uncollapsed rows; BIC with n = number of rows."""
    exog = np.column_stack([np.ones(len(y)), np.asarray(X, dtype=float)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if distribution == "poisson":
            res = sm.GLM(y, exog, family=sm.families.Poisson()).fit(tol=1e-12, maxiter=200)
            params, bse, pvalues = res.params, res.bse, res.pvalues
            k = len(params)
            alpha = None
            converged = bool(res.converged)
        else:
            method = {"nb2": "nb2", "nbii": "nb1"}[distribution]
            model = NegativeBinomial(y, exog, loglike_method=method)
            res = model.fit(method="newton", maxiter=300, disp=0, tol=1e-12)
            if not res.mle_retvals.get("converged", False):
                res = model.fit(method="bfgs", maxiter=2000, disp=0, gtol=1e-10)
                res = model.fit(
                    start_params=res.params, method="newton", maxiter=300, disp=0, tol=1e-12
                )
            params, bse, pvalues = res.params[:-1], res.bse[:-1], res.pvalues[:-1]
            k = len(res.params)
            alpha = float(res.params[-1])
            converged = bool(res.mle_retvals.get("converged", False))
            if not np.all(np.isfinite(res.params)) or alpha < 1e-6:
                # statsmodels breaks down at the Poisson boundary (alpha -> 0): the
                # NB maximum there is the Poisson fit, with the dispersion still counted
                pois = sm.GLM(y, exog, family=sm.families.Poisson()).fit(tol=1e-12, maxiter=200)
                res, params, bse, pvalues = pois, pois.params, pois.bse, pois.pvalues
                alpha, converged = 0.0, bool(pois.converged)
    llf = float(res.llf)
    return NaiveFit(
        np.asarray(params),
        np.asarray(bse),
        np.asarray(pvalues),
        llf,
        -2 * llf + k * np.log(len(y)),
        converged,
        alpha,
    )


def naive_admissible(fit: NaiveFit, alpha: float) -> bool:
    coef, p = fit.params[1:], fit.pvalues[1:]
    return (
        fit.converged
        and bool(np.all(np.isfinite(p)))
        and bool(np.all(coef > 0) and np.all(p < alpha))
    )


def naive_stepwise(
    X, y, groups, distribution: str, alpha: float = 0.05
) -> tuple[tuple[int, ...], float]:
    """The same bidirectional search, refitting every model from scratch."""
    n_cand = X.shape[1]
    current: tuple[int, ...] = ()
    current_bic = naive_fit(X[:, []], y, distribution).bic
    for _ in range(2 * n_cand + 2):
        best = None
        used = {groups[j] for j in current}
        for j in range(n_cand):
            if groups[j] in used or X[:, j].min() == X[:, j].max():
                continue
            model = tuple(sorted(current + (j,)))
            fit = naive_fit(X[:, list(model)], y, distribution)
            if naive_admissible(fit, alpha):
                cand = (fit.bic, j, 0, model)
                best = cand if best is None or cand[:3] < best[:3] else best
        for j in current:
            model = tuple(c for c in current if c != j)
            fit = naive_fit(X[:, list(model)], y, distribution)
            if not model or naive_admissible(fit, alpha):
                cand = (fit.bic, j, 1, model)
                best = cand if best is None or cand[:3] < best[:3] else best
        if best is None or not best[0] < current_bic:
            break
        current_bic, current = best[0], best[3]
    return current, current_bic


def naive_folds(y, n_folds: int, seed: int) -> np.ndarray:
    """Sort by count (ties by a seeded permutation), deal 0, 1, ..., n_folds-1, 0, ..."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    keyed = sorted(range(len(y)), key=lambda pos: (y[perm[pos]], pos))
    folds = np.empty(len(y), dtype=int)
    for rank, pos in enumerate(keyed):
        folds[perm[pos]] = rank % n_folds
    return folds


def naive_enet(X, y, lam: float, l1_ratio: float, weights=None, standardize: bool = True):
    """Minimize glmnet's nonnegative Poisson elastic-net objective with L-BFGS-B.

    Works on the standardized scale (columns divided by their 1/n standard
    deviation) and maps back; returns (intercept, coef on the original scale).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    mean = w @ X
    sd = np.sqrt(w @ (X - mean) ** 2) if standardize else np.ones(X.shape[1])
    Z = (X - mean) / sd  # centring only moves the intercept

    def objective(theta):
        b0, b = theta[0], theta[1:]
        eta = b0 + Z @ b
        mu = np.exp(eta)
        loss = w @ (mu - y * eta)
        pen = lam * (l1_ratio * b.sum() + 0.5 * (1 - l1_ratio) * b @ b)
        resid = w * (mu - y)
        grad = np.concatenate([[resid.sum()], Z.T @ resid + lam * (l1_ratio + (1 - l1_ratio) * b)])
        return loss + pen, grad

    # b >= 0 on the original scale is b >= 0 here too (sd > 0); a 0/-1 column keeps its sign
    start = np.concatenate([[np.log(w @ y)], np.zeros(X.shape[1])])
    bounds = [(None, None)] + [(0, None)] * X.shape[1]
    res = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 20000, "maxcor": 30},
    )
    b = res.x[1:] / sd
    b0 = res.x[0] - mean @ b
    return b0, b


def naive_extended_collapse(ids, bits, nonzero_j, position, sign, y, w, distribution):
    """The numpy route to the collapsed data of a base model plus one column.

    Pattern (base id, bit of the new column), renumbered in increasing order; rows
    summed by ``np.bincount`` per pattern (Poisson) or per (pattern, count) (NB).
    Returns ``(design rows, y, w, design_group)``.
    """
    pattern = 2 * ids + nonzero_j
    present = np.flatnonzero(np.bincount(pattern, minlength=2 * bits.shape[0]))
    renumber = np.empty(2 * bits.shape[0], dtype=np.int64)
    renumber[present] = np.arange(present.size)
    new_bits = np.insert(bits[present >> 1], position, present & 1, axis=1)
    rows = np.column_stack([np.ones(new_bits.shape[0]), new_bits * sign])
    pattern = renumber[pattern]
    if distribution == "poisson":
        wsum = np.bincount(pattern, weights=w, minlength=present.size)
        ysum = np.bincount(pattern, weights=w * y, minlength=present.size)
        used = np.flatnonzero(wsum > 0)
        return rows[used], ysum[used], wsum[used], None
    y_levels = int(y.max()) + 1
    key = pattern * y_levels + y
    wsum = np.bincount(key, weights=w, minlength=present.size * y_levels)
    used = np.flatnonzero(wsum > 0)
    pat_used, y_used = np.divmod(used, y_levels)
    return rows[pat_used], y_used.astype(np.float64), wsum[used], pat_used
