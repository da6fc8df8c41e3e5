"""Numba kernels for the spatial layers: exact distances and exact kernel densities.

Both kernels *scatter* from features to the cells within reach, so the cost is
features x (reach / cell size)^2, independent of how many cells lie out of reach,
and the result is exact at cell centres (no rasterize-then-distance-transform error).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def min_sq_distance_to_segments(
    ax: np.ndarray,
    ay: np.ndarray,
    bx: np.ndarray,
    by: np.ndarray,
    x_min: float,
    y_max: float,
    cell_size: float,
    row_offset: int,
    n_rows: int,
    n_cols: int,
    reach: float,
    out: np.ndarray,
) -> None:
    """Lower ``out[row, col]`` to the squared distance from each cell centre to each segment.

    A point feature is a segment with a == b. Only cells whose centre lies within
    ``reach`` of the segment's bounding box are visited; ``out`` should start at
    ``inf`` (or at values to be lowered). ``out`` holds grid rows ``row_offset`` to
    ``row_offset + n_rows - 1`` (a chunk of a larger grid; centres are computed from
    the whole grid's corner, so a chunk's values equal the whole grid's bit for bit).
    """
    for k in range(ax.shape[0]):
        x0, y0, x1, y1 = ax[k], ay[k], bx[k], by[k]
        dx, dy = x1 - x0, y1 - y0
        length_sq = dx * dx + dy * dy
        lo_x, hi_x = min(x0, x1) - reach, max(x0, x1) + reach
        lo_y, hi_y = min(y0, y1) - reach, max(y0, y1) + reach
        # columns whose centre x_min + (c + 0.5) s lies in [lo_x, hi_x], plus one on
        # each side so that rounding never drops a cell lying exactly at the reach
        c_lo = max(0, int(math.ceil((lo_x - x_min) / cell_size - 0.5)) - 1)
        c_hi = min(n_cols - 1, int(math.floor((hi_x - x_min) / cell_size - 0.5)) + 1)
        r_lo = max(row_offset, int(math.ceil((y_max - hi_y) / cell_size - 0.5)) - 1)
        r_hi = min(row_offset + n_rows - 1, int(math.floor((y_max - lo_y) / cell_size - 0.5)) + 1)
        for r in range(r_lo, r_hi + 1):
            cy = y_max - (r + 0.5) * cell_size
            for c in range(c_lo, c_hi + 1):
                cx = x_min + (c + 0.5) * cell_size
                if length_sq > 0.0:
                    t = ((cx - x0) * dx + (cy - y0) * dy) / length_sq
                    if t < 0.0:
                        t = 0.0
                    elif t > 1.0:
                        t = 1.0
                    px = x0 + t * dx - cx
                    py = y0 + t * dy - cy
                else:
                    px = x0 - cx
                    py = y0 - cy
                d2 = px * px + py * py
                if d2 < out[r - row_offset, c]:
                    out[r - row_offset, c] = d2


@njit(cache=True, nogil=True)
def epanechnikov_density(
    px: np.ndarray,
    py: np.ndarray,
    weight: np.ndarray,
    x_min: float,
    y_max: float,
    cell_size: float,
    row_offset: int,
    n_rows: int,
    n_cols: int,
    bandwidths: np.ndarray,
    index: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add each point's Epanechnikov kernel, for every bandwidth, at the active cell centres.

    ``out[b, k] += w * 2 / (pi h^2) * (1 - r^2 / h^2)`` for ``r <= h``, with
    ``h = bandwidths[b]`` the kernel's radius and ``k = index[row - row_offset, col]``
    the active cell at that grid position (``-1``: not active, skipped). ``index``
    covers grid rows ``row_offset`` to ``row_offset + n_rows - 1``, as in the
    distance kernel. Points are visited in input order, so the summation order (and
    the result, to the last bit) is deterministic. Writing to active cells only
    needs no full-grid buffer to mask afterwards.
    """
    n_bw = bandwidths.shape[0]
    reach = 0.0
    for b in range(n_bw):
        if bandwidths[b] > reach:
            reach = bandwidths[b]
    norms = np.empty(n_bw)
    inv_h2 = np.empty(n_bw)
    h2 = np.empty(n_bw)
    for b in range(n_bw):
        h2[b] = bandwidths[b] * bandwidths[b]
        inv_h2[b] = 1.0 / h2[b]
        norms[b] = 2.0 / (math.pi * h2[b])
    for k in range(px.shape[0]):
        x0, y0, w = px[k], py[k], weight[k]
        c_lo = max(0, int(math.ceil((x0 - reach - x_min) / cell_size - 0.5)) - 1)
        c_hi = min(n_cols - 1, int(math.floor((x0 + reach - x_min) / cell_size - 0.5)) + 1)
        r_lo = max(row_offset, int(math.ceil((y_max - (y0 + reach)) / cell_size - 0.5)) - 1)
        r_hi = min(
            row_offset + n_rows - 1, int(math.floor((y_max - (y0 - reach)) / cell_size - 0.5)) + 1
        )
        reach2 = reach * reach
        for r in range(r_lo, r_hi + 1):
            dy = y_max - (r + 0.5) * cell_size - y0
            if dy * dy > reach2:
                continue
            # only the chord of the widest disk on this row (one cell of margin each
            # side: the d2 test below decides): a quarter fewer cells than the square
            half = math.sqrt(reach2 - dy * dy)
            row_lo = max(c_lo, int(math.floor((x0 - half - x_min) / cell_size - 0.5)))
            row_hi = min(c_hi, int(math.ceil((x0 + half - x_min) / cell_size - 0.5)))
            for c in range(row_lo, row_hi + 1):
                k = index[r - row_offset, c]
                if k < 0:
                    continue
                dx = x_min + (c + 0.5) * cell_size - x0
                d2 = dx * dx + dy * dy
                for b in range(n_bw):
                    if d2 <= h2[b]:
                        out[b, k] += w * norms[b] * (1.0 - d2 * inv_h2[b])
