"""`rtm layers` end to end (its bad-input cases live in tests/test_battery.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from rtm.study import load_study
from tests.conftest import run_rtm


def _layers_args(sample: Path, out: Path, *extra: str) -> list[str]:
    return [
        "layers",
        "--area",
        str(sample / "area.gpkg"),
        "--factors-dir",
        str(sample / "factors"),
        "--block-length",
        "150",
        "--out",
        str(out),
        *extra,
    ]


def test_layers_geotiff(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "layers.tif"
    result = run_rtm(*_layers_args(sample_dir, out))
    assert result.returncode == 0, result.stderr
    with rasterio.open(out) as src:
        assert src.count == len(src.descriptions) >= 40
        assert "bars:proximity:300" in src.descriptions
        assert src.crs.to_epsg() == 32630
        assert src.res == (75.0, 75.0)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        band = src.read(src.descriptions.index("parks:proximity:150") + 1)
        nodata = src.nodata
    values = set(np.unique(band[band != nodata]).tolist())
    assert values == {0, 1}
    # the same candidate, recomputed through the API, matches the raster
    from rtm.layers import nearest_distance

    study = load_study(
        area=sample_dir / "area.gpkg",
        block_length=150,
        factors=[str(sample_dir / "factors" / "parks.shp")],
    )
    near = nearest_distance(study.grid, study.factors[0].features, 150) <= 150
    np.testing.assert_array_equal(band.ravel()[study.grid.active_index], near.astype(np.int8))


def test_layers_geopackage_and_protective(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cells.gpkg"
    result = run_rtm(
        *_layers_args(sample_dir, out, "--protective", "parks", "--operationalization", "proximity")
    )
    assert result.returncode == 0, result.stderr
    cells = gpd.read_file(out)
    assert "parks:proximity:150" in cells.columns and "bars:density:150" not in cells.columns
    assert set(cells["parks:proximity:150"].unique()) == {0, -1}
    assert cells.geom_type.eq("Polygon").all()


@pytest.mark.london
def test_london_layers(london_dir: Path) -> None:
    from rtm.study import build_study_candidates

    study = load_study(
        area=london_dir / "study_area.shp",
        block_length=200,
        cell_size=100,
        factors_dir=london_dir / "factors",
    )
    assert len(study.factors) == 19
    candidates = build_study_candidates(study)
    assert study.grid.n_active == 16444
    assert len(candidates.candidates) + len(candidates.dropped) == 114
    # proximity is monotone in distance; density layers are the top tail
    for factor in study.factors:
        names = [f"{factor.name}:proximity:{d}" for d in (200, 400, 600)]
        cols = [candidates.column(n) for n in names if n in candidates.names]
        for near, far in itertools.pairwise(cols):
            assert np.all(near <= far)
