"""Slow, obviously-correct twins of the numba kernels, for tests only."""

from __future__ import annotations

import math

import numpy as np
import shapely

from rtm.grid import Grid


def all_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    return grid.cell_centres()


def naive_distance(grid: Grid, geometries: np.ndarray) -> np.ndarray:
    """Distance from each active cell centre to the nearest geometry, one shapely call per pair."""
    xs, ys = grid.cell_centres()
    out = np.empty(xs.size)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        point = shapely.Point(x, y)
        out[i] = min(point.distance(g) for g in geometries)
    return out


def naive_density(
    grid: Grid, px: np.ndarray, py: np.ndarray, weight: np.ndarray, bandwidth: float
) -> np.ndarray:
    """Epanechnikov density at each active cell centre by a double loop."""
    xs, ys = grid.cell_centres()
    out = np.zeros(xs.size)
    for i in range(xs.size):
        total = 0.0
        for k in range(px.size):
            r2 = (xs[i] - px[k]) ** 2 + (ys[i] - py[k]) ** 2
            if r2 <= bandwidth**2:
                total += weight[k] * 2.0 / (math.pi * bandwidth**2) * (1.0 - r2 / bandwidth**2)
        out[i] = total
    return out


def naive_overlap_mask(grid: Grid, area: shapely.Geometry) -> np.ndarray:
    """Cells whose square overlaps the area with positive area, one cell at a time."""
    mask = np.zeros(grid.shape, dtype=bool)
    s = grid.cell_size
    for r in range(grid.n_rows):
        for c in range(grid.n_cols):
            x0 = grid.x_min + c * s
            y1 = grid.y_max - r * s
            cell = shapely.box(x0, y1 - s, x0 + s, y1)
            mask[r, c] = cell.intersection(area).area > 1e-9 * s * s
    return mask


def naive_sepp(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    *,
    block_length: float,
    area: float,
    iterations: int,
    cutoff_days: float = 120.0,
    uniform_share: float = 0.01,
) -> dict[str, float]:
    """The self-exciting process's EM by double loops over every pair of events.

    The model of :mod:`rtm.validation.sepp`: background ``mu * m(s)`` (leave-one-out
    quartic density of radius two blocks, weighted by the background probabilities, 1%
    uniform), exponential-in-time Gaussian-in-space triggering within ``cutoff_days``
    and four blocks. Runs exactly ``iterations`` EM steps.
    """
    n = len(x)
    h = 2.0 * block_length
    reach = 4.0 * block_length
    span = max(float(t.max() - t.min()), 1.0)
    theta, omega, sigma2 = 0.2, 1.0 / 7.0, block_length**2
    p_back = np.ones(n)
    for _ in range(iterations):
        mu = p_back.sum() / span
        background = np.empty(n)
        for j in range(n):
            density = 0.0
            for k in range(n):
                r2 = (x[j] - x[k]) ** 2 + (y[j] - y[k]) ** 2
                if k != j and r2 <= h * h:
                    density += p_back[k] * 3 / (math.pi * h * h) * (1 - r2 / (h * h)) ** 2
            density /= p_back.sum()
            background[j] = mu * ((1 - uniform_share) * density + uniform_share / area)
        g = np.zeros((n, n))
        for j in range(n):
            for i in range(n):
                dt = t[j] - t[i]
                d2 = (x[j] - x[i]) ** 2 + (y[j] - y[i]) ** 2
                if 0 < dt <= cutoff_days and d2 <= reach * reach:
                    g[i, j] = (
                        theta
                        * omega
                        * math.exp(-omega * dt)
                        * math.exp(-d2 / (2 * sigma2))
                        / (2 * math.pi * sigma2)
                    )
        total = background + g.sum(axis=0)
        p_pairs = g / total[None, :]
        p_back = background / total
        triggered = p_pairs.sum()
        dts = t[None, :] - t[:, None]
        d2s = (x[None, :] - x[:, None]) ** 2 + (y[None, :] - y[:, None]) ** 2
        theta = triggered / n
        omega = triggered / float((p_pairs * np.where(g > 0, dts, 0)).sum())
        sigma2 = max(float((p_pairs * np.where(g > 0, d2s, 0)).sum()) / (2 * triggered), 1.0)
    return {"theta": theta, "omega": omega, "sigma": math.sqrt(sigma2), "p_back": p_back}
