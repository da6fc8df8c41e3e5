"""Fuzz the readers: random valid geometries and attributes, written and read back.

A reader must return the same features (geometry and attributes) or raise an RTMError;
never anything else.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtm.errors import RTMError
from rtm.io import read_events, read_factor

CRS = pyproj.CRS("EPSG:27700")
coordinate = st.floats(400_000, 410_000, allow_nan=False).map(lambda v: round(v, 3))
point = st.tuples(coordinate, coordinate)


def _line(points: list) -> shapely.LineString:
    return shapely.LineString(points)


geometries = st.one_of(
    point.map(shapely.Point),
    st.lists(point, min_size=2, max_size=6).filter(lambda p: len(set(p)) > 1).map(_line),
    # collinear points on a line
    st.tuples(point, st.floats(1, 500)).map(
        lambda t: shapely.LineString(
            [t[0], (t[0][0] + t[1], t[0][1]), (t[0][0] + 2 * t[1], t[0][1])]
        )
    ),
    st.lists(point.map(shapely.Point), min_size=2, max_size=4).map(shapely.MultiPoint),
    # a square with a square hole, and a multi-polygon of two squares
    st.tuples(point, st.floats(10, 500)).map(
        lambda t: shapely.Polygon(
            shapely.box(t[0][0], t[0][1], t[0][0] + t[1], t[0][1] + t[1]).exterior.coords,
            [
                shapely.box(
                    t[0][0] + t[1] / 4, t[0][1] + t[1] / 4, t[0][0] + t[1] / 2, t[0][1] + t[1] / 2
                ).exterior.coords
            ],
        )
    ),
    st.tuples(point, st.floats(10, 500)).map(
        lambda t: shapely.MultiPolygon(
            [
                shapely.box(t[0][0], t[0][1], t[0][0] + t[1], t[0][1] + t[1]),
                shapely.box(t[0][0] + 2 * t[1], t[0][1], t[0][0] + 3 * t[1], t[0][1] + t[1]),
            ]
        )
    ),
)
texts = st.one_of(
    st.just(""), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
)
numbers = st.one_of(st.just(math.nan), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shapes=st.lists(geometries, min_size=1, max_size=5),
    labels=st.lists(texts, min_size=5, max_size=5),
    values=st.lists(numbers, min_size=5, max_size=5),
    suffix=st.sampled_from([".gpkg", ".geojson"]),
)
def test_vector_round_trip(shapes, labels, values, suffix) -> None:
    n = len(shapes)
    frame = gpd.GeoDataFrame({"label": labels[:n], "value": values[:n]}, geometry=shapes, crs=CRS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"factor{suffix}"
        frame.to_file(path)
        try:
            back = read_factor(path, CRS, name="fuzz")
        except RTMError:
            return
    assert len(back) == n
    for before, after in zip(frame.geometry, back.geometry, strict=True):
        # writers may promote a mixed layer to multi-types (a Point becomes a one-point
        # MultiPoint in a GeoPackage): the same point set is the same feature
        assert before.equals(after), (before, after)
    assert back["label"].fillna("").tolist() == frame["label"].tolist()
    np.testing.assert_allclose(back["value"].to_numpy(float), frame["value"].to_numpy(float))


@settings(max_examples=20, deadline=None)
@given(
    xy=st.lists(point, min_size=1, max_size=8),
    labels=st.lists(texts, min_size=8, max_size=8),
    values=st.lists(numbers, min_size=8, max_size=8),
)
def test_csv_events_round_trip(xy, labels, values) -> None:
    n = len(xy)
    frame = pd.DataFrame(
        {"x": [p[0] for p in xy], "y": [p[1] for p in xy], "type": labels[:n], "harm": values[:n]}
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.csv"
        frame.to_csv(path, index=False)
        try:
            back = read_events(path, CRS)
        except RTMError:
            return
    np.testing.assert_allclose(shapely.get_coordinates(back.geometry.values), np.array(xy))
    np.testing.assert_allclose(back["harm"].to_numpy(float), frame["harm"].to_numpy(float))
