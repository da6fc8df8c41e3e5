"""Tiers, highest-risk places and priority places of one risk surface, together.

Priority places are clusters of high-risk cells (top tier by default) that also had
recent events nearby (in the cell or within a distance of its centre, over a recent
window of a date or month column), ranked by those recent events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree

from rtm.errors import ParameterError
from rtm.grid import Grid
from rtm.places.clusters import Place, build_places, label_clusters, ranked
from rtm.places.concentration import Concentration, concentration
from rtm.places.intervention import InterventionAreas, intervention_areas
from rtm.places.patrol import PatrolPlaces, patrol_places
from rtm.places.recent import DEFAULT_RECENT_DAYS, RecentWindow, select_recent
from rtm.places.surface import RiskSurface
from rtm.places.tiers import TIER_NAMES, Tiers, assign_tiers
from rtm.spec_values import CONNECTIVITY, DEFAULT_PATROL_SIZE, DEFAULT_TIER_CUTS

#: Numbers of top patrol places whose share of events and harm is reported.
TOP_PLACE_COUNTS = (10, 20)

__all__ = ["PlaceAnalysis", "analyze_places"]


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
    from_forecast: bool = False
    patrol: PatrolPlaces | None = None
    intervention: InterventionAreas | None = None
    concentration: Concentration | None = None

    def report(self) -> dict[str, Any]:
        """The ``tiers``, ``places``, ``priority_places``... keys of ``report.json``."""
        out = self._places_report()
        if self.patrol is not None:
            out["patrol_places"] = self.patrol.report()
        if self.intervention is not None:
            out["intervention_areas"] = self.intervention.report()
        if self.concentration is not None:
            out["concentration"] = self.concentration.as_dict()
        return out

    def _places_report(self) -> dict[str, Any]:
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
                "definition": (
                    f"clusters of the forecast's top cells (as many as the cells in tier "
                    f"{self.priority_tier} or higher) with at "
                    if self.from_forecast
                    else f"clusters of cells in tier {self.priority_tier} or higher with at "
                )
                + f"least one recent event in the cell or within {self.recent_distance:g} "
                f"{self.unit} of its "
                "centre, ranked by those recent events",
                "tier": self.priority_tier,
                "distance": self.recent_distance,
                "recent": self.recent.as_dict(),
                "count": len(self.priority_places),
                "places": [p.as_dict() for p in self.priority_places],
            },
        }


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
    patrol_size: float = DEFAULT_PATROL_SIZE,
    streets: Any = None,
    forecast: np.ndarray | None = None,
) -> PlaceAnalysis:
    """Tiers, highest-risk, priority and patrol places, intervention areas, concentration.

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
    patrol_size : float
        Largest extent of a patrol place.
    streets : GeoDataFrame, optional
        Named street lines in the grid's CRS: the nearest street of each patrol place.
    forecast : numpy.ndarray, optional
        The forecast per cell (:mod:`rtm.validation.forecast`): when given, priority places
        are drawn from its top cells (as many as the cells in the eligible tiers) instead
        of the tiers.
    """
    if priority_tier not in (1, 2, 3):
        raise ParameterError(f"--priority-tier must be 1, 2 or 3, got {priority_tier!r}")
    grid = surface.grid
    distance = 2.0 * grid.cell_size if recent_distance is None else float(recent_distance)
    if not distance >= 0:
        raise ParameterError(f"--recent-distance must be zero or positive, got {recent_distance!r}")
    tiers = assign_tiers(surface.rrs, surface.counts, grid.cell_size**2, tier_cuts)
    empty = tiers.empty_note()
    if empty:
        import warnings

        from rtm.errors import RTMWarning

        warnings.warn(empty, RTMWarning, stacklevel=2)
    labels = label_clusters(grid, tiers.cell_rank == 1, connectivity)
    places = ranked(build_places(surface, labels), lambda p: (-p.expected, -p.events, -p.max_rrs))

    recent = select_recent(events, recent_days, date_column)
    eligible = (tiers.cell_rank >= 1) & (tiers.cell_rank <= priority_tier)
    if forecast is not None:
        top = np.argsort(-np.asarray(forecast, dtype=np.float64), kind="stable")
        eligible = np.zeros(grid.n_active, dtype=bool)
        eligible[
            top[: int(((tiers.cell_rank >= 1) & (tiers.cell_rank <= priority_tier)).sum())]
        ] = True
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
    priority_labels = label_clusters(grid, near, connectivity)
    recent_per_label = _recent_per_place(grid, priority_labels, points, distance)
    priority = ranked(
        build_places(surface, priority_labels, recent_per_label),
        lambda p: (-(p.recent_events or 0), -p.max_rrs, -p.mean_rrs),
    )
    analysis = PlaceAnalysis(
        tiers,
        places,
        priority,
        recent,
        priority_tier,
        distance,
        connectivity,
        grid.unit,
        from_forecast=forecast is not None,
    )
    return _with_patrol(analysis, surface, points, patrol_size, streets)


def _recent_cells(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Recent events per active cell."""
    out = np.zeros(grid.n_active)
    if len(points) == 0:
        return out
    row, col = grid.cell_of(points[:, 0], points[:, 1])
    ok = (row >= 0) & (row < grid.n_rows) & (col >= 0) & (col < grid.n_cols)
    position = np.full(grid.n_rows * grid.n_cols, -1)
    position[grid.active_index] = np.arange(grid.n_active)
    cell = position[row[ok] * grid.n_cols + col[ok]]
    return np.bincount(cell[cell >= 0], minlength=grid.n_active).astype(float)


def _with_patrol(
    analysis: PlaceAnalysis,
    surface: RiskSurface,
    points: np.ndarray,
    patrol_size: float,
    streets: Any,
) -> PlaceAnalysis:
    """Add patrol places, intervention areas and the concentration figures."""
    from dataclasses import replace

    grid = surface.grid
    top = analysis.tiers.cell_rank == 1
    place_labels = np.zeros(grid.n_active, dtype=np.int64)
    for place in analysis.places:
        place_labels[place.cell_positions] = place.rank
    recent = _recent_cells(grid, points) if analysis.recent.mask is not None else None
    harm_run = surface.harm is not None
    patrol = patrol_places(
        grid,
        surface.expected,
        top,
        size=patrol_size,
        counts=surface.counts,
        harm=surface.harm,
        recent=recent,
        factors=surface.factors,
        place_labels=place_labels,
        streets=streets,
        ranked_by="expected harm (event-equivalents)" if harm_run else "expected events",
    )
    areas = intervention_areas(
        grid,
        top,
        points,
        np.zeros(grid.n_active) if recent is None else recent,
        distance=analysis.recent_distance,
        counts=surface.counts,
        expected=surface.expected,
    )
    top_sets = [
        (n, np.concatenate([p.cell_positions for p in patrol.places[:n]]))
        for n in TOP_PLACE_COUNTS
        if len(patrol.places) >= n
    ]
    figures = concentration(surface.counts, surface.harm, places=top_sets)
    return replace(analysis, patrol=patrol, intervention=areas, concentration=figures)


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
