"""Read vector inputs into GeoDataFrames in the study area's CRS, or fail with a clear error.

Supported sources: ESRI shapefile, GeoPackage (``file.gpkg:layer`` picks a layer),
GeoJSON, and CSV (plain or gzipped) with coordinate columns. Everything that reaches
the rest of the engine is in one projected CRS with metre (or foot) units: distances
are never computed in degrees.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from rtm.errors import CRSError, InputError, ParameterError, RTMWarning

__all__ = [
    "WhereClause",
    "apply_where",
    "parse_where",
    "read_events",
    "read_factor",
    "read_study_area",
    "read_vector",
]

#: Coordinate column pairs recognised in CSV files, in order of preference, with the
#: CRS they imply when the user does not name one (None: the study area's CRS).
COORDINATE_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("longitude", "latitude", "EPSG:4326"),
    ("lon", "lat", "EPSG:4326"),
    ("lng", "lat", "EPSG:4326"),
    ("long", "lat", "EPSG:4326"),
    ("x", "y", None),
    ("easting", "northing", None),
)

_VECTOR_SUFFIXES = {".shp", ".gpkg", ".geojson", ".json", ".fgb", ".gml", ".kml", ".zip"}
_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}


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
    return bool(suffixes) and suffixes[-1] in _CSV_SUFFIXES


def _looks_geographic(bounds: np.ndarray) -> bool:
    minx, miny, maxx, maxy = bounds
    return bool(-180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0)


def _check_coordinates_match_crs(gdf: gpd.GeoDataFrame, what: str) -> None:
    """Refuse coordinates whose magnitude contradicts the declared CRS."""
    if gdf.empty or gdf.crs is None:
        return
    bounds = np.asarray(gdf.total_bounds, dtype=float)
    if not np.all(np.isfinite(bounds)):
        return
    if gdf.crs.is_geographic and not _looks_geographic(bounds):
        raise CRSError(
            f"{what}: the CRS is longitude/latitude ({gdf.crs.name}) but the coordinates "
            f"(x {bounds[0]:.6g}..{bounds[2]:.6g}, y {bounds[1]:.6g}..{bounds[3]:.6g}) are not "
            "degrees; they look like projected metres: declare the right CRS"
        )
    if gdf.crs.is_projected and _looks_geographic(bounds):
        width = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
        if width < 10.0:  # a real projected layer spans more than 10 m
            raise CRSError(
                f"{what}: the CRS is projected ({gdf.crs.name}) but the coordinates "
                f"(x {bounds[0]:.6g}..{bounds[2]:.6g}, y {bounds[1]:.6g}..{bounds[3]:.6g}) look "
                "like longitude/latitude degrees: declare EPSG:4326 (or the right CRS)"
            )


def _find_column(columns: Sequence[str], wanted: str) -> str | None:
    for column in columns:
        if column == wanted:
            return column
    lowered = wanted.lower()
    for column in columns:
        if column.strip().lower() == lowered:
            return column
    return None


def _header(path: Path) -> list[str]:
    """The CSV's header row as written (pandas renames repeated names to ``x.1``)."""
    try:
        row = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return []
    return [str(v) for v in row.iloc[0].tolist()] if len(row) else []


def _coordinate_pairs(columns: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """Every recognised pair of coordinate columns in the file, in order of preference."""
    pairs: list[tuple[str, str, str | None]] = []
    for x_name, y_name, crs_hint in COORDINATE_COLUMNS:
        xs, ys = _find_column(columns, x_name), _find_column(columns, y_name)
        if xs is not None and ys is not None and (xs, ys) not in [p[:2] for p in pairs]:
            pairs.append((xs, ys, crs_hint))
    return pairs


def _disagreement(
    frame: pd.DataFrame,
    first: tuple[str, str, str | None],
    second: tuple[str, str, str | None],
    default_crs: pyproj.CRS | None,
) -> float | None:
    """Median distance between the points two coordinate pairs give (None: cannot tell)."""
    points = []
    for xs, ys, hint in (first, second):
        crs = pyproj.CRS.from_user_input(hint) if hint else default_crs
        if crs is None:
            return None
        x = pd.to_numeric(frame[xs], errors="coerce").to_numpy(float)
        y = pd.to_numeric(frame[ys], errors="coerce").to_numpy(float)
        if default_crs is not None and not crs.equals(default_crs):
            transformer = pyproj.Transformer.from_crs(crs, default_crs, always_xy=True)
            x, y = transformer.transform(x, y)
        points.append((np.asarray(x), np.asarray(y)))
    (x1, y1), (x2, y2) = points
    distance = np.hypot(x1 - x2, y1 - y2)
    distance = distance[np.isfinite(distance)]
    return float(np.median(distance)) if distance.size else None


def _unusable_coordinates(frame: pd.DataFrame, xs: str, ys: str, what: str, path: Path) -> None:
    """Fail when no row has numeric coordinates, saying why (decimal commas, text, empty)."""
    sample = [str(v) for v in frame[xs].dropna().astype(str).head(5)]
    if not sample:
        raise InputError(f"{what} {path}: the coordinate columns {xs}/{ys} are empty")
    if all(re.fullmatch(r"\s*-?\d+,\d+\s*", v) for v in sample):
        raise InputError(
            f"{what} {path}: the coordinates in {xs}/{ys} use decimal commas (e.g. "
            f"{sample[0]!r}); save the CSV with decimal points"
        )
    raise InputError(
        f"{what} {path}: no row has numeric coordinates in {xs}/{ys} (e.g. {sample[0]!r})"
    )


def _read_csv(
    path: Path,
    *,
    what: str,
    x_column: str | None,
    y_column: str | None,
    csv_crs: str | None,
    default_crs: pyproj.CRS | None,
    clauses: Sequence[WhereClause] = (),
) -> gpd.GeoDataFrame:
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{what} {path}: not a readable CSV file ({_first_line(exc)})") from exc
    header = _header(path)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputError(
            f"{what} {path}: the header repeats the column name(s) {', '.join(map(repr, repeated))}"
            "; give every column its own name"
        )
    columns = [str(c) for c in frame.columns]
    implied_crs: str | None = None
    if x_column or y_column:
        if not (x_column and y_column):
            raise ParameterError(f"{what}: give both the x and the y column names, not only one")
        xs, ys = _find_column(columns, x_column), _find_column(columns, y_column)
        missing = [name for name, found in ((x_column, xs), (y_column, ys)) if found is None]
        if missing:
            raise InputError(
                f"{what} {path}: no column named {', '.join(map(repr, missing))}; "
                f"columns are {', '.join(columns)}"
            )
    else:
        pairs = _coordinate_pairs(columns)
        if not pairs:
            raise InputError(
                f"{what} {path}: no coordinate columns found (looked for longitude/latitude, "
                f"lon/lat, x/y, easting/northing); columns are {', '.join(columns)}; "
                "name them with --x-column/--y-column"
            )
        xs, ys, implied_crs = pairs[0]
        if len(pairs) > 1 and csv_crs is None:
            gap = _disagreement(frame, pairs[0], pairs[1], default_crs)
            if gap is None or gap > 10.0:
                names = " and ".join(f"{p[0]}/{p[1]}" for p in pairs)
                detail = f" and they disagree by {gap:,.0f} m (median)" if gap is not None else ""
                raise InputError(
                    f"{what} {path}: two sets of coordinate columns ({names}){detail}; name the "
                    "ones to use with --x-column and --y-column"
                )
    assert xs is not None and ys is not None
    x_all = pd.to_numeric(frame[xs], errors="coerce")
    y_all = pd.to_numeric(frame[ys], errors="coerce")
    if len(frame) and not (x_all.notna() & y_all.notna()).any():
        _unusable_coordinates(frame, xs, ys, what, path)
    if clauses:  # filter first: building point geometries is the slow part
        frame = apply_where(frame, clauses, what=f"{what} {path}")
    x, y = x_all.loc[frame.index], y_all.loc[frame.index]
    missing_rows = int((x.isna() | y.isna()).sum())
    if missing_rows:
        warnings.warn(
            f"{what} {path}: {missing_rows} of {len(frame)} rows have no usable coordinates "
            f"in {xs}/{ys} and were dropped",
            RTMWarning,
            stacklevel=3,
        )
        keep = ~(x.isna() | y.isna())
        frame, x, y = frame.loc[keep], x[keep], y[keep]
    crs_text = csv_crs or implied_crs
    if crs_text is None:
        if default_crs is None:
            raise CRSError(
                f"{what} {path}: coordinates in {xs}/{ys} have no CRS; name it (e.g. --crs "
                "EPSG:27700)"
            )
        crs = default_crs
    else:
        crs = _parse_crs(crs_text, what)
    geometry = gpd.points_from_xy(x.to_numpy(float), y.to_numpy(float))
    return gpd.GeoDataFrame(frame.drop(columns=[xs, ys]), geometry=geometry, crs=crs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parse_crs(text: Any, what: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"{what}: {text!r} is not a CRS pyproj understands") from exc


def read_vector(
    source: str | Path,
    *,
    what: str = "input",
    x_column: str | None = None,
    y_column: str | None = None,
    csv_crs: str | None = None,
    default_crs: pyproj.CRS | None = None,
    where: Sequence[WhereClause] = (),
) -> gpd.GeoDataFrame:
    """Read a vector file (or a CSV of points) as it is, with checks but no reprojection.

    Parameters
    ----------
    source : str or Path
        A shapefile, GeoPackage (``file.gpkg:layer`` selects a layer), GeoJSON or CSV.
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
    path, layer = split_layer(source)
    if not path.exists():
        raise InputError(f"{what} {path}: file not found")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, not a file")
    if _is_csv(path):
        gdf = _read_csv(
            path,
            what=what,
            x_column=x_column,
            y_column=y_column,
            csv_crs=csv_crs,
            default_crs=default_crs,
            clauses=where,
        )
    else:
        gdf = _read_ogr(path, layer, what)
        if where:
            gdf = apply_where(gdf, where, what=f"{what} {path}")
        if csv_crs is not None:
            gdf = gdf.set_crs(_parse_crs(csv_crs, what), allow_override=True)
    if gdf.crs is None:
        raise CRSError(
            f"{what} {path}: the layer has no CRS (for a shapefile the .prj file is missing); "
            "set it in your GIS or name it with --crs"
        )
    gdf = _clean_geometries(gdf, f"{what} {path}")
    _check_coordinates_match_crs(gdf, f"{what} {path}")
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
            f"{what} {path}: cannot be read as a vector layer ({_first_line(exc)})"
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


def _clean_geometries(gdf: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
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


# --------------------------------------------------------------------------- study area


def read_study_area(
    source: str | Path | gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    crs: str | None = None,
    layer_crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Read the study area: polygons in a projected CRS.

    Parameters
    ----------
    source : str, Path, GeoDataFrame or GeoSeries
        Polygon layer, or polygons already in memory (e.g. one borough of a boundary layer).
    crs : str, optional
        Projected CRS to work in. When omitted the layer's own CRS is used if it is
        projected; a longitude/latitude area is projected to its UTM zone, with a warning
        that says which.
    layer_crs : str, optional
        Overrides the layer's declared CRS (for files without one).

    Returns
    -------
    geopandas.GeoDataFrame
        The area's polygons, in the working CRS.
    """
    if isinstance(source, gpd.GeoDataFrame | gpd.GeoSeries):
        area = gpd.GeoDataFrame(geometry=source.geometry.values, crs=source.crs)
        if layer_crs is not None:
            area = area.set_crs(_parse_crs(layer_crs, "study area"), allow_override=True)
        source = "(in memory)"
        if area.crs is None:
            raise CRSError("study area (in memory): has no CRS")
        area = _clean_geometries(area, "study area (in memory)")
        _check_coordinates_match_crs(area, "study area (in memory)")
    else:
        area = read_vector(source, what="study area", csv_crs=layer_crs)
    kinds = set(area.geom_type.unique())
    if area.empty:
        raise InputError(f"study area {source}: the layer has no features")
    area = area[area.geom_type.isin(["Polygon", "MultiPolygon", "GeometryCollection"])]
    polygons = shapely.get_parts(area.geometry.values)
    polygons = polygons[np.isin(shapely.get_type_id(polygons), [3, 6])]
    if len(polygons) == 0:
        raise InputError(f"study area {source}: must be polygons, got {', '.join(sorted(kinds))}")
    area = gpd.GeoDataFrame(geometry=polygons, crs=area.crs)
    if crs is not None:
        target = _parse_crs(crs, "--crs")
        if not target.is_projected:
            raise CRSError(f"--crs {crs}: must be a projected CRS (metres or feet), not degrees")
        area = area.to_crs(target)
    elif not area.crs.is_projected:
        target = area.estimate_utm_crs()
        warnings.warn(
            f"study area {source}: CRS is longitude/latitude; working in {target.name} "
            f"(EPSG:{target.to_epsg()}); name another with --crs",
            RTMWarning,
            stacklevel=2,
        )
        area = area.to_crs(target)
    if float(area.area.sum()) <= 0:
        raise InputError(f"study area {source}: the polygons have zero area")
    return area


def to_crs(gdf: gpd.GeoDataFrame, crs: pyproj.CRS, what: str) -> gpd.GeoDataFrame:
    if gdf.crs is not None and pyproj.CRS(gdf.crs).equals(crs):
        return gdf
    try:
        out = gdf.to_crs(crs)
    except Exception as exc:  # noqa: BLE001
        raise CRSError(f"{what}: cannot be reprojected to {crs.name} ({_first_line(exc)})") from exc
    bounds = np.asarray(out.total_bounds, dtype=float)
    if len(out) and not np.all(np.isfinite(bounds)):
        raise CRSError(f"{what}: coordinates fall outside the valid range of {crs.name}")
    return out


# --------------------------------------------------------------------------- events


def read_events(
    source: str | Path,
    crs: pyproj.CRS,
    *,
    where: Sequence[str | WhereClause] = (),
    x_column: str | None = None,
    y_column: str | None = None,
    csv_crs: str | None = None,
    what: str = "events",
) -> gpd.GeoDataFrame:
    """Read outcome events (points), filter them, and bring them into ``crs``.

    Parameters
    ----------
    source : str or Path
        Points: shapefile, GeoPackage, GeoJSON, or CSV (police.uk CSVs load as they are).
    crs : pyproj.CRS
        The study area's CRS.
    where : sequence of str or WhereClause
        Attribute filters (``COL=V1,V2`` or ``COL=LO..HI``); all must hold.
    x_column, y_column, csv_crs : str, optional
        See :func:`read_vector`.
    what : str
        How messages name this input.

    Returns
    -------
    geopandas.GeoDataFrame
        Point events in ``crs`` (multipoints are split into points).
    """
    clauses = [w if isinstance(w, WhereClause) else parse_where(w) for w in where]
    events = read_vector(
        source,
        what=what,
        x_column=x_column,
        y_column=y_column,
        csv_crs=csv_crs,
        default_crs=crs,
        where=clauses,
    )
    if events.empty and clauses:
        raise InputError(
            f"{what} {source}: no event matches " + " and ".join(c.text for c in clauses)
        )
    if events.empty:
        raise InputError(f"{what} {source}: the layer has no features")
    kinds = set(events.geom_type.unique())
    if not kinds <= {"Point", "MultiPoint"}:
        raise InputError(f"{what} {source}: events must be points, got {', '.join(sorted(kinds))}")
    if "MultiPoint" in kinds:
        parts = shapely.get_num_geometries(np.asarray(events.geometry.values))
        records = int((parts > 1).sum())
        before = len(events)
        events = events.explode(index_parts=False, ignore_index=True)
        if records:
            warnings.warn(
                f"{what} {source}: {records:,} multipoint records were split into their points "
                f"({before:,} records became {len(events):,} events)",
                RTMWarning,
                stacklevel=2,
            )
    return to_crs(events, crs, f"{what} {source}")


def read_factor(
    source: str | Path,
    crs: pyproj.CRS,
    *,
    name: str,
    x_column: str | None = None,
    y_column: str | None = None,
    csv_crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Read one risk factor's features (points, lines or polygons) into ``crs``."""
    what = f"factor {name!r}"
    features = read_vector(
        source,
        what=what,
        x_column=x_column,
        y_column=y_column,
        csv_crs=csv_crs,
        default_crs=crs,
    )
    return to_crs(features, crs, f"{what} {source}")


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class WhereClause:
    """One attribute filter: ``column`` is one of ``values``, or within ``low..high``."""

    column: str
    values: tuple[str, ...] | None = None
    low: str | None = None
    high: str | None = None
    text: str = ""


def parse_where(text: str) -> WhereClause:
    """Parse ``COL=V1,V2`` (any of the values) or ``COL=LO..HI`` (inclusive range).

    Either end of a range may be omitted (``month=..6``). Values are matched
    case-insensitively; nothing is evaluated as code.

    Examples
    --------
    >>> parse_where("type=robbery,burglary").values
    ('robbery', 'burglary')
    >>> clause = parse_where("month=1..6")
    >>> clause.low, clause.high
    ('1', '6')
    """
    if "=" not in text:
        raise ParameterError(f"--where {text!r}: expected COL=VALUE[,VALUE...] or COL=LO..HI")
    column, _, value = text.partition("=")
    column, value = column.strip(), value.strip()
    if not column or not value:
        raise ParameterError(f"--where {text!r}: expected COL=VALUE[,VALUE...] or COL=LO..HI")
    if ".." in value:
        low, _, high = value.partition("..")
        low, high = low.strip(), high.strip()
        if not low and not high:
            raise ParameterError(f"--where {text!r}: a range needs at least one end")
        if low and high:
            low_n, high_n = _as_number(low), _as_number(high)
            reversed_range = (
                low_n > high_n if low_n is not None and high_n is not None else low > high
            )
            if reversed_range:
                raise ParameterError(
                    f"--where {text!r}: the range's low end {low!r} is above its high end "
                    f"{high!r}; write LO..HI"
                )
        return WhereClause(column, low=low or None, high=high or None, text=text)
    values = tuple(v.strip() for v in value.split(",") if v.strip())
    return WhereClause(column, values=values, text=text)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def apply_where(
    frame: pd.DataFrame, clauses: Sequence[WhereClause], *, what: str = "events"
) -> pd.DataFrame:
    """Keep the rows for which every clause holds."""
    keep = np.ones(len(frame), dtype=bool)
    columns = [str(c) for c in frame.columns if c != getattr(frame, "_geometry_column_name", None)]
    for clause in clauses:
        column = _find_column(columns, clause.column)
        if column is None:
            raise ParameterError(
                f"--where {clause.text!r}: {what} has no column {clause.column!r}; "
                f"columns are {', '.join(columns)}"
            )
        series = frame[column]
        if clause.values is not None:
            hit = _match_values(series, clause)
            _warn_unmatched(series, clause, what)
        else:
            hit = _match_range(series, clause)
            if len(frame) and not hit.any():
                warnings.warn(
                    f"--where {clause.text!r}: no row of {what} has {column} in that range",
                    RTMWarning,
                    stacklevel=3,
                )
        keep &= hit
    return frame.loc[keep]


def _warn_unmatched(series: pd.Series, clause: WhereClause, what: str) -> None:
    """Warn about each value of a ``COL=V1,V2`` filter that no row has (a typo, most often)."""
    import difflib

    assert clause.values is not None
    present = {str(v).strip() for v in pd.unique(series.dropna())}
    folded = {v.casefold() for v in present}
    numbers = {n for n in (_as_number(v) for v in present) if n is not None}
    missing = [
        v
        for v in clause.values
        if v.casefold() not in folded and (_as_number(v) is None or _as_number(v) not in numbers)
    ]
    if not missing or not present:
        return
    hints = []
    for value in missing:
        close = difflib.get_close_matches(value, sorted(present), n=1, cutoff=0.5)
        hints.append(f"{value!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    shown = ", ".join(sorted(present)[:8]) + (", ..." if len(present) > 8 else "")
    warnings.warn(
        f"--where {clause.text!r}: no row of {what} has {clause.column} = "
        f"{', '.join(hints)}; its values are {shown}",
        RTMWarning,
        stacklevel=3,
    )


def _per_distinct_value(series: pd.Series, test: Callable[[pd.Series], np.ndarray]) -> np.ndarray:
    """``test(series)`` (a bool per row, False for missing values), on distinct values only.

    Text methods (``str.strip``, ``str.casefold``) cost a Python call per row: 0.2 s on the
    280,000 rows of a year of London crimes, whose ``type`` column has 13 distinct values.
    So the test runs on the distinct values and its answers are mapped back to the rows
    through their codes. That is only done for dtypes where values that compare equal
    also print the same (text, integers, booleans, datetimes); an object column could
    hold 1, 1.0 and True, which are one distinct value but three different texts.
    """
    dtype = series.dtype
    if not (
        isinstance(dtype, pd.StringDtype)
        or pd.api.types.is_integer_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
    ):
        return test(series)
    codes, distinct = pd.factorize(series)  # a missing value gets code -1 ...
    answers = np.append(test(pd.Series(distinct)), False)  # ... which picks this False
    return answers[codes]


def _match_values(series: pd.Series, clause: WhereClause) -> np.ndarray:
    assert clause.values is not None
    wanted_text = {v.casefold() for v in clause.values}

    def matches_text(values: pd.Series) -> np.ndarray:
        as_text = values.astype("string").str.strip().str.casefold()
        return as_text.isin(wanted_text).fillna(False).to_numpy(bool, copy=True)

    hit = _per_distinct_value(series, matches_text)
    if pd.api.types.is_numeric_dtype(series):
        numbers = [n for n in (_as_number(v) for v in clause.values) if n is not None]
        if numbers:
            hit |= series.isin(numbers).to_numpy(bool)
    return hit


def _match_range(series: pd.Series, clause: WhereClause) -> np.ndarray:
    low_n = _as_number(clause.low) if clause.low else None
    high_n = _as_number(clause.high) if clause.high else None
    numeric_bounds = (clause.low is None or low_n is not None) and (
        clause.high is None or high_n is not None
    )
    if pd.api.types.is_numeric_dtype(series) and numeric_bounds:
        values = series.to_numpy(float)
        hit = np.isfinite(values).copy()
        if low_n is not None:
            hit &= values >= low_n
        if high_n is not None:
            hit &= values <= high_n
        return hit
    for bound in (clause.low, clause.high):
        if bound is not None and not re.match(r"^\d{4}(-\d{2}(-\d{2}([T ][\d:]+)?)?)?$", bound):
            raise ParameterError(
                f"--where {clause.text!r}: {bound!r} is neither a number nor an ISO date "
                "(YYYY, YYYY-MM or YYYY-MM-DD)"
            )

    def within(values: pd.Series) -> np.ndarray:
        if pd.api.types.is_datetime64_any_dtype(values):
            text = values.dt.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            text = values.astype("string").str.strip()
        # ISO dates sort as text; comparing on the bound's own precision makes the upper
        # end inclusive of the whole period it names (2022-06 includes 2022-06-30).
        hit = text.notna().to_numpy(bool, copy=True)
        filled = text.fillna("")
        if clause.low is not None:
            hit &= (filled.str.slice(0, len(clause.low)) >= clause.low).to_numpy(bool)
        if clause.high is not None:
            hit &= (filled.str.slice(0, len(clause.high)) <= clause.high).to_numpy(bool)
        return hit

    return _per_distinct_value(series, within)


# --------------------------------------------------------------------------- factor sources

_FACTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".csv", ".fgb")


def factor_sources(
    specs: Sequence[str] = (), factors_dir: str | Path | None = None
) -> list[tuple[str, str]]:
    """Resolve ``--factor`` and ``--factors-dir`` options to ``(name, source)`` pairs.

    ``--factor FILE``, ``--factor NAME=FILE`` and every layer of ``--factors-dir DIR``;
    a name defaults to the file's stem.

    Examples
    --------
    >>> factor_sources(["bars=data/pubs.shp", "data/atms.gpkg:atms"])
    [('bars', 'data/pubs.shp'), ('atms', 'data/atms.gpkg:atms')]
    """
    pairs: list[tuple[str, str]] = []
    if factors_dir is not None:
        folder = Path(factors_dir)
        if not folder.is_dir():
            raise InputError(f"--factors-dir {folder}: not a folder")
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _FACTOR_SUFFIXES
        )
        if not files:
            raise InputError(
                f"--factors-dir {folder}: no factor layers ({', '.join(_FACTOR_SUFFIXES)}) in it"
            )
        pairs.extend((p.stem, str(p)) for p in files)
    for spec in specs:
        name, sep, source = spec.partition("=")
        if sep and not Path(spec).exists():
            if not name.strip():
                raise ParameterError(
                    f"--factor {spec!r}: the name before '=' is empty; write NAME=FILE, or FILE "
                    "alone to name the factor after its file"
                )
            if not source.strip():
                raise ParameterError(f"--factor {spec!r}: no file after '='; write NAME=FILE")
            pairs.append((name.strip(), source.strip()))
        else:
            path, layer = split_layer(spec)
            pairs.append((layer or path.stem, spec))
    names = [n for n, _ in pairs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ParameterError(
            f"--factor: factor names must be unique; repeated: {', '.join(repeated)} "
            "(name them with NAME=FILE)"
        )
    return pairs
