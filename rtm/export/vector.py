"""Vector output: one polygon per active cell, in a GeoPackage."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np

from rtm.grid import Grid

__all__ = ["cells_frame", "write_cells"]


def cells_frame(grid: Grid, columns: Mapping[str, np.ndarray]) -> gpd.GeoDataFrame:
    """A GeoDataFrame of the active cells (row, col, polygon) with the given columns."""
    rows, cols = np.divmod(grid.active_index, grid.n_cols)
    data: dict[str, np.ndarray] = {"row": rows.astype(np.int32), "col": cols.astype(np.int32)}
    for name, values in columns.items():
        data[name] = np.asarray(values)
    return gpd.GeoDataFrame(data, geometry=grid.cell_polygons(), crs=grid.crs)


def write_cells(
    path: str | Path, grid: Grid, columns: Mapping[str, np.ndarray], *, layer: str = "cells"
) -> None:
    """Write the active cells with ``columns`` to a GeoPackage layer."""
    frame = cells_frame(grid, columns)
    frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")
