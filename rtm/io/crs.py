"""Coordinate reference systems of inputs: parsed, checked against the coordinates, changed.

Distances are never computed in degrees: every input reaches the engine in the study
area's projected CRS, and coordinates whose magnitude contradicts their declared CRS
(metres declared as degrees, or the reverse) are refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj

from rtm.errors import CRSError, first_line

__all__ = [
    "check_bounds_match_crs",
    "check_coordinates_match_crs",
    "looks_geographic",
    "parse_crs",
    "reproject_xy",
    "to_crs",
    "transformer",
]


def looks_geographic(bounds: np.ndarray) -> bool:
    """Whether bounds fit in longitude/latitude degrees."""
    minx, miny, maxx, maxy = bounds
    return bool(-180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0)


def check_coordinates_match_crs(gdf: gpd.GeoDataFrame, what: str) -> None:
    """Refuse coordinates whose magnitude contradicts the declared CRS."""
    if gdf.empty or gdf.crs is None:
        return
    check_bounds_match_crs(np.asarray(gdf.total_bounds, dtype=float), gdf.crs, what)


def check_bounds_match_crs(bounds: np.ndarray, crs: pyproj.CRS, what: str) -> None:
    """:func:`check_coordinates_match_crs` on the bounds (minx, miny, maxx, maxy)."""
    if not np.all(np.isfinite(bounds)):
        return
    if crs.is_geographic and not looks_geographic(bounds):
        raise CRSError(
            f"{what}: the CRS is longitude/latitude ({crs.name}) but the coordinates "
            f"(x {bounds[0]:.6g}..{bounds[2]:.6g}, y {bounds[1]:.6g}..{bounds[3]:.6g}) are not "
            "degrees; they look like projected metres: declare the right CRS"
        )
    if crs.is_projected and looks_geographic(bounds):
        width = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
        if width < 10.0:  # a real projected layer spans more than 10 m
            raise CRSError(
                f"{what}: the CRS is projected ({crs.name}) but the coordinates "
                f"(x {bounds[0]:.6g}..{bounds[2]:.6g}, y {bounds[1]:.6g}..{bounds[3]:.6g}) look "
                "like longitude/latitude degrees: declare EPSG:4326 (or the right CRS)"
            )


def transformer(source: Any, target: Any) -> pyproj.Transformer:
    """The ``always_xy`` transformer between two CRSs, made once per process.

    Making one looks up the operation in PROJ's database: about 40 ms for British
    National Grid to WGS84, which a batch paid for every job's places and map
    (geopandas keeps its own the same way). pyproj's transformers are thread-safe.
    ``source`` and ``target`` are anything :meth:`pyproj.CRS.from_user_input` takes
    (a CRS or an ``"EPSG:..."`` text are kept; an unhashable one is made each time).
    """
    try:
        return _cached_transformer(source, target)
    except TypeError:  # unhashable (a dict of PROJ parameters)
        return pyproj.Transformer.from_crs(source, target, always_xy=True)


@lru_cache(maxsize=32)
def _cached_transformer(source: Any, target: Any) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def parse_crs(text: Any, what: str) -> pyproj.CRS:
    """A CRS from any text pyproj understands, or an error naming ``what``."""
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"{what}: {text!r} is not a CRS pyproj understands") from exc


def reproject_xy(
    x: np.ndarray, y: np.ndarray, source: pyproj.CRS, target: pyproj.CRS, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Point coordinates from ``source`` into ``target``, with :func:`to_crs`'s errors."""
    try:
        new_x, new_y = transformer(source, target).transform(x, y)
    except Exception as exc:  # noqa: BLE001
        raise CRSError(
            f"{what}: cannot be reprojected to {target.name} ({first_line(exc)})"
        ) from exc
    new_x, new_y = np.asarray(new_x, dtype=float), np.asarray(new_y, dtype=float)
    if new_x.size and not (np.isfinite(new_x).all() and np.isfinite(new_y).all()):
        raise CRSError(f"{what}: coordinates fall outside the valid range of {target.name}")
    return new_x, new_y


def to_crs(gdf: gpd.GeoDataFrame, crs: pyproj.CRS, what: str) -> gpd.GeoDataFrame:
    """``gdf`` in ``crs`` (unchanged if already there), or an error naming ``what``."""
    if gdf.crs is not None and gdf.crs.equals(crs):  # (geopandas keeps a pyproj.CRS)
        return gdf
    try:
        out = gdf.to_crs(crs)
    except Exception as exc:  # noqa: BLE001
        raise CRSError(f"{what}: cannot be reprojected to {crs.name} ({first_line(exc)})") from exc
    bounds = np.asarray(out.total_bounds, dtype=float)
    if len(out) and not np.all(np.isfinite(bounds)):
        raise CRSError(f"{what}: coordinates fall outside the valid range of {crs.name}")
    return out
