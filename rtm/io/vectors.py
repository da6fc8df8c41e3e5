"""Read any vector file (or a CSV of points) as it is, with checks but no reprojection.

Supported sources: ESRI shapefile, GeoPackage (``file.gpkg:layer`` picks a layer),
GeoJSON, FlatGeobuf, GML, KML, zipped shapefiles, and CSV (plain or compressed) with
coordinate columns. Empty geometries are dropped and invalid ones repaired, each with a
warning.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyproj
import shapely

from rtm.errors import CRSError, InputError, RTMWarning, first_line
from rtm.filters import WhereClause, apply_where
from rtm.io.crs import check_coordinates_match_crs, parse_crs
from rtm.io.csv_points import CsvOptions, points_from_frame, read_csv_points
from rtm.shared import file_key, remember

__all__ = [
    "CSV_SUFFIXES",
    "IN_MEMORY",
    "READABLE_SUFFIXES",
    "clean_geometries",
    "is_data",
    "read_vector",
    "split_layer",
]

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
#: The file suffixes of vector layers :func:`read_vector` reads: what ``--factors-dir``
#: takes from a folder (``--factor FILE`` reads these too, and also a CSV named ``.txt``).
READABLE_SUFFIXES = (
    ".shp",
    ".gpkg",
    ".geojson",
    ".json",
    ".fgb",
    ".gml",
    ".kml",
    ".zip",
    ".csv",
    ".tsv",
    ".csv.gz",
    ".csv.bz2",
    ".csv.xz",
)
#: How messages name data passed in memory.
IN_MEMORY = "(in memory)"


def is_data(source: object) -> bool:
    """Whether ``source`` is data in memory (a DataFrame or GeoDataFrame), not a path."""
    return isinstance(source, pd.DataFrame | gpd.GeoSeries)


def split_layer(source: str | Path) -> tuple[Path, str | None]:
    """Split ``file.gpkg:layer`` into the path and the layer name."""
    text = str(source)
    match = re.match(r"^(.*\.gpkg):([^:/\\]+)$", text, flags=re.IGNORECASE)
    if match and not Path(text).exists():
        return Path(match.group(1)), match.group(2)
    return Path(text), None


def _is_csv(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".xz", ".zst"}:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in CSV_SUFFIXES


def read_vector(
    source: str | Path | pd.DataFrame | gpd.GeoSeries,
    *,
    what: str = "input",
    x_column: str | None = None,
    y_column: str | None = None,
    csv_crs: str | None = None,
    default_crs: pyproj.CRS | None = None,
    where: Sequence[WhereClause] = (),
    csv_options: CsvOptions | None = None,
    into_crs: pyproj.CRS | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector file (or a CSV of points) as it is, with checks but no reprojection.

    Parameters
    ----------
    source : str, Path, GeoDataFrame, GeoSeries or DataFrame
        A shapefile, GeoPackage (``file.gpkg:layer`` selects a layer), GeoJSON or CSV; or
        the data in memory: a GeoDataFrame (with its CRS) or a DataFrame with coordinate
        columns (found as in a CSV).
    what : str
        How error messages name this input, e.g. ``"--area"`` or ``"factor 'bars'"``.
    x_column, y_column : str, optional
        CSV coordinate columns; detected when omitted.
    csv_crs : str, optional
        CRS of CSV coordinates; implied by the column names when omitted
        (longitude/latitude: EPSG:4326; x/y, easting/northing: ``default_crs``).
    default_crs : pyproj.CRS, optional
        CRS for CSV projected coordinates when neither ``csv_crs`` nor the column names
        say (normally the study area's).
    where : sequence of WhereClause
        Attribute filters, applied while reading (all must hold).
    csv_options : CsvOptions, optional
        Separator, decimal mark and encoding of CSV files (default: detected, UTF-8).
    into_crs : pyproj.CRS, optional
        Points read from a CSV file are made in this CRS directly, their coordinates
        checked against their own CRS first (the caller reprojects anyway: this saves
        building the points twice). Other inputs are returned as they are.

    Returns
    -------
    geopandas.GeoDataFrame
        Rows with empty geometries are dropped (with a warning); invalid geometries are
        repaired with :func:`shapely.make_valid` (with a warning).

    Raises
    ------
    InputError
        Missing, unreadable or empty file, unknown layer.
    CRSError
        The layer has no CRS, or its coordinates contradict its CRS.
    """
    if is_data(source):
        return _from_memory(
            source,
            what=what,
            x_column=x_column,
            y_column=y_column,
            csv_crs=csv_crs,
            default_crs=default_crs,
            where=where,
        )
    path, layer = split_layer(source)  # type: ignore[arg-type]
    if not path.exists():
        raise InputError(f"{what} {path}: file not found")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, not a file")
    if _is_csv(path):
        gdf = read_csv_points(
            path,
            what=what,
            x_column=x_column,
            y_column=y_column,
            csv_crs=csv_crs,
            default_crs=default_crs,
            clauses=where,
            options=csv_options,
            into_crs=into_crs,
        )
    else:
        key = ("ogr", file_key(path), layer)
        gdf = remember("read", key, lambda: _read_ogr(path, layer, what))
        if where:
            gdf = apply_where(gdf, where, what=f"{what} {path}", table_key=key)
        if csv_crs is not None:
            gdf = gdf.set_crs(parse_crs(csv_crs, what), allow_override=True)
    if gdf.crs is None:
        raise CRSError(
            f"{what} {path}: the layer has no CRS (for a shapefile the .prj file is missing); "
            "set it in your GIS or name it with --crs"
        )
    gdf = clean_geometries(gdf, f"{what} {path}")
    if into_crs is None or not _is_csv(path):  # (a CSV read into a CRS was checked before)
        check_coordinates_match_crs(gdf, f"{what} {path}")
    return gdf


def _from_memory(
    source: pd.DataFrame | gpd.GeoSeries,
    *,
    what: str,
    x_column: str | None,
    y_column: str | None,
    csv_crs: str | None,
    default_crs: pyproj.CRS | None,
    where: Sequence[WhereClause],
) -> gpd.GeoDataFrame:
    """A GeoDataFrame, GeoSeries or DataFrame of points, checked as a file would be."""
    label = f"{what} {IN_MEMORY}"
    if isinstance(source, gpd.GeoSeries):
        source = gpd.GeoDataFrame(geometry=source)
    if isinstance(source, gpd.GeoDataFrame) and source.geometry.name in source.columns:
        gdf = source.copy()
        if where:
            gdf = apply_where(gdf, where, what=label)
        if csv_crs is not None:
            gdf = gdf.set_crs(parse_crs(csv_crs, what), allow_override=True)
        if gdf.crs is None:
            raise CRSError(f"{label}: the GeoDataFrame has no CRS; set it with .set_crs(...)")
    else:
        gdf = points_from_frame(
            pd.DataFrame(source),
            label=IN_MEMORY,
            what=what,
            x_column=x_column,
            y_column=y_column,
            csv_crs=csv_crs,
            default_crs=default_crs,
            clauses=where,
        )
    gdf = clean_geometries(gdf, label)
    check_coordinates_match_crs(gdf, label)
    return gdf


#: The CRS GDAL made of each shapefile .prj seen so far, by the .prj's bytes.
_PRJ_CRS: dict[bytes, pyproj.CRS] = {}

#: Held while GDAL reads a shapefile: the config option below is process-wide.
_OGR_LOCK = threading.Lock()

_FIND_MATCHES = "USE_OSR_FIND_MATCHES"


def _read_ogr(path: Path, layer: str | None, what: str) -> gpd.GeoDataFrame:
    import pyogrio

    try:
        if layer is not None:
            names = [str(row[0]) for row in pyogrio.list_layers(path)]
            if layer not in names:
                raise InputError(
                    f"{what} {path}: no layer {layer!r}; layers are {', '.join(names)}"
                )
        if path.suffix.lower() != ".shp":
            return pyogrio.read_dataframe(path, layer=layer)
        return _read_shapefile(path, layer)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types for one cause
        raise InputError(
            f"{what} {path}: cannot be read as a vector layer ({first_line(exc)})"
        ) from exc


def _read_shapefile(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    """Read a shapefile, working out the CRS of each distinct .prj only once.

    Opening a shapefile, GDAL matches its .prj (ESRI WKT) against the whole PROJ database
    to find the EPSG code (``FindBestMatch``): about 9 ms, three quarters of the time
    to read a layer of a few hundred points, paid again for every factor although they
    all share one .prj. The match depends on the .prj's bytes alone, so after the
    first file with those bytes GDAL skips it (``USE_OSR_FIND_MATCHES=NO``) and the
    layer gets the CRS GDAL found for the first, identical to what matching would give.
    """
    import pyogrio

    try:
        prj = path.with_suffix(".prj").read_bytes()  # the sidecar GDAL reads first
    except OSError:
        prj = None
    with _OGR_LOCK:
        known = None if prj is None else _PRJ_CRS.get(prj)
        if known is None:
            gdf = pyogrio.read_dataframe(path, layer=layer)
            if prj is not None and getattr(gdf, "crs", None) is not None and len(_PRJ_CRS) < 64:
                _PRJ_CRS[prj] = gdf.crs
            return gdf
        previous = pyogrio.get_gdal_config_option(_FIND_MATCHES)
        pyogrio.set_gdal_config_options({_FIND_MATCHES: "NO"})
        try:
            gdf = pyogrio.read_dataframe(path, layer=layer)
        finally:
            pyogrio.set_gdal_config_options({_FIND_MATCHES: previous})
    if isinstance(gdf, gpd.GeoDataFrame):  # (a layer without geometry has no CRS to set)
        gdf.set_crs(known, allow_override=True, inplace=True)
    return gdf


def clean_geometries(gdf: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    """Drop empty geometries and repair invalid ones, each with a warning naming ``what``."""
    geometry = gdf.geometry.values
    empty = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    if empty.any():
        warnings.warn(
            f"{what}: {int(empty.sum())} of {len(gdf)} features have no geometry and were dropped",
            RTMWarning,
            stacklevel=3,
        )
        gdf = gdf.loc[~empty].copy()
        geometry = gdf.geometry.values
    invalid = ~shapely.is_valid(geometry)
    if invalid.any():
        repaired = shapely.make_valid(geometry[invalid])
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = repaired
        warnings.warn(
            f"{what}: {int(invalid.sum())} invalid geometries were repaired (make_valid)",
            RTMWarning,
            stacklevel=3,
        )
    return gdf
