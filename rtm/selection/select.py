"""Poisson against the negative binomial: two stepwise searches, the lower BIC wins.

:func:`select_model` runs :func:`~rtm.selection.stepwise.stepwise` once per competing
family (Poisson and ``nb_form``, :mod:`rtm.selection.families`) and keeps the lower BIC.

Harm-weighted outcomes (``select_model(..., quasi=True)``): the outcome is harm per cell
in event-equivalents (non-integer). Only the Poisson pseudo-likelihood is fitted
(consistent for the mean model; the negative binomial is no valid pseudo-likelihood for
non-integer outcomes). The Pearson dispersion ``phi`` is estimated once, on the Poisson
fit of all the search pool (the culling survivors; the null model if that fit is
degenerate), floored at 1, and every model of the search is scored quasi-Poisson style
with that same ``phi``: the log-likelihood (hence BIC differences) divided by ``phi``,
standard errors multiplied by ``sqrt(phi)``. Non-integer outcomes are split into floor
and ceiling rows (:func:`rtm.selection.data.split_fractional`), exact for the Poisson fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm._kernels import design as _design
from rtm.checks import check_choice
from rtm.errors import FitError
from rtm.selection.data import (
    CollapsedData,
    group_rows,
    split_fractional,
    validate_binary_design,
    validate_counts,
    validate_weights,
)
from rtm.selection.families import NB_FORMS, Distribution, NBForm, get_family
from rtm.selection.glm import fit_poisson_collapsed, pearson_dispersion
from rtm.selection.stepwise import (
    StepwiseResult,
    check_alpha,
    check_candidates,
    check_groups,
    check_max_steps,
    reduce_rows,
    search,
)

__all__ = ["SelectionResult", "lowest_bic", "select_model"]

#: collapsed rows from which :func:`select_model` runs its two searches in two threads
_THREADED_SEARCH_ROWS = 20_000


@dataclass(frozen=True, eq=False)
class SelectionResult:
    """Outcome of :func:`select_model`: one stepwise search per competing family.

    Attributes
    ----------
    searches : tuple of StepwiseResult
        One search per family of the contest, Poisson first (the quasi-Poisson alone
        for a harm-weighted selection).
    winner : {"poisson", "nb2", "nbii"}
        Distribution of the lowest-BIC search (the earlier one on an exact tie).
    dispersion_quasi : float or None
        Quasi-Poisson selection only: the Pearson dispersion ``phi`` used throughout.
    dispersion_basis : str or None
        The model ``phi`` was estimated on (``"culled full model"`` or ``"null model"``).
    dispersion_raw : float or None
        Pearson chi2 / df of that model before flooring at 1.
    """

    searches: tuple[StepwiseResult, ...]
    winner: Distribution
    dispersion_quasi: float | None = None
    dispersion_basis: str | None = None
    dispersion_raw: float | None = None

    def search_of(self, distribution: str) -> StepwiseResult | None:
        """The search with ``distribution``, if it was run."""
        return next((s for s in self.searches if s.distribution == distribution), None)

    @property
    def poisson(self) -> StepwiseResult:
        """The Poisson (or quasi-Poisson) search."""
        found = self.search_of("poisson")
        assert found is not None
        return found

    @property
    def negative_binomial(self) -> StepwiseResult | None:
        """The negative-binomial search (None for a harm-weighted selection)."""
        return next(
            (s for s in self.searches if get_family(s.distribution).negative_binomial), None
        )

    @property
    def best(self) -> StepwiseResult:
        """The winning stepwise result."""
        found = self.search_of(self.winner)
        assert found is not None
        return found

    @property
    def selected(self) -> tuple[int, ...]:
        """Columns of the winning model (empty: no significant factor)."""
        return self.best.selected


def lowest_bic(searches: Sequence[StepwiseResult]) -> Distribution:
    """The distribution of the lowest-BIC search; the earlier wins a tie, NaN never wins."""
    best = searches[0]
    for candidate in searches[1:]:
        if candidate.fit.bic < best.fit.bic:
            best = candidate
    return best.distribution


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
    factor = check_groups(groups, Xb.shape[1])
    alpha = check_alpha(alpha)
    pool = check_candidates(candidates, Xb.shape[1])
    steps = check_max_steps(max_steps, len(pool))
    if quasi:
        outcome = np.asarray(counts, dtype=np.float64)
        return _select_quasi(Xb, sign, outcome, w, factor, alpha, pool, steps)
    reduced = reduce_rows(Xb, sign, counts, w, pool)
    contest: tuple[Distribution, ...] = ("poisson", nb_form)
    # The searches are independent and their fits run in nogil kernels, but each fit is
    # also a dozen numpy calls on the collapsed rows, which hand the GIL back and forth.
    # Side by side pays only when those rows are many (London 25 m, 27,470 rows: 5%
    # faster); on fewer rows the hand-offs cost more than the overlap saves (London
    # 100 m, 7,810 rows: 15% slower), so the searches run one after the other. The
    # result does not depend on it.
    if reduced.y.shape[0] >= _THREADED_SEARCH_ROWS:
        with ThreadPoolExecutor(max_workers=len(contest)) as executor:
            futures = [
                executor.submit(search, reduced, pool, factor, family, alpha, steps)
                for family in contest
            ]
            searches = tuple(future.result() for future in futures)
    else:
        searches = tuple(search(reduced, pool, factor, family, alpha, steps) for family in contest)
    return SelectionResult(searches=searches, winner=lowest_bic(searches))


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
    reduced = reduce_rows(X_pool, sign[columns], y_int, w_split, tuple(range(len(pool))))
    poisson = search(reduced, pool, factor, "poisson", alpha, steps, scale=phi)
    return SelectionResult(
        searches=(poisson,),
        winner="poisson",
        dispersion_quasi=float(phi),
        dispersion_basis=basis,
        dispersion_raw=float(raw),
    )
