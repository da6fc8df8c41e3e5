"""Spatial autocorrelation of a fitted model's residuals (Moran's I).

RTM treats cells as independent observations. When the Pearson residuals of the fitted
model cluster in space, that is false: standard errors and p-values are too small, and
an unmeasured factor (or the wrong scale) is likely. rtm always computes Moran's I of the
residuals over the active cells, with queen contiguity (the 8 neighbouring active cells),
row-standardised weights (as esda's default), the analytic moments under randomisation,
and a seeded permutation p-value.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, special

from rtm.errors import ParameterError, RTMWarning
from rtm.grid import Grid

__all__ = [
    "MoranResult",
    "morans_i",
    "pearson_residuals",
    "queen_weights",
    "residual_autocorrelation",
]

#: Moran's I of the residuals at or above which (with p < 0.05) rtm warns.
STRONG_CLUSTERING = 0.1


@dataclass(frozen=True)
class MoranResult:
    """Moran's I with its analytic (randomisation) and permutation inference."""

    i: float
    expected: float
    variance: float
    z: float
    p_value: float  # two-sided, normal approximation under randomisation
    p_value_permutation: float | None  # esda's p_sim: folded one-sided, (k + 1) / (B + 1)
    permutations: int

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "morans_i": self.i,
            "expected": self.expected,
            "variance": self.variance,
            "z": self.z,
            "p_value": self.p_value,
            "p_value_permutation": self.p_value_permutation,
            "permutations": self.permutations,
        }


def queen_weights(grid: Grid) -> sparse.csr_matrix:
    """Row-standardised queen-contiguity weights between the active cells of ``grid``."""
    lookup = np.full(grid.shape, -1, dtype=np.int64)
    lookup.ravel()[grid.active_index] = np.arange(grid.n_active)
    rows, cols = np.divmod(grid.active_index, grid.n_cols)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    for d_row in (-1, 0, 1):
        for d_col in (-1, 0, 1):
            if d_row == d_col == 0:
                continue
            r, c = rows + d_row, cols + d_col
            ok = (r >= 0) & (r < grid.n_rows) & (c >= 0) & (c < grid.n_cols)
            neighbour = np.full(rows.size, -1, dtype=np.int64)
            neighbour[ok] = lookup[r[ok], c[ok]]
            has = neighbour >= 0
            src.append(np.flatnonzero(has))
            dst.append(neighbour[has])
    i, j = np.concatenate(src), np.concatenate(dst)
    binary = sparse.csr_matrix((np.ones(i.size), (i, j)), shape=(grid.n_active, grid.n_active))
    degree = np.asarray(binary.sum(axis=1)).ravel()
    scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return sparse.diags(scale) @ binary


def morans_i(
    values: np.ndarray, weights: sparse.spmatrix, *, permutations: int = 0, seed: int = 0
) -> MoranResult:
    """Moran's I of ``values`` under spatial weights ``weights`` (n x n).

    Moments under the randomisation assumption (Cliff and Ord), as esda's ``VI_rand``.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n < 4 or weights.shape != (n, n):
        raise ParameterError(
            f"Moran's I needs at least 4 values and an n x n weights matrix; got {n}"
        )
    w = sparse.csr_matrix(weights)
    z = x - x.mean()
    m2 = float(z @ z)
    s0 = float(w.sum())
    if m2 == 0 or s0 == 0:
        return MoranResult(math.nan, -1.0 / (n - 1), math.nan, math.nan, math.nan, None, 0)
    i_value = n / s0 * float(z @ (w @ z)) / m2
    expected = -1.0 / (n - 1)
    sym = w + w.T
    s1 = 0.5 * float(sym.multiply(sym).sum())
    s2 = float(((np.asarray(w.sum(axis=1)).ravel() + np.asarray(w.sum(axis=0)).ravel()) ** 2).sum())
    b2 = n * float((z**4).sum()) / m2**2
    a = n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0 * s0)
    b = b2 * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0 * s0)
    c = (n - 1) * (n - 2) * (n - 3) * s0 * s0
    variance = (a - b) / c - expected**2
    z_score = (i_value - expected) / math.sqrt(variance) if variance > 0 else math.nan
    # 2 * Phi(-|z|): the numbers of stats.norm.sf, without importing scipy.stats (0.6 s)
    p_value = float(2 * special.ndtr(-abs(z_score))) if math.isfinite(z_score) else math.nan
    p_perm = None
    if permutations > 0:
        rng = np.random.default_rng(seed)
        simulated = np.empty(permutations)
        for k in range(permutations):
            zp = rng.permutation(z)
            simulated[k] = n / s0 * float(zp @ (w @ zp)) / m2
        larger = int((simulated >= i_value).sum())
        larger = min(larger, permutations - larger)
        p_perm = (larger + 1) / (permutations + 1)
    return MoranResult(i_value, expected, variance, z_score, p_value, p_perm, int(permutations))


def pearson_residuals(result: Any) -> np.ndarray:
    """``(y - mu) / sqrt(V(mu))`` per active cell, with the winning model's variance."""
    from rtm.selection import get_family

    mu = np.asarray(result.expected, dtype=np.float64)
    y = np.asarray(result.counts, dtype=np.float64)
    family = "poisson" if result.distribution == "poisson" else result.nb_form
    variance = get_family(family).variance(mu, result.dispersion)
    return (y - mu) / np.sqrt(variance)


def residual_autocorrelation(
    result: Any, *, permutations: int = 99, seed: int = 0, warn: bool = True
) -> dict[str, Any]:
    """Moran's I of the Pearson residuals of ``result`` (an RTMResult), for the report."""
    moran = morans_i(
        pearson_residuals(result), queen_weights(result.grid), permutations=permutations, seed=seed
    )
    strong = bool(math.isfinite(moran.i) and moran.i >= STRONG_CLUSTERING and moran.p_value < 0.05)
    report: dict[str, Any] = {
        "statistic": "Moran's I of the model's Pearson residuals",
        "weights": "queen contiguity between active cells, row-standardised",
        "inference": "analytic under randomisation (two-sided) and a seeded permutation test",
        **moran.as_dict(),
        "strong_clustering": strong,
        "threshold": STRONG_CLUSTERING,
    }
    if strong:
        message = (
            "the model's residuals cluster in space "
            f"(Moran's I {moran.i:.2f}, p {moran.p_value:.2g}): "
            "cells are not independent, so standard errors and p-values are too small and a "
            "factor may be missing; see --bootstrap (spatial blocks) and --split-sample"
        )
        report["warning"] = message
        if warn:
            warnings.warn(message, RTMWarning, stacklevel=2)
    return report
