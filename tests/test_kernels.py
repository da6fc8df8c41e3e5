"""Numba kernels against their slow twins on random small cases."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from rtm.grid import Grid
from rtm.layers import binarize_density, kernel_density, nearest_distance
from rtm.layers.geometry import weighted_points as _weighted_points
from tests.naive import naive_density, naive_distance

CRS = "EPSG:27700"


def _grid(rng: np.random.Generator, cell: float = 25.0) -> Grid:
    # an irregular area so that the active mask matters
    blob = shapely.Point(500, 500).buffer(rng.uniform(300, 450))
    bite = shapely.Point(rng.uniform(200, 800), rng.uniform(200, 800)).buffer(150)
    area = gpd.GeoSeries([blob.difference(bite)], crs=CRS)
    return Grid.from_area(area, cell)


def _random_points(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(-100, 1100, size=(n, 2))
    return shapely.points(xy)


def _random_lines(rng: np.random.Generator, n: int) -> np.ndarray:
    lines = []
    for _ in range(n):
        k = rng.integers(2, 6)
        lines.append(shapely.LineString(rng.uniform(-100, 1100, size=(k, 2))))
    return np.array(lines, dtype=object)


def _random_polygons(rng: np.random.Generator, n: int) -> np.ndarray:
    polys = []
    for _ in range(n):
        centre = rng.uniform(0, 1000, 2)
        polys.append(shapely.Point(*centre).buffer(rng.uniform(20, 120), 8))
    return np.array(polys, dtype=object)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["points", "lines", "polygons", "mixed"])
def test_proximity_matches_brute_force(seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    grid = _grid(rng, cell=rng.choice([20.0, 33.3, 50.0]))
    makers = {
        "points": lambda: _random_points(rng, int(rng.integers(1, 25))),
        "lines": lambda: _random_lines(rng, int(rng.integers(1, 6))),
        "polygons": lambda: _random_polygons(rng, int(rng.integers(1, 6))),
        "mixed": lambda: np.concatenate(
            [_random_points(rng, 5), _random_lines(rng, 2), _random_polygons(rng, 2)]
        ),
    }
    geometries = makers[kind]()
    reach = 300.0
    fast = nearest_distance(grid, geometries, reach)
    slow = naive_distance(grid, geometries)
    within = slow <= reach
    np.testing.assert_allclose(fast[within], slow[within], rtol=0, atol=1e-7)
    assert np.all(np.isinf(fast[~within]))
    for d in (50.0, 100.0, 150.0, 300.0):
        np.testing.assert_array_equal(fast <= d, slow <= d)


def test_proximity_exact_on_grid_aligned_ties() -> None:
    # features exactly on cell centres: distances of exactly k cells must count as within
    area = gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs=CRS)
    grid = Grid.from_area(area, 50.0)
    point = shapely.points([[525.0, 525.0]])
    distance = nearest_distance(grid, point, 200.0)
    slow = naive_distance(grid, point)
    np.testing.assert_array_equal(distance <= 200.0, slow <= 200.0)
    assert int((distance <= 200.0).sum()) == int((slow <= 200.0).sum()) > 0
    assert (slow == 200.0).sum() == 4  # the four cells exactly 4 cells away count


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["points", "lines", "polygons"])
def test_density_matches_brute_force(seed: int, kind: str) -> None:
    rng = np.random.default_rng(100 + seed)
    grid = _grid(rng, cell=rng.choice([25.0, 40.0]))
    geometries = {
        "points": lambda: _random_points(rng, int(rng.integers(5, 60))),
        "lines": lambda: _random_lines(rng, 3),
        "polygons": lambda: _random_polygons(rng, 3),
    }[kind]()
    bandwidths = [60.0, 120.0, 180.0]
    fast = kernel_density(grid, geometries, bandwidths)
    px, py, weight = _weighted_points(geometries, grid.cell_size / 4)
    for b, bandwidth in enumerate(bandwidths):
        slow = naive_density(grid, px, py, weight, bandwidth)
        np.testing.assert_allclose(fast[b], slow, rtol=1e-12, atol=1e-15)
        mean, sd = slow.mean(), slow.std(ddof=1)
        np.testing.assert_array_equal(binarize_density(fast[b])[0], slow >= mean + 2 * sd)


def test_density_integrates_to_feature_count() -> None:
    # a point far from the edges: the kernel sums to ~1 over cells (times cell area)
    area = gpd.GeoSeries([shapely.box(0, 0, 2000, 2000)], crs=CRS)
    grid = Grid.from_area(area, 10.0)
    density = kernel_density(grid, shapely.points([[1003.0, 997.0]]), [200.0])[0]
    assert density.sum() * 100.0 == pytest.approx(1.0, rel=1e-3)


def test_line_density_weighs_length() -> None:
    area = gpd.GeoSeries([shapely.box(0, 0, 2000, 2000)], crs=CRS)
    grid = Grid.from_area(area, 20.0)
    line = shapely.LineString([(500, 1000), (1500, 1000)])
    density = kernel_density(grid, [line], [100.0])[0]
    # integral of the density equals the line's length (in metres)
    assert density.sum() * 400.0 == pytest.approx(1000.0, rel=1e-2)


# ---------------------------------------------------------------------------
# binary candidate matrix kernels (rtm._kernels.design) against numpy twins
# ---------------------------------------------------------------------------


def _random_design(rng: np.random.Generator, n: int = 300, p: int = 13) -> np.ndarray:
    X = (rng.random((n, p)) < rng.uniform(0.05, 0.6, p)).astype(np.int8)
    X[:, rng.random(p) < 0.3] *= -1  # protective columns
    return X


@pytest.mark.parametrize("seed", range(4))
def test_design_kernels_match_numpy(seed: int) -> None:
    from rtm._kernels import design

    rng = np.random.default_rng(seed)
    X = _random_design(rng)
    w = rng.uniform(0, 2, X.shape[0])
    has_pos, has_neg, n_bad = design.column_flags(X)
    np.testing.assert_array_equal(has_pos, (X == 1).any(axis=0))
    np.testing.assert_array_equal(has_neg, (X == -1).any(axis=0))
    assert n_bad == 0 and design.column_flags(X * 2)[2] == int((X != 0).sum())
    np.testing.assert_allclose(design.weighted_column_sums(X, w), w @ X.astype(float), rtol=1e-12)
    keep = rng.random(X.shape[0]) < 0.7
    indptr, indices = design.binary_csc(X, keep)
    kept = X[keep]
    for j in range(X.shape[1]):
        np.testing.assert_array_equal(
            indices[indptr[j] : indptr[j + 1]], np.flatnonzero(kept[:, j])
        )
    columns = np.array([2, 0, 5, 7, 8, 9, 10, 11, 12], dtype=np.int64)
    extra = rng.integers(0, 70_000, X.shape[0])
    keys = design.pack_rows(X, columns, extra, 3)
    twin = np.column_stack(
        [
            np.packbits(X[:, columns] != 0, axis=1, bitorder="little"),
            extra & 255,
            (extra >> 8) & 255,
            extra >> 16,
        ]
    ).astype(np.uint8)
    np.testing.assert_array_equal(keys, twin)


def test_group_rows_numbers_groups_by_first_appearance() -> None:
    from rtm.selection.data import group_rows

    rng = np.random.default_rng(3)
    keys = rng.integers(0, 3, size=(500, 2)).astype(np.uint8)
    first, inverse = group_rows(keys)
    assert np.all(np.diff(first) > 0)
    np.testing.assert_array_equal(keys[first][inverse], keys)
    np.testing.assert_array_equal(inverse[first], np.arange(first.size))


@pytest.mark.parametrize("seed", range(3))
def test_table_gradient_matches_dense_product(seed: int) -> None:
    """The byte-table gradient of the elastic net's KKT check equals X^T r (its twin)."""
    from rtm._kernels import design, glm

    rng = np.random.default_rng(seed)
    X = _random_design(rng)
    n, p = X.shape
    sign = np.where((X == -1).any(axis=0), -1.0, 1.0)
    y = rng.poisson(1.0, n).astype(np.float64)
    w = rng.uniform(0.1, 1.0, n)
    mu = rng.uniform(0.2, 3.0, n)
    coef = np.where(rng.random(p) < 0.3, rng.uniform(0.1, 1.0, p), 0.0)
    scale = np.where(rng.random(p) < 0.1, 0.0, 1.0)
    codes = design.pack_rows(X, np.arange(p), np.zeros(n, dtype=np.int64), 0)
    grad = np.full(p, -7.0)
    glm._full_gradient(codes, sign, y, w, mu, coef, scale, grad)
    twin = (X != 0).astype(float).T @ (w * (y - mu)) * sign
    read = (scale > 0) & (coef == 0)
    np.testing.assert_allclose(grad[read], twin[read], rtol=1e-12, atol=1e-12)
    assert np.all(grad[~read] == -7.0)  # skipped columns are left alone


@pytest.mark.parametrize("shape", [(1, 1), (3, 70), (45, 33), (180, 1000)])
def test_tiled_transpose_matches_numpy(shape: tuple[int, int]) -> None:
    from rtm._kernels import design

    src = np.random.default_rng(0).integers(-1, 2, size=shape).astype(np.int8)
    out = np.empty(shape[::-1], dtype=np.int8)
    design.transpose_int8(src, out)
    np.testing.assert_array_equal(out, src.T)


@pytest.mark.parametrize("seed", range(3))
def test_held_out_deviance_matches_dense_twin(seed: int) -> None:
    """The held-out deviance kernel equals the dense computation over every column."""
    from rtm._kernels import glm

    rng = np.random.default_rng(seed)
    X = _random_design(rng)
    n, p = X.shape
    n_lam = 7
    b = np.where(rng.random((n_lam, p)) < 0.4, rng.uniform(0.0, 0.8, (n_lam, p)), 0.0)
    b[:, 3] = 0.0  # a column never used on the path
    b0 = rng.normal(-1.0, 0.3, n_lam)
    w = rng.uniform(0.5, 3.0, n)
    y = rng.poisson(1.0, n).astype(float)
    yw, ylogy = w * y, w * np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
    rows = np.flatnonzero(rng.random(n) < 0.4)
    used = np.flatnonzero((b != 0).any(axis=0))
    fast = glm.held_out_deviance(X, rows, used, ylogy, yw, w, b0, b)
    eta = b0[None, :] + X[rows].astype(float) @ b.T
    twin = (
        2.0
        * (ylogy[rows, None] - yw[rows, None] * eta - yw[rows, None] + w[rows, None] * np.exp(eta))
    ).sum(axis=0)
    np.testing.assert_allclose(fast, twin, rtol=1e-12)
