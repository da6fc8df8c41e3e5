"""The analysis grid: a frozen value object taken by every layer function.

Cells are square, laid from the top-left corner of the study area's bounds
(``x_min``, ``y_max``), row-major, rows going south. A cell is *active* when it
overlaps the study area with positive area (RTMDx keeps any cell with some overlap);
inactive cells are nodata in rasters and absent from the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from affine import Affine

from rtm.errors import InputError, ParameterError

__all__ = ["MAX_CELLS", "EventCounts", "Grid", "crs_unit"]

#: The largest grid (active or not) rtm builds; beyond it the cell size is surely a mistake.
MAX_CELLS = 100_000_000


def crs_unit(crs: Any) -> str:
    """The short name of a projected CRS's unit, for messages (``m``, ``ft``, ``US ft``)."""
    if isinstance(crs, str):
        return _text_unit(crs)
    return _unit(crs)


@lru_cache(maxsize=64)
def _text_unit(crs: str) -> str:
    """:func:`crs_unit` of a CRS given as text (a grid's WKT), parsed once per process."""
    return _unit(crs)


def _unit(crs: Any) -> str:
    try:
        name = str(pyproj.CRS(crs).axis_info[0].unit_name).lower()
    except (pyproj.exceptions.CRSError, IndexError, TypeError):
        return "m"
    if "metre" in name or "meter" in name:
        return "m"
    if "us survey foot" in name:
        return "US ft"
    if "foot" in name or "feet" in name:
        return "ft"
    return name or "m"


@lru_cache(maxsize=64)
def _crs_from_wkt(wkt: str) -> pyproj.CRS:
    """A CRS parsed from WKT, once per process.

    Parsing took 0.4 ms per access of :attr:`Grid.crs`; pyproj's CRS objects are
    immutable and thread-safe.
    """
    return pyproj.CRS.from_wkt(wkt)


@dataclass(frozen=True, eq=False)
class Grid:
    """A regular grid of square cells over a study area.

    Attributes
    ----------
    x_min, y_max : float
        Top-left corner of the grid, in CRS units.
    cell_size : float
        Side of a cell, in CRS units (metres or feet).
    n_rows, n_cols : int
        Grid shape.
    crs_wkt : str
        The CRS as WKT.
    mask : numpy.ndarray
        ``(n_rows, n_cols)`` bool, True where the cell overlaps the study area.
    """

    x_min: float
    y_max: float
    cell_size: float
    n_rows: int
    n_cols: int
    crs_wkt: str
    mask: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        mask = np.ascontiguousarray(self.mask, dtype=bool)
        if mask.shape != (self.n_rows, self.n_cols):
            raise ParameterError(
                f"mask shape {mask.shape} does not match the grid ({self.n_rows}, {self.n_cols})"
            )
        mask.setflags(write=False)
        object.__setattr__(self, "mask", mask)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_area(cls, area: gpd.GeoDataFrame | gpd.GeoSeries, cell_size: float) -> Grid:
        """Build the grid covering ``area`` with square cells of ``cell_size``.

        Parameters
        ----------
        area : GeoDataFrame or GeoSeries
            Study-area polygons in a projected CRS.
        cell_size : float
            Cell side in the CRS's units.

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely.geometry import box
        >>> area = gpd.GeoSeries([box(0, 0, 250, 100)], crs="EPSG:27700")
        >>> grid = Grid.from_area(area, 50)
        >>> grid.shape, grid.n_active
        ((2, 5), 10)
        """
        if area.crs is None:
            raise InputError("study area: has no CRS")
        crs = pyproj.CRS(area.crs)
        if not crs.is_projected:
            raise ParameterError(
                f"study area: the grid needs a projected CRS (metres or feet), got {crs.name}"
            )
        if not (isinstance(cell_size, int | float) and math.isfinite(cell_size)) or cell_size <= 0:
            raise ParameterError(
                f"cell size must be a positive number of metres, got {cell_size!r}"
            )
        geometry = shapely.union_all(np.asarray(area.geometry.values))
        if geometry.is_empty or geometry.area <= 0:
            raise InputError("study area: the polygons have zero area")
        minx, miny, maxx, maxy = geometry.bounds
        n_cols = max(1, math.ceil((maxx - minx) / cell_size - 1e-9))
        n_rows = max(1, math.ceil((maxy - miny) / cell_size - 1e-9))
        if n_cols * n_rows > MAX_CELLS:
            raise ParameterError(
                f"cell size {cell_size:g} {crs_unit(crs)} gives {n_rows} x {n_cols} = "
                f"{n_rows * n_cols:,} cells "
                f"(more than {MAX_CELLS:,}): choose a larger cell size"
            )
        mask = _overlap_mask(geometry, float(minx), float(maxy), float(cell_size), n_rows, n_cols)
        if not mask.any():
            raise ParameterError(
                f"cell size {cell_size:g} {crs_unit(crs)}: no cell overlaps the study area"
            )
        return cls(
            x_min=float(minx),
            y_max=float(maxy),
            cell_size=float(cell_size),
            n_rows=n_rows,
            n_cols=n_cols,
            crs_wkt=crs.to_wkt(),
            mask=mask,
        )

    # ------------------------------------------------------------------ derived facts
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_cols)``."""
        return (self.n_rows, self.n_cols)

    @property
    def crs(self) -> pyproj.CRS:
        """The grid's CRS."""
        return _crs_from_wkt(self.crs_wkt)

    @property
    def unit(self) -> str:
        """The CRS's unit, for messages and reports (``m``, ``ft``, ``US ft``)."""
        return crs_unit(self.crs_wkt)

    @property
    def transform(self) -> Affine:
        """The affine transform from (col, row) to (x, y), as rasterio uses it."""
        return Affine(self.cell_size, 0.0, self.x_min, 0.0, -self.cell_size, self.y_max)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the whole grid."""
        return (
            self.x_min,
            self.y_max - self.n_rows * self.cell_size,
            self.x_min + self.n_cols * self.cell_size,
            self.y_max,
        )

    @property
    def n_active(self) -> int:
        """Number of cells that overlap the study area."""
        return int(self.active_index.size)

    @property
    def active_index(self) -> np.ndarray:
        """Flat (row-major) indices of the active cells, ascending."""
        index = np.flatnonzero(self.mask)
        index.setflags(write=False)
        return index

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres ``(x, y)`` of the active cells, in active-index order."""
        rows, cols = np.divmod(self.active_index, self.n_cols)
        return self.centre_of(rows, cols)

    def centre_of(self, rows: Any, cols: Any) -> tuple[np.ndarray, np.ndarray]:
        """Centres of cells given by row and column."""
        x = self.x_min + (np.asarray(cols, dtype=float) + 0.5) * self.cell_size
        y = self.y_max - (np.asarray(rows, dtype=float) + 0.5) * self.cell_size
        return x, y

    def cell_of(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cell containing each point (may fall outside the grid).

        A point on the edge between two cells belongs to the cell east / south of it,
        except on the grid's own east and south edges, which close the last cells.
        """
        col = np.floor((np.asarray(x, dtype=float) - self.x_min) / self.cell_size).astype(np.int64)
        row = np.floor((self.y_max - np.asarray(y, dtype=float)) / self.cell_size).astype(np.int64)
        col = np.where(col == self.n_cols, self.n_cols - 1, col)
        row = np.where(row == self.n_rows, self.n_rows - 1, row)
        return row, col

    def to_raster(self, values: np.ndarray, nodata: float = np.nan) -> np.ndarray:
        """Scatter per-active-cell ``values`` into a full ``(n_rows, n_cols)`` array."""
        values = np.asarray(values)
        if values.shape[0] != self.n_active:
            raise ParameterError(
                f"values has {values.shape[0]} rows; the grid has {self.n_active} active cells"
            )
        dtype = np.result_type(values.dtype, np.asarray(nodata).dtype)
        out = np.full((self.n_rows * self.n_cols,) + values.shape[1:], nodata, dtype=dtype)
        out[self.active_index] = values
        return out.reshape((self.n_rows, self.n_cols) + values.shape[1:])

    def cell_polygons(self) -> np.ndarray:
        """Square polygons of the active cells, in active-index order."""
        x, y = self.cell_centres()
        half = self.cell_size / 2.0
        return shapely.box(x - half, y - half, x + half, y + half)

    def count_events(self, events: gpd.GeoDataFrame, area: Any, weights: Any = None) -> EventCounts:
        """Count events per active cell; events outside the study area are dropped.

        Parameters
        ----------
        events : GeoDataFrame
            Points in the grid's CRS.
        area : shapely geometry or GeoDataFrame
            The study area; a point on its boundary is inside.
        weights : array_like, optional
            A non-negative weight (harm) per event: ``EventCounts.harm`` is then the
            total weight of the events in each cell.
        """
        geometry = area
        if isinstance(area, gpd.GeoDataFrame | gpd.GeoSeries):
            geometry = shapely.union_all(np.asarray(area.geometry.values))
        points = np.asarray(events.geometry.values)
        shapely.prepare(geometry)
        inside = shapely.covers(geometry, points)
        x = shapely.get_x(points[inside])
        y = shapely.get_y(points[inside])
        if weights is None:
            return self._bin(x, y, inside)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(points),):
            raise ParameterError(f"weights must have one value per event ({len(points)})")
        return self._bin(x, y, inside, weights[inside])

    def _bin(
        self, x: np.ndarray, y: np.ndarray, inside: np.ndarray, weights: np.ndarray | None = None
    ) -> EventCounts:
        row, col = self.cell_of(x, y)
        flat = row * self.n_cols + col
        lookup = np.full(self.n_rows * self.n_cols, -1, dtype=np.int64)
        lookup[self.active_index] = np.arange(self.n_active)
        cell = lookup[flat]
        # A point on the area's boundary that is also on a cell edge belongs to the
        # west/north neighbour when the east/south cell only touches the area.
        for d_row, d_col in ((0, -1), (-1, 0), (-1, -1)):
            stray = np.flatnonzero(cell < 0)
            if stray.size == 0:
                break
            r, c = row[stray] + d_row, col[stray] + d_col
            x0, y0 = self.x_min + c * self.cell_size, self.y_max - r * self.cell_size
            on_edge = (
                (r >= 0)
                & (c >= 0)
                & (x[stray] >= x0)
                & (x[stray] <= x0 + self.cell_size)
                & (y[stray] <= y0)
                & (y[stray] >= y0 - self.cell_size)
            )
            fixed = stray[on_edge]
            cell[fixed] = lookup[r[on_edge] * self.n_cols + c[on_edge]]
        if (cell < 0).any():  # pragma: no cover - inside the area implies an active cell
            raise AssertionError("an event inside the area fell in an inactive cell")
        counts = np.bincount(cell, minlength=self.n_active).astype(np.int64)
        harm = None
        if weights is not None:
            harm = np.bincount(cell, weights=weights, minlength=self.n_active)
        return EventCounts(
            counts=counts,
            n_used=int(x.size),
            n_outside=int((~inside).sum()),
            inside=inside,
            harm=harm,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return (
            self.x_min == other.x_min
            and self.y_max == other.y_max
            and self.cell_size == other.cell_size
            and self.shape == other.shape
            and self.crs == other.crs
            and bool(np.array_equal(self.mask, other.mask))
        )

    def __hash__(self) -> int:
        return hash((self.x_min, self.y_max, self.cell_size, self.shape, self.mask.tobytes()))


@dataclass(frozen=True)
class EventCounts:
    """Events per active cell, and how many events were used or dropped.

    ``inside`` flags, per input event, whether it lies in the study area (was used).
    ``harm`` (only when the events carry weights) is the total weight per cell.
    """

    counts: np.ndarray
    n_used: int
    n_outside: int
    inside: np.ndarray = field(repr=False)
    harm: np.ndarray | None = field(default=None, repr=False)

    def warn_outside(self, what: str, threshold: float = 0.01) -> None:
        """Warn when more than ``threshold`` of the events fell outside the study area."""
        total = self.n_used + self.n_outside
        if total and self.n_outside > threshold * total:
            import warnings

            from rtm.errors import RTMWarning

            warnings.warn(
                f"{what}: {self.n_outside:,} of {total:,} events ({self.n_outside / total:.1%}) "
                "lie outside the study area and were dropped (check the area and the CRS)",
                RTMWarning,
                stacklevel=2,
            )

    @property
    def cells_with_events(self) -> int:
        """Number of active cells with at least one event."""
        return int(np.count_nonzero(self.counts))


#: Each level of :func:`_overlap_mask` splits a tile into ``_SPLIT x _SPLIT`` sub-tiles.
_SPLIT = 4


def _overlap_mask(
    geometry: Any, x_min: float, y_max: float, cell_size: float, n_rows: int, n_cols: int
) -> np.ndarray:
    """Cells whose square overlaps ``geometry`` with positive area (> 1e-9 of a cell).

    The rule is evaluated exactly, but only where it is in doubt, coarse to fine (a
    quadtree): tiles of cells are classified with prepared GEOS predicates, which are
    exact and cheap (an indexed look-up, not a walk over every vertex):

    - a tile the area properly contains is wholly in (every cell overlaps it fully);
    - a tile disjoint from the area is wholly out (every overlap is empty);
    - only a tile on the area's boundary is split into sub-tiles, level after level.

    At the last level the boundary cells get the overlap-area test itself. Intersecting
    a cell with the whole area costs a walk over all its vertices (London's boundary has
    14,000), so each boundary tile carries its own piece of the area (the parent's piece
    clipped to the tile) and a cell is intersected with its tile's small piece. The
    clipped piece coincides with the area inside the tile, so the overlap areas are the
    same up to rounding.
    """
    shapely.prepare(geometry)
    threshold = 1e-9 * cell_size * cell_size
    mask = np.zeros((n_rows, n_cols), dtype=bool)
    size = 1  # side of the tiles at this level, in cells
    while size < max(n_rows, n_cols):
        size *= _SPLIT
    # The tiles of the current level (top-left cell, side `size`) and their area pieces.
    top_rows, top_cols = np.meshgrid(
        np.arange(0, n_rows, size), np.arange(0, n_cols, size), indexing="ij"
    )
    rows, cols = top_rows.ravel(), top_cols.ravel()
    pieces = np.full(rows.size, geometry, dtype=object)
    while True:
        # Tiles are clipped to the grid; their corners are computed exactly as the cells'
        # (x_min + col * cell_size), so a tile edge is bit-for-bit a cell edge.
        end_rows = np.minimum(rows + size, n_rows)
        end_cols = np.minimum(cols + size, n_cols)
        boxes = shapely.box(
            x_min + cols * cell_size,
            y_max - end_rows * cell_size,
            x_min + end_cols * cell_size,
            y_max - rows * cell_size,
        )
        if size == 1:
            # Boundary candidates: the exact rule on the cell and its tile's piece.
            inside = shapely.contains_properly(geometry, boxes)
            mask[rows[inside], cols[inside]] = True
            doubt = np.flatnonzero(~inside)
            doubt = doubt[shapely.intersects(geometry, boxes[doubt])]
            overlap = shapely.area(shapely.intersection(pieces[doubt], boxes[doubt]))
            keep = doubt[overlap > threshold]
            mask[rows[keep], cols[keep]] = True
            return mask
        inside = shapely.contains_properly(geometry, boxes)
        for r0, c0, r1, c1 in zip(
            rows[inside], cols[inside], end_rows[inside], end_cols[inside], strict=True
        ):
            mask[r0:r1, c0:c1] = True
        boundary = np.flatnonzero(~inside)
        boundary = boundary[shapely.intersects(geometry, boxes[boundary])]
        if boundary.size == 0:
            return mask
        parents = pieces[boundary]
        pieces = shapely.intersection(parents, boxes[boundary])
        # Where the area also touches the tile along an edge or at a point, the clip is a
        # GeometryCollection (polygons and lines), which GEOS before 3.12 refuses to
        # overlay again: such a tile keeps its parent's (larger, polygonal) piece.
        mixed = shapely.get_type_id(pieces) == 7
        pieces[mixed] = parents[mixed]
        # Split every boundary tile into _SPLIT x _SPLIT sub-tiles within the grid.
        size //= _SPLIT
        offsets = np.arange(_SPLIT) * size
        sub_rows = (rows[boundary][:, None, None] + offsets[None, :, None]).repeat(_SPLIT, 2)
        sub_cols = (cols[boundary][:, None, None] + offsets[None, None, :]).repeat(_SPLIT, 1)
        parent = np.arange(boundary.size).repeat(_SPLIT * _SPLIT)
        sub_rows, sub_cols = sub_rows.ravel(), sub_cols.ravel()
        within = (sub_rows < n_rows) & (sub_cols < n_cols)
        rows, cols, pieces = sub_rows[within], sub_cols[within], pieces[parent[within]]
