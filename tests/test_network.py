"""Street-network proximity against a small network whose answers are known by hand."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from rtm.errors import InputError
from rtm.grid import Grid
from rtm.layers import Factor, build_candidates, nearest_distance
from rtm.layers.network import StreetNetwork, read_network

CRS = "EPSG:27700"


@pytest.fixture
def grid() -> Grid:
    # 10 x 10 cells of 100 m: centres at 50, 150, ..., 950
    return Grid.from_area(gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs=CRS), 100)


def _l_shaped(gap: float = 0.0) -> StreetNetwork:
    """Streets along y=50 (in two pieces, ``gap`` apart at x=500) and up x=950."""
    return StreetNetwork(
        [
            shapely.LineString([(50, 50), (500, 50)]),
            shapely.LineString([(500 + gap, 50), (950, 50)]),
            shapely.LineString([(950, 50), (950, 950)]),
        ]
    )


def _at(grid: Grid, values: np.ndarray, x: float, y: float) -> float:
    row, col = grid.cell_of(np.array([x]), np.array([y]))
    return float(grid.to_raster(values)[row[0], col[0]])


def test_distances_known_by_hand(grid: Grid) -> None:
    distance = _l_shaped().distance(grid, [shapely.Point(50, 50)], reach=5000)
    # along y=50 then up x=950: 900 + 900, where the straight line is 1273
    assert _at(grid, distance, 950, 950) == pytest.approx(1800)
    assert _at(grid, distance, 950, 450) == pytest.approx(1300)
    # off the network: 200 m to the node at (550, 50), then 500 m along the street
    assert _at(grid, distance, 550, 250) == pytest.approx(700)
    assert _at(grid, distance, 50, 50) == pytest.approx(0, abs=1e-6)
    euclid = nearest_distance(grid, [shapely.Point(50, 50)], 5000)
    assert np.all(distance >= euclid - 1e-9)  # a path is never shorter than the straight line


def test_snapping_joins_small_gaps_only(grid: Grid) -> None:
    joined = _l_shaped(gap=0.5).distance(grid, [shapely.Point(50, 50)], reach=5000)
    assert _at(grid, joined, 950, 950) == pytest.approx(1800, abs=1)
    # a 30 m gap is not a junction: the streets beyond it cannot reach the feature
    split = _l_shaped(gap=30).distance(grid, [shapely.Point(50, 50)], reach=5000)
    assert np.isinf(_at(grid, split, 950, 950))
    assert _at(grid, split, 450, 50) == pytest.approx(400)


def test_reach_and_polygons(grid: Grid) -> None:
    net = _l_shaped()
    distance = net.distance(grid, [shapely.Point(50, 50)], reach=650)
    assert _at(grid, distance, 650, 50) == pytest.approx(600)
    assert np.isinf(_at(grid, distance, 750, 50))  # 700 > reach
    park = shapely.box(700, 700, 1000, 1000)
    inside = net.distance(grid, [park], reach=5000)
    assert _at(grid, inside, 850, 850) == 0.0


def test_build_candidates_uses_the_network(grid: Grid) -> None:
    factor = Factor(
        "bars", gpd.GeoSeries([shapely.Point(50, 50)], crs=CRS), operationalization="proximity"
    )
    straight = build_candidates(grid, [factor], [1000])
    along = build_candidates(grid, [factor], [1000], network=_l_shaped())
    # (650, 650): 849 m in a straight line; on the network 600 to its node (650, 50)
    # + 600 along y=50
    assert _at(grid, straight.values[:, 0].astype(float), 650, 650) == 1
    assert _at(grid, along.values[:, 0].astype(float), 650, 650) == 0
    assert along.values.sum() < straight.values.sum()


def test_read_network_needs_lines(tmp_path: Path) -> None:
    points = gpd.GeoDataFrame(geometry=[shapely.Point(500000, 200000)], crs=CRS)
    points.to_file(tmp_path / "points.gpkg")
    with pytest.raises(InputError, match="--network .*points.gpkg: must be lines"):
        read_network(tmp_path / "points.gpkg", points.crs)
