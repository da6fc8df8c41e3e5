"""The places of a trial: where they come from, their spacing, catchments and counts.

A design reads the run's ``places.gpkg`` layer ``patrol_places`` when the run has one,
otherwise its ``places`` layer (the highest-risk places), or a layer the user names
(polygons, or points that become discs of ``place_radius``). Places are taken in order of
their baseline, skipping any closer than ``min_spacing`` to one already taken, so that
the catchments (rings around each place, for displacement) never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from rtm.errors import InputError, ParameterError
from rtm.io.vectors import read_vector

__all__ = [
    "PLACE_LAYERS",
    "Catchment",
    "catchments",
    "count_in",
    "days_spanned",
    "period_labels",
    "read_places",
    "select_spaced",
]

#: The run's places.gpkg layers a design reads, first found first.
PLACE_LAYERS = ("patrol_places", "places")

_DAYS_PER_MONTH = 365.25 / 12.0


def read_places(
    run_dir: Path | None,
    place_layer: str | None,
    crs: pyproj.CRS | None,
    *,
    place_radius: float,
) -> tuple[gpd.GeoDataFrame, str]:
    """The candidate places (``place_id``, polygon ``geometry``) and where they came from."""
    import pyogrio

    if place_layer is not None:
        places = read_vector(place_layer, what="--place-layer")
        source = str(place_layer)
    else:
        if run_dir is None:
            raise ParameterError("trial design: give a RUN_DIR or --place-layer")
        path = Path(run_dir) / "places.gpkg"
        if not path.is_file():
            raise InputError(f"RUN_DIR {run_dir}: places.gpkg is missing; give --place-layer")
        layers = {str(name) for name in pyogrio.list_layers(path)[:, 0]}
        layer = next((name for name in PLACE_LAYERS if name in layers), None)
        if layer is None:
            raise InputError(
                f"RUN_DIR {run_dir}: places.gpkg has no layer {' or '.join(PLACE_LAYERS)}; "
                "give --place-layer"
            )
        places = read_vector(f"{path}:{layer}", what="RUN_DIR places")
        source = f"{path.name}:{layer}"
    if crs is not None:
        places = places.to_crs(crs)
    if places.crs is None or not places.crs.is_projected:
        raise InputError(f"places {source}: need a projected CRS (metres) for spacing and rings")
    kinds = set(places.geom_type.unique())
    if kinds <= {"Point", "MultiPoint"}:
        if place_radius <= 0:
            raise ParameterError(
                f"--place-radius {place_radius:g}: must be positive for point places"
            )
        places = places.set_geometry(places.geometry.buffer(place_radius, quad_segs=16))
    elif not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(
            f"places {source}: must be points or polygons, got {', '.join(sorted(kinds))}"
        )
    ids = _place_ids(places)
    out = gpd.GeoDataFrame({"place_id": ids}, geometry=places.geometry.to_numpy(), crs=places.crs)
    for column in places.columns:
        if column not in ("geometry", "place_id") and column not in out.columns:
            out[column] = places[column].to_numpy()
    return out.reset_index(drop=True), source


def _place_ids(places: gpd.GeoDataFrame) -> list[str]:
    for column in ("place_id", "id", "rank"):
        if column in places.columns:
            ids = [str(v) for v in places[column]]
            if len(set(ids)) == len(ids):
                return ids
    return [str(i + 1) for i in range(len(places))]


def select_spaced(
    geometries: np.ndarray, priority: np.ndarray, n: int, min_spacing: float
) -> tuple[np.ndarray, int]:
    """Indices of up to ``n`` places by descending ``priority``, pairwise ``>= min_spacing`` apart.

    Returns the chosen indices (in priority order) and how many higher-priority places were
    skipped for being too close to one chosen before them.
    """
    order = np.argsort(-np.asarray(priority, dtype=np.float64), kind="stable")
    chosen: list[int] = []
    skipped = 0
    for index in order:
        if len(chosen) == n:
            break
        if chosen and min_spacing > 0:
            distances = shapely.distance(geometries[index], geometries[np.array(chosen)])
            if float(np.min(distances)) < min_spacing:
                skipped += 1
                continue
        chosen.append(int(index))
    return np.array(chosen, dtype=np.int64), skipped


@dataclass(frozen=True)
class Catchment:
    """A ring around a place: the area between ``inner`` and ``outer`` metres from it."""

    place: int
    inner: float
    outer: float
    geometry: object


def catchments(geometries: np.ndarray, rings: Sequence[float]) -> list[Catchment]:
    """The rings around each place: 0..r1, r1..r2, ... (the place itself excluded)."""
    out: list[Catchment] = []
    for place, geometry in enumerate(geometries):
        inner_shape = geometry
        inner = 0.0
        for outer in rings:
            outer_shape = shapely.buffer(geometry, outer, quad_segs=16)
            out.append(
                Catchment(place, inner, float(outer), shapely.difference(outer_shape, inner_shape))
            )
            inner_shape, inner = outer_shape, float(outer)
    return out


def count_in(
    geometries: Sequence[object] | np.ndarray, points: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per geometry, the number (or total weight) of the points inside it (boundary included)."""
    result = np.zeros(len(geometries))
    if len(points) == 0 or len(geometries) == 0:
        return result
    tree = shapely.STRtree(np.asarray(geometries, dtype=object))
    point_idx, geom_idx = tree.query(points, predicate="intersects")
    values = np.ones(len(point_idx)) if weights is None else np.asarray(weights)[point_idx]
    np.add.at(result, geom_idx, values)
    return result


def period_labels(events: pd.DataFrame) -> np.ndarray | None:
    """The month of each event (``YYYY-MM`` from a ``date`` column, else a ``month`` column)."""
    if "date" in events.columns:
        dates = pd.to_datetime(events["date"], errors="coerce")
        if not dates.isna().all():
            return dates.dt.strftime("%Y-%m").fillna("unknown").to_numpy()
    if "month" in events.columns:
        return events["month"].astype(str).to_numpy()
    return None


def days_spanned(events: pd.DataFrame) -> float | None:
    """How many days the events cover: first to last date, or distinct months x 30.44."""
    dates = _dates(events)
    if dates is not None:
        return float((dates.max() - dates.min()).days + 1)
    if "month" in events.columns:
        return float(events["month"].nunique()) * _DAYS_PER_MONTH
    return None


def _dates(events: pd.DataFrame) -> pd.Series | None:
    if "date" not in events.columns:
        return None
    dates = pd.to_datetime(events["date"], errors="coerce")
    return None if dates.isna().all() else dates.dropna()
