"""Honest inference: Moran's I of residuals, bootstrap selection stability, split-sample refits."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from rtm.diagnostics import morans_i, queen_weights
from rtm.grid import Grid
from rtm.model import RiskTerrainModel
from rtm.stability import block_ids, bootstrap_selection, split_sample
from rtm.study import build_study_candidates, load_study
from tests.conftest import SAMPLE, run_rtm


def _naive_moran(grid: Grid, x: np.ndarray) -> tuple[float, float]:
    """Moran's I and its randomisation variance by double loops over cells (slow, obvious)."""
    rows, cols = np.divmod(grid.active_index, grid.n_cols)
    n = x.size
    w = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j and abs(rows[i] - rows[j]) <= 1 and abs(cols[i] - cols[j]) <= 1:
                w[i, j] = 1.0
    w = w / np.where(w.sum(1, keepdims=True) > 0, w.sum(1, keepdims=True), 1)
    z = x - x.mean()
    s0 = w.sum()
    i_value = n / s0 * (z @ w @ z) / (z @ z)
    s1 = 0.5 * ((w + w.T) ** 2).sum()
    s2 = ((w.sum(1) + w.sum(0)) ** 2).sum()
    b2 = n * (z**4).sum() / (z @ z) ** 2
    a = n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0**2)
    b = b2 * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0**2)
    c = (n - 1) * (n - 2) * (n - 3) * s0**2
    return i_value, (a - b) / c - 1 / (n - 1) ** 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_morans_i_matches_the_naive_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # an irregular area: some cells inactive, some with few neighbours
    area = shapely.Polygon([(0, 0), (700, 0), (700, 300), (300, 300), (300, 600), (0, 600)])
    grid = Grid.from_area(gpd.GeoSeries([area], crs="EPSG:27700"), 50)
    x = rng.poisson(2.0, grid.n_active).astype(float)
    result = morans_i(x, queen_weights(grid), permutations=199, seed=seed)
    naive_i, naive_var = _naive_moran(grid, x)
    assert result.i == pytest.approx(naive_i, rel=1e-10)
    assert result.variance == pytest.approx(naive_var, rel=1e-10)
    # under independence the permutation p-value is not extreme and I is near E[I]
    assert abs(result.z) < 4 and result.p_value_permutation is not None


def test_clustered_values_give_a_large_i() -> None:
    grid = Grid.from_area(gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs="EPSG:27700"), 50)
    x_centre, _ = grid.cell_centres()
    result = morans_i(x_centre, queen_weights(grid), permutations=99)
    assert result.i > 0.9 and result.p_value < 1e-6
    assert result.p_value_permutation == pytest.approx(1 / 100)


@pytest.fixture(scope="module")
def robbery():
    study = load_study(
        area=SAMPLE / "area.gpkg",
        block_length=150,
        events=SAMPLE / "crimes.csv",
        factors_dir=SAMPLE / "factors",
        protective=["parks"],
        where=["type=robbery"],
    )
    return build_study_candidates(study), study.counts.counts


def test_blocks_are_square_and_cover_every_cell(robbery) -> None:
    candidates, _ = robbery
    blocks, side = block_ids(candidates)
    assert side == 450.0  # the largest spatial influence (3 blocks of 150 m): 6 cells of 75 m
    grid = candidates.grid
    rows, cols = np.divmod(grid.active_index, grid.n_cols)
    for b in np.unique(blocks)[:20]:
        members = blocks == b
        assert np.ptp(rows[members]) < 6 and np.ptp(cols[members]) < 6


def test_bootstrap_is_seeded_and_finds_the_planted_factors(robbery) -> None:
    candidates, counts = robbery
    model = RiskTerrainModel(seed=0)
    first = bootstrap_selection(candidates, counts, model=model, n_resamples=5, seed=4)
    again = bootstrap_selection(candidates, counts, model=model, n_resamples=5, seed=4)
    assert first == again
    truth = json.loads((SAMPLE / "truth.json").read_text())["crime_types"]["robbery"]["effects"]
    frequency = {f["name"]: f["frequency"] for f in first["factors"]}
    for effect in truth:
        assert frequency[effect["factor"]] >= 0.8, frequency
        factor = next(f for f in first["factors"] if f["name"] == effect["factor"])
        low, high = factor["rrv_interval"]
        assert low <= factor["bagged_rrv"] <= high and low > 1
    cells = bootstrap_selection(
        candidates, counts, model=model, n_resamples=3, scheme="cells", seed=4
    )
    assert cells["scheme"] == "cells" and cells["block_size"] is None
    assert cells != first


def test_split_sample_refits_on_unseen_cells(robbery) -> None:
    candidates, counts = robbery
    report = split_sample(candidates, counts, model=RiskTerrainModel(seed=0), seed=0)
    assert report["status"] == "done"
    assert report["selection_cells"] + report["refit_cells"] == candidates.grid.n_active
    assert report["selection_events"] + report["refit_events"] == counts.sum()
    assert abs(report["selection_cells"] - report["refit_cells"]) < 0.2 * candidates.grid.n_active
    names = {f["name"] for f in report["factors"]}
    assert {"bars", "bus_stops"} <= names
    for f in report["factors"]:
        assert f["rrv"] == pytest.approx(np.exp(f["coefficient"])) and 0 <= f["p_value"] <= 1


def test_cli_writes_stability_split_and_moran(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_rtm(
        "analyze",
        SAMPLE / "crimes.csv",
        "--area",
        SAMPLE / "area.gpkg",
        "--factors-dir",
        SAMPLE / "factors",
        "--protective",
        "parks",
        "--block-length",
        "150",
        "--where",
        "type=robbery",
        "--bootstrap",
        "3",
        "--split-sample",
        "--out",
        out,
        "-q",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["stability"]["resamples"] == 3 and report["stability"]["scheme"] == "block"
    assert report["split_sample"]["status"] == "done"
    moran = report["residual_autocorrelation"]
    # the synthetic city's events are independent given the factors: no residual clustering
    assert abs(moran["morans_i"]) < 0.05 and moran["strong_clustering"] is False
    assert "warning" not in moran


def test_strong_residual_clustering_warns() -> None:
    from types import SimpleNamespace

    from rtm.diagnostics import residual_autocorrelation
    from rtm.errors import RTMWarning

    grid = Grid.from_area(gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs="EPSG:27700"), 50)
    x, _ = grid.cell_centres()
    counts = (x > 500).astype(np.int64) * 6  # events all in the east half, a flat model
    fake = SimpleNamespace(
        grid=grid,
        counts=counts,
        expected=np.full(grid.n_active, 3.0),
        distribution="poisson",
        dispersion=None,
        nb_form="nbii",
    )
    with pytest.warns(RTMWarning, match="residuals cluster in space"):
        report = residual_autocorrelation(fake, permutations=19)
    assert report["strong_clustering"] is True and report["morans_i"] > 0.5
