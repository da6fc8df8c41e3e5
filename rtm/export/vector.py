"""Vector output: one polygon per active cell, in a GeoPackage."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from rtm.grid import Grid

__all__ = ["cells_frame", "write_cells"]


def _attributes(grid: Grid, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    rows, cols = np.divmod(grid.active_index, grid.n_cols)
    data: dict[str, np.ndarray] = {"row": rows.astype(np.int32), "col": cols.astype(np.int32)}
    for name, values in columns.items():
        data[name] = np.asarray(values)
    return data


def cells_frame(grid: Grid, columns: Mapping[str, np.ndarray]) -> gpd.GeoDataFrame:
    """A GeoDataFrame of the active cells (row, col, polygon) with the given columns."""
    return gpd.GeoDataFrame(_attributes(grid, columns), geometry=grid.cell_polygons(), crs=grid.crs)


def write_cells(
    path: str | Path, grid: Grid, columns: Mapping[str, np.ndarray], *, layer: str = "cells"
) -> None:
    """Write the active cells with ``columns`` to a GeoPackage layer.

    The layer ``cells_frame(grid, columns).to_file(path, layer=layer)`` writes, built
    faster: the cell squares are encoded as WKB straight from the grid
    (:func:`~rtm.export._arrow.box_wkb`, no shapely polygons) and the columns go to GDAL
    through Arrow (:func:`~rtm.export._arrow.write_columns`), not value by value.
    """
    from rtm.export._arrow import box_wkb, write_columns, write_layer

    x, y = grid.cell_centres()
    half = grid.cell_size / 2.0
    written = write_columns(
        path,
        pd.DataFrame(_attributes(grid, columns)),
        layer,
        wkb=box_wkb(x - half, y - half, x + half, y + half),
        geometry_type="Polygon",
        crs=grid.crs,
    )
    if not written:  # a column type the Arrow writer leaves to pyogrio
        write_layer(path, cells_frame(grid, columns), layer)
