"""The negative binomial (NB2) regression of a trial's evaluation, in numpy and scipy.

The outcome per place is negative binomial with mean ``mu = exp(X @ beta + offset)`` and
variance ``mu + alpha * mu**2`` (NB2). ``alpha`` is estimated by maximum likelihood: for a
given ``alpha`` the coefficients come from iteratively reweighted least squares, and
``alpha`` maximises the profile likelihood (Brent's method on ``log alpha``). The
covariance of the coefficients is the inverse of the observed information of
``(beta, alpha)`` together, as statsmodels' ``NegativeBinomial`` reports it (the tests
compare the two on the same data).

This module is small on purpose: a trial has tens of places and a handful of blocks, so a
dense solve is instant, and the evaluation, the power simulation and the randomisation
inference all call the same :func:`fit_nb2`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

__all__ = ["NBFit", "fit_nb2", "nb2_loglik"]

_LOG_ALPHA_BOUNDS = (-12.0, 5.0)


@dataclass(frozen=True)
class NBFit:
    """A fitted NB2 regression.

    Attributes
    ----------
    params : numpy.ndarray
        Coefficients, in the order of the design matrix's columns.
    bse : numpy.ndarray
        Their standard errors (observed information of coefficients and ``alpha``).
    alpha : float
        The over-dispersion: variance ``mu + alpha * mu**2``.
    alpha_se : float
        Its standard error.
    loglik : float
    converged : bool
    """

    params: np.ndarray
    bse: np.ndarray
    alpha: float
    alpha_se: float
    loglik: float
    converged: bool


def nb2_loglik(y: np.ndarray, mu: np.ndarray, alpha: float) -> float:
    """The NB2 log likelihood of outcomes ``y`` (counts, or non-negative totals) at ``mu``."""
    r = 1.0 / alpha
    return float(
        np.sum(
            special.gammaln(y + r)
            - special.gammaln(r)
            - special.gammaln(y + 1.0)
            + r * np.log(r / (r + mu))
            + y * np.log(mu / (r + mu))
        )
    )


def _irls(
    y: np.ndarray,
    x: np.ndarray,
    offset: np.ndarray,
    alpha: float,
    start: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> tuple[np.ndarray, bool]:
    """Coefficients maximising the NB2 likelihood at a fixed ``alpha`` (Fisher scoring)."""
    beta = start.copy()
    for _ in range(max_iter):
        eta = np.clip(x @ beta + offset, -30.0, 30.0)
        mu = np.exp(eta)
        weight = mu / (1.0 + alpha * mu)
        working = eta - offset + (y - mu) / mu
        xw = x * weight[:, None]
        try:
            new = np.linalg.solve(x.T @ xw, xw.T @ working)
        except np.linalg.LinAlgError:
            new = np.linalg.lstsq(x.T @ xw, xw.T @ working, rcond=None)[0]
        change = float(np.max(np.abs(new - beta)))
        beta = new
        if change < tol * (1.0 + float(np.max(np.abs(beta)))):
            return beta, True
    return beta, False


def _alpha_terms(y: np.ndarray, mu: np.ndarray, alpha: float) -> tuple[float, float]:
    """First and second derivatives of the NB2 log likelihood in ``alpha`` at fixed means."""
    r = 1.0 / alpha
    g = special.digamma(y + r) - special.digamma(r) + np.log(r / (r + mu)) + (mu - y) / (r + mu)
    g_prime = (
        special.polygamma(1, y + r)
        - special.polygamma(1, r)
        + 1.0 / r
        - 1.0 / (r + mu)
        - (mu - y) / (r + mu) ** 2
    )
    total, total_prime = float(np.sum(g)), float(np.sum(g_prime))
    return -(r**2) * total, 2.0 * r**3 * total + r**4 * total_prime


def _hessian(y: np.ndarray, x: np.ndarray, mu: np.ndarray, alpha: float) -> np.ndarray:
    """The Hessian of the log likelihood in ``(beta, alpha)``."""
    denom = 1.0 + alpha * mu
    k = x.shape[1]
    hessian = np.empty((k + 1, k + 1))
    hessian[:k, :k] = -(x * (mu * (1.0 + alpha * y) / denom**2)[:, None]).T @ x
    cross = -(x * ((y - mu) * mu / denom**2)[:, None]).sum(axis=0)
    hessian[:k, k] = cross
    hessian[k, :k] = cross
    hessian[k, k] = _alpha_terms(y, mu, alpha)[1]
    return hessian


def _newton(
    y: np.ndarray, x: np.ndarray, off: np.ndarray, beta: np.ndarray, alpha: float
) -> tuple[np.ndarray, float] | None:
    """Joint Newton steps on ``(beta, log alpha)`` with step halving; None if it fails."""
    k = x.shape[1]
    theta = np.append(beta, np.log(alpha))

    def loglik(t: np.ndarray) -> float:
        if not _LOG_ALPHA_BOUNDS[0] <= t[k] <= _LOG_ALPHA_BOUNDS[1]:
            return -np.inf  # a step out of alpha's range is refused (step halving)
        return nb2_loglik(y, np.exp(np.clip(x @ t[:k] + off, -30.0, 30.0)), float(np.exp(t[k])))

    current = loglik(theta)
    for _ in range(100):
        a = float(np.exp(theta[k]))
        mu = np.exp(np.clip(x @ theta[:k] + off, -30.0, 30.0))
        score_a, _ = _alpha_terms(y, mu, a)
        grad = np.append(x.T @ ((y - mu) / (1.0 + a * mu)), a * score_a)
        hess = _hessian(y, x, mu, a)
        hess[k, :k] *= a
        hess[:k, k] *= a
        hess[k, k] = a * a * hess[k, k] + a * score_a
        try:
            step = np.linalg.solve(hess, -grad)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(step)) or grad @ step <= 0:
            return None  # not an ascent direction: the Hessian is not negative definite
        scale = 1.0
        while scale > 1e-6:
            candidate = theta + scale * step
            value = loglik(candidate)
            if np.isfinite(value) and value >= current - 1e-12:
                break
            scale /= 2.0
        else:
            return None
        theta, current = candidate, value
        if not _LOG_ALPHA_BOUNDS[0] < theta[k] < _LOG_ALPHA_BOUNDS[1]:
            return None
        if float(np.max(np.abs(scale * step))) < 1e-10:
            return theta[:k], float(np.exp(theta[k]))
    return None


def fit_nb2(y: np.ndarray, x: np.ndarray, offset: np.ndarray | None = None) -> NBFit:
    """Fit an NB2 regression by maximum likelihood (coefficients and ``alpha``).

    Parameters
    ----------
    y : (n,) array
        Outcomes (counts, or non-negative totals such as harm).
    x : (n, k) array
        Design matrix (include an intercept column).
    offset : (n,) array, optional
        Added to the linear predictor (log exposure).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([np.ones(400), rng.normal(size=400)])
    >>> mu = np.exp(1.0 + 0.5 * x[:, 1])
    >>> y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    >>> fit = fit_nb2(y, x)
    >>> bool(abs(fit.params[1] - 0.5) < 0.1), bool(0.2 < fit.alpha < 0.8)
    (True, True)
    """
    with np.errstate(all="ignore"):  # trial steps may overflow; they are refused, not used
        return _fit(
            np.asarray(y, dtype=np.float64),
            np.asarray(x, dtype=np.float64),
            np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=np.float64),
        )


def _fit(y: np.ndarray, x: np.ndarray, off: np.ndarray) -> NBFit:
    start = np.linalg.lstsq(x, np.log(y + 0.5) - off, rcond=None)[0]
    poisson, _ = _irls(y, x, off, 1e-12, start)
    mu0 = np.exp(np.clip(x @ poisson + off, -30.0, 30.0))
    moment = float(np.sum((y - mu0) ** 2 - y) / np.sum(mu0**2))
    joint = _newton(y, x, off, poisson, min(max(moment, 0.05), 10.0))
    if joint is not None:
        beta, alpha = joint
        converged = True
    else:
        beta, alpha, converged = _profile_fit(y, x, off, poisson)
    mu = np.exp(np.clip(x @ beta + off, -30.0, 30.0))
    info = -_hessian(y, x, mu, alpha)
    try:
        cov = np.linalg.inv(info)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        se = np.full(x.shape[1] + 1, np.nan)
    return NBFit(
        params=beta,
        bse=se[:-1],
        alpha=alpha,
        alpha_se=float(se[-1]),
        loglik=nb2_loglik(y, mu, alpha),
        converged=converged,
    )


def _profile_fit(
    y: np.ndarray, x: np.ndarray, off: np.ndarray, poisson: np.ndarray
) -> tuple[np.ndarray, float, bool]:
    """The slow, sure way: ``alpha`` maximising the profile likelihood (a root of its score)."""
    state = {"beta": poisson}

    def profile_score(log_alpha: float) -> float:
        # d(profile log likelihood)/d(log alpha): by the envelope theorem, the partial
        # derivative at the coefficients that maximise the likelihood for this alpha.
        alpha = float(np.exp(log_alpha))
        beta, _ = _irls(y, x, off, alpha, state["beta"], tol=1e-9)
        state["beta"] = beta
        mu = np.exp(np.clip(x @ beta + off, -30.0, 30.0))
        return _alpha_terms(y, mu, alpha)[0] * alpha

    low, high = _LOG_ALPHA_BOUNDS
    converged = True
    if profile_score(low) <= 0.0:
        log_alpha = low  # no over-dispersion beyond Poisson: alpha at its floor
    elif profile_score(high) >= 0.0:
        log_alpha, converged = high, False
    else:
        try:
            log_alpha = optimize.brentq(profile_score, low, high, xtol=1e-10)
        except ValueError:  # the warm starts moved the ends' signs: search the likelihood
            log_alpha = _bounded_profile(y, x, off, poisson)
    alpha = float(np.exp(log_alpha))
    beta, irls_converged = _irls(y, x, off, alpha, state["beta"])
    return beta, alpha, converged and irls_converged


def _bounded_profile(y: np.ndarray, x: np.ndarray, off: np.ndarray, start: np.ndarray) -> float:
    """``log alpha`` maximising the profile likelihood, by a bounded scalar search."""

    def negative(log_alpha: float) -> float:
        alpha = float(np.exp(log_alpha))
        beta, _ = _irls(y, x, off, alpha, start)
        return -nb2_loglik(y, np.exp(np.clip(x @ beta + off, -30.0, 30.0)), alpha)

    result = optimize.minimize_scalar(negative, bounds=_LOG_ALPHA_BOUNDS, method="bounded")
    return float(result.x)
