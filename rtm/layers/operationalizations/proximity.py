"""Proximity: 1 where the cell centre is within ``d`` of the nearest feature.

The distance is exact: from the cell centre to the nearest point, to the nearest point
of a line segment, and 0 inside a polygon. A cell exactly ``d`` away is within ``d``
(``distance <= d``).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np

from rtm._kernels.spatial import min_sq_distance_to_segments
from rtm.grid import Grid
from rtm.layers.geometry import as_geometries, polygon_parts, rasterized_polygons, segments
from rtm.layers.operationalizations.base import LayerContext, Operationalization

__all__ = ["OPERATIONALIZATION", "Proximity", "nearest_distance"]


def nearest_distance(
    grid: Grid,
    features: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray,
    reach: float,
    *,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Exact Euclidean distance from each active cell centre to the nearest feature.

    Parameters
    ----------
    grid : Grid
        The grid.
    features : GeoDataFrame, GeoSeries or array of geometries
        Points, lines or polygons in the grid's CRS (inside a polygon the distance is 0).
    reach : float
        Distances beyond ``reach`` are reported as ``inf`` (the kernel visits only
        cells within reach of a feature).
    rows : (int, int), optional
        Only the grid rows ``rows[0]`` to ``rows[1] - 1`` (a chunk); the values are
        those the whole grid would give.

    Returns
    -------
    numpy.ndarray
        ``(n_active,)`` float64 distances (of the chunk's active cells with ``rows``).
    """
    geometries = as_geometries(features)
    row0, row1 = rows if rows is not None else (0, grid.n_rows)
    sq = np.full((row1 - row0, grid.n_cols), np.inf)
    if geometries.size:
        ax, ay, bx, by = segments(geometries)
        min_sq_distance_to_segments(
            ax,
            ay,
            bx,
            by,
            grid.x_min,
            grid.y_max,
            grid.cell_size,
            row0,
            row1 - row0,
            grid.n_cols,
            float(reach),
            sq,
        )
        polygons = polygon_parts(geometries)
        if polygons.size:
            sq[rasterized_polygons(grid, polygons, (row0, row1))] = 0.0
    distance = np.sqrt(sq[grid.mask[row0:row1]])
    distance[distance > reach] = np.inf
    return distance


class Proximity(Operationalization):
    """Within ``d`` (straight line) of the nearest feature."""

    name = "proximity"
    column = "proximity"

    def raw(
        self,
        grid: Grid,
        geometries: np.ndarray,
        distances: Sequence[float],
        context: LayerContext,
        *,
        rows: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """The nearest distance (one row for every ``d``; ``inf`` beyond the largest)."""
        return nearest_distance(grid, geometries, max(distances), rows=rows)[None, :]

    def binarize(self, raw: np.ndarray, distance: float) -> tuple[np.ndarray, float | None]:
        """``distance to the nearest feature <= d``: a cell exactly ``d`` away is in."""
        return raw <= distance, None

    def describe(self, factor: str, distance: float, unit: str = "m") -> str:
        """``within 150 m of bars``."""
        return f"within {distance:g} {unit} of {factor}"


OPERATIONALIZATION = Proximity()
