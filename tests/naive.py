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
