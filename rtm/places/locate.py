"""Where a place is, for people: longitude/latitude, a grid reference, the nearest street.

* :func:`grid_reference`: British National Grid letters and an 8-figure reference (10 m)
  when the CRS is EPSG:27700, otherwise the projected x/y in whole metres;
* :func:`lon_lat`: WGS84 coordinates;
* :func:`nearest_street_names`: the name of the nearest named street line (the name
  column found automatically: ``name``, ``street``, ``road``..., any case).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyproj
import shapely

from rtm.errors import InputError
from rtm.io.crs import transformer as crs_transformer

__all__ = ["grid_reference", "lon_lat", "name_column", "nearest_street_names"]

_NAME_COLUMNS = ("name", "street", "road", "street_name", "road_name", "streetname", "roadname")


def _is_bng(crs: Any) -> bool:
    try:
        return pyproj.CRS.from_user_input(crs).to_epsg() == 27700
    except pyproj.exceptions.CRSError:
        return False


def _bng(easting: float, northing: float) -> str:
    """An 8-figure British National Grid reference, e.g. ``TQ 2950 8070``.

    Examples
    --------
    >>> _bng(529500.0, 180700.0)
    'TQ 2950 8070'
    >>> _bng(325000.0, 673000.0)
    'NT 2500 7300'
    """
    e100k, n100k = int(easting // 100_000), int(northing // 100_000)
    if not (0 <= e100k < 7 and 0 <= n100k < 13):
        return f"{easting:.0f} {northing:.0f}"
    first = (19 - n100k) - (19 - n100k) % 5 + (e100k + 10) // 5
    second = (19 - n100k) * 5 % 25 + e100k % 5
    letters = "".join(chr(65 + v + (1 if v > 7 else 0)) for v in (first, second))  # no I
    e, n = int(easting % 100_000) // 10, int(northing % 100_000) // 10
    return f"{letters} {e:04d} {n:04d}"


def grid_reference(x: np.ndarray, y: np.ndarray, crs: Any) -> list[str]:
    """Grid references of points: BNG letters for EPSG:27700, else ``x y`` in metres."""
    if _is_bng(crs):
        return [_bng(float(a), float(b)) for a, b in zip(x, y, strict=True)]
    return [f"{float(a):.0f} {float(b):.0f}" for a, b in zip(x, y, strict=True)]


def lon_lat(x: np.ndarray, y: np.ndarray, crs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (WGS84) of points in ``crs``."""
    to_degrees = crs_transformer(crs, "EPSG:4326")
    lon, lat = to_degrees.transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)


def name_column(frame: Any, what: str = "streets") -> str:
    """The column of street names: ``name``, ``street``, ``road``... (any case).

    Raises
    ------
    InputError
        No such column (the message lists the columns).
    """
    columns = [str(c) for c in frame.columns if c != getattr(frame, "_geometry_column_name", "")]
    lower = {c.lower(): c for c in columns}
    for name in _NAME_COLUMNS:
        if name in lower:
            return lower[name]
    for column in columns:
        if any(word in column.lower() for word in ("name", "street", "road")):
            return column
    raise InputError(
        f"{what}: no street-name column (looked for {', '.join(_NAME_COLUMNS)}); "
        f"columns are {', '.join(columns)}"
    )


def nearest_street_names(x: np.ndarray, y: np.ndarray, streets: Any) -> list[str]:
    """The name of the nearest named street line to each point (``''`` when none).

    ``streets`` is a GeoDataFrame of lines in the points' CRS.
    """
    if streets is None or not len(streets):
        return [""] * len(x)
    column = name_column(streets)
    names = streets[column].astype(str).str.strip()
    named = names.notna() & (names != "") & (names.str.lower() != "none") & (names != "nan")
    geometry = np.asarray(streets.geometry.values)[named.to_numpy()]
    labels = names[named].to_numpy()
    if geometry.size == 0:
        return [""] * len(x)
    tree = shapely.STRtree(geometry)
    points = shapely.points(np.asarray(x, float), np.asarray(y, float))
    index = tree.query_nearest(points, all_matches=False)
    out = [""] * len(x)
    for point, street in zip(index[0], index[1], strict=True):
        out[int(point)] = str(labels[int(street)])
    return out
