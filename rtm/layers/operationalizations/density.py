"""Density: 1 where the kernel density of the features is at least mean + 2 SD.

The Epanechnikov kernel density with radius ``d`` (the bandwidth is the kernel's radius,
as in ArcGIS) is evaluated exactly at cell centres; the cut is the mean + 2 SD of the
density over the study area's active cells (sample SD, ``ddof=1``, as R's ``sd``).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np

from rtm._kernels.spatial import epanechnikov_density
from rtm.grid import Grid
from rtm.layers.geometry import as_geometries, weighted_points
from rtm.layers.operationalizations.base import LayerContext, Operationalization

__all__ = ["OPERATIONALIZATION", "Density", "binarize_density", "kernel_density"]


def kernel_density(
    grid: Grid,
    features: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray,
    bandwidths: Sequence[float],
    *,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Epanechnikov kernel density at the active cell centres, for each bandwidth.

    ``K(r) = 2 / (pi h^2) * (1 - r^2 / h^2)`` for ``r <= h``: the bandwidth is the
    kernel's radius (as in ArcGIS), not a standard deviation. Lines and polygons are
    sampled every quarter cell and weighted by the length or area each sample stands for.
    With ``rows``, only those grid rows (a chunk), as in :func:`~rtm.layers.nearest_distance`.

    Returns
    -------
    numpy.ndarray
        ``(len(bandwidths), n_active)`` float64 densities (features per unit area).
    """
    geometries = as_geometries(features)
    widths = np.ascontiguousarray(bandwidths, dtype=np.float64)
    row0, row1 = rows if rows is not None else (0, grid.n_rows)
    active = grid.mask[row0:row1]
    index = np.full(active.shape, -1, dtype=np.int64)
    index[active] = np.arange(int(active.sum()))
    out = np.zeros((widths.size, int(active.sum())))
    if geometries.size and widths.size:
        px, py, weight = weighted_points(geometries, grid.cell_size / 4)
        epanechnikov_density(
            px,
            py,
            weight,
            grid.x_min,
            grid.y_max,
            grid.cell_size,
            row0,
            row1 - row0,
            grid.n_cols,
            widths,
            index,
            out,
        )
    return out


def binarize_density(density: np.ndarray) -> tuple[np.ndarray, float]:
    """1 where ``density >= mean + 2 SD`` over the given (active) cells; SD with ddof=1."""
    mean = float(density.mean())
    sd = float(density.std(ddof=1)) if density.size > 1 else 0.0
    threshold = mean + 2.0 * sd
    return density >= threshold, threshold


class Density(Operationalization):
    """A high kernel density of features (bandwidth ``d``): at least mean + 2 SD."""

    name = "density"
    column = "density"

    def raw(
        self,
        grid: Grid,
        geometries: np.ndarray,
        distances: Sequence[float],
        context: LayerContext,
        *,
        rows: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """One density row per bandwidth."""
        return kernel_density(grid, geometries, distances, rows=rows)

    def binarize(self, raw: np.ndarray, distance: float) -> tuple[np.ndarray, float | None]:
        """``density >= mean + 2 SD`` over the active cells; the cut is reported."""
        return binarize_density(raw)

    def describe(self, factor: str, distance: float, unit: str = "m") -> str:
        """``high density of bars (300 m bandwidth)``."""
        return f"high density of {factor} ({distance:g} {unit} bandwidth)"


OPERATIONALIZATION = Density()
