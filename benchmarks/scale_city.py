"""A generated city of any size, built in memory: factors, candidates and counts.

The area is a disc (so the grid's overlap mask matters) covering about
``n_cells`` cells of ``cell_size``. Each of ``n_factors`` point factors has
between a few hundred and 50,000 features, clustered around town centres. The
counts are negative binomial around a model with planted effects on three
candidates, so culling and stepwise have real signal to find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from rtm.grid import Grid
from rtm.layers import CandidateSet, Factor, build_candidates, spatial_influences

CRS = "EPSG:32630"
#: (factor index, operationalization, blocks, coefficient) of the planted effects
PLANTED = ((0, "proximity", 1, 0.8), (3, "density", 2, 0.6), (7, "proximity", 3, 0.5))


@dataclass(frozen=True)
class ScaleCity:
    """The generated study: grid, candidates, counts and the planted candidate names."""

    grid: Grid
    candidates: CandidateSet
    counts: np.ndarray
    planted: tuple[str, ...]
    seconds: dict[str, float]


def generate(
    n_cells: int,
    *,
    n_factors: int = 30,
    cell_size: float = 25.0,
    block_length: float = 100.0,
    events_per_cell: float = 0.05,
    seed: int = 0,
) -> ScaleCity:
    """Generate the city and its candidate matrix (3 whole blocks, both operationalizations)."""
    import time

    rng = np.random.default_rng(seed)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    radius = math.sqrt(n_cells / math.pi) * cell_size
    area = gpd.GeoSeries([shapely.Point(0.0, 0.0).buffer(radius, 64)], crs=CRS)
    grid = Grid.from_area(area, cell_size)
    seconds["grid"] = time.perf_counter() - start

    start = time.perf_counter()
    n_centres = 40
    centre_r = radius * np.sqrt(rng.uniform(0, 0.8, n_centres))
    centre_a = rng.uniform(0, 2 * np.pi, n_centres)
    centres = np.column_stack([centre_r * np.cos(centre_a), centre_r * np.sin(centre_a)])
    sizes = np.round(np.geomspace(300, 50_000, n_factors)).astype(int)
    rng.shuffle(sizes)
    factors = []
    for index, size in enumerate(sizes):
        # half clustered around town centres, half spread over the area
        clustered = int(size) // 2
        which = rng.integers(0, n_centres, clustered)
        spread = rng.normal(0.0, radius * rng.uniform(0.02, 0.08), (clustered, 2))
        uniform_r = radius * np.sqrt(rng.uniform(0, 1, int(size) - clustered))
        uniform_a = rng.uniform(0, 2 * np.pi, int(size) - clustered)
        xy = np.vstack(
            [
                centres[which] + spread,
                np.column_stack([uniform_r * np.cos(uniform_a), uniform_r * np.sin(uniform_a)]),
            ]
        )
        features = gpd.GeoSeries(shapely.points(xy), crs=CRS)
        factors.append(Factor(f"factor_{index:02d}", features))
    influences = spatial_influences(block_length, 3, "whole")
    candidates = build_candidates(grid, factors, influences)
    seconds["layers"] = time.perf_counter() - start

    names = candidates.names
    linear = np.zeros(candidates.values.shape[0])
    planted = []
    for factor_index, operationalization, blocks, coefficient in PLANTED:
        name = f"factor_{factor_index:02d}:{operationalization}:{block_length * blocks:g}"
        if name in names:
            planted.append(name)
            linear += coefficient * candidates.values[:, names.index(name)]
    mu = np.exp(linear)
    mu *= events_per_cell * mu.size / mu.sum()
    # negative binomial with variance mu + 0.5 mu^2
    counts = rng.poisson(rng.gamma(2.0, mu / 2.0))
    return ScaleCity(grid, candidates, counts.astype(np.int64), tuple(planted), seconds)
