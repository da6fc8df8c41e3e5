"""Maximum-likelihood count regressions (Poisson, NB2, NBII) with frequency weights.

The fits behind stepwise selection, on data collapsed by design row
(:mod:`rtm.selection.data`). The families (:mod:`rtm.selection.families`) own their
variance and dispersion; the negative binomial's dispersion is estimated jointly with
the coefficients (Newton on ``(beta, log dispersion)``); standard errors come from the
inverse observed information of all parameters, as in statsmodels. :func:`quasi_poisson`
scales a Poisson fit by a Pearson dispersion (harm-weighted outcomes). :func:`fit_glm`
takes an uncollapsed design, with an optional offset: it is rtm's one Poisson solver,
also for the risk + exposure challenger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from rtm._kernels import glm as _k
from rtm.checks import check_choice
from rtm.errors import FitError, ParameterError
from rtm.selection.data import (
    CollapsedData,
    collapse,
    split_fractional,
    validate_counts,
    validate_weights,
    wsum,
)
from rtm.selection.families import DISTRIBUTIONS, Distribution, get_family

__all__ = [
    "GLMFit",
    "fit_collapsed",
    "fit_glm",
    "fit_nb_collapsed",
    "fit_poisson_collapsed",
    "pearson_dispersion",
    "quasi_poisson",
]

_STATUS_CONVERGED = 0

_STATUS_SINGULAR = 2

_STATUS_BOUNDARY = 3


#: log-dispersion bounds: at the lower one the NB is Poisson to ~7 digits
_LOG_DISPERSION_MIN = float(np.log(1e-7))

_LOG_DISPERSION_MAX = float(np.log(1e8))

_MAX_ITER = 200

_TOL = 1e-15


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
    ysum = wsum(inverse, events, len(pattern_rows))
    weights = wsum(inverse, w, len(pattern_rows))
    return _separated(pattern_rows, ysum, weights, coef)


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
        raise _rank_deficient()
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


def _by_design_row(data: CollapsedData) -> CollapsedData:
    """NB data (one row per design row and count) collapsed further, by design row alone."""
    events = data.y * data.w
    if data.design_group is not None and data.design_group.size == data.design.shape[0]:
        # rows come sorted by design pattern: group boundaries without a sort
        group = data.design_group
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        inverse = np.cumsum(np.r_[True, group[1:] != group[:-1]]) - 1
        pattern_rows = data.design[starts]
    else:
        pattern_rows, inverse = np.unique(data.design, axis=0, return_inverse=True)
        inverse = inverse.ravel()
    return CollapsedData(
        np.ascontiguousarray(pattern_rows),
        wsum(inverse, events, len(pattern_rows)),
        wsum(inverse, data.w, len(pattern_rows)),
        data.loglik_constant,
        data.n,
        # one row per design pattern only when they came grouped (else np.unique made them)
        distinct=True,
    )


def _rank_deficient() -> FitError:
    return FitError(
        "the design is rank deficient (a candidate column is constant or duplicates another)"
    )


def fit_nb_collapsed(
    data: CollapsedData, distribution: Distribution, start: NDArray[np.float64] | None = None
) -> GLMFit:
    """Fit an NB2 or NBII regression to data collapsed by (design row, count).

    ``start`` (coefficients, intercept first) warm-starts the Poisson fit that
    gives the NB its starting point.
    """
    family = get_family(distribution)
    assert family.kernel is not None, f"{distribution} is not a negative binomial"
    _start(data, data.y * data.w)  # raises when there are no events
    # Poisson fit first: the NB starting point, and the answer at the boundary
    pois = _by_design_row(data)
    pois_beta, _, _, _, pstatus = _k.poisson_newton(
        pois.design, pois.y, pois.w, _start(pois, pois.y, start), _MAX_ITER, _TOL
    )
    if pstatus == _STATUS_SINGULAR:
        raise _rank_deficient()
    mu = np.exp(data.design @ pois_beta)
    resid2 = data.w * ((data.y - mu) ** 2 - data.y)
    moment = resid2.sum() / family.moment_scale(data.w, mu)
    a0 = float(np.log(np.clip(moment, 0.05, 1e4)))
    theta0 = np.append(pois_beta, a0)
    theta, ll, hess, n_iter, status = _k.nb_newton(
        family.kernel,
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
            family.boundary_dispersion,
            boundary.converged,
            boundary.separated,
            True,
            boundary.n_iter + n_iter,
        )
    if status == _STATUS_SINGULAR:
        raise _rank_deficient()
    p = data.design.shape[1]
    cov_full = _safe_inverse(-hess)
    beta = theta[:p].copy()
    # pois holds each design pattern once, with its event and weight sums
    separated = _separated(pois.design, pois.y, pois.w, beta)
    return _finish(
        distribution,
        beta,
        cov_full[:p, :p].copy(),
        ll + data.loglik_constant,
        data.n,
        family.dispersion_from_log(float(theta[p])),
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
    offset: ArrayLike | None = None,
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
    offset : array_like, shape (n,), optional
        A log offset (Poisson only): ``mu = exp(offset + X b)``. Folded into the
        frequency weights (``w exp(offset)``), so the same kernel fits it exactly; the
        log-likelihood reported is the full one.

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
    >>> from rtm.selection.glm import fit_glm
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
    if offset is not None:
        if distribution != "poisson":
            raise ParameterError("an offset needs distribution='poisson'")
        return _fit_poisson_offset(design, counts, w, offset)
    return fit_collapsed(collapse(design, counts, w, distribution), distribution)


def _fit_poisson_offset(
    design: NDArray[np.float64],
    counts: NDArray[np.int64],
    w: NDArray[np.float64],
    offset: ArrayLike,
) -> GLMFit:
    """Poisson with a log offset: rows collapsed by (design row, offset), offset in the weights.

    ``sum w (y (xb + o) - exp(xb + o))`` is the kernel's ``sum y' xb - sum w' exp(xb)``
    with ``y' = w y``, ``w' = w exp(o)``, plus ``sum w y o``, which goes into the constant.
    """
    off = np.asarray(offset, dtype=np.float64)
    if off.shape != (design.shape[0],) or not np.all(np.isfinite(off)):
        raise ParameterError(f"offset must hold {design.shape[0]} finite numbers")
    both = collapse(np.column_stack([design, off]), counts, w, "poisson")
    row_offset = both.design[:, -1]
    data = CollapsedData(
        np.ascontiguousarray(both.design[:, :-1]),
        both.y,
        both.w * np.exp(row_offset),
        both.loglik_constant + float(np.dot(both.y, row_offset)),
        both.n,
        distinct=False,
    )
    return fit_poisson_collapsed(data)
