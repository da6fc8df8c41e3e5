"""The data of the count-model fits: checked inputs, and rows collapsed into frequency weights.

Candidate columns are binary, so a model with ``k`` columns has at most ``2**k``
distinct design rows; rows are collapsed into frequency weights before fitting, which
is exact for these likelihoods:

* Poisson: collapsed by design row alone (summed counts and summed weights); the
  ``-log(y!)`` terms are added back as one constant, so the reported
  log-likelihood is the full, uncollapsed one (the value statsmodels reports).
* Negative binomial: collapsed by (design row, count) pairs.

Non-integer outcomes (harm in event-equivalents) are fitted by the Poisson
pseudo-likelihood only, after :func:`split_fractional` turns each row into a floor
and a ceiling row with frequency weights ``(1 - frac, frac)`` (exact for every
parameter-dependent term).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from rtm._kernels import design as _design
from rtm.errors import ParameterError
from rtm.selection.families import Distribution

__all__ = [
    "CollapsedData",
    "collapse",
    "collapse_patterns",
    "group_rows",
    "loglik_constant",
    "split_fractional",
    "validate_binary_design",
    "validate_counts",
    "validate_weights",
    "wsum",
]


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


def wsum(ids: NDArray[np.int64], weights: NDArray[np.float64], size: int) -> NDArray[np.float64]:
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
        weights = wsum(pattern, w, size)
        ysum = wsum(pattern, w * y, size)
        used = np.flatnonzero(weights > 0)
        return CollapsedData(
            np.ascontiguousarray(rows[used]),
            ysum[used],
            weights[used],
            constant,
            n_total,
            distinct=distinct,
        )
    y_levels = int(y.max()) + 1
    n_keys = (int(pattern.max()) + 1) * y_levels
    if n_keys <= 4_000_000:
        key = pattern * y_levels + y
        weights = wsum(key, w, n_keys)
        used = np.flatnonzero(weights > 0)
        pat_used, y_used = np.divmod(used, y_levels)
        wcol = weights[used]
    else:
        pairs, inverse = np.unique(np.column_stack([pattern, y]), axis=0, return_inverse=True)
        wcol = wsum(inverse.ravel(), w, pairs.shape[0])
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


def distinct_rows(design: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The distinct rows in lexicographic order and each row's index among them.

    What ``np.unique(design, axis=0, return_inverse=True)`` gives, by a ``lexsort`` of
    the columns instead of a sort of the rows as records (0.067 s against 0.017 s on a
    16,444 x 18 design shaped like the London risk + exposure model's: 15 binary columns,
    3 continuous); ``tests/test_selection.py`` compares the two. Rows must be finite
    (zeros of either sign are one value, as there).
    """
    n = design.shape[0]
    if n == 0:
        return design[:0].copy(), np.zeros(0, dtype=np.int64)
    order = np.lexsort(design.T[::-1])  # the first column is the primary key
    ranked = design[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ranked[starts], inverse


def collapse(
    X: ArrayLike, y: NDArray[np.int64], w: NDArray[np.float64], distribution: Distribution
) -> CollapsedData:
    """Collapse a general design (any values) by its distinct rows."""
    design = np.asarray(X, dtype=np.float64)
    if design.shape[1] == 0:
        pattern = np.zeros(design.shape[0], dtype=np.int64)
        unique_rows = np.zeros((1, 0))
    else:
        unique_rows, pattern = distinct_rows(design)
    rows = np.column_stack([np.ones(unique_rows.shape[0]), unique_rows])
    return collapse_patterns(
        pattern, rows, y, w, distribution, loglik_constant(y, w), distinct=True
    )
