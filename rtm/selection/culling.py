"""Culling as RTMDx does it: a cross-validated nonnegative Poisson elastic net.

:func:`cull` keeps the candidates with a nonzero coefficient in a Poisson elastic
net whose coefficients are constrained to be >= 0 and whose penalty is chosen by
cross-validation on folds balanced on the outcome.

Decisions that change results (recorded in :class:`CullResult`)
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

Speed (docs/performance.md)
---------------------------
Cells that share a fold and the same pattern of candidate values are
interchangeable in every fit and every out-of-fold deviance, so they are
collapsed into one row with summed frequency weights (weighted mean count, and
the ``y log y`` part of the deviance kept as a per-row constant). This is exact:
it changes only the order of floating-point sums. Fine grids repeat patterns
a lot (London at 25 m: 257k cells, 93k patterns). The candidate matrix is never
converted to floating point as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from rtm._kernels import design as _design
from rtm._kernels import glm as _k
from rtm.checks import check_choice
from rtm.errors import FitError, ParameterError
from rtm.selection.data import (
    group_rows,
    validate_binary_design,
    validate_counts,
    validate_weights,
)
from rtm.selection.enet import (
    CD_TOL,
    FDEV,
    column_scale,
    enet_fit,
    enet_path,
    lambda_max,
    packed,
    validate_l1_ratios,
)

__all__ = ["RULES", "CullResult", "Rule", "cull", "enet_path", "fold_assignment"]

Rule = Literal["min", "1se"]
RULES: tuple[Rule, ...] = ("min", "1se")


def _frozen(arr: NDArray) -> NDArray:
    arr.setflags(write=False)
    return arr


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


def fold_assignment(
    y: ArrayLike, n_folds: int = 5, *, seed: int = 0, fractional: bool = False
) -> NDArray[np.int64]:
    """Deal cells into folds balanced on the outcome.

    Cells are sorted by count, ties broken by a random permutation from
    ``np.random.default_rng(seed)``, then dealt into folds in turn
    (0, 1, ..., n_folds - 1, 0, 1, ...). Fold totals of ``y`` then differ by at
    most the largest count.

    Examples
    --------
    >>> fold_assignment([0, 5, 0, 1, 2, 0], n_folds=2, seed=0).tolist().count(0)
    3

    ``fractional=True`` admits a non-integer outcome (harm in event-equivalents).
    """
    counts = validate_counts(y, fractional=fractional)
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


def _n_workers(n_jobs: int | None, n_tasks: int) -> int:
    if n_jobs is None:
        return max(1, min(os.cpu_count() or 1, n_tasks))
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise ParameterError(f"n_jobs must be a positive integer or None; got {n_jobs!r}")
    return min(int(n_jobs), n_tasks)


@dataclass(frozen=True)
class _Rows:
    """Cells collapsed by (fold, candidate pattern), with frequency weights.

    ``y`` is the weighted mean count of the cells in a row, ``yw`` their
    weighted count sum and ``ylogy`` their weighted ``sum y log y`` (the part of
    the Poisson deviance that does not depend on the fit).
    """

    X: NDArray[np.int8]
    y: NDArray[np.float64]
    w: NDArray[np.float64]
    yw: NDArray[np.float64]
    ylogy: NDArray[np.float64]
    fold: NDArray[np.int64]
    #: pattern id of each row (rows of different folds may share one) and the
    #: first row of each pattern
    pattern: NDArray[np.int64]
    pattern_first: NDArray[np.int64]
    #: each row's candidate values packed to bits (:func:`packed`): the pattern key,
    #: and the rows of the KKT checks' byte tables
    codes: NDArray[np.uint8]

    def training(self, exclude: int | None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Weights and mean counts of a training set collapsed by pattern alone.

        The rows of the folds other than ``exclude`` (every fold when ``None``) that
        share a pattern are merged into the pattern's first row, which carries their
        summed weight and their weighted mean count; every other row gets weight 0
        (dropped by the fit). Exact, like the fold collapsing: fewer rows per fit
        when the same pattern occurs in several folds.
        """
        w = self.w if exclude is None else np.where(self.fold == exclude, 0.0, self.w)
        n_patterns = self.pattern_first.shape[0]
        w_sum = np.bincount(self.pattern, weights=w, minlength=n_patterns)
        yw_sum = np.bincount(
            self.pattern, weights=np.where(w > 0, self.yw, 0.0), minlength=n_patterns
        )
        w_rows = np.zeros(self.w.shape[0])
        y_rows = np.zeros(self.w.shape[0])
        used = w_sum > 0
        w_rows[self.pattern_first[used]] = w_sum[used]
        y_rows[self.pattern_first[used]] = yw_sum[used] / w_sum[used]
        return w_rows, y_rows


def _collapse(
    X: NDArray[np.int8], y: NDArray[np.int64], w: NDArray[np.float64], folds: NDArray[np.int64]
) -> _Rows:
    keep = w > 0
    columns = np.arange(X.shape[1], dtype=np.int64)
    keys = _design.pack_rows(X, columns, folds, 4)
    kept = np.flatnonzero(keep)
    if kept.size < X.shape[0]:
        keys = keys[kept]
    first, inverse = group_rows(keys)
    del keys
    wk = w[kept]
    yk = y[kept].astype(np.float64)
    w_sum = np.bincount(inverse, weights=wk)
    yw = np.bincount(inverse, weights=wk * yk)
    ylogy = np.bincount(inverse, weights=wk * special.xlogy(yk, yk))
    rows = kept[first]
    X_rows = np.ascontiguousarray(X[rows])
    codes = packed(X_rows)
    pattern_first, pattern = group_rows(codes)
    return _Rows(
        X=X_rows,
        y=yw / w_sum,
        w=w_sum,  # type: ignore[arg-type]
        yw=yw,  # type: ignore[arg-type]
        ylogy=ylogy,  # type: ignore[arg-type]
        fold=folds[rows],
        pattern=pattern,
        pattern_first=pattern_first,
        codes=codes,
    )


def _out_of_fold_deviance(
    rows: _Rows, fold: int, b0: NDArray[np.float64], b: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Weighted Poisson deviance of fold ``fold``'s cells, summed, at each penalty.

    Only the columns with a nonzero coefficient somewhere on the path enter the linear
    predictors (about 20 of 180 at a million cells), and each row visits only its
    nonzero ones (:func:`rtm._kernels.glm.held_out_deviance`).
    """
    test = np.flatnonzero(rows.fold == fold)
    used = np.flatnonzero((b != 0).any(axis=0))
    return np.asarray(
        _k.held_out_deviance(
            rows.X,
            test,
            used,
            rows.ylogy,
            rows.yw,
            rows.w,
            np.ascontiguousarray(b0, dtype=np.float64),
            np.ascontiguousarray(b, dtype=np.float64),
        )
    )


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
    tol: float = CD_TOL,
    early_stop: bool = True,
    fractional: bool = False,
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
    tol : float, default 1e-7
        Convergence threshold of the coordinate descent, relative to the null
        deviance (glmnet's ``thresh``).
    early_stop : bool, default True
        End the penalty path early as glmnet does (once the deviance explained
        stops growing, ``fdev`` = 1e-5); the folds use the same, shorter path.
        Penalties not reached have NaN in ``lambdas`` and ``cv_mean``.
    fractional : bool, default False
        Admit a non-integer outcome ``y`` (harm in event-equivalents): the penalized
        Poisson pseudo-likelihood and its deviance ``2 (y log(y/mu) - (y - mu))`` are
        defined for any ``y >= 0``, and a constant dispersion would only rescale the
        loss (the same path and the same CV choice), so culling needs no other change.

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
    counts = validate_counts(y, Xb.shape[0], fractional=fractional)
    w = validate_weights(weights, Xb.shape[0])
    ratios = validate_l1_ratios(l1_ratios)
    rule = check_choice("rule", rule, RULES)
    if isinstance(n_lambdas, bool) or not isinstance(n_lambdas, int | np.integer) or n_lambdas < 1:
        raise ParameterError(f"n_lambdas must be a positive integer; got {n_lambdas!r}")
    if not (isinstance(lambda_min_ratio, int | float) and 0 < lambda_min_ratio < 1):
        raise ParameterError(f"lambda_min_ratio must be in (0, 1); got {lambda_min_ratio!r}")
    if not float(w @ counts) > 0:
        raise FitError("cannot cull candidates: there are no events (all counts are zero)")
    folds = fold_assignment(counts, n_folds, seed=seed, fractional=fractional)
    events_per_fold = np.bincount(folds, weights=w * counts, minlength=n_folds)
    for k in range(n_folds):
        if not float(events_per_fold.sum() - events_per_fold[k]) > 0:
            raise FitError(f"cross-validation fold {k} leaves no events to train on")
    rows = _collapse(Xb, counts, w, folds)
    scale_full = column_scale(rows.X, rows.w, standardize)
    lambdas = np.empty((len(ratios), n_lambdas))
    for r_i, ratio in enumerate(ratios):
        lam_max = lambda_max(rows.X, rows.y, rows.w, scale_full, ratio)
        lambdas[r_i] = lam_max * np.logspace(0.0, np.log10(lambda_min_ratio), n_lambdas)
    paths = _CVPaths(
        rows, sign, lambdas, ratios, n_folds, standardize, tol, early_stop, n_jobs
    ).run()
    cv_mean, cv_se = _cv_curves(paths, folds, w, n_folds)
    best_ratio, chosen = _choose(cv_mean, cv_se, rule)
    b0, b = paths.full[best_ratio]
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


class _CVPaths:
    """The full-data path of each l1_ratio, then one fit per (l1_ratio, fold) on it.

    The full-data path may end early (glmnet's ``fdev`` rule); the folds then use that
    shorter path. Fold ``k``'s training set drops fold ``k`` (``k == n_folds`` denotes the
    full data); each fold task also scores its held-out fold, in its own thread.
    """

    def __init__(
        self,
        rows: _Rows,
        sign: NDArray[np.int8],
        lambdas: NDArray[np.float64],
        ratios: tuple[float, ...],
        n_folds: int,
        standardize: bool,
        tol: float,
        early_stop: bool,
        n_jobs: int | None,
    ) -> None:
        self.rows, self.sign, self.lambdas, self.ratios = rows, sign, lambdas, ratios
        self.n_folds, self.standardize, self.tol = n_folds, standardize, tol
        self.early_stop, self.n_jobs = early_stop, n_jobs
        self.path_length = [lambdas.shape[1]] * len(ratios)
        self.held_out: dict[tuple[int, int], NDArray[np.float64]] = {}
        self.full: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []

    def _fit(self, task: tuple[int, int]) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
        r_i, k = task
        rows = self.rows
        if k == self.n_folds:
            full_w, full_y = rows.training(None)
            return enet_fit(
                rows.X,
                self.sign,
                full_y,
                full_w,
                self.lambdas[r_i],
                self.ratios[r_i],
                self.standardize,
                self.tol,
                FDEV if self.early_stop else 0.0,
                rows.codes,
            )
        train_w, train_y = rows.training(k)
        b0, b, n_done = enet_fit(
            rows.X,
            self.sign,
            train_y,
            train_w,
            self.lambdas[r_i, : self.path_length[r_i]],
            self.ratios[r_i],
            self.standardize,
            self.tol,
            codes=rows.codes,
        )
        length = self.path_length[r_i]
        self.held_out[task] = _out_of_fold_deviance(rows, k, b0[:length], b[:length])
        return b0, b, n_done

    def _all(
        self, tasks: list[tuple[int, int]]
    ) -> list[tuple[NDArray[np.float64], NDArray[np.float64], int]]:
        workers = _n_workers(self.n_jobs, len(tasks))
        if workers == 1:
            return [self._fit(task) for task in tasks]
        # the kernel releases the GIL (nogil=True), so threads run in parallel
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._fit, tasks))

    def run(self) -> _CVPaths:
        n = len(self.ratios)
        full_tasks = [(r_i, self.n_folds) for r_i in range(n)]
        fitted = dict(zip(full_tasks, self._all(full_tasks), strict=True))
        for r_i in range(n):
            self.path_length[r_i] = fitted[(r_i, self.n_folds)][2]
            self.lambdas[r_i, self.path_length[r_i] :] = np.nan
        fold_tasks = [(r_i, k) for r_i in range(n) for k in range(self.n_folds)]
        self._all(fold_tasks)
        self.full = [fitted[(r_i, self.n_folds)][:2] for r_i in range(n)]
        return self


def _cv_curves(
    paths: _CVPaths, folds: NDArray[np.int64], w: NDArray[np.float64], n_folds: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Glmnet's CV statistics: the weighted mean of the folds' deviances and its SE."""
    n_ratios, n_lambdas = paths.lambdas.shape
    cv_mean = np.empty((n_ratios, n_lambdas))
    cv_se = np.empty((n_ratios, n_lambdas))
    fold_w = np.bincount(folds, weights=w, minlength=n_folds)
    for r_i in range(n_ratios):
        fold_dev = np.empty((n_folds, n_lambdas))
        fold_dev[:] = np.nan
        length = paths.path_length[r_i]
        for k in range(n_folds):
            total = paths.held_out[(r_i, k)]
            fold_dev[k, :length] = total / fold_w[k] if fold_w[k] > 0 else np.nan
        valid = fold_w > 0
        mean = np.average(fold_dev[valid], axis=0, weights=fold_w[valid])
        spread = np.average((fold_dev[valid] - mean) ** 2, axis=0, weights=fold_w[valid])
        cv_mean[r_i] = mean
        cv_se[r_i] = np.sqrt(spread / max(int(valid.sum()) - 1, 1))
    return cv_mean, cv_se


def _choose(cv_mean: NDArray[np.float64], cv_se: NDArray[np.float64], rule: str) -> tuple[int, int]:
    """The l1_ratio with the lowest CV deviance, and its lambda.min or 1-SE penalty."""
    best_ratio = int(np.argmin(np.nanmin(cv_mean, axis=1)))
    i_min = int(np.nanargmin(cv_mean[best_ratio]))
    if rule == "min":
        return best_ratio, i_min
    bound = cv_mean[best_ratio, i_min] + cv_se[best_ratio, i_min]
    # lambdas decrease along the path: the first index within bound is the largest lambda
    return best_ratio, int(np.flatnonzero(cv_mean[best_ratio] <= bound)[0])
