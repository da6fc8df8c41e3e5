"""Grid invariants: cell <-> coordinate round trips, masks, counts."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from rtm.errors import ParameterError
from rtm.grid import Grid
from tests.naive import naive_overlap_mask

CRS = "EPSG:27700"


def _area(geometry: shapely.Geometry) -> gpd.GeoSeries:
    return gpd.GeoSeries([geometry], crs=CRS)


@settings(max_examples=60, deadline=None)
@given(
    x0=st.floats(-1e5, 1e5),
    y0=st.floats(-1e5, 1e5),
    width=st.floats(50, 5000),
    height=st.floats(50, 5000),
    cell=st.floats(10, 500),
    u=st.floats(0, 1, exclude_max=True),
    v=st.floats(0, 1, exclude_max=True),
)
def test_point_lies_in_the_cell_it_is_assigned(x0, y0, width, height, cell, u, v) -> None:
    grid = Grid.from_area(_area(shapely.box(x0, y0, x0 + width, y0 + height)), cell)
    x, y = x0 + u * width, y0 + v * height
    row, col = grid.cell_of(np.array([x]), np.array([y]))
    assert 0 <= row[0] < grid.n_rows and 0 <= col[0] < grid.n_cols
    cx, cy = grid.centre_of(row, col)
    assert abs(cx[0] - x) <= cell / 2 * (1 + 1e-9) + 1e-6
    assert abs(cy[0] - y) <= cell / 2 * (1 + 1e-9) + 1e-6
    # centre -> cell -> centre is the identity
    r2, c2 = grid.cell_of(cx, cy)
    assert (r2[0], c2[0]) == (row[0], col[0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cell=st.sampled_from([17.0, 40.0, 75.0]))
def test_mask_is_exactly_the_cells_that_overlap(seed: int, cell: float) -> None:
    rng = np.random.default_rng(seed)
    parts = [
        shapely.Point(*rng.uniform(0, 600, 2)).buffer(rng.uniform(40, 200), 5) for _ in range(3)
    ]
    area = shapely.union_all(parts)
    grid = Grid.from_area(_area(area), cell)
    np.testing.assert_array_equal(grid.mask, naive_overlap_mask(grid, area))


def test_counts_and_outside_events() -> None:
    area = shapely.Polygon([(0, 0), (300, 0), (300, 100), (100, 100), (100, 300), (0, 300)])
    grid = Grid.from_area(_area(area), 100.0)
    assert grid.n_active == 5
    pts = gpd.GeoDataFrame(
        geometry=shapely.points(
            [[50, 50], [60, 40], [250, 50], [250, 250], [50, 250], [300, 50], [100, 200]]
        ),
        crs=CRS,
    )
    counts = grid.count_events(pts, area)
    assert counts.n_outside == 1  # (250, 250) is in the notch
    assert counts.n_used == 6
    raster = grid.to_raster(counts.counts, nodata=-1)
    assert raster[2, 0] == 2  # (50,50) and (60,40) in the bottom-left cell
    assert raster[2, 2] == 2  # (250,50) and the boundary point (300,50) closes the last column
    assert raster[0, 0] == 1  # (50, 250)
    # (100, 200) lies on the edge of the notch: its east cell is masked, so it goes west
    assert raster[1, 0] == 1 and raster[1, 1] == -1
    assert raster[0, 2] == -1  # masked
    assert counts.counts.sum() == counts.n_used


def test_boundary_point_on_a_cell_edge_goes_to_the_active_neighbour() -> None:
    # area ends exactly on a cell edge at x = 100; a point on that edge is in the area
    area = shapely.box(0, 0, 100, 100)
    grid = Grid.from_area(_area(shapely.union_all([area, shapely.box(0, 0, 150, 50)])), 50.0)
    pts = gpd.GeoDataFrame(geometry=shapely.points([[100, 75]]), crs=CRS)
    counts = grid.count_events(pts, shapely.union_all([area, shapely.box(0, 0, 150, 50)]))
    assert counts.n_used == 1 and counts.counts.sum() == 1


@pytest.mark.parametrize("cell", [0, -5, float("nan"), float("inf")])
def test_bad_cell_size(cell: float) -> None:
    with pytest.raises(ParameterError, match="cell size"):
        Grid.from_area(_area(shapely.box(0, 0, 100, 100)), cell)


def test_absurd_cell_count_is_refused() -> None:
    with pytest.raises(ParameterError, match="more than 100,000,000"):
        Grid.from_area(_area(shapely.box(0, 0, 100_000, 100_000)), 0.5)


def test_geographic_grid_is_refused() -> None:
    with pytest.raises(ParameterError, match="projected CRS"):
        Grid.from_area(gpd.GeoSeries([shapely.box(0, 51, 0.1, 51.1)], crs="EPSG:4326"), 0.001)


def test_grid_is_frozen_and_comparable() -> None:
    a = Grid.from_area(_area(shapely.box(0, 0, 100, 100)), 10.0)
    b = Grid.from_area(_area(shapely.box(0, 0, 100, 100)), 10.0)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.cell_size = 5.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        a.mask[0, 0] = False


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cell=st.sampled_from([9.0, 17.0, 31.0]),
    vertices=st.integers(60, 300),
)
def test_mask_of_a_ragged_area_is_exactly_the_cells_that_overlap(
    seed: int, cell: float, vertices: int
) -> None:
    # A star-shaped polygon with many vertices and spikes: the grid splits it into tiles
    # (several levels at these cell sizes) and tests the boundary cells on clipped pieces.
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = rng.uniform(30, 300, vertices)
    area = shapely.make_valid(
        shapely.Polygon(np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]))
    )
    grid = Grid.from_area(_area(area), cell)
    np.testing.assert_array_equal(grid.mask, naive_overlap_mask(grid, area))


@pytest.mark.london
def test_london_mask_is_exactly_the_cells_that_overlap(london_dir) -> None:
    # The London boundary (14,000 vertices) at 25 m: 471,000 cells in 5 tile levels. The
    # cells the boundary crosses get the naive test (overlap with the whole area); the
    # others lie wholly inside or outside. Two of them overlap the area by under 0.06 m2
    # and were missed when the candidates came from rasterizing the area.
    from rtm.io import read_study_area

    area = shapely.union_all(read_study_area(london_dir / "study_area.shp").geometry.values)
    grid = Grid.from_area(_area(area), 25.0)
    rows, cols = np.divmod(np.arange(grid.n_rows * grid.n_cols), grid.n_cols)
    x0, y1 = grid.x_min + cols * 25.0, grid.y_max - rows * 25.0
    boxes = shapely.box(x0, y1 - 25.0, x0 + 25.0, y1)
    boundary = shapely.boundary(area)
    shapely.prepare(boundary)
    shapely.prepare(area)
    crossed = shapely.intersects(boundary, boxes)
    expected = shapely.intersects(area, boxes) & ~crossed  # wholly inside
    hit = np.flatnonzero(crossed)
    expected[hit] = shapely.area(shapely.intersection(area, boxes[hit])) > 1e-9 * 25.0**2
    np.testing.assert_array_equal(grid.mask.ravel(), expected)
    assert grid.n_active == 257_393


@pytest.mark.parametrize("cell", [7.0, 10.0, 20.0])
@pytest.mark.parametrize(
    "area",
    [
        # edges on the grid lines: clipped pieces touch tiles along edges (collections)
        shapely.Polygon([(0, 0), (300, 0), (300, 100), (100, 100), (100, 300), (0, 300)]),
        shapely.union_all([shapely.box(0, 0, 160, 160), shapely.box(160, 160, 320, 320)]),
        shapely.Polygon([(160, 0), (320, 160), (160, 320), (0, 160)]),
        shapely.box(0, 0, 320, 320)
        .difference(shapely.box(40, 40, 80, 80))
        .difference(shapely.Point(200, 200).buffer(50)),
    ],
    ids=["L", "corner", "diamond", "holes"],
)
def test_mask_of_grid_aligned_areas_is_exactly_the_cells_that_overlap(
    area: shapely.Geometry, cell: float
) -> None:
    grid = Grid.from_area(_area(area), cell)
    np.testing.assert_array_equal(grid.mask, naive_overlap_mask(grid, area))
