"""Patrol places: the top of a surface cut into spots that one patrol can cover.

Highest-risk places follow the tiers and can be hundreds of hectares: nobody patrols
that. Patrol places are square windows of whole cells no wider than the patrol size
(default 150 m, the spots of UK hot-spot patrol trials), chosen greedily:

1. every window of ``k x k`` cells (``k = floor(patrol size / cell size)``) that holds
   at least one eligible cell (by default a highest-tier cell) is a candidate, scored by
   the sum of the surface over its cells (expected harm, or expected events); equal
   sums (the RRS takes few distinct values) are ordered by recent, then observed events;
2. the best candidate is taken; every candidate closer to it than one spot (a gap of
   fewer than ``k`` cells) is dropped; repeat (ties: the northernmost, then westernmost
   window first, so the choice never depends on anything but the grid);
3. each spot gets a stable id from its position (its grid reference), its centroid in
   the CRS, in longitude/latitude and as a grid reference, the nearest street name when
   street lines are given, the top three factors present (by RRV; factors covering
   almost the whole area are left out: they cannot be acted on), and its expected,
   observed and recent events.

Any surface works (the RTM expected counts now; a forecast later): the functions take
the grid and a score per active cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtm.errors import ParameterError
from rtm.grid import Grid
from rtm.places.clusters import PlaceFactor
from rtm.places.locate import grid_reference, lon_lat, nearest_street_names
from rtm.places.surface import FactorLayer

__all__ = [
    "WIDESPREAD",
    "PatrolPlace",
    "PatrolPlaces",
    "choose_windows",
    "patrol_frame",
    "patrol_places",
    "position_raster",
]

#: A factor present in more than this share of the area is not listed as a reason.
WIDESPREAD = 0.9
#: Factors listed per patrol place.
TOP_FACTORS = 3


@dataclass(frozen=True, eq=False)
class PatrolPlace:
    """One patrol place: where it is, how big, what is expected there and why."""

    id: str
    rank: int
    cells: int
    area: float
    across: float
    expected: float
    events: int
    harm: float | None
    recent_events: int | None
    centroid: tuple[float, float]
    lon_lat: tuple[float, float]
    grid_ref: str
    street: str
    factors: tuple[PlaceFactor, ...]
    place_rank: int | None
    cell_positions: np.ndarray = field(repr=False)

    def why(self) -> str:
        """The top factors, e.g. ``within 150 m of bars (RRV 2.10)``."""
        return "; ".join(f"{f.description} (RRV {f.relative_risk_value:.2f})" for f in self.factors)

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "id": self.id,
            "rank": self.rank,
            "cells": self.cells,
            "area": self.area,
            "across": self.across,
            "expected": self.expected,
            "events": self.events,
            "harm": self.harm,
            "recent_events": self.recent_events,
            "centroid": list(self.centroid),
            "lon_lat": [round(v, 6) for v in self.lon_lat],
            "grid_ref": self.grid_ref,
            "street": self.street,
            "factors": [f.as_dict() for f in self.factors],
            "place_rank": self.place_rank,
        }


@dataclass(frozen=True, eq=False)
class PatrolPlaces:
    """The patrol places of a surface and how they were chosen."""

    places: tuple[PatrolPlace, ...]
    size: float
    window_cells: int
    ranked_by: str
    eligible: str
    unit: str = "m"

    def report(self) -> dict[str, Any]:
        """The ``patrol_places`` section of report.json."""
        return {
            "definition": f"square windows of {self.window_cells} x {self.window_cells} cells "
            f"(at most {self.size:g} {self.unit} across) holding at least one {self.eligible}, "
            f"taken greedily by {self.ranked_by}, each at least one spot away from those "
            "taken before",
            "size": self.size,
            "window_cells": self.window_cells,
            "ranked_by": self.ranked_by,
            "count": len(self.places),
            "places": [p.as_dict() for p in self.places],
        }

    def inside(self, place_rank: int) -> list[str]:
        """Ids of the patrol places within the highest-risk place ``place_rank``."""
        return [p.id for p in self.places if p.place_rank == place_rank]


def position_raster(grid: Grid) -> np.ndarray:
    """Each cell's position among the active cells, as a raster (-1 outside the area)."""
    position = np.full(grid.n_rows * grid.n_cols, -1, dtype=np.int64)
    position[grid.active_index] = np.arange(grid.n_active)
    return position.reshape(grid.n_rows, grid.n_cols)


def _window_sums(raster: np.ndarray, k: int) -> np.ndarray:
    """Sum of every ``k x k`` window (indexed by its top-left cell)."""
    padded = np.zeros((raster.shape[0] + 1, raster.shape[1] + 1))
    padded[1:, 1:] = np.cumsum(np.cumsum(raster, axis=0), axis=1)
    return padded[k:, k:] - padded[:-k, k:] - padded[k:, :-k] + padded[:-k, :-k]


def choose_windows(
    score: np.ndarray,
    eligible: np.ndarray,
    k: int,
    max_places: int | None = None,
    tiebreaks: Sequence[np.ndarray] = (),
) -> list[tuple[int, int]]:
    """Top-left (row, col) of the greedily chosen ``k x k`` windows of a raster.

    ``score`` and ``eligible`` are full rasters (0 / False outside the area). A window
    is a candidate when it holds an eligible cell and a positive score; chosen windows
    are at least ``k`` cells apart (Chebyshev gap). Windows of equal score (common: the
    RRS takes few distinct values) are ordered by the window sums of ``tiebreaks`` (e.g.
    recent, then observed events), then north to south and west to east.
    """
    rows, cols = score.shape
    if rows < k or cols < k:
        k = min(k, rows, cols)
    # rounded: differences of cumulative sums leave ~1e-16 where a window sums to zero
    sums = np.round(_window_sums(np.asarray(score, float), k), 9)
    holds = _window_sums(np.asarray(eligible, float), k) > 0.5
    candidate = holds & (sums > 0)
    r, c = np.nonzero(candidate)
    keys = [c, r]
    for raster in reversed(list(tiebreaks)):
        keys.append(-_window_sums(np.asarray(raster, float), k)[r, c])
    keys.append(-sums[r, c])
    order = np.lexsort(tuple(keys))
    blocked = np.zeros(sums.shape, dtype=bool)
    chosen: list[tuple[int, int]] = []
    reach = 2 * k - 1
    for position in order:
        row, col = int(r[position]), int(c[position])
        if blocked[row, col]:
            continue
        chosen.append((row, col))
        if max_places is not None and len(chosen) >= max_places:
            break
        blocked[max(row - reach, 0) : row + reach + 1, max(col - reach, 0) : col + reach + 1] = True
    return chosen


def _top_factors(factors: Sequence[FactorLayer], cells: np.ndarray) -> tuple[PlaceFactor, ...]:
    present = []
    for f in factors:
        share = float(np.count_nonzero(f.values[cells])) / max(cells.size, 1)
        if share > 0 and not f.protective and f.coverage <= WIDESPREAD:
            present.append((f, share))
    present.sort(key=lambda item: (-item[0].relative_risk_value, item[0].name))
    return tuple(
        PlaceFactor(
            f.name,
            f.operationalization,
            f.spatial_influence,
            f.relative_risk_value,
            f.protective,
            share,
            f.describe(),
        )
        for f, share in present[:TOP_FACTORS]
    )


def _compact(reference: str) -> str:
    return reference.replace(" ", "") if reference[:1].isalpha() else reference.replace(" ", "-")


def patrol_places(
    grid: Grid,
    score: np.ndarray,
    eligible: np.ndarray,
    *,
    size: float,
    counts: np.ndarray,
    harm: np.ndarray | None = None,
    recent: np.ndarray | None = None,
    factors: Sequence[FactorLayer] = (),
    place_labels: np.ndarray | None = None,
    streets: Any = None,
    ranked_by: str = "expected events",
    eligible_label: str = "highest-risk cell",
    max_places: int | None = None,
) -> PatrolPlaces:
    """Cut the top of a surface into patrol places (see the module notes).

    Parameters
    ----------
    grid : Grid
    score : numpy.ndarray
        Per active cell: what places are ranked by (expected harm or events).
    eligible : numpy.ndarray of bool
        Per active cell: may seed a patrol place (e.g. highest-tier cells).
    size : float
        Largest extent of a place (CRS units); at least one cell.
    counts, harm, recent : numpy.ndarray
        Per active cell: observed events, harm and recent events (to report).
    factors : sequence of FactorLayer
        The selected factors (their top three per place are listed).
    place_labels : numpy.ndarray, optional
        Per active cell: the rank of the highest-risk place it belongs to (0: none).
    streets : GeoDataFrame, optional
        Street lines with names, in the grid's CRS: each place's nearest street.
    """
    if not size >= grid.cell_size * (1 - 1e-9):
        raise ParameterError(
            f"--patrol-size must be at least one cell ({grid.cell_size:g} {grid.unit}), "
            f"got {size:g}"
        )
    k = max(int(np.floor(size / grid.cell_size + 1e-9)), 1)
    position = position_raster(grid)
    windows = choose_windows(
        grid.to_raster(np.asarray(score, float), nodata=0.0),
        grid.to_raster(np.asarray(eligible, bool), nodata=False),
        k,
        max_places,
        [
            grid.to_raster(np.asarray(v, float), nodata=0.0)
            for v in (recent, counts)
            if v is not None
        ],
    )
    x, y = grid.cell_centres()
    parts = []
    for row, col in windows:
        cells = position[row : row + k, col : col + k].ravel()
        parts.append(np.sort(cells[cells >= 0]))
    cx = np.array([x[c].mean() for c in parts]) if parts else np.empty(0)
    cy = np.array([y[c].mean() for c in parts]) if parts else np.empty(0)
    lon, lat = lon_lat(cx, cy, grid.crs) if parts else (cx, cy)
    refs = grid_reference(cx, cy, grid.crs)
    streets_near = nearest_street_names(cx, cy, streets)
    places = []
    for i, cells in enumerate(parts):
        span_x = (x[cells].max() - x[cells].min()) + grid.cell_size
        span_y = (y[cells].max() - y[cells].min()) + grid.cell_size
        labels = None if place_labels is None else place_labels[cells]
        inside = labels[labels > 0] if labels is not None else np.empty(0, np.int64)
        places.append(
            PatrolPlace(
                id=_compact(refs[i]),
                rank=i + 1,
                cells=int(cells.size),
                area=float(cells.size) * grid.cell_size**2,
                across=float(max(span_x, span_y)),
                expected=float(np.asarray(score)[cells].sum()),
                events=int(np.asarray(counts)[cells].sum()),
                harm=None if harm is None else float(np.asarray(harm)[cells].sum()),
                recent_events=None if recent is None else int(np.asarray(recent)[cells].sum()),
                centroid=(float(cx[i]), float(cy[i])),
                lon_lat=(float(lon[i]), float(lat[i])),
                grid_ref=refs[i],
                street=streets_near[i],
                factors=_top_factors(factors, cells),
                place_rank=int(np.bincount(inside).argmax()) if inside.size else None,
                cell_positions=cells,
            )
        )
    return PatrolPlaces(tuple(places), float(size), k, ranked_by, eligible_label, grid.unit)


def patrol_frame(grid: Grid, patrol: PatrolPlaces) -> Any:
    """The patrol places as polygons (their cells dissolved) with their attributes."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    x, y = grid.cell_centres()
    half = grid.cell_size / 2.0
    rows = []
    for p in patrol.places:
        row: dict[str, Any] = {
            "id": p.id,
            "rank": p.rank,
            "grid_ref": p.grid_ref,
            "street": p.street,
            "lon": round(p.lon_lat[0], 6),
            "lat": round(p.lon_lat[1], 6),
            "x": p.centroid[0],
            "y": p.centroid[1],
            "cells": p.cells,
            "area": p.area,
            "across": p.across,
            "expected": p.expected,
            "events": p.events,
            "harm": p.harm,
            "recent_events": p.recent_events,
            "place_rank": p.place_rank,
        }
        for i in range(TOP_FACTORS):
            f = p.factors[i] if i < len(p.factors) else None
            row[f"factor{i + 1}"] = "" if f is None else f.description
            row[f"rrv{i + 1}"] = None if f is None else f.relative_risk_value
        rows.append(row)
    geometry = [
        shapely.coverage_union_all(
            shapely.box(
                x[p.cell_positions] - half,
                y[p.cell_positions] - half,
                x[p.cell_positions] + half,
                y[p.cell_positions] + half,
            )
        )
        for p in patrol.places
    ]
    columns = [
        *("id rank grid_ref street lon lat x y cells area across expected events harm").split(),
        "recent_events",
        "place_rank",
        *(f"{kind}{i + 1}" for i in range(TOP_FACTORS) for kind in ("factor", "rrv")),
    ]
    frame = pd.DataFrame(rows, columns=columns)  # the columns also when there is no place
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=grid.crs)
