"""Intervention areas: the risk-based policing design of the Kansas City RTM experiment.

The highest-risk cells that are also recent hot spots, dissolved into contiguous areas
(8-connectivity), ranked by their recent events, and kept in that order while their
total stays within a cap on the share of the study area (default 5%): the cap is what a
force can staff, and it is reported with the areas.

A recent hot spot is a cell whose recent events within the recent distance of its
centre reach ``mean + 2 SD`` over the study-area cells (the rule of the density
operationalization and of the top tier), with at least one such event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from rtm.grid import Grid
from rtm.places.clusters import label_clusters

__all__ = ["DEFAULT_MAX_SHARE", "InterventionAreas", "intervention_areas"]

#: Largest share of the study area the intervention areas may cover together.
DEFAULT_MAX_SHARE = 0.05


@dataclass(frozen=True, eq=False)
class InterventionAreas:
    """The intervention areas, ranked, and what the cap left out."""

    areas: tuple[dict[str, Any], ...]
    cells: tuple[np.ndarray, ...] = field(repr=False)
    max_share: float
    candidates: int
    hot_cut: float
    distance: float

    def report(self) -> dict[str, Any]:
        """The ``intervention_areas`` section of report.json."""
        return {
            "definition": "highest-risk cells that are also recent hot spots (recent events "
            f"within {self.distance:g} of the cell centre >= mean + 2 SD, here "
            f"{self.hot_cut:.3g}), dissolved by 8-connectivity, ranked by recent events, kept "
            f"while together within {self.max_share:.0%} of the study area",
            "max_share": self.max_share,
            "candidates": self.candidates,
            "count": len(self.areas),
            "areas": [dict(a) for a in self.areas],
        }

    def frame(self, grid: Grid) -> gpd.GeoDataFrame:
        """The areas as polygons (cells dissolved) in the grid's CRS."""
        x, y = grid.cell_centres()
        half = grid.cell_size / 2.0
        geometry = [
            shapely.coverage_union_all(
                shapely.box(x[c] - half, y[c] - half, x[c] + half, y[c] + half)
            )
            for c in self.cells
        ]
        columns = ["rank", "cells", "area", "area_share", "recent_events", "events", "expected"]
        frame = pd.DataFrame([{k: a[k] for k in columns} for a in self.areas], columns=columns)
        return gpd.GeoDataFrame(frame, geometry=geometry, crs=grid.crs)


def intervention_areas(
    grid: Grid,
    top_tier: np.ndarray,
    recent_points: np.ndarray,
    recent_cells: np.ndarray,
    *,
    distance: float,
    counts: np.ndarray,
    expected: np.ndarray,
    max_share: float = DEFAULT_MAX_SHARE,
) -> InterventionAreas:
    """Intervention areas of a surface (see the module notes).

    Parameters
    ----------
    grid : Grid
    top_tier : numpy.ndarray of bool
        Per active cell: in the highest-risk tier.
    recent_points : numpy.ndarray
        ``(n, 2)`` coordinates of the recent events.
    recent_cells : numpy.ndarray
        Per active cell: recent events in the cell.
    distance : float
        How near a recent event must be to a cell centre.
    counts, expected : numpy.ndarray
        Per active cell: observed and expected events (reported per area).
    max_share : float
        Cap on the share of the study area the areas cover together.
    """
    near = np.zeros(grid.n_active)
    if len(recent_points):
        x, y = grid.cell_centres()
        near = (
            cKDTree(recent_points)
            .query_ball_point(np.column_stack([x, y]), r=distance, return_length=True)
            .astype(float)
        )
    cut = float(near.mean() + 2.0 * near.std())
    hot = (near >= cut) & (near > 0)
    labels = label_clusters(grid, np.asarray(top_tier, bool) & hot, 8)
    n = int(labels.max()) if labels.size else 0
    recent = np.bincount(labels, weights=recent_cells, minlength=n + 1)
    size = np.bincount(labels, minlength=n + 1)
    events = np.bincount(labels, weights=counts, minlength=n + 1)
    exp = np.bincount(labels, weights=expected, minlength=n + 1)
    order = sorted(range(1, n + 1), key=lambda i: (-recent[i], -exp[i], i))
    areas: list[dict[str, Any]] = []
    cells_kept: list[np.ndarray] = []
    used = 0
    for label in order:
        if (used + size[label]) > max_share * grid.n_active:
            continue
        used += int(size[label])
        cells_kept.append(np.flatnonzero(labels == label))
        areas.append(
            {
                "rank": len(areas) + 1,
                "cells": int(size[label]),
                "area": float(size[label]) * grid.cell_size**2,
                "area_share": float(size[label]) / grid.n_active,
                "recent_events": int(recent[label]),
                "events": int(events[label]),
                "expected": float(exp[label]),
            }
        )
    return InterventionAreas(tuple(areas), tuple(cells_kept), max_share, n, cut, distance)
