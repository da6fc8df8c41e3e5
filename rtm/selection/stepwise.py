"""Stepwise BIC as RTMDx runs it: bidirectional, from the null model, under three rules.

:func:`stepwise` adds or removes one candidate per step while the BIC falls, keeping
only admissible models: at most one variable per factor, every factor coefficient
positive and significant at ``alpha``. Sub-models are fitted on rows collapsed by
design pattern (:class:`_ModelFitter`), warm-started from the current model.

Decisions that change results (recorded in the result objects)
---------------------------------------------------------------
* The BIC uses ``n`` = number of cells (sum of frequency weights) and counts the NB
  dispersion parameter. A model is admissible only if its fit converged without
  separation and every non-intercept coefficient is > 0 with a Wald p-value <
  ``alpha``. Protective candidates are coded 0/-1, so "> 0" is the right sign test for
  both kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm._kernels import design as _design
from rtm.checks import check_choice
from rtm.errors import FitError, ParameterError
from rtm.selection.data import (
    CollapsedData,
    collapse_patterns,
    group_rows,
    loglik_constant,
    validate_binary_design,
    validate_counts,
    validate_weights,
)
from rtm.selection.families import DISTRIBUTIONS, Distribution
from rtm.selection.glm import GLMFit, fit_collapsed, quasi_poisson

__all__ = [
    "ReducedRows",
    "StepRecord",
    "StepwiseResult",
    "check_alpha",
    "check_candidates",
    "check_groups",
    "check_max_steps",
    "reduce_rows",
    "search",
    "stepwise",
]

#: largest (pattern, count) table :func:`rtm._kernels.design.extend_patterns` is given
_EXTEND_MAX_KEYS = 4_000_000


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
    so collapsing costs a few vector operations and a bincount, no sort. The
    patterns of one base model (the search's current model) are kept, so that
    a model adding one column to it costs one more bit, not a rebuild.
    """

    _MAX_BITS = 22

    def __init__(
        self,
        X: NDArray[np.int8],
        sign: NDArray[np.int8],
        y: NDArray[np.int64],
        w: NDArray[np.float64],
        distribution: Distribution,
        scale: float | None = None,
    ) -> None:
        self.scale = scale
        # column-major: a model's columns are read one at a time
        self.nonzero = np.asfortranarray(X != 0, dtype=np.int64)
        self.X = X
        self.sign = sign.astype(np.float64)
        self.y = y
        self.w = w
        self.distribution = distribution
        self.constant = loglik_constant(y, w)
        self.n_total = float(w.sum())
        self.y_levels = int(y.max()) + 1 if y.size else 1
        self.cache: dict[tuple[int, ...], GLMFit | None] = {}
        self._base: tuple[tuple[int, ...], NDArray[np.int64], NDArray[np.int64]] | None = None

    def _patterns(self, columns: tuple[int, ...]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Pattern id of every row and the bits of each pattern that occurs.

        Ids number the patterns that occur in increasing bit order; ``bits`` has
        one column per model column.
        """
        n = self.y.shape[0]
        k = len(columns)
        pattern = np.zeros(n, dtype=np.int64)
        for j in columns:
            pattern <<= 1
            pattern |= self.nonzero[:, j]
        # renumber the patterns that occur, in increasing order (so the collapsed
        # rows come out in the same order), and decode only those
        present = np.flatnonzero(np.bincount(pattern, minlength=1 << k))
        renumber = np.empty(1 << k, dtype=np.int64)
        renumber[present] = np.arange(present.size)
        bits = (present[:, None] >> np.arange(k - 1, -1, -1)[None, :]) & 1
        return renumber[pattern], bits

    def _added_column(self, columns: tuple[int, ...]) -> int | None:
        """The one column ``columns`` adds to the base model, if that is what they are."""
        if self._base is None:
            return None
        base = self._base[0]
        if len(columns) != len(base) + 1:
            return None
        added = [j for j in columns if j not in base]
        return added[0] if len(added) == 1 else None

    def _extended_collapsed(self, columns: tuple[int, ...], j: int) -> CollapsedData | None:
        """Collapsed data of ``columns``, the base model plus column ``j``, in one pass.

        A model's pattern is (base pattern, bit of ``j``), ordered by base pattern, then
        by the new bit; :func:`rtm._kernels.design.extend_patterns` ranks the patterns
        that occur and sums the rows (by count, too, for the NB forms) in row order, so
        the data equal those of the numpy route to the last bit. ``None`` when the
        (pattern, count) table would be too large for it.
        """
        assert self._base is not None
        _, ids, bits = self._base
        n_base = bits.shape[0]
        y_levels = 0 if self.distribution == "poisson" else self.y_levels
        if 2 * n_base * max(y_levels, 1) > _EXTEND_MAX_KEYS:
            return None
        g, rank, y_used, w_used, ys_used = _design.extend_patterns(
            ids, n_base, self.nonzero[:, j], self.y, self.w, y_levels
        )
        # design rows of the patterns used: intercept, then the model's columns
        # (the base model's bits with the new bit inserted at j's place)
        rows = self._design_rows(columns, np.insert(bits[g >> 1], columns.index(j), g & 1, axis=1))
        if y_levels == 0:
            return CollapsedData(rows, ys_used, w_used, self.constant, self.n_total, distinct=True)
        return CollapsedData(
            rows,
            y_used.astype(np.float64),
            w_used,
            self.constant,
            self.n_total,
            design_group=rank,
        )

    def _design_rows(self, columns: tuple[int, ...], bits: NDArray[np.int64]) -> NDArray:
        """Design rows of patterns given as bits: intercept, then the signed columns."""
        return np.column_stack([np.ones(bits.shape[0]), bits * self.sign[list(columns)]])

    def set_base(self, columns: tuple[int, ...]) -> None:
        """Keep the patterns of ``columns`` for the models that extend it."""
        if len(columns) < self._MAX_BITS:
            self._base = (columns, *self._patterns(columns))
        else:
            self._base = None

    def collapsed(self, columns: tuple[int, ...]) -> CollapsedData:
        k = len(columns)
        if k <= self._MAX_BITS:
            j = self._added_column(columns)
            if j is not None:
                data = self._extended_collapsed(columns, j)
                if data is not None:
                    return data
            pattern, bits = self._patterns(columns)
            rows = self._design_rows(columns, bits)
        else:
            unique_rows, inverse = np.unique(self.X[:, list(columns)], axis=0, return_inverse=True)
            pattern = inverse.ravel().astype(np.int64)
            rows = np.column_stack([np.ones(unique_rows.shape[0]), unique_rows.astype(np.float64)])
        return collapse_patterns(
            pattern, rows, self.y, self.w, self.distribution, self.constant, distinct=True
        )

    def _warm_start(self, columns: tuple[int, ...]) -> NDArray[np.float64] | None:
        """The base model's coefficients for ``columns`` (0 for a column it lacks)."""
        if self._base is None:
            return None
        base = self._base[0]
        base_fit = self.cache.get(base)
        if base_fit is None or not base_fit.converged:
            return None
        where = {j: c for c, j in enumerate(base, start=1)}
        start = np.zeros(len(columns) + 1)
        start[0] = base_fit.coef[0]
        for c, j in enumerate(columns, start=1):
            if j in where:
                start[c] = base_fit.coef[where[j]]
        return start

    def fit(self, columns: tuple[int, ...]) -> GLMFit | None:
        """Fit the model with these columns; ``None`` if the design is degenerate.

        Newton starts from the base model's fit (the search's current model, one
        column away): the likelihood is concave, so the optimum is the same and
        fewer iterations reach it.
        """
        if columns not in self.cache:
            try:
                fit = fit_collapsed(
                    self.collapsed(columns), self.distribution, self._warm_start(columns)
                )
                self.cache[columns] = fit if self.scale is None else quasi_poisson(fit, self.scale)
            except FitError:
                self.cache[columns] = None
        return self.cache[columns]


def _admissible(fit: GLMFit | None, alpha: float) -> bool:
    if fit is None or not fit.converged:
        return False
    coef, pvalues = fit.coef[1:], fit.pvalues[1:]
    return bool(np.all(coef > 0) and np.all(pvalues < alpha))


def check_groups(groups: ArrayLike, n_candidates: int) -> NDArray[np.int64]:
    """The factor (group) of every candidate column, as int64."""
    arr = np.asarray(groups)
    if arr.shape != (n_candidates,):
        raise ParameterError(
            f"groups must have one factor id per candidate ({n_candidates}); got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"groups must be integer factor ids; got dtype {arr.dtype}")
    return arr.astype(np.int64)


def check_alpha(alpha: float) -> float:
    """The significance level, a number strictly between 0 and 1."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ParameterError(f"alpha must be in (0, 1); got {alpha!r}")
    return float(alpha)


def check_candidates(candidates: Sequence[int] | None, n_candidates: int) -> tuple[int, ...]:
    """The search pool: distinct, valid column indices, ascending (all columns by default)."""
    if candidates is None:
        return tuple(range(n_candidates))
    values = sorted({int(c) for c in candidates})
    if values and (values[0] < 0 or values[-1] >= n_candidates):
        raise ParameterError(
            f"candidates must be column indices in [0, {n_candidates}); got {list(candidates)!r}"
        )
    return tuple(values)


def check_max_steps(max_steps: int | None, pool_size: int) -> int:
    """The most steps a search takes (default twice the pool, plus two)."""
    if max_steps is None:
        return 2 * pool_size + 2
    if isinstance(max_steps, bool) or not isinstance(max_steps, int | np.integer) or max_steps < 0:
        raise ParameterError(f"max_steps must be a non-negative integer; got {max_steps!r}")
    return int(max_steps)


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
    factor = check_groups(groups, Xb.shape[1])
    alpha = check_alpha(alpha)
    pool = check_candidates(candidates, Xb.shape[1])
    steps = check_max_steps(max_steps, len(pool))
    reduced = reduce_rows(Xb, sign, counts, w, pool)
    return search(reduced, pool, factor, distribution, alpha, steps)


@dataclass(frozen=True)
class ReducedRows:
    """The search pool's columns over cells collapsed by (pattern, count).

    Cells with the same values in every pool column and the same count are
    interchangeable in every sub-model's likelihood (Poisson and NB alike), so
    they become one row with their summed frequency weight: exact, and much
    smaller on fine grids. Column ``c`` of ``X`` is the pool's ``c``-th column.
    """

    X: NDArray[np.int8]
    sign: NDArray[np.int8]
    y: NDArray[np.int64]
    w: NDArray[np.float64]


def reduce_rows(
    X: NDArray[np.int8],
    sign: NDArray[np.int8],
    y: NDArray[np.int64],
    w: NDArray[np.float64],
    pool: tuple[int, ...],
) -> ReducedRows:
    """The rows of the pool's columns with a positive weight, collapsed by (pattern, count)."""
    kept = np.flatnonzero(w > 0)
    columns = np.asarray(pool, dtype=np.int64)
    keys = _design.pack_rows(X, columns, y, 8)
    if kept.size < X.shape[0]:
        keys = keys[kept]
    first, inverse = group_rows(keys)
    del keys
    rows = kept[first]
    return ReducedRows(
        X=np.ascontiguousarray(X[np.ix_(rows, columns)]),
        sign=np.ascontiguousarray(sign[columns]),
        y=y[rows],
        w=np.bincount(inverse, weights=w[kept], minlength=first.size),  # type: ignore[arg-type]
    )


def search(
    reduced: ReducedRows,
    pool: tuple[int, ...],
    factor: NDArray[np.int64],
    distribution: Distribution,
    alpha: float,
    max_steps: int,
    scale: float | None = None,
) -> StepwiseResult:
    """The stepwise search itself; models are tuples of ``X``'s column indices.

    With ``scale`` (Poisson only), every fit is the quasi-Poisson one with that ``phi``.
    """
    fitter = _ModelFitter(reduced.X, reduced.sign, reduced.y, reduced.w, distribution, scale)
    position = {j: c for c, j in enumerate(pool)}

    def fit_model(model: tuple[int, ...]) -> GLMFit | None:
        # pool is ascending, so positions keep the model's column order
        return fitter.fit(tuple(position[j] for j in model))

    # a constant column (all zeros, or all cells exposed) is aliased with the intercept
    n_rows = reduced.y.shape[0]
    exposed = fitter.nonzero.sum(axis=0)
    varying = {j for j in pool if 0 < exposed[position[j]] < n_rows}
    null_fit = fit_model(())
    if null_fit is None:
        raise FitError("cannot fit the null model")
    current: tuple[int, ...] = ()
    current_fit = null_fit
    visited = {current}
    history = [StepRecord(0, "start", None, current_fit.bic, current)]
    for step in range(1, max_steps + 1):
        fitter.set_base(tuple(position[j] for j in current))
        used_factors = {int(factor[j]) for j in current}
        moves: list[tuple[float, int, int, tuple[int, ...], GLMFit]] = []
        for j in pool:
            if j in varying and int(factor[j]) not in used_factors:
                model = tuple(sorted(current + (j,)))
                if model not in visited:
                    fit = fit_model(model)
                    if fit is not None and _admissible(fit, alpha):
                        moves.append((fit.bic, j, 0, model, fit))
        for j in current:
            model = tuple(c for c in current if c != j)
            if model not in visited:
                fit = fit_model(model)
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
