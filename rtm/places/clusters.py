"""Places: clusters of selected cells (joined at edges and corners), their facts and polygons.

Highest-risk places are clusters of top-tier cells joined by 8-connectivity (cells
touching at an edge or a corner: a hot spot on a diagonal street stays one place),
ranked by the events the model expects there (the sum of expected counts), which weighs
both risk and size.
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

from rtm.errors import ParameterError
from rtm.grid import Grid
from rtm.places.surface import RiskSurface

__all__ = ["Place", "PlaceFactor", "build_places", "label_clusters", "place_frame", "ranked"]


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


# ---------------------------------------------------------------------- places
def label_clusters(grid: Grid, selected: np.ndarray, connectivity: int) -> np.ndarray:
    """Cluster label per active cell (0 = not selected), labels 1..n."""
    if connectivity not in (4, 8):
        raise ParameterError(f"connectivity must be 4 or 8, got {connectivity!r}")
    raster = grid.to_raster(selected.astype(bool), nodata=False)
    structure = (
        np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    )
    labels, _ = ndimage.label(raster, structure=structure)
    return labels.ravel()[grid.active_index]


def build_places(
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


def ranked(places: list[Place], key: Any) -> tuple[Place, ...]:
    """The places ordered by ``key``, numbered from 1."""
    from dataclasses import replace

    ordered = sorted(places, key=key)
    return tuple(replace(p, rank=i) for i, p in enumerate(ordered, start=1))


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
