"""Layers of one area built in row chunks (with a halo) on a real Dask cluster equal the
single-machine layers exactly."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from rtm.layers import build_candidates, kernel_density, nearest_distance, spatial_influences
from rtm.layers.chunked import build_candidates_chunked, row_chunks
from rtm.layers.chunked import halo as _halo
from rtm.study import load_study


@pytest.fixture(scope="module")
def study(sample_dir: Path):
    return load_study(
        area=sample_dir / "area.gpkg",
        block_length=150,
        factors_dir=sample_dir / "factors",
        protective=["parks"],
        cell_size=40,
    )


def test_chunks_cover_the_grid_once(study) -> None:
    bands = row_chunks(study.grid, 7)
    assert bands[0][0] == 0 and bands[-1][1] == study.grid.n_rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bands))
    with pytest.raises(ValueError, match="chunk_rows"):
        row_chunks(study.grid, 0)


def test_halo_keeps_every_feature_that_reaches_the_band(study) -> None:
    roads = np.asarray(next(f for f in study.factors if f.name == "bars").features.geometry.values)
    band = (10, 17)
    near = _halo(study.grid, band, roads, 450.0)
    assert 0 < len(near) < len(roads)  # the halo really cuts
    # computing the band from the halo alone equals computing it from every feature
    np.testing.assert_array_equal(
        nearest_distance(study.grid, near, 450.0, rows=band),
        nearest_distance(study.grid, roads, 450.0, rows=band),
    )


def test_chunked_layers_on_a_local_cluster_equal_the_whole_grid(study) -> None:
    from dask.distributed import Client, LocalCluster

    influences = spatial_influences(150)
    whole = build_candidates(study.grid, study.factors, influences)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with Client(cluster) as client:
            chunked = build_candidates_chunked(
                study.grid, study.factors, influences, chunk_rows=7, client=client
            )
    assert chunked.names == whole.names
    assert chunked.density_thresholds == whole.density_thresholds  # same floats, to the bit
    np.testing.assert_array_equal(chunked.values, whole.values)
    assert [d.candidate.name for d in chunked.dropped] == [d.candidate.name for d in whole.dropped]


def test_chunk_values_are_bit_identical(study) -> None:
    # lines and polygons too (main_roads, parks): distances and densities per band
    for factor in study.factors:
        geometries = np.asarray(factor.features.geometry.values)
        full_d = nearest_distance(study.grid, geometries, 450.0)
        full_k = kernel_density(study.grid, geometries, [150.0, 450.0])
        parts_d, parts_k = [], []
        for band in row_chunks(study.grid, 11):
            parts_d.append(nearest_distance(study.grid, geometries, 450.0, rows=band))
            parts_k.append(kernel_density(study.grid, geometries, [150.0, 450.0], rows=band))
        np.testing.assert_array_equal(np.concatenate(parts_d), full_d)
        np.testing.assert_array_equal(np.concatenate(parts_k, axis=1), full_k)
