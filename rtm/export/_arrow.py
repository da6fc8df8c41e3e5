"""Fast GeoPackage layers: numpy columns handed to GDAL through the Arrow C stream interface.

pyogrio's default writer loops over the features in Cython and converts every value
through Python (a numpy scalar per cell and column: ~10 µs per 25-column cell, 3 s for a
quarter of a million cells). ``pyogrio.raw.write_arrow`` instead hands whole columns to
GDAL's ``OGR_L_WriteArrowBatch`` (GDAL >= 3.8), which writes them in C++. It accepts any
object with an ``__arrow_c_stream__`` method (the Arrow PyCapsule protocol) and does not
need pyarrow, which rtm does not depend on: :class:`_ArrowStream` implements that protocol
with ctypes over numpy buffers (no copies for numeric columns).

:func:`write_layer` writes what ``GeoDataFrame.to_file(..., engine="pyogrio")`` would
(same layer definition: field types and subtypes, nullability, geometry type and its
promotion to multi, CRS, spatial index; the same rows), for the column types it knows:
bool, int8/16/32/64, float32/64 (NaN is written as NULL, as pyogrio does) and strings
(``None``/NaN as NULL). Anything else (dates, missing or 3D geometries, empty frames, an
index ``to_file`` would write, an older GDAL) goes through ``to_file`` itself.
:func:`write_columns` is the same writer for attributes and ready-made WKB.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["box_wkb", "write_columns", "write_layer"]

# ----------------------------------------------------------------- the C data interface
# https://arrow.apache.org/docs/format/CDataInterface.html (struct layouts are ABI-stable)


class _Schema(ctypes.Structure):
    pass


class _Array(ctypes.Structure):
    pass


class _Stream(ctypes.Structure):
    pass


_SchemaRelease = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Schema))
_ArrayRelease = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Array))
_GetSchema = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Stream), ctypes.POINTER(_Schema))
_GetNext = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Stream), ctypes.POINTER(_Array))
_GetLastError = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(_Stream))
_StreamRelease = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Stream))

_Schema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(_Schema))),
    ("dictionary", ctypes.POINTER(_Schema)),
    ("release", _SchemaRelease),
    ("private_data", ctypes.c_void_p),
]
_Array._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_Array))),
    ("dictionary", ctypes.POINTER(_Array)),
    ("release", _ArrayRelease),
    ("private_data", ctypes.c_void_p),
]
_Stream._fields_ = [
    ("get_schema", _GetSchema),
    ("get_next", _GetNext),
    ("get_last_error", _GetLastError),
    ("release", _StreamRelease),
    ("private_data", ctypes.c_void_p),
]

_NULLABLE = 2  # ARROW_FLAG_NULLABLE: pyogrio's own writer leaves every field nullable
_EIO = 5
_CAPSULE_NAME = b"arrow_array_stream"  # module constant: the capsule keeps its pointer
# a private prototype: setting argtypes on ctypes.pythonapi.PyCapsule_New would change it
# for every other user of ctypes in the process
_capsule_new = ctypes.PYFUNCTYPE(
    ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p
)(("PyCapsule_New", ctypes.pythonapi))


# The buffers belong to numpy arrays and bytes kept alive by the _ArrowStream (which
# outlives the write), so releasing a struct only marks it released, as the spec asks.
@_SchemaRelease
def _release_schema(schema: Any) -> None:
    schema.contents.release = _SchemaRelease()


@_ArrayRelease
def _release_array(array: Any) -> None:
    array.contents.release = _ArrayRelease()


@_StreamRelease
def _release_stream(stream: Any) -> None:
    stream.contents.release = _StreamRelease()


#: Arrow format strings of the numpy dtypes written as they are.
_FORMATS = {
    np.dtype(np.int8): b"c",
    np.dtype(np.int16): b"s",
    np.dtype(np.int32): b"i",
    np.dtype(np.int64): b"l",
    np.dtype(np.float32): b"f",
    np.dtype(np.float64): b"g",
}


class _Column:
    """One Arrow array: a format string, its buffers and its length."""

    def __init__(self, fmt: bytes, buffers: list[Any], length: int, null_count: int) -> None:
        self.format = fmt
        self.buffers = buffers  # numpy arrays / bytes / None, kept alive here
        self.length = length
        self.null_count = null_count


def _validity(valid: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Arrow validity bitmap (LSB first) of a boolean mask, or None when all are valid."""
    nulls = int(valid.size - np.count_nonzero(valid))
    if nulls == 0:
        return None, 0
    return np.packbits(valid, bitorder="little"), nulls


def _offsets(values: list[bytes]) -> np.ndarray:
    """The ``n + 1`` offsets of variable-length values laid end to end."""
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, values), np.int64, len(values)), out=offsets[1:])
    return offsets


def _variable(values: list[bytes], fmt: bytes, valid: np.ndarray | None = None) -> _Column | None:
    """A utf8 (``u``) or binary (``z``) column of encoded values (b"" where null).

    None beyond 2 GiB, which needs 64-bit ("large") offsets.
    """
    offsets = _offsets(values)
    if offsets[-1] > np.iinfo(np.int32).max:
        return None
    bitmap, nulls = _validity(valid) if valid is not None else (None, 0)
    return _Column(fmt, [bitmap, offsets.astype(np.int32), b"".join(values)], len(values), nulls)


def _string_column(series: pd.Series) -> _Column | None:
    """A utf8 column of strings and missing values (None when the values are not all str).

    Values are encoded once per distinct string (``pd.factorize``), so a column of a few
    labels repeated over many cells costs a hash lookup per cell.
    """
    if pd.api.types.infer_dtype(series, skipna=True) != "string":
        return None
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    encoded = [*map(str.encode, np.asarray(uniques, dtype=object).tolist()), b""]
    if any(b"\0" in value for value in encoded):
        return None  # GDAL's C strings would end there: leave it to pyogrio
    return _variable(np.array(encoded, dtype=object)[codes].tolist(), b"u", codes >= 0)


def _field_column(series: pd.Series) -> _Column | None:
    """An Arrow column of a frame's attribute, or None for a type left to pyogrio."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype in _FORMATS:
        values = np.ascontiguousarray(series.to_numpy())
        bitmap, nulls = None, 0
        if dtype.kind == "f":
            bitmap, nulls = _validity(~np.isnan(values))  # NaN is NULL, as in pyogrio
        return _Column(_FORMATS[dtype], [bitmap, values], len(values), nulls)
    if isinstance(dtype, np.dtype) and dtype == np.bool_:
        bits = np.packbits(series.to_numpy(), bitorder="little")
        return _Column(b"b", [None, bits], len(series), 0)
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        return _string_column(series)
    return None


class _ArrowStream:
    """An Arrow C stream of one record batch (a struct of the given columns)."""

    def __init__(self, columns: Mapping[str, _Column]) -> None:
        self.columns = dict(columns)
        self.length = next(iter(self.columns.values())).length if self.columns else 0
        self._keep: list[Any] = []  # every ctypes object GDAL may point into
        self._sent = False

    def _hold(self, value: Any) -> Any:
        self._keep.append(value)
        return value

    def _fill_schema(self, out: Any) -> None:
        children = []
        for name, column in self.columns.items():
            child = self._hold(_Schema())
            child.format = column.format
            child.name = self._hold(name.encode("utf-8"))
            child.flags = _NULLABLE
            child.release = _release_schema
            children.append(ctypes.pointer(child))
        out.format = b"+s"
        out.name = b""
        out.metadata = None
        out.flags = 0
        out.n_children = len(children)
        out.children = self._hold((ctypes.POINTER(_Schema) * len(children))(*children))
        out.dictionary = None
        out.release = _release_schema

    def _fill_array(self, out: Any) -> None:
        children = []
        for column in self.columns.values():
            pointers = [_address(b) for b in column.buffers]
            child = self._hold(_Array())
            child.length = column.length
            child.null_count = column.null_count
            child.n_buffers = len(pointers)
            child.buffers = self._hold((ctypes.c_void_p * len(pointers))(*pointers))
            child.release = _release_array
            children.append(ctypes.pointer(child))
        out.length = self.length
        out.null_count = 0
        out.offset = 0
        out.n_buffers = 1
        out.buffers = self._hold((ctypes.c_void_p * 1)(None))
        out.n_children = len(children)
        out.children = self._hold((ctypes.POINTER(_Array) * len(children))(*children))
        out.dictionary = None
        out.release = _release_array

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The PyCapsule protocol: a capsule holding an ``ArrowArrayStream*``."""

        def get_schema(stream: Any, out: Any) -> int:
            try:
                self._fill_schema(out.contents)
            except Exception:  # pragma: no cover - a bug; never raise into C
                return _EIO
            return 0

        def get_next(stream: Any, out: Any) -> int:
            try:
                if self._sent:
                    out.contents.release = _ArrayRelease()  # end of stream
                else:
                    self._fill_array(out.contents)
                    self._sent = True
            except Exception:  # pragma: no cover - a bug; never raise into C
                return _EIO
            return 0

        def get_last_error(stream: Any) -> int | None:
            return None

        stream = self._hold(_Stream())
        stream.get_schema = self._hold(_GetSchema(get_schema))
        stream.get_next = self._hold(_GetNext(get_next))
        stream.get_last_error = self._hold(_GetLastError(get_last_error))
        stream.release = _release_stream
        return _capsule_new(ctypes.addressof(stream), _CAPSULE_NAME, None)


def _address(buffer: Any) -> int | None:
    if buffer is None:
        return None
    if isinstance(buffer, bytes):
        return ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value
    return int(buffer.ctypes.data)


# ----------------------------------------------------------------------------- writing
#: Geometry type names of shapely's type ids.
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
#: Single and multi types pyogrio merges into the multi type when a layer has just these two.
_PROMOTED = ({0, 4}, {1, 5}, {3, 6})
#: GDAL settings of :func:`_fast_sqlite`.
#: GeoPackage writes: no fsync, the journal in memory, and a fixed timestamp (GPKG stamps
#: every table with the time it was written; a fixed one makes the same run give the same
#: bytes, so run folders can be compared and checksummed).
_SQLITE_OPTIONS = {
    "OGR_SQLITE_SYNCHRONOUS": "OFF",
    "OGR_SQLITE_JOURNAL": "MEMORY",
    "OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z",
}


def _arrow_supported() -> bool:
    try:
        import pyogrio
        from pyogrio.raw import write_arrow  # noqa: F401
    except ImportError:  # pragma: no cover - pyogrio is a dependency
        return False
    return tuple(pyogrio.__gdal_version__) >= (3, 8, 0)


def _crs_text(crs: Any) -> str | None:
    """The CRS as pyogrio's ``write_dataframe`` passes it (an EPSG code when there is one)."""
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else str(crs.to_wkt("WKT1_GDAL"))


@contextmanager
def _fast_sqlite() -> Iterator[None]:
    """GDAL writes GeoPackages without fsync, the rollback journal in memory, a fixed date.

    Safe for rtm's outputs: they are written into a temporary folder or file that replaces
    the target only once complete (:mod:`rtm.export.atomic`), so an interrupted write is
    never seen, and like every other output file they are not fsynced. Saves ~10 ms per
    layer. The settings are process-wide GDAL (pyogrio) options, restored on exit.
    """
    import pyogrio

    previous = {key: pyogrio.get_gdal_config_option(key) for key in _SQLITE_OPTIONS}
    pyogrio.set_gdal_config_options(_SQLITE_OPTIONS)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(previous)


def _layer_type(frame: Any, geometry_type: str | None) -> tuple[str, bool] | None:
    """The layer type pyogrio would give and whether it would promote singles to multi.

    None where its rules are not simple (missing or 3D geometries, an empty frame, an
    index ``to_file`` would write as a column): that frame is left to ``to_file``.
    """
    import shapely
    from pandas.api.types import is_integer_dtype

    if not frame.columns.is_unique:
        return None  # to_file refuses them
    if list(frame.index.names) != [None] or not is_integer_dtype(frame.index.dtype):
        return None
    values = np.asarray(frame.geometry.values)
    if values.size == 0 or shapely.is_missing(values).any() or shapely.has_z(values).any():
        return None
    kinds = set(np.unique(shapely.get_type_id(values)).tolist())
    promote = kinds in _PROMOTED  # GPKG: pyogrio writes e.g. Polygon + MultiPolygon as multi
    if geometry_type is not None:
        return geometry_type, promote
    if promote:
        return _TYPE_NAMES[max(kinds)], True
    return (_TYPE_NAMES[kinds.pop()], False) if len(kinds) == 1 else None


def _promoted(values: np.ndarray) -> np.ndarray:
    """Single geometries as one-part multi geometries (what pyogrio's writer does)."""
    import shapely

    out = values.copy()
    kinds = shapely.get_type_id(values)
    for single, make in ((0, shapely.multipoints), (1, shapely.multilinestrings)):
        mask = kinds == single
        if mask.any():
            out[mask] = make(values[mask], indices=np.arange(mask.sum()))
    mask = kinds == 3
    if mask.any():
        out[mask] = shapely.multipolygons(values[mask], indices=np.arange(mask.sum()))
    return out


def write_columns(
    path: str | Path,
    attributes: pd.DataFrame,
    layer: str,
    *,
    wkb: tuple[bytes, np.ndarray],
    geometry_type: str,
    crs: Any,
    layer_options: Mapping[str, str] | None = None,
) -> bool:
    """Write attributes and WKB geometries as a GeoPackage layer through Arrow.

    Returns False, having written nothing, when GDAL is older than 3.8 or a column's type
    or name is left to pyogrio's own writer (see :func:`write_layer`).

    Parameters
    ----------
    path : path
        The GeoPackage (created, or a layer added to it).
    attributes : pandas.DataFrame
        The attribute columns.
    layer : str
        Layer name.
    wkb : (bytes, numpy.ndarray)
        The geometries: their WKB concatenated and ``n + 1`` offsets (see :func:`box_wkb`).
    geometry_type : str
        Layer geometry type (``"Polygon"``, ``"Unknown"``, ...).
    crs : pyproj.CRS or None
        Coordinate reference system.
    layer_options : mapping, optional
        GDAL layer creation options (e.g. ``{"SPATIAL_INDEX": "NO"}``).
    """
    data, offsets = wkb
    names = list(attributes.columns)
    if (
        not _arrow_supported()
        or offsets[-1] > np.iinfo(np.int32).max
        or not all(isinstance(name, str) for name in names)
        or len({name.lower() for name in names} | {"geometry", "fid"}) != len(names) + 2
    ):
        # pyogrio's own writer handles (or refuses) non-text, duplicate and special names
        return False
    columns = {}
    for name in names:
        column = _field_column(attributes[name])
        if column is None:
            return False
        columns[name] = column
    from pyogrio.raw import write_arrow

    geometry = _Column(b"z", [None, offsets.astype(np.int32), data], len(offsets) - 1, 0)
    with _fast_sqlite():
        write_arrow(
            _ArrowStream({"geometry": geometry, **columns}),
            str(path),
            layer=layer,
            driver="GPKG",
            geometry_name="geometry",
            geometry_type=geometry_type,
            crs=_crs_text(crs),
            layer_options=dict(layer_options) if layer_options else None,
        )
    return True


def write_layer(
    path: str | Path,
    frame: Any,
    layer: str,
    *,
    geometry_type: str | None = None,
    layer_options: Mapping[str, str] | None = None,
) -> None:
    """Write a GeoDataFrame as a GeoPackage layer, as ``frame.to_file`` would, only faster.

    Parameters
    ----------
    path : path
        The GeoPackage (created, or a layer added to it).
    frame : GeoDataFrame
        The features.
    layer : str
        Layer name.
    geometry_type : str, optional
        Layer geometry type; default: inferred from the features, as pyogrio does.
    layer_options : mapping, optional
        GDAL layer creation options (e.g. ``{"SPATIAL_INDEX": "NO"}``).
    """
    kind = _layer_type(frame, geometry_type)
    if kind is not None:
        import shapely

        values = np.asarray(frame.geometry.values)
        encoded = shapely.to_wkb(_promoted(values) if kind[1] else values).tolist()
        offsets = _offsets(encoded)
        geometry_name = frame.geometry.name
        attributes = pd.DataFrame(
            {c: frame[c] for c in frame.columns if c != geometry_name}, index=frame.index
        )
        if write_columns(
            path,
            attributes,
            layer,
            wkb=(b"".join(encoded), offsets),
            geometry_type=kind[0],
            crs=frame.crs,
            layer_options=layer_options,
        ):
            return
    with _fast_sqlite():
        frame.to_file(
            path,
            layer=layer,
            driver="GPKG",
            engine="pyogrio",
            geometry_type=geometry_type,
            layer_options=dict(layer_options) if layer_options else None,
        )


def box_wkb(
    x_min: np.ndarray, y_min: np.ndarray, x_max: np.ndarray, y_max: np.ndarray
) -> tuple[bytes, np.ndarray]:
    """WKB of axis-aligned boxes, byte for byte ``shapely.to_wkb(shapely.box(...))``.

    One numpy record per box, a little-endian polygon of one closed ring of five points
    (counter-clockwise from the lower right corner, as ``shapely.box`` makes it), so no
    GEOS geometry is created. Returns the concatenated WKB and the ``n + 1`` offsets.
    """
    record = np.dtype(
        [("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("points", "<u4"), ("xy", "<f8", 10)]
    )
    out = np.empty(len(x_min), record)
    out["order"] = 1
    out["type"] = 3  # polygon
    out["rings"] = 1
    out["points"] = 5
    xy = out["xy"]
    for position, values in enumerate((x_max, y_min, x_max, y_max, x_min, y_max, x_min, y_min)):
        xy[:, position] = values
    xy[:, 8], xy[:, 9] = x_max, y_min
    return out.tobytes(), np.arange(len(out) + 1, dtype=np.int64) * record.itemsize
