"""A population layer apportioned to a run's cells by area (areal weighting).

Census counts come by polygon (output areas, LSOAs), not by cell. Each polygon's
residents of each group are shared among the cells it overlaps in proportion to the
overlap's area: a polygon half inside a cell gives it half its residents. This assumes
residents spread evenly inside a polygon, the usual assumption of areal weighting; the
smaller the polygons, the less it matters. Residents of the parts of polygons outside the
study area's cells are outside the area and are not counted.

The apportionment is kept as a sparse matrix (polygons x cells of area shares), so that
the bootstrap over polygons (:mod:`rtm.audit.exposure`) resamples whole polygons.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from scipy import sparse

from rtm.errors import InputError, ParameterError
from rtm.grid import Grid

__all__ = ["Population", "apportion", "read_population"]


@dataclass(frozen=True, eq=False)
class Population:
    """Group counts by population unit, apportioned to the active cells of a grid.

    Attributes
    ----------
    groups : tuple of str
        The group columns.
    counts : ndarray, shape (n_units, n_groups)
        Residents of each group in each unit (whole unit).
    shares : scipy.sparse.csr_matrix, shape (n_units, n_active)
        The share of each unit's area in each active cell.
    source : str
        Where the layer came from.
    """

    groups: tuple[str, ...]
    counts: np.ndarray
    shares: Any
    source: str

    @property
    def n_units(self) -> int:
        """Number of population units (polygons)."""
        return int(self.counts.shape[0])

    def in_cells(self, selected: np.ndarray, unit_weights: np.ndarray | None = None) -> np.ndarray:
        """Residents of each group in the ``selected`` cells (boolean per active cell).

        ``unit_weights`` (n_units,) multiplies each unit (a bootstrap resample).
        """
        fraction = self.shares @ np.asarray(selected, dtype=np.float64)
        weights = fraction if unit_weights is None else fraction * unit_weights
        return np.asarray(weights @ self.counts, dtype=np.float64)

    def per_cell(self) -> np.ndarray:
        """Residents of each group per active cell, shape (n_active, n_groups)."""
        return np.asarray(self.shares.T @ self.counts, dtype=np.float64)


def read_population(
    source: str | Path, grid: Grid, groups: tuple[str, ...] | list[str] | None = None
) -> Population:
    """Read a polygon layer of group counts and apportion it to ``grid``'s cells.

    Parameters
    ----------
    source : path
        Polygons (GeoPackage, shapefile, GeoJSON) with one numeric column per group.
    grid : Grid
        The run's grid (the layer is reprojected to its CRS).
    groups : sequence of str, optional
        The group columns; default every numeric column.

    Raises
    ------
    InputError
        Unreadable file, no polygons, no CRS, negative or missing counts (exit 4).
    ParameterError
        A named group column is missing or not numeric (exit 2).
    """
    import pandas as pd

    from rtm.io.vectors import read_vector

    frame = read_vector(source, what="--population")
    what = f"--population {source}"
    if frame.crs is None:
        raise InputError(f"{what}: the layer has no CRS")
    kinds = set(frame.geometry.geom_type.dropna())
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{what}: needs polygons, got {', '.join(sorted(kinds)) or 'none'}")
    attributes = [c for c in frame.columns if c != frame.geometry.name]
    numeric = [c for c in attributes if pd.api.types.is_numeric_dtype(frame[c])]
    if groups:
        missing = [g for g in groups if g not in attributes]
        if missing:
            raise ParameterError(
                f"--groups {','.join(missing)}: no such column in {source}; "
                f"columns are {', '.join(map(str, attributes))}"
            )
        wrong = [g for g in groups if g not in numeric]
        if wrong:
            raise ParameterError(f"--groups {','.join(wrong)}: not numeric in {source}")
        chosen = list(groups)
    else:
        chosen = numeric
    if not chosen:
        raise InputError(f"{what}: no numeric group-count column")
    counts = frame[chosen].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(counts) | (counts < 0)
    if bad.any():
        raise InputError(
            f"{what}: {int(bad.any(axis=1).sum())} polygons have missing or negative counts "
            f"in {', '.join(chosen)}"
        )
    geometries = np.asarray(frame.to_crs(grid.crs).geometry.values)
    return Population(tuple(chosen), counts, apportion(geometries, grid), str(source))


def apportion(geometries: np.ndarray, grid: Grid) -> Any:
    """The share of each polygon's area in each active cell (sparse, units x cells)."""
    cells = grid.cell_polygons()
    tree = shapely.STRtree(cells)
    unit_index, cell_index = tree.query(geometries, predicate="intersects")
    overlap = shapely.area(shapely.intersection(geometries[unit_index], cells[cell_index]))
    areas = shapely.area(geometries)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(areas[unit_index] > 0, overlap / areas[unit_index], 0.0)
    keep = share > 0
    return sparse.csr_matrix(
        (share[keep], (unit_index[keep], cell_index[keep])),
        shape=(len(geometries), grid.n_active),
    )
