"""The nonnegative Poisson elastic-net path that culling cross-validates.

glmnet's scaling and path (:func:`enet_path`): the mean weighted Poisson deviance / 2
plus ``lambda * (l1_ratio * ||b||_1 + (1 - l1_ratio) / 2 * ||b||_2**2)`` on standardized
coefficients, log-spaced from ``lambda_max`` (the smallest penalty at which every
coefficient is zero under the >= 0 constraint) down; the fits run in the numba kernel
:func:`rtm._kernels.glm.enet_poisson_path` on rows packed to bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm._kernels import design as _design
from rtm._kernels import glm as _k
from rtm.errors import FitError, ParameterError
from rtm.selection.data import validate_binary_design, validate_counts, validate_weights

__all__ = [
    "CD_TOL",
    "FDEV",
    "column_scale",
    "enet_fit",
    "enet_path",
    "lambda_max",
    "packed",
    "validate_l1_ratios",
]

#: Convergence threshold, relative to the null deviance (glmnet's ``thresh``).
CD_TOL = 1e-7

#: glmnet's early end of the penalty path (``fdev``): stop once the fraction of
#: deviance explained grows by less than this fraction of itself.
FDEV = 1e-5

_MAX_IRLS = 100

_MAX_SWEEPS = 100_000


def column_scale(
    X: NDArray[np.int8], w: NDArray[np.float64], standardize: bool
) -> NDArray[np.float64]:
    """Weighted standard deviation (divisor n) per column; 0 marks constant columns."""
    wn = w / w.sum()
    mean = _design.weighted_column_sums(X, wn)
    # binary columns: E[x^2] = |E[x]|
    var = np.abs(mean) - mean**2
    sd = np.sqrt(np.clip(var, 0.0, None))
    sd[var <= 1e-14] = 0.0
    if standardize:
        return sd
    return np.where(sd > 0, 1.0, 0.0)


def lambda_max(
    X: NDArray[np.int8],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    scale: NDArray[np.float64],
    l1_ratio: float,
) -> float:
    """The smallest penalty at which every coefficient is zero under the >= 0 constraint."""
    wn = w / w.sum()
    ybar = float(wn @ y)
    grad = _design.weighted_column_sums(X, wn * (y - ybar))
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


def enet_fit(
    X: NDArray[np.int8],
    sign: NDArray[np.int8],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    lambdas: NDArray[np.float64],
    l1_ratio: float,
    standardize: bool,
    tol: float = CD_TOL,
    fdev: float = 0.0,
    codes: NDArray[np.uint8] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """One penalty path; ``codes`` are ``X``'s rows packed by 8 (built when not given)."""
    keep = w > 0
    if int(keep.sum()) >= np.iinfo(np.int32).max:
        raise ParameterError(f"too many rows for the elastic net: {int(keep.sum())}")
    # zero-weight rows add exact zeros to the weighted sums: scale as on the kept rows
    scale = column_scale(X, w, standardize)
    indptr, indices = _design.binary_csc(X, keep)
    # the same matrix by row, as bits (the KKT checks' gradients run over it)
    if codes is None:
        codes = packed(X)
    codes = np.ascontiguousarray(codes[keep])
    wk = w[keep]
    intercepts, coefs, _, converged, n_done = _k.enet_poisson_path(
        indptr,
        indices,
        codes,
        sign.astype(np.float64),
        scale,
        np.ascontiguousarray(y[keep]),
        np.ascontiguousarray(wk / wk.sum()),
        np.ascontiguousarray(lambdas, dtype=np.float64),
        float(l1_ratio),
        float(tol),
        _MAX_IRLS,
        _MAX_SWEEPS,
        float(fdev),
    )
    if not converged[:n_done].all():
        raise FitError(
            f"the elastic net did not converge at {int((~converged[:n_done]).sum())} "
            f"of {n_done} penalties"
        )
    return intercepts, coefs, int(n_done)


def packed(X: NDArray[np.int8]) -> NDArray[np.uint8]:
    """Each row's nonzero pattern as bits, 8 columns per byte (column ``j``: bit ``j % 8``)."""
    return np.asarray(
        _design.pack_rows(X, np.arange(X.shape[1]), np.zeros(X.shape[0], dtype=np.int64), 0)
    )


def validate_l1_ratios(l1_ratios: Sequence[float] | float) -> tuple[float, ...]:
    """The elastic-net mixings, each in (0, 1]."""
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
    tol: float = CD_TOL,
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
    tol : float, default 1e-7
        Convergence threshold relative to the null deviance (glmnet's ``thresh``).

    Returns
    -------
    intercepts : ndarray, shape (n_lambdas,)
    coefs : ndarray, shape (n_lambdas, p)
        Coefficients on the original scale of ``X``.
    """
    Xb, sign = validate_binary_design(X)
    counts = validate_counts(y, Xb.shape[0])
    w = validate_weights(weights, Xb.shape[0])
    (ratio,) = validate_l1_ratios((l1_ratio,))
    lam = np.asarray(lambdas, dtype=np.float64).ravel()
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ParameterError(f"lambdas must be finite and non-negative; got {lambdas!r}")
    if not counts.sum() > 0:
        raise FitError("cannot fit a count model: there are no events (all counts are zero)")
    intercepts, coefs, _ = enet_fit(
        Xb, sign, counts.astype(np.float64), w, lam, ratio, bool(standardize), tol
    )
    return intercepts, coefs
