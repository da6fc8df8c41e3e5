"""Maximum-likelihood count regressions (Poisson, NB2, NBII) with frequency weights.

The fits behind stepwise selection. Candidate columns are binary, so a model with
``k`` columns has at most ``2**k`` distinct design rows; rows are collapsed into
frequency weights before fitting, which is exact for these likelihoods:

* Poisson: collapsed by design row alone (summed counts and summed weights); the
  ``-log(y!)`` terms are added back as one constant, so the reported
  log-likelihood is the full, uncollapsed one (the value statsmodels reports).
* Negative binomial: collapsed by (design row, count) pairs.

Non-integer outcomes (harm in event-equivalents) are fitted by the Poisson
pseudo-likelihood only, after :func:`split_fractional` turns each row into a floor
and a ceiling row with frequency weights ``(1 - frac, frac)`` (exact for every
parameter-dependent term); :func:`quasi_poisson` then applies a Pearson dispersion.

Negative binomial parametrizations
----------------------------------
``"nb2"``
    Variance ``mu + mu**2 / theta``; :attr:`GLMFit.dispersion` is ``theta``
    (statsmodels' ``NegativeBinomial(loglike_method="nb2")`` reports ``alpha = 1/theta``).
``"nbii"``
    gamlss ``NBII``, as RTMDx uses: variance ``mu * (1 + sigma)``, i.e. a negative
    binomial with size ``mu / sigma``; :attr:`GLMFit.dispersion` is ``sigma``
    (statsmodels' ``loglike_method="nb1"`` reports the same number as ``alpha``).

The dispersion is estimated jointly with the coefficients (Newton on
``(beta, log dispersion)``); standard errors come from the inverse observed
information of all parameters, as in statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from rtm._kernels import design as _design
from rtm._kernels import glm as _k
from rtm.errors import FitError, ParameterError

Distribution = Literal["poisson", "nb2", "nbii"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("poisson", "nb2", "nbii")

_STATUS_CONVERGED = 0
_STATUS_SINGULAR = 2
_STATUS_BOUNDARY = 3

#: log-dispersion bounds: at the lower one the NB is Poisson to ~7 digits
_LOG_DISPERSION_MIN = float(np.log(1e-7))
_LOG_DISPERSION_MAX = float(np.log(1e8))
_MAX_ITER = 200
_TOL = 1e-15

_T = TypeVar("_T", bound=str)


def check_choice(parameter: str, value: object, choices: Sequence[_T]) -> _T:
    """Return ``value`` if it is one of ``choices``; else raise a listing error.

    The single place where string options are resolved, so that every error
    lists the valid choices.

    Raises
    ------
    ParameterError
        ``value`` is not one of ``choices``.
    """
    for choice in choices:
        if value == choice:
            return choice
    listed = ", ".join(repr(c) for c in choices)
    raise ParameterError(f"{parameter} must be one of {listed}; got {value!r}")


@dataclass(frozen=True, eq=False)
class GLMFit:
    """A fitted log-link count regression with intercept.

    Attributes
    ----------
    distribution : {"poisson", "nb2", "nbii"}
    coef : ndarray
        Intercept first, then one coefficient per design column.
    se, z, pvalues : ndarray
        Wald standard errors, z statistics and two-sided p-values, same order as ``coef``.
    loglik : float
        Full log-likelihood, including the ``-log(y!)`` terms.
    n : float
        Number of observations (sum of the frequency weights); the BIC's ``n``.
    n_params : int
        Coefficients (intercept included) plus one for the NB dispersion.
    bic, aic : float
        ``-2 loglik + n_params * log(n)`` and ``-2 loglik + 2 n_params``.
    dispersion : float or None
        ``None`` for Poisson, ``theta`` for ``"nb2"`` (``inf`` at the Poisson
        boundary), ``sigma`` for ``"nbii"`` (``0`` at the Poisson boundary).
    converged : bool
        The Newton iterations met the tolerance and no separation was detected.
    separated : bool
        Some design pattern has no events and its fitted mean ran to zero: a
        coefficient diverges (reported values are those at the stopping point).
    at_boundary : bool
        NB only: the dispersion MLE is at the Poisson boundary; coefficients,
        standard errors and log-likelihood are those of the Poisson fit, while
        ``n_params`` still counts the dispersion parameter.
    n_iter : int
        Newton iterations used.
    scale : float or None
        Quasi-Poisson only (:func:`quasi_poisson`): the dispersion ``phi`` by which the
        log-likelihood (so ``bic`` and ``aic``) was divided and the variances multiplied;
        ``None`` for a plain likelihood fit.
    """

    distribution: Distribution
    coef: NDArray[np.float64]
    se: NDArray[np.float64]
    z: NDArray[np.float64]
    pvalues: NDArray[np.float64]
    loglik: float
    n: float
    n_params: int
    bic: float
    aic: float
    dispersion: float | None
    converged: bool
    separated: bool = False
    at_boundary: bool = False
    n_iter: int = 0
    scale: float | None = None


# ---------------------------------------------------------------------------
# validation shared with rtm.selection
# ---------------------------------------------------------------------------


def validate_counts(
    y: ArrayLike, n_rows: int | None = None, *, fractional: bool = False
) -> NDArray[np.int64]:
    """Return ``y`` as int64 counts, checking shape and values.

    With ``fractional=True`` a floating-point ``y`` may hold non-integer values (harm in
    event-equivalents, see :func:`split_fractional`) and is returned as float64; integer
    input is returned as int64 exactly as without it.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ParameterError(f"y must be one-dimensional; got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ParameterError(f"y must have one count per row of X ({n_rows}); got {arr.shape[0]}")
    if fractional and arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or (arr.size and arr.min() < 0):
            raise ParameterError("y must be finite and non-negative")
        return arr.astype(np.float64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ParameterError("y must hold whole-number counts; got non-integer values")
    elif arr.dtype.kind not in "iub":
        raise ParameterError(f"y must be numeric counts; got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ParameterError(f"y must be non-negative counts; got minimum {out.min()}")
    return out


def split_fractional(
    y: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Split non-integer outcomes into a floor and a ceiling row with frequency weights.

    A row with outcome ``y = k + f`` (``k`` whole, ``0 < f < 1``) and weight ``w``
    becomes a row ``(k, w (1 - f))`` and a row ``(k + 1, w f)``; whole ``y`` stay one
    row. The weighted sums of ``1`` and of ``y`` per row are unchanged, so every part of
    the Poisson log-likelihood that depends on the parameters, ``sum w (y eta - mu)``,
    is exactly that of the fractional data; only the constant ``-sum w log(y!)``
    becomes ``log y!`` interpolated linearly between whole numbers. The Poisson
    pseudo-likelihood of harm in event-equivalents can then run through the count code.

    Returns
    -------
    y_int : ndarray of int64
    w_split : ndarray of float64
    source : ndarray of int64
        The input row each output row comes from (the first ``len(y)`` are the rows
        themselves, in order).

    Examples
    --------
    >>> y_int, w, src = split_fractional(np.array([2.0, 0.25]), np.ones(2))
    >>> y_int.tolist(), w.tolist(), src.tolist()
    ([2, 0, 1], [1.0, 0.75, 0.25], [0, 1, 1])
    """
    floor = np.floor(y)
    frac = y - floor
    extra = np.flatnonzero(frac > 0)
    y_int = np.concatenate([floor.astype(np.int64), floor[extra].astype(np.int64) + 1])
    w_split = np.concatenate([w * (1.0 - frac), w[extra] * frac[extra]])
    source = np.concatenate([np.arange(y.shape[0], dtype=np.int64), extra.astype(np.int64)])
    return y_int, w_split, source


def validate_weights(weights: ArrayLike | None, n_rows: int) -> NDArray[np.float64]:
    """Return frequency weights as float64 (all ones when ``None``)."""
    if weights is None:
        return np.ones(n_rows)
    arr = np.asarray(weights, dtype=np.float64)
    if arr.shape != (n_rows,):
        raise ParameterError(f"weights must have shape ({n_rows},); got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ParameterError("weights must be finite and non-negative; got other values")
    if not arr.sum() > 0:
        raise ParameterError("weights must not all be zero")
    return arr


def validate_binary_design(X: ArrayLike) -> tuple[NDArray[np.int8], NDArray[np.int8]]:
    """Check the candidate matrix; return it as int8 and each column's sign.

    Each column must take values in {0, 1} (aggravating) or {0, -1} (protective);
    the sign of an all-zero column is reported as +1.
    """
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ParameterError(
            f"X must be two-dimensional (cells x candidates); got shape {arr.shape}"
        )
    if arr.dtype != np.int8:
        # other dtypes are checked before the int8 cast could wrap them into range
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ParameterError("X must be finite")
        if not np.all((arr == 0) | (arr == 1) | (arr == -1)):
            raise ParameterError("X must hold 0/1 (aggravating) or 0/-1 (protective) values")
    # an int8 matrix (the CandidateSet's) is used as is: no copy, no temporaries
    out = np.ascontiguousarray(arr, dtype=np.int8)
    has_pos, has_neg, n_bad = _design.column_flags(out)
    if n_bad:
        raise ParameterError("X must hold 0/1 (aggravating) or 0/-1 (protective) values")
    mixed = np.flatnonzero(has_pos & has_neg)
    if mixed.size:
        raise ParameterError(
            "X columns must be coded 0/1 or 0/-1, not both; "
            f"got mixed signs in columns {mixed.tolist()}"
        )
    sign = np.where(has_neg, -1, 1).astype(np.int8)
    return out, sign


# ---------------------------------------------------------------------------
# collapsing
# ---------------------------------------------------------------------------


def group_rows(keys: NDArray[np.uint8]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Group equal rows of a byte matrix.

    Parameters
    ----------
    keys : ndarray of uint8, shape (n, k)
        One key per row (e.g. from ``rtm._kernels.design.pack_rows``).

    Returns
    -------
    first : ndarray of int64, shape (n_groups,)
        Index of each group's first row, ascending: groups are numbered in order
        of first appearance, so the result does not depend on the key encoding.
    inverse : ndarray of int64, shape (n,)
        Group of each row.

    Examples
    --------
    >>> first, inverse = group_rows(np.array([[3], [1], [3]], dtype=np.uint8))
    >>> first.tolist(), inverse.tolist()
    ([0, 1], [0, 1, 0])
    """
    keys = np.ascontiguousarray(keys, dtype=np.uint8)
    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    void = keys.view(np.dtype((np.void, keys.shape[1]))).ravel()
    _, first, inverse = np.unique(void, return_index=True, return_inverse=True)
    # renumber groups by first appearance
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


@dataclass(frozen=True, eq=False)
class CollapsedData:
    """Design rows (intercept column first) with counts and frequency weights.

    For Poisson ``y`` holds weighted count sums per design row; for the NB
    forms each row is one (design row, count) pair with ``y`` its count.
    ``loglik_constant`` is ``-sum_i w_i log(y_i!)`` of the uncollapsed data and
    ``n`` the sum of the weights. ``design_group`` (NB forms, optional) numbers
    the distinct design rows, non-decreasing along the rows, so that the NB fit
    can collapse further by design row without sorting.
    """

    design: NDArray[np.float64]
    y: NDArray[np.float64]
    w: NDArray[np.float64]
    loglik_constant: float
    n: float
    design_group: NDArray[np.int64] | None = None
    #: Poisson data whose design rows are known to be distinct (one row per
    #: pattern): the separation check then needs no ``np.unique``
    distinct: bool = False


def _wsum(ids: NDArray[np.int64], weights: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    """Weighted bincount as float64."""
    return np.asarray(np.bincount(ids, weights=weights, minlength=size), dtype=np.float64)


def loglik_constant(y: NDArray[np.int64], w: NDArray[np.float64]) -> float:
    """Return ``-sum w log(y!)``, the part of the log-likelihood free of parameters."""
    return -float(np.dot(w, special.gammaln(y + 1.0)))


def collapse_patterns(
    pattern: NDArray[np.int64],
    rows: NDArray[np.float64],
    y: NDArray[np.int64],
    w: NDArray[np.float64],
    distribution: Distribution,
    constant: float,
    distinct: bool = False,
) -> CollapsedData:
    """Collapse observations that share a design pattern (and, for NB, a count).

    Parameters
    ----------
    pattern : ndarray of int64
        Non-negative pattern id per observation; equal ids mean equal design rows.
    rows : ndarray, shape (n_patterns_max, p)
        ``rows[g]`` is the design row (intercept first) of pattern ``g``; only
        the rows of patterns that occur are read.
    y, w : ndarray
        Counts and frequency weights per observation.
    distribution : {"poisson", "nb2", "nbii"}
    constant : float
        :func:`loglik_constant` of ``(y, w)``.
    distinct : bool, default False
        Different ids also mean different design rows (ids number the distinct rows).
    """
    n_total = float(w.sum())
    if distribution == "poisson":
        size = int(pattern.max()) + 1 if pattern.size else 1
        wsum = _wsum(pattern, w, size)
        ysum = _wsum(pattern, w * y, size)
        used = np.flatnonzero(wsum > 0)
        return CollapsedData(
            np.ascontiguousarray(rows[used]),
            ysum[used],
            wsum[used],
            constant,
            n_total,
            distinct=distinct,
        )
    y_levels = int(y.max()) + 1
    n_keys = (int(pattern.max()) + 1) * y_levels
    if n_keys <= 4_000_000:
        key = pattern * y_levels + y
        wsum = _wsum(key, w, n_keys)
        used = np.flatnonzero(wsum > 0)
        pat_used, y_used = np.divmod(used, y_levels)
        wcol = wsum[used]
    else:
        pairs, inverse = np.unique(np.column_stack([pattern, y]), axis=0, return_inverse=True)
        wcol = _wsum(inverse.ravel(), w, pairs.shape[0])
        keep = wcol > 0
        pat_used, y_used, wcol = pairs[keep, 0], pairs[keep, 1], wcol[keep]
    # both branches order the pairs by (pattern, count): pat_used is non-decreasing
    return CollapsedData(
        np.ascontiguousarray(rows[pat_used]),
        y_used.astype(np.float64),
        wcol,
        constant,
        n_total,
        design_group=np.asarray(pat_used, dtype=np.int64),
    )


def collapse(
    X: ArrayLike, y: NDArray[np.int64], w: NDArray[np.float64], distribution: Distribution
) -> CollapsedData:
    """Collapse a general design (any values) by its distinct rows."""
    design = np.asarray(X, dtype=np.float64)
    if design.shape[1] == 0:
        pattern = np.zeros(design.shape[0], dtype=np.int64)
        unique_rows = np.zeros((1, 0))
    else:
        unique_rows, inverse = np.unique(design, axis=0, return_inverse=True)
        pattern = inverse.ravel().astype(np.int64)
    rows = np.column_stack([np.ones(unique_rows.shape[0]), unique_rows])
    return collapse_patterns(
        pattern, rows, y, w, distribution, loglik_constant(y, w), distinct=True
    )


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------


def _two_sided_p(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Two-sided normal p-values, ``2 * Phi(-|z|)``.

    The same numbers as ``2 * scipy.stats.norm.sf(|z|)`` (which calls ``ndtr``)
    without its per-call overhead, which the thousands of stepwise fits would pay.
    """
    return np.asarray(2.0 * special.ndtr(-np.abs(z)), dtype=np.float64)


def _wald(coef: NDArray[np.float64], cov: NDArray[np.float64]) -> tuple[NDArray, NDArray, NDArray]:
    diag = np.diag(cov).copy()
    se = np.sqrt(np.where(diag > 0, diag, np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = coef / se
    pvalues = _two_sided_p(z)
    return se, z, pvalues


def _finish(
    distribution: Distribution,
    coef: NDArray[np.float64],
    cov: NDArray[np.float64],
    loglik: float,
    n: float,
    dispersion: float | None,
    converged: bool,
    separated: bool,
    at_boundary: bool,
    n_iter: int,
) -> GLMFit:
    se, z, pvalues = _wald(coef, cov)
    n_params = coef.shape[0] + (0 if distribution == "poisson" else 1)
    for arr in (coef, se, z, pvalues):
        arr.setflags(write=False)
    return GLMFit(
        distribution=distribution,
        coef=coef,
        se=se,
        z=z,
        pvalues=pvalues,
        loglik=float(loglik),
        n=float(n),
        n_params=int(n_params),
        bic=float(-2.0 * loglik + n_params * np.log(n)),
        aic=float(-2.0 * loglik + 2.0 * n_params),
        dispersion=dispersion,
        converged=bool(converged),
        separated=bool(separated),
        at_boundary=bool(at_boundary),
        n_iter=int(n_iter),
    )


def _pattern_event_check(
    design: NDArray[np.float64],
    events: NDArray[np.float64],
    w: NDArray[np.float64],
    coef: NDArray[np.float64],
) -> bool:
    pattern_rows, inverse = np.unique(design, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    ysum = _wsum(inverse, events, len(pattern_rows))
    wsum = _wsum(inverse, w, len(pattern_rows))
    return _separated(pattern_rows, ysum, wsum, coef)


def _separated(
    pattern_rows: NDArray[np.float64],
    ysum: NDArray[np.float64],
    wsum: NDArray[np.float64],
    coef: NDArray[np.float64],
) -> bool:
    """Whether a design pattern without events has its fitted mean driven to zero."""
    mu = np.exp(np.clip(pattern_rows @ coef, -745.0, 700.0))
    return bool(np.any((ysum == 0) & (wsum * mu < 1e-7)))


def _start(
    data: CollapsedData, events: NDArray[np.float64], start: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Newton's starting point: ``start`` if given (a warm start), else the null model's."""
    total = events.sum()
    if not total > 0:
        raise FitError("cannot fit a count model: there are no events (all counts are zero)")
    if start is not None:
        return np.array(start, dtype=np.float64)
    beta = np.zeros(data.design.shape[1])
    beta[0] = np.log(total / data.w.sum())
    return beta


def fit_poisson_collapsed(data: CollapsedData, start: NDArray[np.float64] | None = None) -> GLMFit:
    """Fit a Poisson GLM to data collapsed by design row (``y`` = weighted sums).

    ``start`` (intercept first) warm-starts Newton, e.g. from a nested model's fit:
    the likelihood is concave, so only the path to the same optimum changes.
    """
    beta0 = _start(data, data.y, start)
    beta, ll, neg_hess, n_iter, status = _k.poisson_newton(
        data.design, data.y, data.w, beta0, _MAX_ITER, _TOL
    )
    if status == _STATUS_SINGULAR:
        raise FitError(
            "the design is rank deficient (a candidate column is constant or duplicates another)"
        )
    if data.distinct:
        separated = _separated(data.design, data.y, data.w, beta)
    else:
        separated = _pattern_event_check(data.design, data.y, data.w, beta)
    cov = _safe_inverse(neg_hess)
    return _finish(
        "poisson",
        beta,
        cov,
        ll + data.loglik_constant,
        data.n,
        None,
        status == _STATUS_CONVERGED and not separated,
        separated,
        False,
        n_iter,
    )


def _safe_inverse(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    try:
        return np.asarray(np.linalg.inv(matrix), dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.full_like(matrix, np.nan)


def fit_nb_collapsed(
    data: CollapsedData, distribution: Distribution, start: NDArray[np.float64] | None = None
) -> GLMFit:
    """Fit an NB2 or NBII regression to data collapsed by (design row, count).

    ``start`` (coefficients, intercept first) warm-starts the Poisson fit that
    gives the NB its starting point.
    """
    kind = 0 if distribution == "nb2" else 1
    events = data.y * data.w
    _start(data, events)  # raises when there are no events
    # Poisson fit first: the NB starting point, and the answer at the boundary
    if data.design_group is not None and data.design_group.size == data.design.shape[0]:
        # rows come sorted by design pattern: group boundaries without a sort
        group = data.design_group
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        inverse = np.cumsum(np.r_[True, group[1:] != group[:-1]]) - 1
        pattern_rows = data.design[starts]
    else:
        pattern_rows, inverse = np.unique(data.design, axis=0, return_inverse=True)
        inverse = inverse.ravel()
    pois = CollapsedData(
        np.ascontiguousarray(pattern_rows),
        _wsum(inverse, events, len(pattern_rows)),
        _wsum(inverse, data.w, len(pattern_rows)),
        data.loglik_constant,
        data.n,
        # one row per design pattern only when they came grouped (else np.unique made them)
        distinct=True,
    )
    pois_beta, _, _, _, pstatus = _k.poisson_newton(
        pois.design, pois.y, pois.w, _start(pois, pois.y, start), _MAX_ITER, _TOL
    )
    if pstatus == _STATUS_SINGULAR:
        raise FitError(
            "the design is rank deficient (a candidate column is constant or duplicates another)"
        )
    mu = np.exp(data.design @ pois_beta)
    resid2 = data.w * ((data.y - mu) ** 2 - data.y)
    if kind == 0:
        moment = resid2.sum() / max(float((data.w * mu**2).sum()), 1e-300)
    else:
        moment = resid2.sum() / max(float((data.w * mu).sum()), 1e-300)
    a0 = float(np.log(np.clip(moment, 0.05, 1e4)))
    theta0 = np.append(pois_beta, a0)
    theta, ll, hess, n_iter, status = _k.nb_newton(
        kind,
        data.design,
        data.y,
        data.w,
        theta0,
        _LOG_DISPERSION_MIN,
        _LOG_DISPERSION_MAX,
        _MAX_ITER,
        _TOL,
    )
    if status == _STATUS_BOUNDARY:
        boundary = fit_poisson_collapsed(pois)
        return _finish(
            distribution,
            boundary.coef.copy(),
            np.diag(boundary.se**2),
            boundary.loglik,
            data.n,
            np.inf if kind == 0 else 0.0,
            boundary.converged,
            boundary.separated,
            True,
            boundary.n_iter + n_iter,
        )
    if status == _STATUS_SINGULAR:
        raise FitError(
            "the design is rank deficient (a candidate column is constant or duplicates another)"
        )
    p = data.design.shape[1]
    cov_full = _safe_inverse(-hess)
    beta = theta[:p].copy()
    # pois holds each design pattern once, with its event and weight sums
    separated = _separated(pois.design, pois.y, pois.w, beta)
    dispersion = float(np.exp(-theta[p])) if kind == 0 else float(np.exp(theta[p]))
    return _finish(
        distribution,
        beta,
        cov_full[:p, :p].copy(),
        ll + data.loglik_constant,
        data.n,
        dispersion,
        status == _STATUS_CONVERGED and not separated,
        separated,
        False,
        n_iter,
    )


def quasi_poisson(fit: GLMFit, phi: float) -> GLMFit:
    """The quasi-Poisson version of a Poisson fit with dispersion ``phi``.

    Coefficients are unchanged; standard errors are multiplied by ``sqrt(phi)`` (z and
    p-values follow), and the log-likelihood is divided by ``phi`` (the quasi-likelihood),
    so ``bic = -2 loglik / phi + n_params log(n)``. ``phi`` is fixed from outside: it is
    not counted in ``n_params``.
    """
    if fit.distribution != "poisson":
        raise ParameterError("quasi_poisson needs a Poisson fit")
    if not (math.isfinite(phi) and phi > 0):
        raise ParameterError(f"phi must be a positive number; got {phi!r}")
    coef = fit.coef.copy()
    se = fit.se * math.sqrt(phi)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = coef / se
    pvalues = _two_sided_p(z)
    for arr in (coef, se, z, pvalues):
        arr.setflags(write=False)
    loglik = fit.loglik / phi
    return replace(
        fit,
        coef=coef,
        se=se,
        z=z,
        pvalues=pvalues,
        loglik=float(loglik),
        bic=float(-2.0 * loglik + fit.n_params * np.log(fit.n)),
        aic=float(-2.0 * loglik + 2.0 * fit.n_params),
        scale=float(phi),
    )


def pearson_dispersion(
    design: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    coef: NDArray[np.float64],
    inverse: NDArray[np.int64] | None = None,
) -> float:
    """Pearson ``chi2 / (n - p)`` of a Poisson fit: ``sum w (y - mu)^2 / mu`` over ``sum w - p``.

    ``design`` holds the intercept column; ``w`` are frequency weights (``n = sum w``),
    as statsmodels' ``GLM(..., freq_weights=w).fit(scale="X2")`` computes its scale.
    With ``inverse``, ``design`` holds distinct rows and ``inverse`` gives each
    observation's row.
    """
    mu = np.exp(np.clip(design @ coef, -745.0, 700.0))
    if inverse is not None:
        mu = mu[inverse]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(mu > 0, w * (y - mu) ** 2 / mu, 0.0)
    df = float(w.sum()) - design.shape[1]
    if not df > 0:
        raise FitError("cannot estimate the dispersion: no residual degrees of freedom")
    return float(terms.sum() / df)


def fit_collapsed(
    data: CollapsedData, distribution: Distribution, start: NDArray[np.float64] | None = None
) -> GLMFit:
    """Dispatch a collapsed fit by distribution (``start``: optional warm start)."""
    if distribution == "poisson":
        return fit_poisson_collapsed(data, start)
    return fit_nb_collapsed(data, distribution, start)


def fit_glm(
    X: ArrayLike,
    y: ArrayLike,
    *,
    distribution: Distribution = "poisson",
    weights: ArrayLike | None = None,
    quasi: bool = False,
    scale: float | None = None,
) -> GLMFit:
    """Fit a log-link count regression with intercept by maximum likelihood.

    Parameters
    ----------
    X : array_like, shape (n, k)
        Design without the intercept column (any real values; binary candidates
        collapse best).
    y : array_like of int, shape (n,)
        Counts.
    distribution : {"poisson", "nb2", "nbii"}
        See the module docstring for the NB parametrizations.
    weights : array_like, shape (n,), optional
        Frequency weights (default all ones).
    quasi : bool, default False
        Quasi-Poisson (``distribution`` must be ``"poisson"``): ``y`` may be any
        non-negative reals (e.g. harm in event-equivalents), split exactly into integer
        rows by :func:`split_fractional`; the fit is then scaled by :func:`quasi_poisson`
        with ``scale`` or, by default, this model's Pearson ``chi2 / (n - p)`` (as
        statsmodels' ``GLM(..., family=Poisson()).fit(scale="X2")``).
    scale : float, optional
        A fixed dispersion ``phi`` for ``quasi``.

    Returns
    -------
    GLMFit

    Raises
    ------
    ParameterError
        Bad shapes, values or option.
    FitError
        No events, or a rank-deficient design (e.g. an all-zero column).

    Examples
    --------
    >>> import numpy as np
    >>> from rtm.glm import fit_glm
    >>> X = np.array([[0], [0], [1], [1]])
    >>> fit = fit_glm(X, [1, 1, 3, 5])
    >>> round(float(np.exp(fit.coef[1])), 6)
    4.0
    """
    distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
    design = np.asarray(X, dtype=np.float64)
    if design.ndim != 2:
        raise ParameterError(f"X must be two-dimensional; got shape {design.shape}")
    if not np.all(np.isfinite(design)):
        raise ParameterError("X must be finite")
    if quasi:
        if distribution != "poisson":
            raise ParameterError("quasi needs distribution='poisson'")
        outcome = np.asarray(validate_counts(y, design.shape[0], fractional=True), dtype=np.float64)
        w = validate_weights(weights, design.shape[0])
        y_int, w_split, source = split_fractional(outcome, w)
        fit = fit_collapsed(collapse(design[source], y_int, w_split, "poisson"), "poisson")
        if scale is None:
            full = np.column_stack([np.ones(design.shape[0]), design])
            scale = pearson_dispersion(full, outcome, w, np.asarray(fit.coef))
        return quasi_poisson(fit, float(scale))
    counts = validate_counts(y, design.shape[0])
    w = validate_weights(weights, design.shape[0])
    return fit_collapsed(collapse(design, counts, w, distribution), distribution)
