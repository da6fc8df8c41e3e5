"""Risk tiers, highest-risk places and priority places from a relative risk surface.

* **Tiers** cut the relative risk score (RRS) at ``mean + k * SD`` over the study-area
  cells (defaults k = 2, 1, 0: "highest", "moderately high", "above average"). A cell
  belongs to the highest tier whose cut its RRS reaches (``RRS >= cut``, inclusive, with a
  relative tolerance of 1e-9 against rounding). RRS takes few distinct values (a product
  of a handful of RRVs), so whole groups of tied cells land on the same side of a cut:
  tiers never split a tie, and their areas follow the distinct scores, not fixed shares.
* **Highest-risk places** are clusters of top-tier cells joined by 8-connectivity (cells
  touching at an edge or a corner: a hot spot on a diagonal street stays one place),
  ranked by the events the model expects there (the sum of expected counts), which
  weighs both risk and size.
* **Priority places** are clusters of high-risk cells (top tier by default) that also
  had recent events nearby (in the cell or within a distance of its centre, over a recent
  window of a date or month column), ranked by those recent events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree

from rtm.errors import ParameterError
from rtm.export.options import CONNECTIVITY, DEFAULT_TIER_CUTS, check_tier_cuts
from rtm.grid import Grid
from rtm.recent import DEFAULT_RECENT_DAYS, RecentWindow, select_recent

__all__ = [
    "CONNECTIVITY",
    "DEFAULT_RECENT_DAYS",
    "DEFAULT_TIER_CUTS",
    "TIER_NAMES",
    "FactorLayer",
    "Place",
    "PlaceAnalysis",
    "PlaceFactor",
    "RecentWindow",
    "RiskSurface",
    "Tier",
    "Tiers",
    "analyze_places",
    "assign_tiers",
    "select_recent",
]

TIER_NAMES = ("highest", "moderately high", "above average")
_TOLERANCE = 1e-9
TIE_RULE = (
    "a cell belongs to the highest tier whose cut its RRS reaches (RRS >= cut, inclusive); "
    "tied scores are never split, so tier areas follow the distinct RRS values"
)


@dataclass(frozen=True, eq=False)
class FactorLayer:
    """A selected factor and its 0/1 (or 0/-1 when protective) value per active cell."""

    name: str
    operationalization: str
    spatial_influence: float
    relative_risk_value: float
    protective: bool
    values: np.ndarray = field(repr=False)

    @property
    def coverage(self) -> float:
        """Share of the active cells where the factor is present."""
        return float(np.count_nonzero(self.values)) / max(int(self.values.size), 1)

    def describe(self, unit: str = "m") -> str:
        """Plain words, e.g. ``within 150 m of bars`` or ``high density of ATMs (300 m)``."""
        if self.operationalization == "proximity":
            return f"within {self.spatial_influence:g} {unit} of {self.name}"
        return f"high density of {self.name} ({self.spatial_influence:g} {unit} bandwidth)"


@dataclass(frozen=True, eq=False)
class RiskSurface:
    """What tiers and places are computed from: the grid, scores, counts and factors."""

    grid: Grid
    rrs: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    expected: np.ndarray = field(repr=False)
    factors: tuple[FactorLayer, ...]

    @classmethod
    def from_result(cls, result: Any) -> RiskSurface:
        """Build from a fitted :class:`rtm.model.RTMResult` with a risk surface."""
        if result.relative_risk_score is None:
            raise ParameterError("no significant factor: there is no risk surface to tier")
        values = result.selected_values()
        layers = tuple(
            FactorLayer(
                f.name,
                f.operationalization,
                f.spatial_influence,
                f.relative_risk_value,
                f.protective,
                values[f.candidate],
            )
            for f in result.factors
        )
        return cls(result.grid, result.relative_risk_score, result.counts, result.expected, layers)


@dataclass(frozen=True)
class Tier:
    """One risk tier: its RRS cut and its share of the area and of the events."""

    name: str
    rank: int
    sd_cut: float
    rrs_min: float
    rrs_max: float | None
    cells: int
    area: float
    area_share: float
    events: int
    event_share: float

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "name": self.name,
            "rank": self.rank,
            "cut_sd": self.sd_cut,
            "rrs_min": self.rrs_min,
            "rrs_max": self.rrs_max,
            "cells": self.cells,
            "area": self.area,
            "area_share": self.area_share,
            "events": self.events,
            "event_share": self.event_share,
        }


@dataclass(frozen=True, eq=False)
class Tiers:
    """The tiers and each active cell's tier rank (1 = highest, 0 = in no tier)."""

    tiers: tuple[Tier, ...]
    cell_rank: np.ndarray = field(repr=False)
    mean: float
    sd: float
    distinct_scores: int

    def cell_names(self) -> np.ndarray:
        """Tier name per active cell (None where the cell is in no tier)."""
        names = np.array([None, *TIER_NAMES], dtype=object)
        return names[self.cell_rank]

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "rule": "RRS >= mean + k * SD over the study-area cells (population SD)",
            "ties": TIE_RULE,
            "rrs_mean": self.mean,
            "rrs_sd": self.sd,
            "distinct_scores": self.distinct_scores,
            "tiers": [t.as_dict() for t in self.tiers],
        }


@dataclass(frozen=True)
class PlaceFactor:
    """A factor present in a place, with the share of the place's cells it covers."""

    name: str
    operationalization: str
    spatial_influence: float
    relative_risk_value: float
    protective: bool
    cell_share: float
    description: str

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "name": self.name,
            "operationalization": self.operationalization,
            "spatial_influence": self.spatial_influence,
            "rrv": self.relative_risk_value,
            "protective": self.protective,
            "cell_share": self.cell_share,
            "description": self.description,
        }


@dataclass(frozen=True, eq=False)
class Place:
    """A cluster of cells: its rank, size, events, scores and the factors present."""

    rank: int
    cells: int
    area: float
    events: int
    expected: float
    mean_rrs: float
    max_rrs: float
    centroid: tuple[float, float]
    factors: tuple[PlaceFactor, ...]
    recent_events: int | None = None
    cell_positions: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        out = {
            "rank": self.rank,
            "cells": self.cells,
            "area": self.area,
            "events": self.events,
            "expected": self.expected,
            "mean_rrs": self.mean_rrs,
            "max_rrs": self.max_rrs,
            "centroid": list(self.centroid),
            "factors": [f.as_dict() for f in self.factors],
        }
        if self.recent_events is not None:
            out["recent_events"] = self.recent_events
        return out

    def why(self) -> str:
        """The factors present, in one line (for GIS attribute tables)."""
        return "; ".join(
            f"{f.description} ({'protective, ' if f.protective else ''}"
            f"RRV {f.relative_risk_value:.2f}, "
            f"{f.cell_share:.0%} of cells)"
            for f in self.factors
        )


@dataclass(frozen=True, eq=False)
class PlaceAnalysis:
    """Tiers, highest-risk places and priority places of one risk surface."""

    tiers: Tiers
    places: tuple[Place, ...]
    priority_places: tuple[Place, ...]
    recent: RecentWindow
    priority_tier: int
    recent_distance: float
    connectivity: int = CONNECTIVITY
    unit: str = "m"

    def report(self) -> dict[str, Any]:
        """The ``tiers``, ``places`` and ``priority_places`` keys of ``report.json``."""
        return {
            "tiers": self.tiers.as_dict(),
            "places": {
                "definition": f"clusters of '{TIER_NAMES[0]}' cells joined by "
                f"{self.connectivity}-connectivity (edges and corners), ranked by expected events",
                "connectivity": self.connectivity,
                "count": len(self.places),
                "places": [p.as_dict() for p in self.places],
            },
            "priority_places": {
                "definition": f"clusters of cells in tier {self.priority_tier} or higher with at "
                f"least one recent event in the cell or within {self.recent_distance:g} "
                f"{self.unit} of its "
                "centre, ranked by those recent events",
                "tier": self.priority_tier,
                "distance": self.recent_distance,
                "recent": self.recent.as_dict(),
                "count": len(self.priority_places),
                "places": [p.as_dict() for p in self.priority_places],
            },
        }


# ---------------------------------------------------------------------- tiers
def assign_tiers(
    rrs: np.ndarray, counts: np.ndarray, cell_area: float, cuts: Sequence[float] = DEFAULT_TIER_CUTS
) -> Tiers:
    """Cut the RRS into tiers at ``mean + k * SD`` for each ``k`` in ``cuts``.

    Parameters
    ----------
    rrs : numpy.ndarray
        Relative risk score per active cell.
    counts : numpy.ndarray
        Events per active cell.
    cell_area : float
        Area of one cell (CRS units squared).
    cuts : sequence of three floats
        SDs above the mean, strictly descending (default 2, 1, 0).

    Returns
    -------
    Tiers

    Examples
    --------
    >>> t = assign_tiers(np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 50]), np.ones(10), 1.0)
    >>> [tier.cells for tier in t.tiers]
    [1, 0, 0]
    """
    sds = check_tier_cuts(cuts)
    rrs = np.asarray(rrs, dtype=float)
    counts = np.asarray(counts)
    mean, sd = float(rrs.mean()), float(rrs.std())
    lows = [mean + k * sd for k in sds]
    rank = np.zeros(rrs.size, dtype=np.int8)
    for position in range(len(lows) - 1, -1, -1):  # lowest tier first; higher ones overwrite
        rank[rrs >= lows[position] * (1 - _TOLERANCE)] = position + 1
    total_events = max(int(counts.sum()), 1)
    tiers = []
    for position, name in enumerate(TIER_NAMES):
        inside = rank == position + 1
        cells = int(inside.sum())
        events = int(counts[inside].sum())
        tiers.append(
            Tier(
                name=name,
                rank=position + 1,
                sd_cut=sds[position],
                rrs_min=lows[position],
                rrs_max=None if position == 0 else lows[position - 1],
                cells=cells,
                area=cells * cell_area,
                area_share=cells / max(rrs.size, 1),
                events=events,
                event_share=events / total_events,
            )
        )
    return Tiers(tuple(tiers), rank, mean, sd, int(np.unique(np.round(rrs, 9)).size))


# ---------------------------------------------------------------------- places
def _label(grid: Grid, selected: np.ndarray, connectivity: int) -> np.ndarray:
    """Cluster label per active cell (0 = not selected), labels 1..n."""
    if connectivity not in (4, 8):
        raise ParameterError(f"connectivity must be 4 or 8, got {connectivity!r}")
    raster = grid.to_raster(selected.astype(bool), nodata=False)
    structure = (
        np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    )
    labels, _ = ndimage.label(raster, structure=structure)
    return labels.ravel()[grid.active_index]


def _build_places(
    surface: RiskSurface, labels: np.ndarray, extra: np.ndarray | None = None
) -> list[Place]:
    """One unranked Place per label (extra: recent events per label, indexed by label)."""
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return []
    grid = surface.grid
    cells = np.bincount(labels, minlength=n + 1).astype(float)
    events = np.bincount(labels, weights=surface.counts, minlength=n + 1)
    expected = np.bincount(labels, weights=surface.expected, minlength=n + 1)
    rrs_sum = np.bincount(labels, weights=surface.rrs, minlength=n + 1)
    x, y = grid.cell_centres()
    cx = np.bincount(labels, weights=x, minlength=n + 1) / np.maximum(cells, 1)
    cy = np.bincount(labels, weights=y, minlength=n + 1) / np.maximum(cells, 1)
    rrs_max = np.zeros(n + 1)
    np.maximum.at(rrs_max, labels, surface.rrs)
    shares = [
        np.bincount(labels, weights=(f.values != 0).astype(float), minlength=n + 1)
        / np.maximum(cells, 1)
        for f in surface.factors
    ]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n + 2))
    places = []
    for label in range(1, n + 1):
        present = tuple(
            PlaceFactor(
                f.name,
                f.operationalization,
                f.spatial_influence,
                f.relative_risk_value,
                f.protective,
                float(share[label]),
                f.describe(),
            )
            for f, share in sorted(
                zip(surface.factors, shares, strict=True), key=lambda fs: -fs[0].relative_risk_value
            )
            if share[label] > 0
        )
        places.append(
            Place(
                rank=0,
                cells=int(cells[label]),
                area=float(cells[label]) * grid.cell_size**2,
                events=int(events[label]),
                expected=float(expected[label]),
                mean_rrs=float(rrs_sum[label] / cells[label]),
                max_rrs=float(rrs_max[label]),
                centroid=(float(cx[label]), float(cy[label])),
                factors=present,
                recent_events=None if extra is None else int(extra[label]),
                cell_positions=order[bounds[label] : bounds[label + 1]],
            )
        )
    return places


def _ranked(places: list[Place], key: Any) -> tuple[Place, ...]:
    from dataclasses import replace

    ordered = sorted(places, key=key)
    return tuple(replace(p, rank=i) for i, p in enumerate(ordered, start=1))


# ---------------------------------------------------------------------- all together
def analyze_places(
    surface: RiskSurface,
    events: gpd.GeoDataFrame | None = None,
    *,
    tier_cuts: Sequence[float] = DEFAULT_TIER_CUTS,
    connectivity: int = CONNECTIVITY,
    priority_tier: int = 1,
    recent_days: float = DEFAULT_RECENT_DAYS,
    recent_distance: float | None = None,
    date_column: str | None = None,
) -> PlaceAnalysis:
    """Tiers, highest-risk places and priority places.

    Parameters
    ----------
    surface : RiskSurface
        Scores, counts and factors on the grid.
    events : GeoDataFrame, optional
        The event points (in the grid's CRS) with their attributes, for priority places.
    tier_cuts : three floats
        SDs above the mean RRS of the three tiers.
    connectivity : {8, 4}
        Cells joined at edges and corners (8) or at edges only (4).
    priority_tier : {1, 2, 3}
        Cells in this tier or a higher one can be priority places.
    recent_days : float
        The recent window, counted back from the latest event.
    recent_distance : float, optional
        How near a recent event must be to a cell centre (default: two cells, one block
        at the default cell size).
    date_column : str, optional
        The events' date (or month) column; found automatically when omitted.
    """
    if priority_tier not in (1, 2, 3):
        raise ParameterError(f"--priority-tier must be 1, 2 or 3, got {priority_tier!r}")
    grid = surface.grid
    distance = 2.0 * grid.cell_size if recent_distance is None else float(recent_distance)
    if not distance >= 0:
        raise ParameterError(f"--recent-distance must be zero or positive, got {recent_distance!r}")
    tiers = assign_tiers(surface.rrs, surface.counts, grid.cell_size**2, tier_cuts)
    labels = _label(grid, tiers.cell_rank == 1, connectivity)
    places = _ranked(_build_places(surface, labels), lambda p: (-p.expected, -p.events, -p.max_rrs))

    recent = select_recent(events, recent_days, date_column)
    eligible = (tiers.cell_rank >= 1) & (tiers.cell_rank <= priority_tier)
    near = np.zeros(grid.n_active, dtype=bool)
    points = np.empty((0, 2))
    if events is not None and recent.mask is not None and recent.events:
        chosen = events.geometry.values[recent.mask]
        points = np.column_stack([shapely.get_x(chosen), shapely.get_y(chosen)])
        x, y = grid.cell_centres()
        tree = cKDTree(points)
        within = tree.query_ball_point(
            np.column_stack([x, y])[eligible], r=distance, return_length=True
        )
        near[np.flatnonzero(eligible)] = within > 0
        row, col = grid.cell_of(points[:, 0], points[:, 1])
        ok = (row >= 0) & (row < grid.n_rows) & (col >= 0) & (col < grid.n_cols)
        position = np.full(grid.n_rows * grid.n_cols, -1)
        position[grid.active_index] = np.arange(grid.n_active)
        cell = position[row[ok] * grid.n_cols + col[ok]]
        near[cell[cell >= 0]] |= eligible[cell[cell >= 0]]
    priority_labels = _label(grid, near, connectivity)
    recent_per_label = _recent_per_place(grid, priority_labels, points, distance)
    priority = _ranked(
        _build_places(surface, priority_labels, recent_per_label),
        lambda p: (-(p.recent_events or 0), -p.max_rrs, -p.mean_rrs),
    )
    return PlaceAnalysis(
        tiers, places, priority, recent, priority_tier, distance, connectivity, grid.unit
    )


def _recent_per_place(
    grid: Grid, labels: np.ndarray, points: np.ndarray, distance: float
) -> np.ndarray:
    """Distinct recent events in a place's cells or within ``distance`` of their centres."""
    n = int(labels.max()) if labels.size else 0
    out = np.zeros(n + 1, dtype=np.int64)
    if n == 0 or len(points) == 0:
        return out
    x, y = grid.cell_centres()
    cells = np.flatnonzero(labels)
    tree = cKDTree(points)
    hits = tree.query_ball_point(np.column_stack([x[cells], y[cells]]), r=distance)
    pairs = {(int(labels[c]), int(p)) for c, found in zip(cells, hits, strict=True) for p in found}
    row, col = grid.cell_of(points[:, 0], points[:, 1])
    position = np.full(grid.n_rows * grid.n_cols, -1)
    position[grid.active_index] = np.arange(grid.n_active)
    ok = (row >= 0) & (row < grid.n_rows) & (col >= 0) & (col < grid.n_cols)
    for p in np.flatnonzero(ok):
        cell = position[row[p] * grid.n_cols + col[p]]
        if cell >= 0 and labels[cell]:
            pairs.add((int(labels[cell]), int(p)))
    for label, _ in pairs:
        out[label] += 1
    return out


def place_frame(grid: Grid, places: Sequence[Place], *, priority: bool = False) -> gpd.GeoDataFrame:
    """Places as polygons (their cells dissolved) with their attributes, in the grid's CRS."""
    x, y = grid.cell_centres()
    half = grid.cell_size / 2.0
    rows = []
    for p in places:
        row = {
            "rank": p.rank,
            "cells": p.cells,
            "area": p.area,
            "events": p.events,
            "expected": p.expected,
            "mean_rrs": p.mean_rrs,
            "max_rrs": p.max_rrs,
            "factors": p.why(),
        }
        if priority:
            row["recent_events"] = int(p.recent_events or 0)
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
        for p in places
    ]
    columns = ["rank", "cells", "area", "events", "expected", "mean_rrs", "max_rrs", "factors"]
    if priority:
        columns.append("recent_events")
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=geometry, crs=grid.crs)
