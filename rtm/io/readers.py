"""The study's inputs: the study area, the events and the risk factors, in one CRS.

Everything that reaches the rest of the engine is in one projected CRS with metre (or
foot) units: distances are never computed in degrees.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from rtm.errors import CRSError, InputError, ParameterError, RTMWarning
from rtm.filters import WhereClause, as_clauses
from rtm.io.crs import check_coordinates_match_crs, parse_crs, to_crs
from rtm.io.vectors import clean_geometries, read_vector, split_layer

__all__ = ["FACTOR_SUFFIXES", "factor_sources", "read_events", "read_factor", "read_study_area"]


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
            area = area.set_crs(parse_crs(layer_crs, "study area"), allow_override=True)
        source = "(in memory)"
        if area.crs is None:
            raise CRSError("study area (in memory): has no CRS")
        area = clean_geometries(area, "study area (in memory)")
        check_coordinates_match_crs(area, "study area (in memory)")
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
        target = parse_crs(crs, "--crs")
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
    clauses = as_clauses(where)
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


FACTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".csv", ".fgb")


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
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FACTOR_SUFFIXES
        )
        if not files:
            raise InputError(
                f"--factors-dir {folder}: no factor layers ({', '.join(FACTOR_SUFFIXES)}) in it"
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
