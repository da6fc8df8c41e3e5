"""The study's inputs: the study area, the events and the risk factors, in one CRS.

Everything that reaches the rest of the engine is in one projected CRS with metre (or
foot) units: distances are never computed in degrees.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from rtm.errors import CRSError, InputError, ParameterError, RTMWarning
from rtm.filters import WhereClause, apply_where, as_clauses, find_column
from rtm.io.crs import parse_crs, to_crs
from rtm.io.csv_points import CsvOptions
from rtm.io.vectors import IN_MEMORY, READABLE_SUFFIXES, is_data, read_vector, split_layer
from rtm.shared import file_key, is_sharing, remember

__all__ = [
    "FACTOR_SUFFIXES",
    "factor_sources",
    "read_events",
    "read_factor",
    "read_study_area",
    "select_polygons",
]


def select_polygons(
    layer: gpd.GeoDataFrame, clauses: Sequence[str | WhereClause], *, what: str
) -> gpd.GeoDataFrame:
    """The polygons of a boundary layer whose attributes match every clause.

    The ``--where`` syntax (``NAME=Camden,Hackney``, ``CODE=E09000001..E09000010``),
    used by ``--area-where`` and by ``rtm batch`` to pick areas by name. Each value of
    a ``COL=V1,V2`` clause must match some polygon: a boundary file is small and a
    name that matches nothing is a typo, so it fails (listing a few of the names there
    are) rather than analysing less than asked.

    Raises
    ------
    ParameterError
        A clause names no column of the layer, or a value matches no polygon.
    """
    clauses = as_clauses(clauses)
    geometry_name = layer.geometry.name
    columns = [str(c) for c in layer.columns if c != geometry_name]
    for clause in clauses:
        if clause.values is None:
            continue
        column = find_column(columns, clause.column)
        if column is None:
            continue  # apply_where says so, listing the columns
        present = {str(v).strip().lower() for v in layer[column].dropna()}
        missing = [v for v in clause.values if v.strip().lower() not in present]
        if missing:
            names = sorted({str(v) for v in layer[column].dropna()})
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise ParameterError(
                f"{what}: {clause.column} {', '.join(map(repr, missing))} matches no polygon; "
                f"values are {shown}"
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RTMWarning)  # unmatched values failed above
        return apply_where(layer, clauses, what=what)


def read_study_area(
    source: str | Path | gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    crs: str | None = None,
    layer_crs: str | None = None,
    where: Sequence[str | WhereClause] = (),
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
    where : sequence of str or WhereClause
        Use only the polygons whose attributes match (``NAME=Camden``, the ``--where``
        syntax; :func:`select_polygons`). Default: every polygon, as one area.

    Returns
    -------
    geopandas.GeoDataFrame
        The area's polygons, in the working CRS. ``attrs["selection"]`` says which
        polygons were used when ``where`` chose some (e.g. ``"NAME=Camden: 1 of 33
        polygons"``).
    """
    label = IN_MEMORY if is_data(source) else source
    layer = read_vector(source, what="study area", csv_crs=layer_crs)
    selection = None
    if where:
        clauses = as_clauses(where)
        total = len(layer)
        layer = select_polygons(layer, clauses, what=f"--area-where (study area {label})")
        if layer.empty:
            raise ParameterError(
                f"--area-where {' and '.join(c.label for c in clauses)}: no polygon of the "
                f"study area {label} matches"
            )
        selection = f"{' and '.join(c.label for c in clauses)}: {len(layer)} of {total} polygons"
    area = _polygons(layer, label)
    area = _working_crs(area, label, crs)
    if float(area.area.sum()) <= 0:
        raise InputError(f"study area {label}: the polygons have zero area")
    if selection is not None:
        area.attrs["selection"] = selection
    return area


def _polygons(area: gpd.GeoDataFrame, source: object) -> gpd.GeoDataFrame:
    """The polygons of a layer (parts of multipolygons and collections), or a clear error."""
    kinds = set(area.geom_type.unique())
    if area.empty:
        raise InputError(f"study area {source}: the layer has no features")
    area = area[area.geom_type.isin(["Polygon", "MultiPolygon", "GeometryCollection"])]
    polygons = shapely.get_parts(area.geometry.values)
    polygons = polygons[np.isin(shapely.get_type_id(polygons), [3, 6])]
    if len(polygons) == 0:
        raise InputError(f"study area {source}: must be polygons, got {', '.join(sorted(kinds))}")
    return gpd.GeoDataFrame(geometry=polygons, crs=area.crs)


def _working_crs(area: gpd.GeoDataFrame, source: object, crs: str | None) -> gpd.GeoDataFrame:
    """The area in the CRS to work in: ``crs``, its own if projected, else its UTM zone."""
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
    return area


def read_events(
    source: str | Path | pd.DataFrame,
    crs: pyproj.CRS,
    *,
    where: Sequence[str | WhereClause] = (),
    x_column: str | None = None,
    y_column: str | None = None,
    csv_crs: str | None = None,
    what: str = "events",
    csv_options: CsvOptions | None = None,
) -> gpd.GeoDataFrame:
    """Read outcome events (points), filter them, and bring them into ``crs``.

    Parameters
    ----------
    source : str, Path, GeoDataFrame or DataFrame
        Points: shapefile, GeoPackage, GeoJSON, or CSV (police.uk CSVs load as they are);
        or in memory, a GeoDataFrame of points or a DataFrame with coordinate columns.
    crs : pyproj.CRS
        The study area's CRS.
    where : sequence of str or WhereClause
        Attribute filters (``COL=V1,V2`` or ``COL=LO..HI``); all must hold.
    x_column, y_column, csv_crs : str, optional
        See :func:`read_vector`.
    what : str
        How messages name this input.
    csv_options : CsvOptions, optional
        Separator, decimal mark and encoding of a CSV file.

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
        csv_options=csv_options,
        into_crs=crs,
    )
    if is_data(source):
        source = IN_MEMORY
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
    source: str | Path | pd.DataFrame,
    crs: pyproj.CRS,
    *,
    name: str,
    x_column: str | None = None,
    y_column: str | None = None,
    csv_crs: str | None = None,
    csv_options: CsvOptions | None = None,
) -> gpd.GeoDataFrame:
    """Read one risk factor's features (points, lines or polygons) into ``crs``.

    ``source`` is a file or, in memory, a GeoDataFrame (or a DataFrame of points). In a
    batch (:mod:`rtm.shared`) a file's features, checked and in ``crs``, are kept for the
    next job that reads the same file into the same CRS.
    """

    def read() -> gpd.GeoDataFrame:
        what = f"factor {name!r}"
        features = read_vector(
            source,
            what=what,
            x_column=x_column,
            y_column=y_column,
            csv_crs=csv_crs,
            default_crs=crs,
            csv_options=csv_options,
            into_crs=crs,
        )
        return to_crs(features, crs, f"{what} {IN_MEMORY if is_data(source) else source}")

    if is_data(source) or not is_sharing():
        return read()
    path = split_layer(source)[0]  # type: ignore[arg-type]
    if not path.is_file():
        return read()  # (its error)
    options = (x_column, y_column, csv_crs, csv_options)
    key = (file_key(path), str(source), name, pyproj.CRS.from_user_input(crs).to_wkt(), options)
    return remember("factor", key, read)


#: The suffixes of factor files: the ones :func:`rtm.io.read_vector` reads.
FACTOR_SUFFIXES = READABLE_SUFFIXES

#: Files a factors folder may hold beside its layers (a shapefile's sidecars, notes),
#: skipped without a warning.
_SIDECARS = (
    ".dbf",
    ".shx",
    ".prj",
    ".cpg",
    ".qix",
    ".sbn",
    ".sbx",
    ".xml",
    ".qmd",
    ".aux",
    ".gpkg-wal",
    ".gpkg-shm",
    ".xsd",  # (a GML's schema)
    ".gfs",
    ".txt",  # (a readme; a CSV named .txt is read with --factor FILE)
    ".md",
    ".pdf",
    ".html",
)


def _readable(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in READABLE_SUFFIXES)


def _folder_layers(folder: Path) -> list[tuple[str, str]]:
    """The layers of a ``--factors-dir`` folder, warning about the files it skips."""
    if not folder.is_dir():
        raise InputError(f"--factors-dir {folder}: not a folder")
    entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    files = [p for p in entries if _readable(p)]
    skipped = [
        p.name for p in entries if not _readable(p) and not p.name.lower().endswith(_SIDECARS)
    ]
    if not files:
        raise InputError(
            f"--factors-dir {folder}: no factor layers ({', '.join(READABLE_SUFFIXES)}) in it"
        )
    if skipped:
        shown = ", ".join(skipped[:10]) + (
            f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        )
        warnings.warn(
            f"--factors-dir {folder}: skipped {len(skipped)} file(s) that are not vector "
            f"layers: {shown}",
            RTMWarning,
            stacklevel=3,
        )
    return [(_stem(p), str(p)) for p in files]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(READABLE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def factor_sources(
    specs: Sequence[Any] = (), factors_dir: str | Path | None = None
) -> list[tuple[str, Any]]:
    """Resolve ``--factor`` and ``--factors-dir`` options to ``(name, source)`` pairs.

    ``--factor FILE``, ``--factor NAME=FILE`` and every layer of ``--factors-dir DIR``
    (every file :func:`rtm.io.read_vector` reads, :data:`READABLE_SUFFIXES`; other files
    are named in a warning); a name defaults to the file's stem. A ``(name, data)``
    pair (a GeoDataFrame in memory) is passed on as it is.

    Examples
    --------
    >>> factor_sources(["bars=data/pubs.shp", "data/atms.gpkg:atms"])
    [('bars', 'data/pubs.shp'), ('atms', 'data/atms.gpkg:atms')]
    """
    pairs: list[tuple[str, Any]] = []
    if factors_dir is not None:
        pairs.extend(_folder_layers(Path(factors_dir)))
    for spec in specs:
        if isinstance(spec, tuple):
            pairs.append((str(spec[0]), spec[1]))
            continue
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
