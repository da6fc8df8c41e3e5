"""Model selection as RTMDx does it: culling by elastic net, then stepwise BIC.

1. :func:`cull` keeps the candidates with a nonzero coefficient in a Poisson
   elastic net whose coefficients are constrained to be >= 0 and whose penalty is
   chosen by cross-validation on folds balanced on the outcome.
2. :func:`stepwise` runs a bidirectional stepwise search from the null model,
   minimizing the BIC under RTMDx's rules: at most one variable per factor and
   every factor coefficient positive and significant.
3. :func:`select_model` runs :func:`stepwise` with a Poisson and with a negative
   binomial distribution and keeps the lower BIC.

Decisions that change results (recorded in the result objects)
---------------------------------------------------------------
* Penalty scaling is glmnet's: ``mean weighted Poisson deviance / 2 + lambda *
  (l1_ratio * ||b||_1 + (1 - l1_ratio) / 2 * ||b||_2**2)`` with the penalty on the
  standardized coefficients (``standardize=True``: columns scaled by their
  weighted standard deviation with divisor ``n``, computed on each training set
  as glmnet does), so lambdas are comparable with R's ``glmnet``.
* The lambda path runs log-spaced from ``lambda_max`` -- the smallest lambda at
  which every coefficient is zero *under the >= 0 constraint* -- down to
  ``lambda_max * lambda_min_ratio``; the folds use the full-data path.
* Folds: cells sorted by count (ties broken by a permutation drawn from
  ``np.random.default_rng(seed)``) and dealt into folds in turn.
* CV statistics are glmnet's: per fold the weighted mean out-of-fold Poisson
  deviance; ``cv_mean`` is their weighted mean over folds (weights = fold
  sizes) and ``cv_se`` the weighted standard deviation over folds divided by
  ``sqrt(n_folds - 1)``. The l1_ratio with the lowest minimum ``cv_mean`` is
  kept; within it the penalty is lambda.min (``rule="min"``) or the largest
  lambda within one standard error of the minimum (``rule="1se"``).
* Stepwise BIC uses ``n`` = number of cells (sum of frequency weights) and counts
  the NB dispersion parameter. A model is admissible only if its fit converged
  without separation and every non-intercept coefficient is > 0 with a Wald
  p-value < ``alpha``. Protective candidates are coded 0/-1, so "> 0" is the
  right sign test for both kinds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from rtm._kernels import glm as _k
from rtm.errors import FitError, ParameterError
from rtm.glm import (
    DISTRIBUTIONS,
    CollapsedData,
    Distribution,
    GLMFit,
    check_choice,
    collapse_patterns,
    fit_collapsed,
    loglik_constant,
    validate_binary_design,
    validate_counts,
    validate_weights,
)

__all__ = [
    "CullResult",
    "SelectionResult",
    "StepRecord",
    "StepwiseResult",
    "cull",
    "enet_path",
    "fold_assignment",
    "select_model",
    "stepwise",
]

Rule = Literal["min", "1se"]
RULES: tuple[Rule, ...] = ("min", "1se")
NBForm = Literal["nbii", "nb2"]
NB_FORMS: tuple[NBForm, ...] = ("nbii", "nb2")

_CD_TOL = 1e-12
_MAX_IRLS = 100
_MAX_SWEEPS = 100_000


def _frozen(arr: NDArray) -> NDArray:
    arr.setflags(write=False)
    return arr


# ===========================================================================
# culling
# ===========================================================================


@dataclass(frozen=True, eq=False)
class CullResult:
    """Outcome of :func:`cull`.

    Attributes
    ----------
    survivors : tuple of int
        Candidate columns with a nonzero coefficient in the full-data fit at the
        chosen penalty, ascending.
    coef : ndarray, shape (n_candidates,)
        Coefficients (original scale of ``X``) at the chosen penalty.
    intercept : float
    l1_ratio : float
        The chosen elastic-net mixing.
    lambda_ : float
        The chosen penalty.
    lambda_index : int
        Its position in ``lambdas[l1_ratios.index(l1_ratio)]``.
    l1_ratios : tuple of float
    lambdas : ndarray, shape (n_l1_ratios, n_lambdas)
        The penalty path of each l1_ratio (decreasing).
    cv_mean, cv_se : ndarray, shape (n_l1_ratios, n_lambdas)
        Cross-validated mean Poisson deviance per cell and its standard error.
    folds : ndarray of int, shape (n_cells,)
        Fold (0-based) of each cell.
    rule : {"min", "1se"}
    standardize : bool
    seed : int
    """

    survivors: tuple[int, ...]
    coef: NDArray[np.float64]
    intercept: float
    l1_ratio: float
    lambda_: float
    lambda_index: int
    l1_ratios: tuple[float, ...]
    lambdas: NDArray[np.float64]
    cv_mean: NDArray[np.float64]
    cv_se: NDArray[np.float64]
    folds: NDArray[np.int64]
    rule: Rule
    standardize: bool
    seed: int


def fold_assignment(y: ArrayLike, n_folds: int = 5, *, seed: int = 0) -> NDArray[np.int64]:
    """Deal cells into folds balanced on the outcome.

    Cells are sorted by count, ties broken by a random permutation from
    ``np.random.default_rng(seed)``, then dealt into folds in turn
    (0, 1, ..., n_folds - 1, 0, 1, ...). Fold totals of ``y`` then differ by at
    most the largest count.

    Examples
    --------
    >>> fold_assignment([0, 5, 0, 1, 2, 0], n_folds=2, seed=0).tolist().count(0)
    3
    """
    counts = validate_counts(y)
    if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or n_folds < 2:
        raise ParameterError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    if n_folds > counts.shape[0]:
        raise ParameterError(
            f"n_folds must not exceed the number of cells ({counts.shape[0]}); got {n_folds}"
        )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(counts.shape[0])
    order = perm[np.argsort(counts[perm], kind="stable")]
    folds = np.empty(counts.shape[0], dtype=np.int64)
    folds[order] = np.arange(counts.shape[0]) % n_folds
    return folds


@dataclass(frozen=True)
class _Columns:
    """Binary candidate columns as CSC index lists (the kernel's input)."""

    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    sign: NDArray[np.float64]


def _csc(X: NDArray[np.int8], sign: NDArray[np.int8]) -> _Columns:
    # np.nonzero on the transpose walks column by column: indices come out grouped
    cols, rows = np.nonzero(X.T)
    indptr = np.zeros(X.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=X.shape[1]), out=indptr[1:])
    return _Columns(indptr, rows.astype(np.int64), sign.astype(np.float64))


def _column_scale(
    X: NDArray[np.int8], w: NDArray[np.float64], standardize: bool
) -> NDArray[np.float64]:
    """Weighted standard deviation (divisor n) per column; 0 marks constant columns."""
    wn = w / w.sum()
    mean = wn @ X.astype(np.float64)
    # binary columns: E[x^2] = |E[x]|
    var = np.abs(mean) - mean**2
    sd = np.sqrt(np.clip(var, 0.0, None))
    sd[var <= 1e-14] = 0.0
    if standardize:
        return sd
    return np.where(sd > 0, 1.0, 0.0)


def _lambda_max(
    X: NDArray[np.int8],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    scale: NDArray[np.float64],
    l1_ratio: float,
) -> float:
    wn = w / w.sum()
    ybar = float(wn @ y)
    grad = (wn * (y - ybar)) @ X.astype(np.float64)
    usable = scale > 0
    if not usable.any():
        return 1.0
    ratio = grad[usable] / scale[usable]
    top = float(ratio.max())
    if top <= 0:
        # no candidate is positively associated: every penalty gives the null
        # model; keep a path on the scale of the largest |gradient| so that the
        # CV curve is still defined
        top = float(np.abs(ratio).max()) or 1.0
    return top / l1_ratio


def _enet_fit(
    X: NDArray[np.int8],
    sign: NDArray[np.int8],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    lambdas: NDArray[np.float64],
    l1_ratio: float,
    standardize: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    keep = w > 0
    Xk, yk, wk = X[keep], y[keep], w[keep]
    scale = _column_scale(Xk, wk, standardize)
    cols = _csc(Xk, sign)
    intercepts, coefs, _, converged = _k.enet_poisson_path(
        cols.indptr,
        cols.indices,
        cols.sign,
        scale,
        np.ascontiguousarray(yk),
        np.ascontiguousarray(wk / wk.sum()),
        np.ascontiguousarray(lambdas, dtype=np.float64),
        float(l1_ratio),
        _CD_TOL,
        _MAX_IRLS,
        _MAX_SWEEPS,
    )
    if not converged.all():
        raise FitError(
            f"the elastic net did not converge at {int((~converged).sum())} "
            f"of {len(lambdas)} penalties"
        )
    return intercepts, coefs


def _validate_l1_ratios(l1_ratios: Sequence[float] | float) -> tuple[float, ...]:
    values = (l1_ratios,) if isinstance(l1_ratios, int | float) else tuple(l1_ratios)
    if not values or not all(isinstance(v, int | float) and 0 < v <= 1 for v in values):
        raise ParameterError(f"l1_ratios must be numbers in (0, 1]; got {l1_ratios!r}")
    return tuple(float(v) for v in values)


def enet_path(
    X: ArrayLike,
    y: ArrayLike,
    lambdas: ArrayLike,
    *,
    l1_ratio: float = 0.8,
    weights: ArrayLike | None = None,
    standardize: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fit the nonnegative Poisson elastic net at the given penalties.

    Minimizes ``sum_i w_i (mu_i - y_i log mu_i) / sum_i w_i + lambda * (l1_ratio *
    sum_j s_j b_j + (1 - l1_ratio) / 2 * sum_j s_j**2 b_j**2)`` over ``b >= 0`` and
    a free intercept (glmnet's objective; ``s_j`` is the column's standard
    deviation when ``standardize`` else 1).

    Parameters
    ----------
    X : array_like of int, shape (n, p)
        Binary candidates coded 0/1 or 0/-1.
    y : array_like of int, shape (n,)
    lambdas : array_like of float
        Penalties, best given in decreasing order (warm starts follow the order).
    l1_ratio : float, default 0.8
    weights : array_like, optional
        Frequency weights.
    standardize : bool, default True

    Returns
    -------
    intercepts : ndarray, shape (n_lambdas,)
    coefs : ndarray, shape (n_lambdas, p)
        Coefficients on the original scale of ``X``.
    """
    Xb, sign = validate_binary_design(X)
    counts = validate_counts(y, Xb.shape[0])
    w = validate_weights(weights, Xb.shape[0])
    (ratio,) = _validate_l1_ratios((l1_ratio,))
    lam = np.asarray(lambdas, dtype=np.float64).ravel()
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ParameterError(f"lambdas must be finite and non-negative; got {lambdas!r}")
    if not counts.sum() > 0:
        raise FitError("cannot fit a count model: there are no events (all counts are zero)")
    return _enet_fit(Xb, sign, counts.astype(np.float64), w, lam, ratio, bool(standardize))


def _n_workers(n_jobs: int | None, n_tasks: int) -> int:
    if n_jobs is None:
        return max(1, min(os.cpu_count() or 1, n_tasks))
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise ParameterError(f"n_jobs must be a positive integer or None; got {n_jobs!r}")
    return min(int(n_jobs), n_tasks)


def _poisson_deviance(y: NDArray, mu: NDArray) -> NDArray:
    """Unit Poisson deviance, elementwise (broadcasts)."""
    return 2.0 * (special.xlogy(y, y) - special.xlogy(y, mu) - (y - mu))


def cull(
    X: ArrayLike,
    y: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    l1_ratios: Sequence[float] = (0.8, 0.95),
    n_folds: int = 5,
    n_lambdas: int = 100,
    lambda_min_ratio: float = 1e-4,
    rule: Rule = "min",
    standardize: bool = True,
    seed: int = 0,
    n_jobs: int | None = None,
) -> CullResult:
    """Cull candidates with a cross-validated nonnegative Poisson elastic net.

    Parameters
    ----------
    X : array_like of int, shape (n_cells, n_candidates)
        Binary candidates, 0/1 (aggravating) or 0/-1 (protective).
    y : array_like of int, shape (n_cells,)
        Event counts.
    weights : array_like, optional
        Frequency weights per cell.
    l1_ratios : sequence of float, default (0.8, 0.95)
        Elastic-net mixings tried; the one with the lowest CV deviance is kept.
    n_folds : int, default 5
    n_lambdas : int, default 100
    lambda_min_ratio : float, default 1e-4
        Smallest penalty as a fraction of ``lambda_max`` (glmnet's for n > p).
    rule : {"min", "1se"}, default "min"
        lambda.min or the one-standard-error rule.
    standardize : bool, default True
        Penalize standardized coefficients (glmnet's ``standardize=TRUE``).
    seed : int, default 0
        Seeds the tie-breaking permutation of the fold assignment.
    n_jobs : int, optional
        Threads for the (l1_ratio, fold) fits; default: one per CPU, at most one
        per fit. The result does not depend on it.

    Returns
    -------
    CullResult

    Raises
    ------
    ParameterError
        Bad arguments.
    FitError
        No events, or the solver failed to converge.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.random((400, 3)) < 0.3).astype(np.int8)
    >>> y = rng.poisson(np.exp(-1 + 1.5 * X[:, 0]))
    >>> 0 in cull(X, y, n_lambdas=20).survivors
    True
    """
    Xb, sign = validate_binary_design(X)
    counts = validate_counts(y, Xb.shape[0])
    w = validate_weights(weights, Xb.shape[0])
    ratios = _validate_l1_ratios(l1_ratios)
    rule = check_choice("rule", rule, RULES)
    if isinstance(n_lambdas, bool) or not isinstance(n_lambdas, int | np.integer) or n_lambdas < 1:
        raise ParameterError(f"n_lambdas must be a positive integer; got {n_lambdas!r}")
    if not (isinstance(lambda_min_ratio, int | float) and 0 < lambda_min_ratio < 1):
        raise ParameterError(f"lambda_min_ratio must be in (0, 1); got {lambda_min_ratio!r}")
    if not float(w @ counts) > 0:
        raise FitError("cannot cull candidates: there are no events (all counts are zero)")
    folds = fold_assignment(counts, n_folds, seed=seed)
    yf = counts.astype(np.float64)
    Xf = Xb.astype(np.float64)
    scale_full = _column_scale(Xb, w, standardize)

    lambdas = np.empty((len(ratios), n_lambdas))
    for r_i, ratio in enumerate(ratios):
        lam_max = _lambda_max(Xb, yf, w, scale_full, ratio)
        lambdas[r_i] = lam_max * np.logspace(0.0, np.log10(lambda_min_ratio), n_lambdas)
    # one task per (l1_ratio, training set); fold k's training set drops fold k,
    # the last one (k == n_folds) is the full data
    tasks = [(r_i, k) for r_i in range(len(ratios)) for k in range(n_folds + 1)]
    for k in range(n_folds):
        if not float(w[folds != k] @ yf[folds != k]) > 0:
            raise FitError(f"cross-validation fold {k} leaves no events to train on")

    def run(task: tuple[int, int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        r_i, k = task
        train_w = w if k == n_folds else np.where(folds == k, 0.0, w)
        return _enet_fit(Xb, sign, yf, train_w, lambdas[r_i], ratios[r_i], standardize)

    workers = _n_workers(n_jobs, len(tasks))
    if workers == 1:
        results = [run(task) for task in tasks]
    else:
        # the kernel releases the GIL (nogil=True), so threads run in parallel
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(run, tasks))
    fitted = dict(zip(tasks, results, strict=True))

    cv_mean = np.empty((len(ratios), n_lambdas))
    cv_se = np.empty((len(ratios), n_lambdas))
    for r_i in range(len(ratios)):
        fold_dev = np.empty((n_folds, n_lambdas))
        fold_w = np.empty(n_folds)
        for k in range(n_folds):
            test = folds == k
            b0, b = fitted[(r_i, k)]
            eta = b0[None, :] + Xf[test] @ b.T
            dev = _poisson_deviance(yf[test][:, None], np.exp(eta))
            fold_w[k] = w[test].sum()
            fold_dev[k] = (w[test] @ dev) / fold_w[k] if fold_w[k] > 0 else np.nan
        valid = fold_w > 0
        mean = np.average(fold_dev[valid], axis=0, weights=fold_w[valid])
        spread = np.average((fold_dev[valid] - mean) ** 2, axis=0, weights=fold_w[valid])
        cv_mean[r_i] = mean
        cv_se[r_i] = np.sqrt(spread / max(int(valid.sum()) - 1, 1))
    full_fits = [fitted[(r_i, n_folds)] for r_i in range(len(ratios))]

    best_ratio = int(np.argmin(cv_mean.min(axis=1)))
    i_min = int(np.argmin(cv_mean[best_ratio]))
    if rule == "min":
        chosen = i_min
    else:
        bound = cv_mean[best_ratio, i_min] + cv_se[best_ratio, i_min]
        # lambdas decrease along the path: the first index within bound is the largest lambda
        chosen = int(np.flatnonzero(cv_mean[best_ratio] <= bound)[0])
    b0, b = full_fits[best_ratio]
    coef = b[chosen].copy()
    return CullResult(
        survivors=tuple(int(j) for j in np.flatnonzero(coef > 0)),
        coef=_frozen(coef),
        intercept=float(b0[chosen]),
        l1_ratio=ratios[best_ratio],
        lambda_=float(lambdas[best_ratio, chosen]),
        lambda_index=chosen,
        l1_ratios=ratios,
        lambdas=_frozen(lambdas),
        cv_mean=_frozen(cv_mean),
        cv_se=_frozen(cv_se),
        folds=_frozen(folds),
        rule=rule,
        standardize=bool(standardize),
        seed=int(seed),
    )


# ===========================================================================
# stepwise BIC
# ===========================================================================


@dataclass(frozen=True)
class StepRecord:
    """One step of :func:`stepwise`: the move taken and the model it led to."""

    step: int
    action: Literal["start", "add", "remove"]
    column: int | None
    bic: float
    selected: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class StepwiseResult:
    """Outcome of :func:`stepwise`.

    Attributes
    ----------
    selected : tuple of int
        Selected candidate columns, ascending (empty: the null model won).
    fit : GLMFit
        Fit of the final model; its coefficients follow ``selected``.
    history : tuple of StepRecord
        The start (null model) and every move taken.
    distribution : {"poisson", "nb2", "nbii"}
    n_fits : int
        Number of distinct models fitted during the search.
    """

    selected: tuple[int, ...]
    fit: GLMFit
    history: tuple[StepRecord, ...]
    distribution: Distribution
    n_fits: int


class _ModelFitter:
    """Fits sub-models of the candidate matrix, collapsing binary rows.

    A model's pattern id is built bit by bit from its columns' nonzero masks,
    so collapsing costs a few vector operations and a bincount, no sort.
    """

    _MAX_BITS = 22

    def __init__(
        self,
        X: NDArray[np.int8],
        sign: NDArray[np.int8],
        y: NDArray[np.int64],
        w: NDArray[np.float64],
        distribution: Distribution,
    ) -> None:
        self.nonzero = (X != 0).astype(np.int64)
        self.X = X
        self.sign = sign.astype(np.float64)
        self.y = y
        self.w = w
        self.distribution = distribution
        self.constant = loglik_constant(y, w)
        self.cache: dict[tuple[int, ...], GLMFit | None] = {}

    def collapsed(self, columns: tuple[int, ...]) -> CollapsedData:
        n = self.y.shape[0]
        k = len(columns)
        if k <= self._MAX_BITS:
            pattern = np.zeros(n, dtype=np.int64)
            for j in columns:
                pattern <<= 1
                pattern |= self.nonzero[:, j]
            bits = (np.arange(1 << k)[:, None] >> np.arange(k - 1, -1, -1)[None, :]) & 1
            rows = np.column_stack([np.ones(1 << k), bits * self.sign[list(columns)]])
        else:
            unique_rows, inverse = np.unique(self.X[:, list(columns)], axis=0, return_inverse=True)
            pattern = inverse.ravel().astype(np.int64)
            rows = np.column_stack([np.ones(unique_rows.shape[0]), unique_rows.astype(np.float64)])
        return collapse_patterns(pattern, rows, self.y, self.w, self.distribution, self.constant)

    def fit(self, columns: tuple[int, ...]) -> GLMFit | None:
        """Fit the model with these columns; ``None`` if the design is degenerate."""
        if columns not in self.cache:
            try:
                self.cache[columns] = fit_collapsed(self.collapsed(columns), self.distribution)
            except FitError:
                self.cache[columns] = None
        return self.cache[columns]


def _admissible(fit: GLMFit | None, alpha: float) -> bool:
    if fit is None or not fit.converged:
        return False
    coef, pvalues = fit.coef[1:], fit.pvalues[1:]
    return bool(np.all(coef > 0) and np.all(pvalues < alpha))


def _validate_groups(groups: ArrayLike, n_candidates: int) -> NDArray[np.int64]:
    arr = np.asarray(groups)
    if arr.shape != (n_candidates,):
        raise ParameterError(
            f"groups must have one factor id per candidate ({n_candidates}); got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"groups must be integer factor ids; got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _validate_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ParameterError(f"alpha must be in (0, 1); got {alpha!r}")
    return float(alpha)


def _validate_candidates(candidates: Sequence[int] | None, n_candidates: int) -> tuple[int, ...]:
    if candidates is None:
        return tuple(range(n_candidates))
    values = sorted({int(c) for c in candidates})
    if values and (values[0] < 0 or values[-1] >= n_candidates):
        raise ParameterError(
            f"candidates must be column indices in [0, {n_candidates}); got {list(candidates)!r}"
        )
    return tuple(values)


def stepwise(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    distribution: Distribution,
    weights: ArrayLike | None = None,
    alpha: float = 0.05,
    candidates: Sequence[int] | None = None,
    max_steps: int | None = None,
) -> StepwiseResult:
    """Bidirectional stepwise BIC search from the null model under RTMDx's rules.

    Each step considers adding one candidate whose factor is not yet in the
    model and removing one selected variable. A resulting model is admissible
    when its fit converged (no separation) and every non-intercept coefficient
    is > 0 with a two-sided Wald p-value < ``alpha``. The admissible move with
    the lowest BIC is taken if it lowers the current BIC (ties: lowest column
    index, adds before removes); the search stops when none does. BIC strictly
    decreases, so no model is visited twice; visited models are also skipped
    explicitly as a guard.

    Parameters
    ----------
    X : array_like of int, shape (n_cells, n_candidates)
        Binary candidates, 0/1 (aggravating) or 0/-1 (protective).
    y : array_like of int, shape (n_cells,)
    groups : array_like of int, shape (n_candidates,)
        Factor id of each candidate.
    distribution : {"poisson", "nb2", "nbii"}
    weights : array_like, optional
        Frequency weights per cell.
    alpha : float, default 0.05
        Significance level of the Wald test on each coefficient.
    candidates : sequence of int, optional
        Restrict the search to these columns (e.g. the culling survivors);
        indices stay those of ``X``.
    max_steps : int, optional
        Upper bound on moves (default ``2 * n_candidates + 2``).

    Returns
    -------
    StepwiseResult

    Raises
    ------
    ParameterError
        Bad arguments.
    FitError
        The null model cannot be fitted (no events).
    """
    distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
    Xb, sign = validate_binary_design(X)
    counts = validate_counts(y, Xb.shape[0])
    w = validate_weights(weights, Xb.shape[0])
    factor = _validate_groups(groups, Xb.shape[1])
    alpha = _validate_alpha(alpha)
    pool = _validate_candidates(candidates, Xb.shape[1])
    if max_steps is None:
        max_steps = 2 * len(pool) + 2
    if isinstance(max_steps, bool) or not isinstance(max_steps, int | np.integer) or max_steps < 0:
        raise ParameterError(f"max_steps must be a non-negative integer; got {max_steps!r}")

    fitter = _ModelFitter(Xb, sign, counts, w, distribution)
    # a constant column (all zeros, or all cells exposed) is aliased with the intercept
    varying = {j for j in pool if 0 < fitter.nonzero[:, j][w > 0].sum() < int((w > 0).sum())}
    null_fit = fitter.fit(())
    if null_fit is None:
        raise FitError("cannot fit the null model")
    current: tuple[int, ...] = ()
    current_fit = null_fit
    visited = {current}
    history = [StepRecord(0, "start", None, current_fit.bic, current)]
    for step in range(1, max_steps + 1):
        used_factors = {int(factor[j]) for j in current}
        moves: list[tuple[float, int, int, tuple[int, ...], GLMFit]] = []
        for j in pool:
            if j in varying and int(factor[j]) not in used_factors:
                model = tuple(sorted(current + (j,)))
                if model not in visited:
                    fit = fitter.fit(model)
                    if fit is not None and _admissible(fit, alpha):
                        moves.append((fit.bic, j, 0, model, fit))
        for j in current:
            model = tuple(c for c in current if c != j)
            if model not in visited:
                fit = fitter.fit(model)
                if fit is not None and (not model or _admissible(fit, alpha)):
                    moves.append((fit.bic, j, 1, model, fit))
        if not moves:
            break
        bic, column, kind, model, fit = min(moves, key=lambda m: (m[0], m[1], m[2]))
        if not bic < current_fit.bic:
            break
        current, current_fit = model, fit
        visited.add(model)
        history.append(StepRecord(step, "add" if kind == 0 else "remove", column, bic, model))
    return StepwiseResult(
        selected=current,
        fit=current_fit,
        history=tuple(history),
        distribution=distribution,
        n_fits=len(fitter.cache),
    )


# ===========================================================================
# Poisson vs negative binomial
# ===========================================================================


@dataclass(frozen=True, eq=False)
class SelectionResult:
    """Outcome of :func:`select_model`.

    Attributes
    ----------
    poisson : StepwiseResult
    negative_binomial : StepwiseResult
        The stepwise search with the NB form asked for (``nb_form``).
    winner : {"poisson", "nb2", "nbii"}
        Distribution of the lower-BIC result (Poisson on an exact tie).
    """

    poisson: StepwiseResult
    negative_binomial: StepwiseResult
    winner: Distribution

    @property
    def best(self) -> StepwiseResult:
        """The winning stepwise result."""
        return self.poisson if self.winner == "poisson" else self.negative_binomial

    @property
    def selected(self) -> tuple[int, ...]:
        """Columns of the winning model (empty: no significant factor)."""
        return self.best.selected


def select_model(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    nb_form: NBForm = "nbii",
    alpha: float = 0.05,
    candidates: Sequence[int] | None = None,
    max_steps: int | None = None,
) -> SelectionResult:
    """Run :func:`stepwise` with Poisson and with a negative binomial; keep the lower BIC.

    Parameters
    ----------
    X, y, groups, weights, alpha, candidates, max_steps
        As for :func:`stepwise`.
    nb_form : {"nbii", "nb2"}, default "nbii"
        ``"nbii"`` is RTMDx's (gamlss NBII, variance ``mu (1 + sigma)``);
        ``"nb2"`` the common variance ``mu + mu**2 / theta``.

    Returns
    -------
    SelectionResult
        The null model may win (``selected`` empty): no factor is significant.
        That is a result, not an error; the caller reports it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.random((600, 2)) < 0.3).astype(np.int8)
    >>> y = rng.poisson(np.exp(-1 + 1.2 * X[:, 0]))
    >>> select_model(X, y, [0, 1]).selected
    (0,)
    """
    nb_form = check_choice("nb_form", nb_form, NB_FORMS)
    common = dict(weights=weights, alpha=alpha, candidates=candidates, max_steps=max_steps)
    poisson = stepwise(X, y, groups, distribution="poisson", **common)  # type: ignore[arg-type]
    negbin = stepwise(X, y, groups, distribution=nb_form, **common)  # type: ignore[arg-type]
    winner: Distribution = nb_form if negbin.fit.bic < poisson.fit.bic else "poisson"
    if math.isnan(negbin.fit.bic):
        winner = "poisson"
    return SelectionResult(poisson=poisson, negative_binomial=negbin, winner=winner)
