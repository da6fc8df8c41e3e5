"""Model selection as RTMDx does it: culling by elastic net, then stepwise BIC.

1. :func:`cull` keeps the candidates with a nonzero coefficient in a Poisson
   elastic net whose coefficients are constrained to be >= 0 and whose penalty is
   chosen by cross-validation on folds balanced on the outcome.
2. :func:`stepwise` runs a bidirectional stepwise search from the null model,
   minimizing the BIC under RTMDx's rules: at most one variable per factor and
   every factor coefficient positive and significant.
3. :func:`select_model` runs :func:`stepwise` with a Poisson and with a negative
   binomial distribution and keeps the lower BIC.

Culling lives in :mod:`rtm.culling` (re-exported here, so ``from rtm.selection
import cull`` keeps working); its decisions are documented there.

Decisions that change results (recorded in the result objects)
---------------------------------------------------------------
* Stepwise BIC uses ``n`` = number of cells (sum of frequency weights) and counts
  the NB dispersion parameter. A model is admissible only if its fit converged
  without separation and every non-intercept coefficient is > 0 with a Wald
  p-value < ``alpha``. Protective candidates are coded 0/-1, so "> 0" is the
  right sign test for both kinds.
* Harm-weighted outcomes (``select_model(..., quasi=True)``): the outcome is harm
  per cell in event-equivalents (non-integer). Only the Poisson pseudo-likelihood
  is fitted (consistent for the mean model; the negative binomial is no valid
  pseudo-likelihood for non-integer outcomes). The Pearson dispersion ``phi`` is
  estimated once, on the Poisson fit of all the search pool (the culling
  survivors; the null model if that fit is degenerate), floored at 1, and every
  model of the search is scored quasi-Poisson style with that same ``phi``: the
  log-likelihood (hence BIC differences) divided by ``phi``, standard errors
  multiplied by ``sqrt(phi)``. Non-integer outcomes are split into floor and
  ceiling rows (:func:`rtm.glm.split_fractional`), exact for the Poisson fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm._kernels import design as _design
from rtm.culling import (
    RULES,
    CullResult,
    Rule,
    _column_scale,
    _lambda_max,
    cull,
    enet_path,
    fold_assignment,
)
from rtm.errors import FitError, ParameterError
from rtm.glm import (
    DISTRIBUTIONS,
    CollapsedData,
    Distribution,
    GLMFit,
    check_choice,
    collapse_patterns,
    fit_collapsed,
    fit_poisson_collapsed,
    group_rows,
    loglik_constant,
    pearson_dispersion,
    quasi_poisson,
    split_fractional,
    validate_binary_design,
    validate_counts,
    validate_weights,
)

__all__ = [
    "RULES",
    "CullResult",
    "Rule",
    "SelectionResult",
    "StepRecord",
    "StepwiseResult",
    "cull",
    "enet_path",
    "fold_assignment",
    "select_model",
    "stepwise",
]
# private helpers kept importable from their old home
_REEXPORTED = (_column_scale, _lambda_max)

#: largest (pattern, count) table :func:`rtm._kernels.design.extend_patterns` is given
_EXTEND_MAX_KEYS = 4_000_000
#: collapsed rows from which :func:`select_model` runs its two searches in two threads
_THREADED_SEARCH_ROWS = 20_000

NBForm = Literal["nbii", "nb2"]
NB_FORMS: tuple[NBForm, ...] = ("nbii", "nb2")


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


def _validate_max_steps(max_steps: int | None, pool_size: int) -> int:
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
    factor = _validate_groups(groups, Xb.shape[1])
    alpha = _validate_alpha(alpha)
    pool = _validate_candidates(candidates, Xb.shape[1])
    steps = _validate_max_steps(max_steps, len(pool))
    reduced = _reduce(Xb, sign, counts, w, pool)
    return _search(reduced, pool, factor, distribution, alpha, steps)


@dataclass(frozen=True)
class _Reduced:
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


def _reduce(
    X: NDArray[np.int8],
    sign: NDArray[np.int8],
    y: NDArray[np.int64],
    w: NDArray[np.float64],
    pool: tuple[int, ...],
) -> _Reduced:
    kept = np.flatnonzero(w > 0)
    columns = np.asarray(pool, dtype=np.int64)
    keys = _design.pack_rows(X, columns, y, 8)
    if kept.size < X.shape[0]:
        keys = keys[kept]
    first, inverse = group_rows(keys)
    del keys
    rows = kept[first]
    return _Reduced(
        X=np.ascontiguousarray(X[np.ix_(rows, columns)]),
        sign=np.ascontiguousarray(sign[columns]),
        y=y[rows],
        w=np.bincount(inverse, weights=w[kept], minlength=first.size),  # type: ignore[arg-type]
    )


def _search(
    reduced: _Reduced,
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


# ===========================================================================
# Poisson vs negative binomial
# ===========================================================================


@dataclass(frozen=True, eq=False)
class SelectionResult:
    """Outcome of :func:`select_model`.

    Attributes
    ----------
    poisson : StepwiseResult
    negative_binomial : StepwiseResult or None
        The stepwise search with the NB form asked for (``nb_form``); ``None`` for a
        harm-weighted (``quasi``) selection, where only the quasi-Poisson is fitted.
    winner : {"poisson", "nb2", "nbii"}
        Distribution of the lower-BIC result (Poisson on an exact tie).
    dispersion_quasi : float or None
        Quasi-Poisson selection only: the Pearson dispersion ``phi`` used throughout.
    dispersion_basis : str or None
        The model ``phi`` was estimated on (``"culled full model"`` or ``"null model"``).
    dispersion_raw : float or None
        Pearson chi2 / df of that model before flooring at 1.
    """

    poisson: StepwiseResult
    negative_binomial: StepwiseResult | None
    winner: Distribution
    dispersion_quasi: float | None = None
    dispersion_basis: str | None = None
    dispersion_raw: float | None = None

    @property
    def best(self) -> StepwiseResult:
        """The winning stepwise result."""
        if self.winner == "poisson":
            return self.poisson
        assert self.negative_binomial is not None
        return self.negative_binomial

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
    quasi: bool = False,
) -> SelectionResult:
    """Run :func:`stepwise` with Poisson and with a negative binomial; keep the lower BIC.

    Parameters
    ----------
    X, y, groups, weights, alpha, candidates, max_steps
        As for :func:`stepwise`.
    nb_form : {"nbii", "nb2"}, default "nbii"
        ``"nbii"`` is RTMDx's (gamlss NBII, variance ``mu (1 + sigma)``);
        ``"nb2"`` the common variance ``mu + mu**2 / theta``.
    quasi : bool, default False
        ``y`` is a non-negative real outcome (harm in event-equivalents): run only the
        quasi-Poisson search (see the module notes); ``nb_form`` is then unused.

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
    Xb, sign = validate_binary_design(X)
    counts = validate_counts(y, Xb.shape[0], fractional=quasi)
    w = validate_weights(weights, Xb.shape[0])
    factor = _validate_groups(groups, Xb.shape[1])
    alpha = _validate_alpha(alpha)
    pool = _validate_candidates(candidates, Xb.shape[1])
    steps = _validate_max_steps(max_steps, len(pool))
    if quasi:
        outcome = np.asarray(counts, dtype=np.float64)
        return _select_quasi(Xb, sign, outcome, w, factor, alpha, pool, steps)
    reduced = _reduce(Xb, sign, counts, w, pool)
    # The two searches are independent and their fits run in nogil kernels, but each
    # fit is also a dozen numpy calls on the collapsed rows, which hand the GIL back and
    # forth. Side by side pays only when those rows are many (London 25 m, 27,470 rows:
    # 5% faster); on fewer rows the hand-offs cost more than the overlap saves (London
    # 100 m, 7,810 rows: 15% slower), so the searches run one after the other. The
    # result does not depend on it.
    if reduced.y.shape[0] >= _THREADED_SEARCH_ROWS:
        with ThreadPoolExecutor(max_workers=2) as executor:
            searches = [
                executor.submit(_search, reduced, pool, factor, dist, alpha, steps)
                for dist in ("poisson", nb_form)
            ]
            poisson, negbin = (search.result() for search in searches)
    else:
        poisson, negbin = (
            _search(reduced, pool, factor, dist, alpha, steps) for dist in ("poisson", nb_form)
        )
    winner: Distribution = nb_form if negbin.fit.bic < poisson.fit.bic else "poisson"
    if math.isnan(negbin.fit.bic):
        winner = "poisson"
    return SelectionResult(poisson=poisson, negative_binomial=negbin, winner=winner)


def _pool_dispersion(
    X: NDArray[np.int8], y: NDArray[np.float64], w: NDArray[np.float64], pool: tuple[int, ...]
) -> tuple[float, str]:
    """Pearson chi2 / df of the Poisson fit with every pool column (else the null model)."""
    n = y.shape[0]
    for basis, columns in (("culled full model", pool), ("null model", ())):
        cols = np.asarray(columns, dtype=np.int64)
        if cols.size:
            first, inverse = group_rows(_design.pack_rows(X, cols, np.zeros(n, dtype=np.int64), 0))
        else:
            first, inverse = np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        rows = np.column_stack([np.ones(first.size), X[np.ix_(first, cols)].astype(np.float64)])
        wsum = np.bincount(inverse, weights=w, minlength=first.size).astype(np.float64)
        ysum = np.bincount(inverse, weights=w * y, minlength=first.size).astype(np.float64)
        used = wsum > 0
        data = CollapsedData(rows[used], ysum[used], wsum[used], 0.0, float(w.sum()))
        try:
            fit = fit_poisson_collapsed(data)
        except FitError:
            continue
        if not fit.converged and not fit.separated:
            continue
        # fitted on the used rows only: zero-weight patterns get mu but no weight
        return pearson_dispersion(rows, y, w, np.asarray(fit.coef), inverse), basis
    raise FitError("cannot fit the null model")


def _select_quasi(
    Xb: NDArray[np.int8],
    sign: NDArray[np.int8],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    factor: NDArray[np.int64],
    alpha: float,
    pool: tuple[int, ...],
    steps: int,
) -> SelectionResult:
    """The quasi-Poisson stepwise search for a non-integer outcome (harm)."""
    raw, basis = _pool_dispersion(Xb, y, w, pool)
    phi = max(raw, 1.0)
    y_int, w_split, source = split_fractional(y, w)
    columns = np.asarray(pool, dtype=np.int64)
    # only the pool's columns are copied for the extra (ceiling) rows
    X_pool = np.ascontiguousarray(Xb[np.ix_(source, columns)])
    reduced = _reduce(X_pool, sign[columns], y_int, w_split, tuple(range(len(pool))))
    poisson = _search(reduced, pool, factor, "poisson", alpha, steps, scale=phi)
    return SelectionResult(
        poisson=poisson,
        negative_binomial=None,
        winner="poisson",
        dispersion_quasi=float(phi),
        dispersion_basis=basis,
        dispersion_raw=float(raw),
    )
