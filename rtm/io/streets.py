"""Street lines for context: the study area's streets, clipped to it, with their names.

A map a patrol officer reads needs street names; offline, a light vector layer of the
streets gives them (``--streets FILE``, spec field ``streets``). :func:`read_streets` is
the one reader, also for whatever needs the street a place is on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from rtm.errors import InputError
from rtm.io.crs import to_crs
from rtm.io.csv_points import CsvOptions
from rtm.io.vectors import IN_MEMORY, is_data, read_vector

__all__ = ["NAME_COLUMNS", "name_column", "read_streets"]

#: Column names taken as a street's name, in order of preference (case-insensitive).
NAME_COLUMNS = (
    "name",
    "street",
    "street_name",
    "streetname",
    "road_name",
    "roadname",
    "st_name",
    "name1",
    "rd_name",
    "label",
)


def name_column(columns: list[str]) -> str | None:
    """The column holding street names: a known name, else the first containing ``name``."""
    lowered = {c.strip().lower(): c for c in columns}
    for wanted in NAME_COLUMNS:
        if wanted in lowered:
            return lowered[wanted]
    return next((c for c in columns if "name" in c.lower()), None)


def read_streets(
    source: str | Path | gpd.GeoDataFrame,
    area: Any,
    crs: pyproj.CRS,
    *,
    what: str = "--streets",
    csv_options: CsvOptions | None = None,
) -> gpd.GeoDataFrame:
    """Read street lines, bring them into ``crs`` and clip them to the study area.

    Parameters
    ----------
    source : str, Path or GeoDataFrame
        A line layer (any vector file :func:`rtm.io.read_vector` reads), or one in memory.
    area : shapely geometry or GeoDataFrame
        The study area, in ``crs``; streets are clipped to it.
    crs : pyproj.CRS
        The working CRS.
    what : str
        How messages name this input.
    csv_options : CsvOptions, optional
        (CSV files hold points, not lines; accepted for symmetry with the other readers.)

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``name`` (the street's name, None where the layer has no name column or
        the value is missing) and ``geometry`` (lines, in ``crs``, inside the area).

    Raises
    ------
    InputError
        Unreadable file, or a layer with no lines.
    """
    lines = read_vector(source, what=what, csv_options=csv_options)
    label = f"{what} {IN_MEMORY if is_data(source) else source}"
    lines = to_crs(lines, crs, label)
    kinds = shapely.get_type_id(np.asarray(lines.geometry.values))
    keep = np.isin(kinds, [1, 2, 5, 7])  # lines, rings, multilines, collections
    if not keep.any():
        found = ", ".join(sorted(set(lines.geom_type.unique())))
        raise InputError(f"{label}: must be lines (streets), got {found or 'no features'}")
    lines = lines.loc[keep]
    geometry_name = lines.geometry.name
    column = name_column([str(c) for c in lines.columns if c != geometry_name])
    names = lines[column].astype(object).where(lines[column].notna(), None) if column else None
    boundary = (
        shapely.union_all(np.asarray(area.geometry.values))
        if isinstance(area, gpd.GeoDataFrame | gpd.GeoSeries)
        else area
    )
    clipped = shapely.intersection(np.asarray(lines.geometry.values), boundary)
    inside = ~shapely.is_empty(clipped)
    parts = shapely.get_type_id(clipped)
    inside &= np.isin(parts, [1, 2, 5, 7])
    values = [None] * int(inside.sum()) if names is None else list(names.to_numpy()[inside])
    return gpd.GeoDataFrame(
        {"name": [None if v is None else str(v) for v in values]},
        geometry=clipped[inside],
        crs=crs,
    )
