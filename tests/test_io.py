"""Readers: formats, CSV coordinate detection, CRS handling, filters, and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from rtm import shared
from rtm.errors import CRSError, InputError, ParameterError, RTMWarning
from rtm.io import (
    apply_where,
    factor_sources,
    parse_where,
    read_events,
    read_factor,
    read_study_area,
    read_vector,
)

BNG = "EPSG:27700"


@pytest.fixture()
def points_bng() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"kind": ["a", "b", "a"], "value": [1, 2, 3]},
        geometry=shapely.points([[530000, 180000], [530100, 180100], [530200, 180050]]),
        crs=BNG,
    )


@pytest.mark.parametrize("suffix,layer", [(".shp", None), (".gpkg", "pts"), (".geojson", None)])
def test_vector_formats_round_trip(
    tmp_path: Path, points_bng, suffix: str, layer: str | None
) -> None:
    path = tmp_path / f"points{suffix}"
    points_bng.to_file(path, layer=layer, engine="pyogrio")
    source = f"{path}:{layer}" if layer else path
    gdf = read_vector(source)
    assert len(gdf) == 3
    target = gdf.to_crs(BNG) if suffix == ".geojson" else gdf
    np.testing.assert_allclose(
        shapely.get_x(target.geometry.values), [530000, 530100, 530200], atol=1e-3
    )


def test_gpkg_unknown_layer_lists_layers(tmp_path: Path, points_bng) -> None:
    path = tmp_path / "p.gpkg"
    points_bng.to_file(path, layer="pts")
    with pytest.raises(InputError, match="no layer 'nope'; layers are pts"):
        read_vector(f"{path}:nope")


@pytest.mark.parametrize(
    "columns,crs",
    [
        (("longitude", "latitude"), None),
        (("Longitude", "Latitude"), None),
        (("lon", "lat"), None),
        (("x", "y"), BNG),
        (("Easting", "Northing"), BNG),
    ],
)
def test_csv_coordinate_detection(tmp_path: Path, columns, crs) -> None:
    if crs is None:
        xs, ys = [-0.1349, -0.1497], [51.5067, 51.4908]
    else:
        xs, ys = [530000.0, 531000.0], [180000.0, 181000.0]
    path = tmp_path / "e.csv"
    pd.DataFrame({columns[0]: xs, columns[1]: ys, "type": ["robbery", "burglary"]}).to_csv(
        path, index=False
    )
    events = read_events(path, gpd.GeoSeries([], crs=BNG).crs)
    assert events.crs.to_epsg() == 27700
    assert len(events) == 2
    x = shapely.get_x(events.geometry.values)
    assert 500_000 < x.min() < 540_000  # reprojected into metres, never degrees


def test_csv_named_columns_and_crs(tmp_path: Path) -> None:
    path = tmp_path / "e.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("E,N,t\n530000,180000,a\n")
    events = read_events(
        path, gpd.GeoSeries([], crs=BNG).crs, x_column="E", y_column="N", csv_crs="EPSG:27700"
    )
    assert shapely.get_x(events.geometry.values)[0] == 530000


def test_csv_without_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"e\.csv: no coordinate columns found.*columns are a, b"):
        read_events(path, gpd.GeoSeries([], crs=BNG).crs)


def test_infinite_coordinates_are_unusable_like_missing_ones(tmp_path: Path) -> None:
    """'inf' in a coordinate column drops its row with the missing-coordinates warning (it
    used to reach GEOS: an UnsupportedOperationException and no message); all infinite is
    the one-line error for a table without usable coordinates."""
    bng = gpd.GeoSeries([], crs=BNG).crs
    some = tmp_path / "some.csv"
    some.write_text("longitude,latitude,type\n-0.1,51.5,a\ninf,51.51,b\n-0.12,-inf,c\n")
    with pytest.warns(RTMWarning, match="2 of 3 rows have no usable coordinates"):
        events = read_events(some, bng)
    assert list(events["type"]) == ["a"]
    every = tmp_path / "every.csv"
    every.write_text("x,y\ninf,180000\n-inf,181000\n")
    with pytest.raises(InputError, match=r"every\.csv: no row has finite numeric coordinates"):
        read_factor(every, bng, name="f")


def test_csv_points_made_in_the_study_crs_equal_points_reprojected(tmp_path: Path) -> None:
    """Events and factors from a CSV are made in the study's CRS from reprojected
    coordinates: the same coordinates, to the bit, as reading them in their own CRS and
    reprojecting the points (what every input went through before)."""
    rng = np.random.default_rng(3)
    path = tmp_path / "e.csv"
    lon, lat = -0.2 + 0.1 * rng.random(500), 51.45 + 0.1 * rng.random(500)
    pd.DataFrame({"longitude": lon, "latitude": lat, "type": "a"}).to_csv(path, index=False)
    bng = gpd.GeoSeries([], crs=BNG).crs
    as_read = read_vector(path, what="events")
    assert as_read.crs.to_epsg() == 4326
    expected = shapely.get_coordinates(as_read.to_crs(bng).geometry.values)
    for made in (read_events(path, bng), read_factor(path, bng, name="f")):
        assert made.crs.equals(bng)
        np.testing.assert_array_equal(shapely.get_coordinates(made.geometry.values), expected)


def test_lonlat_declared_as_metres(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("x,y\n-0.13,51.50\n-0.14,51.51\n")
    with pytest.raises(CRSError, match="look like longitude/latitude"):
        read_events(path, gpd.GeoSeries([], crs=BNG).crs)


def test_metres_declared_as_lonlat(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("longitude,latitude\n530000,180000\n")
    with pytest.raises(CRSError, match="not degrees"):
        read_events(path, gpd.GeoSeries([], crs=BNG).crs)


def test_layer_without_crs(tmp_path: Path, points_bng) -> None:
    path = tmp_path / "p.shp"
    points_bng.to_file(path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(CRSError, match="has no CRS"):
        read_vector(path)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.shp"
    path.write_bytes(b"this is not a shapefile" * 10)
    with pytest.raises(InputError, match="bad.shp: cannot be read"):
        read_vector(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_vector(tmp_path / "nope.gpkg")


def test_invalid_geometries_are_repaired(tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    path = tmp_path / "a.gpkg"
    gpd.GeoDataFrame(geometry=[bowtie], crs=BNG).to_file(path)
    with pytest.warns(RTMWarning, match="1 invalid geometries were repaired"):
        area = read_study_area(path)
    assert area.is_valid.all()
    assert area.area.sum() == pytest.approx(5000.0)


def test_study_area_must_be_polygons(tmp_path: Path, points_bng) -> None:
    path = tmp_path / "p.gpkg"
    points_bng.to_file(path)
    with pytest.raises(InputError, match="must be polygons, got Point"):
        read_study_area(path)


def test_geographic_area_goes_to_utm_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "a.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(-0.2, 51.45, -0.1, 51.55)], crs="EPSG:4326").to_file(
        path
    )
    with pytest.warns(RTMWarning, match="UTM zone 30N"):
        area = read_study_area(path)
    assert area.crs.is_projected
    assert 6e7 < area.area.sum() < 8e7  # about 7 km x 11 km, in square metres


def test_factor_sources(tmp_path: Path) -> None:
    (tmp_path / "bars.shp").write_text("")
    (tmp_path / "readme.txt").write_text("")
    pairs = factor_sources(["atms=x.gpkg:atm"], tmp_path)
    assert pairs == [("bars", str(tmp_path / "bars.shp")), ("atms", "x.gpkg:atm")]
    with pytest.raises(ParameterError, match="repeated: bars"):
        factor_sources(["bars=y.shp"], tmp_path)


# ------------------------------------------------------------------------- where

FRAME = pd.DataFrame(
    {
        "type": ["Robbery", "burglary", "robbery", "theft", "robbery"],
        "month": [1, 3, 6, 7, 12],
        "date": ["2022-01-15", "2022-03-01", "2022-06-30", "2022-07-01", "2022-12-31"],
    }
)


@pytest.mark.parametrize(
    "clauses,expected",
    [
        (["type=robbery"], [0, 2, 4]),
        (["type=robbery,theft"], [0, 2, 3, 4]),
        (["month=1..6"], [0, 1, 2]),
        (["month=..3"], [0, 1]),
        (["month=7.."], [3, 4]),
        (["type=robbery", "month=1..6"], [0, 2]),
        (["date=2022-03..2022-06"], [1, 2]),
        (["date=2022-06-30..2022-07-01"], [2, 3]),
        (["month=3,12"], [1, 4]),
    ],
)
def test_where(clauses: list[str], expected: list[int]) -> None:
    kept = apply_where(FRAME, [parse_where(c) for c in clauses])
    assert list(kept.index) == expected


def test_where_unknown_column_lists_columns() -> None:
    with pytest.raises(ParameterError, match="no column 'kind'; columns are type, month, date"):
        apply_where(FRAME, [parse_where("kind=robbery")])


@pytest.mark.parametrize("text", ["type", "=x", "type=", "month=..", "__import__('os')"])
def test_where_malformed(text: str) -> None:
    with pytest.raises(ParameterError, match="--where"):
        parse_where(text)


def test_where_range_bounds_must_be_numbers_or_dates() -> None:
    with pytest.raises(ParameterError, match="neither a number nor an ISO date"):
        apply_where(FRAME, [parse_where("type=a..b")])


# ------------------------------------------------------------------------- London


@pytest.mark.london
def test_london_inputs_load(london_dir: Path) -> None:
    area = read_study_area(london_dir / "study_area.shp")
    assert area.crs.to_epsg() == 27700
    events = read_events(
        london_dir / "crimes_2022.csv.gz", area.crs, where=["type=robbery", "month=1..6"]
    )
    assert len(events) > 5000
    assert events.crs.to_epsg() == 27700
    minx, miny, maxx, maxy = events.total_bounds
    assert 500_000 < minx < maxx < 560_000 and 160_000 < miny < maxy < 200_000
    counts = {}
    for path in sorted((london_dir / "factors").glob("*.shp")):
        counts[path.stem] = len(read_factor(path, area.crs, name=path.stem))
    assert len(counts) == 19
    assert counts["bus_stops"] == 3498 and counts["pubs"] == 733 and counts["police_stations"] == 14


# Text columns are matched on their distinct values only (see rtm.filters._per_distinct_value);
# the twin below matches row by row, the plain way, and both must keep the same rows.
_WHERE_COLUMNS = {
    "text": pd.Series(
        [" Robbery", "robbery ", None, "THEFT", "theft", "2022-03-01", " 2022-06-30 ", ""] * 3,
        dtype="str",
    ),
    "string": pd.Series(["a", " A", pd.NA, "b", "1", " 1.0", "true", "B"] * 3, dtype="string"),
    "int": pd.Series([1, 3, 6, 7, 12, 2022, -1, 0] * 3),
    "nullable_int": pd.Series([1, None, 6, 7, 12, 2022, -1, 0] * 3, dtype="Int64"),
    "bool": pd.Series([True, False, True, True, False, False, True, False] * 3),
    "float": pd.Series([1.0, -0.0, 0.0, np.nan, 6.5, 2022.0, np.inf, 1.0] * 3),
    "object": pd.Series([1, 1.0, True, "1", " a", None, 0.0, -0.0] * 3, dtype=object),
    "object_text": pd.Series([" Robbery", "robbery ", None, "THEFT", "1", "1.0"] * 4, dtype=object),
    "date": pd.to_datetime(
        pd.Series(
            ["2022-01-15", "2022-03-01", None, "2022-06-30", "2022-07-01"] * 3 + ["2021-12-31"] * 9
        )
    ),
}
_WHERE_VALUES = [
    "robbery", "theft,a", "1", "1.0", "true", "0", "-0.0", "2022", "b,B", "", "1..6",
    "..3", "7..", "2022-03..2022-06", "2022-06-30..2022-07-01", "2022..", "..2022-01",
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::rtm.errors.RTMWarning")
@pytest.mark.parametrize("column", sorted(_WHERE_COLUMNS))
def test_where_on_distinct_values_matches_row_by_row(column: str, monkeypatch) -> None:
    import rtm.filters

    frame = pd.DataFrame({column: _WHERE_COLUMNS[column]})
    clauses = []
    for value in _WHERE_VALUES:
        try:
            clauses.append(parse_where(f"{column}={value}"))
        except ParameterError:
            continue

    def keep(clause: object, table_key: object = None) -> list[object]:
        try:
            kept = apply_where(frame, [clause], table_key=table_key)  # type: ignore[list-item]
            return list(kept.index)
        except ParameterError as exc:
            return [str(exc)]

    fast = [keep(c) for c in clauses]
    # in a batch the column's codes are kept with the file read (rtm.shared) and reused
    with shared.sharing(keep=False):
        kept_codes = [keep(c, ("test", column)) for c in clauses]
        reused = [keep(c, ("test", column)) for c in clauses]
        assert shared.stats()["derived"][0] >= len(clauses)
    monkeypatch.setattr(
        rtm.filters, "_per_distinct_value", lambda series, test, coded=None: test(series)
    )
    assert fast == kept_codes == reused == [keep(c) for c in clauses]


# An ESRI .prj as ArcGIS writes it: GDAL matches it to EPSG:27700 only by searching the PROJ
# database, which rtm does once per distinct .prj (see rtm.io.vectors._read_shapefile).
_ESRI_BNG = (
    'PROJCS["British_National_Grid",GEOGCS["GCS_OSGB_1936",DATUM["D_OSGB_1936",'
    'SPHEROID["Airy_1830",6377563.396,299.3249646]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",400000.0],PARAMETER["False_Northing",-100000.0],'
    'PARAMETER["Central_Meridian",-2.0],PARAMETER["Scale_Factor",0.9996012717],'
    'PARAMETER["Latitude_Of_Origin",49.0],UNIT["Meter",1.0]]'
)


def test_shapefiles_sharing_a_prj_get_the_crs_gdal_matches(tmp_path: Path, points_bng) -> None:
    import pyogrio

    import rtm.io.vectors

    rtm.io.vectors._PRJ_CRS.clear()
    for name in ("first", "second"):
        points_bng.to_file(tmp_path / f"{name}.shp", engine="pyogrio")
        (tmp_path / f"{name}.prj").write_text(_ESRI_BNG)
    points_bng.to_crs("EPSG:32630").to_file(tmp_path / "other.shp", engine="pyogrio")
    before = pyogrio.get_gdal_config_option("USE_OSR_FIND_MATCHES")
    layers = {name: read_vector(tmp_path / f"{name}.shp") for name in ("first", "second", "other")}
    assert len(rtm.io.vectors._PRJ_CRS) == 2  # "second" reused the CRS found for "first"
    assert pyogrio.get_gdal_config_option("USE_OSR_FIND_MATCHES") == before
    for name, layer in layers.items():
        plain = pyogrio.read_dataframe(tmp_path / f"{name}.shp")  # GDAL matching every time
        assert layer.crs.to_wkt() == plain.crs.to_wkt()
        assert layer.crs.to_epsg() == (32630 if name == "other" else 27700)
        pd.testing.assert_frame_equal(pd.DataFrame(layer), pd.DataFrame(plain))
    # Skipping the match without the cache would be wrong: the CRS would differ.
    pyogrio.set_gdal_config_options({"USE_OSR_FIND_MATCHES": "NO"})
    try:
        unmatched = pyogrio.read_dataframe(tmp_path / "second.shp").crs
    finally:
        pyogrio.set_gdal_config_options({"USE_OSR_FIND_MATCHES": before})
    assert unmatched.to_wkt() != layers["second"].crs.to_wkt()
