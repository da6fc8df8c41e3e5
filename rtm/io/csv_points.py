"""Points from a CSV file (or a table in memory): coordinate columns found, checked, filtered.

police.uk CSVs load as they are: their ``Longitude``/``Latitude`` columns are found and
taken as EPSG:4326. A file with two sets of coordinate columns that disagree is refused
unless the user names the ones to use; coordinates that are not numbers (decimal
commas, text) are reported as such before any filter.

CSV files as European Excel writes them load too: the separator is detected (``,``,
``;``, tab or ``|``) unless given, a ``;``-separated file reads decimal commas, and the
text encoding can be named (``cp1252``, ``latin-1``); a file that is not UTF-8 fails
with a hint saying so. How to read CSV files travels as one :class:`CsvOptions`.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import lzma
import re
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from rtm.errors import CRSError, InputError, ParameterError, RTMWarning, first_line
from rtm.filters import WhereClause, apply_where, find_column
from rtm.io.crs import check_bounds_match_crs, parse_crs, reproject_xy
from rtm.io.crs import transformer as crs_transformer
from rtm.shared import file_key, remember

__all__ = ["COORDINATE_COLUMNS", "CsvOptions", "points_from_frame", "read_csv_points"]

#: Separators :class:`CsvOptions` detects, in order of preference on a tie.
SEPARATORS = ",;\t|"


@dataclass(frozen=True)
class CsvOptions:
    """How to read CSV files: separator, decimal mark, text encoding.

    Attributes
    ----------
    sep : str or None
        The field separator; None detects it from the first lines (``,``, ``;``, tab, ``|``).
    decimal : str or None
        The decimal mark (``.`` or ``,``); None: ``,`` in a ``;``-separated file (as
        European Excel writes them), else ``.``.
    encoding : str or None
        The text encoding (``utf-8``, ``cp1252``, ``latin-1``...); None: UTF-8 (a byte-order
        mark is skipped).

    Examples
    --------
    >>> CsvOptions(sep=";").decimal_for(";"), CsvOptions().decimal_for(",")
    (',', '.')
    """

    sep: str | None = None
    decimal: str | None = None
    encoding: str | None = None

    def decimal_for(self, sep: str) -> str:
        """The decimal mark to read a file separated by ``sep`` with."""
        if self.decimal is not None:
            return self.decimal
        return "," if sep == ";" else "."

    @property
    def text_encoding(self) -> str:
        """The encoding to decode with."""
        return self.encoding or "utf-8-sig"


def _open_text(path: Path, encoding: str) -> Any:
    openers: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(path.suffix.lower())
    if opener is not None:
        return opener(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")  # noqa: SIM115 - returned to a with


def _decode_error(
    path: Path, what: str, options: CsvOptions, exc: UnicodeDecodeError
) -> InputError:
    name = codecs.lookup(options.text_encoding).name.removesuffix("-sig").upper()
    hint = (
        "; files saved by Excel on Windows are usually cp1252: try --encoding cp1252"
        if options.encoding is None
        else "; name the right one with --encoding (cp1252, latin-1, utf-16...)"
    )
    return InputError(
        f"{what} {path}: the text is not {name} (byte 0x{exc.object[exc.start]:02x} at "
        f"position {exc.start}){hint}"
    )


def detect_separator(path: Path, options: CsvOptions, what: str) -> str:
    """The separator of a CSV file: as given, else the one its first lines use."""
    if options.sep is not None:
        return options.sep
    try:
        with _open_text(path, options.text_encoding) as stream:
            sample = stream.read(64_000)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, what, options, exc) from exc
    except (OSError, EOFError, ValueError):
        return ","  # (zstd and other oddities: pandas says what is wrong)
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # a line cut by the sample
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=SEPARATORS).delimiter
    except csv.Error:
        # the separator that appears most in the header
        header = lines[0]
        return max(SEPARATORS, key=lambda c: (header.count(c), c == ","))


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


def _header(path: Path, sep: str, encoding: str) -> list[str]:
    """The CSV's header row as written (pandas renames repeated names to ``x.1``)."""
    try:
        row = pd.read_csv(
            path,
            header=None,
            nrows=1,
            dtype=str,
            keep_default_na=False,
            sep=sep,
            encoding=encoding,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return []
    return [str(v) for v in row.iloc[0].tolist()] if len(row) else []


def _coordinate_pairs(columns: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """Every recognised pair of coordinate columns in the file, in order of preference."""
    pairs: list[tuple[str, str, str | None]] = []
    for x_name, y_name, crs_hint in COORDINATE_COLUMNS:
        xs, ys = find_column(columns, x_name), find_column(columns, y_name)
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
            transformer = crs_transformer(crs, default_crs)
            x, y = transformer.transform(x, y)
        points.append((np.asarray(x), np.asarray(y)))
    (x1, y1), (x2, y2) = points
    distance = np.hypot(x1 - x2, y1 - y2)
    distance = distance[np.isfinite(distance)]
    return float(np.median(distance)) if distance.size else None


def _unusable_coordinates(frame: pd.DataFrame, xs: str, ys: str, what: str, path: Any) -> None:
    """Fail when no row has numeric coordinates, saying why (decimal commas, text, empty)."""
    sample = [str(v) for v in frame[xs].dropna().astype(str).head(5)]
    if not sample:
        raise InputError(f"{what} {path}: the coordinate columns {xs}/{ys} are empty")
    if all(re.fullmatch(r"\s*-?\d+,\d+\s*", v) for v in sample):
        raise InputError(
            f"{what} {path}: the coordinates in {xs}/{ys} use decimal commas (e.g. "
            f"{sample[0]!r}); read them with --decimal , (or save the CSV with decimal points)"
        )
    raise InputError(
        f"{what} {path}: no row has finite numeric coordinates in {xs}/{ys} (e.g. {sample[0]!r})"
    )


def read_csv_points(
    path: Path,
    *,
    what: str,
    x_column: str | None,
    y_column: str | None,
    csv_crs: str | None,
    default_crs: pyproj.CRS | None,
    clauses: Sequence[WhereClause] = (),
    options: CsvOptions | None = None,
    into_crs: pyproj.CRS | None = None,
) -> gpd.GeoDataFrame:
    """Read a CSV of points (see the module notes), filtered by ``clauses``.

    ``into_crs``: see :func:`points_from_frame`.
    """
    options = options or CsvOptions()
    sep = detect_separator(path, options, what)
    encoding = options.text_encoding
    # a batch reads its events file once (rtm.shared); callers never modify the frame
    key = ("csv", file_key(path), sep, options.decimal_for(sep), encoding)
    try:
        frame = remember(
            "read",
            key,
            lambda: pd.read_csv(
                path, low_memory=False, sep=sep, decimal=options.decimal_for(sep), encoding=encoding
            ),
        )
    except UnicodeDecodeError as exc:
        raise _decode_error(path, what, options, exc) from exc
    except (pd.errors.ParserError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{what} {path}: not a readable CSV file ({first_line(exc)})") from exc
    header = _header(path, sep, encoding)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputError(
            f"{what} {path}: the header repeats the column name(s) {', '.join(map(repr, repeated))}"
            "; give every column its own name"
        )
    return points_from_frame(
        frame,
        label=path,
        what=what,
        x_column=x_column,
        y_column=y_column,
        csv_crs=csv_crs,
        default_crs=default_crs,
        clauses=clauses,
        table_key=key,
        into_crs=into_crs,
    )


def points_from_frame(
    frame: pd.DataFrame,
    *,
    label: Any,
    what: str,
    x_column: str | None,
    y_column: str | None,
    csv_crs: str | None,
    default_crs: pyproj.CRS | None,
    clauses: Sequence[WhereClause] = (),
    table_key: Hashable | None = None,
    into_crs: pyproj.CRS | None = None,
) -> gpd.GeoDataFrame:
    """Points from a table with coordinate columns (a CSV read, or a DataFrame in memory).

    ``label`` names the table in messages (its path, or ``(in memory)``). ``table_key`` is
    the key under which ``frame`` is kept for a batch's jobs (:mod:`rtm.shared`): its
    numeric coordinates and the codes of its filtered columns are then kept with it.

    With ``into_crs`` the coordinates are checked against their own CRS
    (:func:`rtm.io.crs.check_bounds_match_crs`) and the points are made in ``into_crs``
    (the coordinates reprojected, not the points: one set of points is built instead of
    two; the same coordinates as :func:`rtm.io.crs.to_crs` gives).
    """
    path = label
    xs, ys, implied_crs = _coordinate_columns(
        frame,
        path,
        what=what,
        x_column=x_column,
        y_column=y_column,
        csv_crs=csv_crs,
        default_crs=default_crs,
    )
    x_all, y_all = (
        remember("derived", (table_key, "numeric", column), lambda c=column: _numeric(frame[c]))
        if table_key is not None
        else _numeric(frame[column])
        for column in (xs, ys)
    )
    if len(frame) and not (x_all.notna() & y_all.notna()).any():
        _unusable_coordinates(frame, xs, ys, what, path)
    if clauses:  # filter first: building point geometries is the slow part
        frame = apply_where(frame, clauses, what=f"{what} {path}", table_key=table_key)
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
        crs = parse_crs(crs_text, what)
    x_values, y_values = x.to_numpy(float), y.to_numpy(float)
    if into_crs is not None:
        into_crs = pyproj.CRS.from_user_input(into_crs)  # (a CRS passes through as it is)
        if x_values.size:
            bounds = np.array([x_values.min(), y_values.min(), x_values.max(), y_values.max()])
            check_bounds_match_crs(bounds, crs, f"{what} {path}")
        if not crs.equals(into_crs):
            x_values, y_values = reproject_xy(x_values, y_values, crs, into_crs, f"{what} {path}")
            crs = into_crs
    geometry = gpd.points_from_xy(x_values, y_values)
    return gpd.GeoDataFrame(frame.drop(columns=[xs, ys]), geometry=geometry, crs=crs)


def _numeric(column: pd.Series) -> pd.Series:
    """A coordinate column as finite numbers (NaN where a value is not one, or infinite).

    An infinite coordinate ("inf" in a CSV) is no more usable than a missing one: its row
    is dropped with the same warning (it used to reach GEOS and fail without a message).
    """
    values = pd.to_numeric(column, errors="coerce")
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    return values if finite.all() else values.where(finite)


def _coordinate_columns(
    frame: pd.DataFrame,
    path: Any,
    *,
    what: str,
    x_column: str | None,
    y_column: str | None,
    csv_crs: str | None,
    default_crs: pyproj.CRS | None,
) -> tuple[str, str, str | None]:
    """The x and y columns (named, or found by their names) and the CRS their names imply."""
    columns = [str(c) for c in frame.columns]
    implied_crs: str | None = None
    if x_column or y_column:
        if not (x_column and y_column):
            raise ParameterError(f"{what}: give both the x and the y column names, not only one")
        xs, ys = find_column(columns, x_column), find_column(columns, y_column)
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
    return xs, ys, implied_crs
