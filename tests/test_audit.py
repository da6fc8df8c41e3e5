"""rtm audit: exposure disparity, accuracy parity, feedback, drift (rtm/audit/).

Run folders are made directly (report.json and cells.gpkg, what the audit reads), so the
tests plant a known truth in the surface, the events and the population and need no fit.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from rtm.audit import Thresholds, audit
from rtm.audit.accuracy import accuracy_parity, selection_weights
from rtm.audit.exposure import disparity, parity_selection
from rtm.audit.population import read_population
from rtm.errors import ParameterError
from rtm.export.ownership import read_marker
from rtm.export.vector import write_cells
from rtm.grid import Grid
from rtm.runs import load_run, write_json
from rtm.validation.metrics import capture, score_surface

CRS = "EPSG:27700"
CELL = 100.0


def _grid(n: int = 20) -> Grid:
    area = gpd.GeoSeries([shapely.box(0, 0, n * CELL, n * CELL)], crs=CRS)
    return Grid.from_area(area, CELL)


def make_run(
    folder: Path,
    grid: Grid,
    rrs: np.ndarray,
    events: np.ndarray,
    factors: dict[str, float] | None = None,
) -> Path:
    """A run folder as rtm analyze leaves it, as far as the audit reads it."""
    folder.mkdir(parents=True)
    write_cells(
        folder / "cells.gpkg",
        grid,
        {"events": events.astype(np.int32), "expected": rrs.astype(float), "rrs": rrs},
    )
    report = {
        "schema": "rtm-run/2",
        "version": "test",
        "inputs": {
            "events": int(events.sum()),
            "crs": CRS,
            "cell_size": grid.cell_size,
            "cells": grid.n_active,
            "grid": {
                "x_min": grid.x_min,
                "y_max": grid.y_max,
                "n_rows": grid.n_rows,
                "n_cols": grid.n_cols,
            },
        },
        "model": {
            "factors": [
                {
                    "name": n,
                    "operationalization": "proximity",
                    "spatial_influence": 100.0,
                    "coefficient": float(np.log(r)),
                    "rrv": r,
                }
                for n, r in (factors or {"bars": 2.0}).items()
            ]  # fmt: skip
        },
        "significant": True,
    }
    write_json(folder / "report.json", report)
    return folder


def _population_squares(grid: Grid, side: int, counts) -> Path:
    """Square population units of ``side`` cells; ``counts(i, j)`` -> (group a, group b)."""
    polygons, a, b = [], [], []
    n = grid.n_cols // side
    for i in range(n):
        for j in range(n):
            x0, y0 = grid.x_min + i * side * CELL, grid.y_max - (j + 1) * side * CELL
            polygons.append(shapely.box(x0, y0, x0 + side * CELL, y0 + side * CELL))
            ca, cb = counts(i, j)
            a.append(ca)
            b.append(cb)
    return gpd.GeoDataFrame({"a": a, "b": b}, geometry=polygons, crs=CRS)


def test_planted_exposure_imbalance_is_recovered(tmp_path: Path) -> None:
    """Group a lives where risk is high: its ratio is the planted one, interval around it."""
    grid = _grid(20)
    x, y = grid.cell_centres()
    hot = (x < 500) & (y > grid.y_max - 500)  # a 5 x 5 block of cells: the top 6.25%
    frame = _population_squares(
        grid, 5, lambda i, j: (300.0, 100.0) if (i, j) == (0, 0) else (100.0, 300.0)
    )
    frame.to_file(tmp_path / "pop.gpkg")
    population = read_population(tmp_path / "pop.gpkg", grid)
    rows = disparity(population, {"hot": hot}, n_boot=200, seed=1)
    by_group = {r["group"]: r for r in rows}
    # the area: 15 units of (100, 300) and one of (300, 100): a = 1800 / 6400
    share_a = 1800 / 6400
    assert by_group["a"]["share_in_area"] == pytest.approx(share_a)
    assert by_group["a"]["share_in_selected"] == pytest.approx(0.75)
    assert by_group["a"]["ratio"] == pytest.approx(0.75 / share_a)
    assert by_group["b"]["ratio"] == pytest.approx(0.25 / (1 - share_a))
    low, high = by_group["a"]["ratio_ci"]
    assert low <= 0.75 / share_a <= high and low > 1.5


def test_areal_weighting_splits_units_by_area(tmp_path: Path) -> None:
    """A unit straddling cells gives each its area share; parts outside the grid are lost."""
    grid = _grid(4)
    unit = shapely.box(50, 50, 250, 150)  # 2 cells wide: quarters in 3 columns x 2 rows
    outside = shapely.box(300, 300, 500, 400)  # half outside the 400 m grid
    gpd.GeoDataFrame({"a": [80.0, 40.0]}, geometry=[unit, outside], crs=CRS).to_file(
        tmp_path / "p.gpkg"
    )
    population = read_population(tmp_path / "p.gpkg", grid)
    per_cell = population.per_cell()[:, 0]
    assert per_cell.sum() == pytest.approx(80 + 20)
    x, y = grid.cell_centres()
    cell = (x == 150) & (y == 150)  # the cell [100, 200] x [100, 200]: a quarter of the unit
    assert per_cell[cell][0] == pytest.approx(20.0)


def test_parity_selection_meets_the_constraint_and_costs_capture(tmp_path: Path) -> None:
    """Unconstrained top cells are all group a; the parity alternative balances and costs."""
    grid = _grid(20)
    rng = np.random.default_rng(0)
    x, y = grid.cell_centres()
    hot = (x < 500) & (y > grid.y_max - 500)
    rrs = np.where(hot, 5.0, 1.0) + rng.uniform(0, 0.1, grid.n_active)
    events = rng.poisson(rrs)
    frame = _population_squares(
        grid, 5, lambda i, j: (300.0, 100.0) if (i, j) == (0, 0) else (100.0, 300.0)
    )
    frame.to_file(tmp_path / "pop.gpkg")
    population = read_population(tmp_path / "pop.gpkg", grid)
    chosen, info = parity_selection(population, rrs, int(hot.sum()), tolerance=0.2)
    assert info["feasible"] and chosen.sum() == hot.sum()
    ratios = {r["group"]: r["ratio"] for r in disparity(population, {"p": chosen}, n_boot=0)}
    assert all(0.8 - 0.05 <= v <= 1.2 + 0.05 for v in ratios.values())
    assert events[chosen].sum() < events[hot].sum()  # parity costs capture here


def test_accuracy_parity_merged_subareas_give_the_overall_metric() -> None:
    """One sub-area covering everything = overall; parts add up to the overall capture."""
    rng = np.random.default_rng(3)
    scores = np.round(rng.gamma(2.0, 1.0, 900), 1)  # ties, as risk scores have
    events = rng.poisson(scores)
    merged = accuracy_parity(scores, events, np.full(900, "all"))
    assert merged["subareas"][0]["local"] == score_surface(scores, events)
    assert merged["subareas"][0]["calibration"] == pytest.approx(1.0)
    labels = rng.choice(["north", "south", "east"], 900)
    parts = accuracy_parity(scores, events, labels)["subareas"]
    for key, share in (("5", 0.05), ("10", 0.10)):
        pooled = sum(p["selection"][key]["capture_of_selection"] * p["events"] for p in parts)
        assert pooled / events.sum() == pytest.approx(capture(scores, events, share)[0])
        cells = sum(p["selection"][key]["selected_share"] * p["cells"] for p in parts)
        assert cells == pytest.approx(share * 900)
    assert selection_weights(scores, 0.1).sum() == pytest.approx(90)


def _series(tmp_path: Path, falling: bool) -> Path:
    """Three periods; the same places are selected; their crime falls (or not)."""
    grid = _grid(20)
    x, y = grid.cell_centres()
    hot = (x < 500) & (y > grid.y_max - 500)
    rrs = np.where(hot, 5.0, 1.0)
    root = tmp_path / ("falling" if falling else "steady") / "jobs"
    for t, level in enumerate((8, 5, 2) if falling else (8, 8, 8)):
        events = np.where(hot, level, 2)
        make_run(root / f"p{t}", grid, rrs, events, {"bars": 2.0, "atms": 1.5 + t})
    return root.parent


def test_feedback_monitor_flags_a_planted_case(tmp_path: Path) -> None:
    """Places stay selected while their crime falls: warned; steady crime: not warned."""
    out = audit(_series(tmp_path, True), out=tmp_path / "a1", thresholds=Thresholds(share=0.0625))
    pairs = out["feedback"]["falling"]["pairs"]
    assert [p["selection_persistence"] for p in pairs] == [1.0, 1.0]
    assert pairs[0]["relative_change_selected"] == pytest.approx(5 / 8)
    assert len(out["feedback"]["falling"]["warnings"]) == 2
    steady = audit(_series(tmp_path, False), out=tmp_path / "a2")
    assert steady["feedback"]["steady"]["warnings"] == []
    # drift: atms's RRV goes 1.5 -> 2.5 -> 3.5: only the first change exceeds 1.5x
    drift = out["drift"]["falling"]
    assert [r["review"] for r in drift["runs"]] == [False, True, False]
    assert read_marker(tmp_path / "a1")["kind"] == "audit"
    again = audit(_series(tmp_path / "b", True), out=tmp_path / "a1", overwrite=True)
    assert again["drift"] == out["drift"]
    assert "WARNING" in (tmp_path / "a1" / "audit.md").read_text()


def _rtm(capsys, *args: str) -> tuple[int, str]:
    """The command line in this process (a subprocess costs seconds of imports)."""
    from rtm_cli.main import main

    code = main.main(list(args), standalone_mode=False)
    return int(code or 0), capsys.readouterr().err


def test_audit_cli_of_one_run(tmp_path: Path, capsys) -> None:
    """The command writes audit.json with the required keys; bad options are one line."""
    grid = _grid(20)
    x, y = grid.cell_centres()
    hot = (x < 500) & (y > grid.y_max - 500)
    run = make_run(tmp_path / "run", grid, np.where(hot, 5.0, 1.0), np.where(hot, 3, 1))
    _population_squares(grid, 5, lambda i, j: (100.0 + 50 * i, 100.0)).to_file(tmp_path / "p.gpkg")
    areas = gpd.GeoDataFrame(
        {"name": ["west", "east"]},
        geometry=[shapely.box(0, 0, 1000, 2000), shapely.box(1000, 0, 2000, 2000)],
        crs=CRS,
    )
    areas.to_file(tmp_path / "areas.gpkg")
    code, err = _rtm(
        capsys,
        "audit", str(run), "--population", str(tmp_path / "p.gpkg"), "--subareas",
        str(tmp_path / "areas.gpkg"), "--subarea-column", "name", "--bootstrap", "50",
        "--out", str(tmp_path / "audit"),
    )  # fmt: skip
    assert code == 0, err
    result = json.loads((tmp_path / "audit" / "audit.json").read_text())
    row = result["exposure_disparity"][0]
    assert {"group", "share_in_selected", "share_in_area", "ratio", "selection"} <= set(row)
    assert [s["name"] for s in result["accuracy_parity"]["subareas"]] == ["east", "west"]
    assert result["exposure_parity"][0]["feasible"] in (True, False)
    code, err = _rtm(capsys, "audit", str(run), "--out", str(tmp_path / "audit"))
    assert code == 5 and err.count("\n") == 1
    code, err = _rtm(
        capsys, "audit", str(run), "--surface", "forecast", "--out", str(tmp_path / "x")
    )
    assert code == 2 and "forecast" in err and not (tmp_path / "x").exists()


def test_surface_must_exist_and_groups_must_be_columns(tmp_path: Path) -> None:
    grid = _grid(6)
    run = make_run(tmp_path / "run", grid, np.ones(grid.n_active), np.ones(grid.n_active))
    _population_squares(grid, 3, lambda i, j: (1.0, 1.0)).to_file(tmp_path / "p.gpkg")
    with pytest.raises(ParameterError, match="--groups c"):
        audit(run, out=tmp_path / "o", population=tmp_path / "p.gpkg", groups=["a", "c"])
    assert load_run(run).rrs is not None


def test_accuracy_parity_takes_any_surface_of_the_run(tmp_path: Path) -> None:
    """A forecast.tif beside the risk score is audited with --surface forecast."""
    from rtm.export.raster import write_geotiff

    grid = _grid(10)
    x, _ = grid.cell_centres()
    events = np.where(x > 500, 4, 0)
    run = make_run(tmp_path / "run", grid, np.ones(grid.n_active), events)
    forecast = np.where(x > 500, 3.0, 1.0)  # right where the events are
    write_geotiff(run / "forecast.tif", grid, forecast, names=["forecast"], nodata=-9999.0)
    labels = gpd.GeoDataFrame(
        {"side": ["west", "east"]},
        geometry=[shapely.box(0, 0, 500, 1000), shapely.box(500, 0, 1000, 1000)],
        crs=CRS,
    )
    labels.to_file(tmp_path / "sides.gpkg")
    result = audit(
        run,
        out=tmp_path / "audit",
        surface="forecast",
        subareas=tmp_path / "sides.gpkg",
        subarea_column="side",
    )
    parity = result["accuracy_parity"]
    assert parity["surface"] == "forecast" and parity["overall"]["auc"] == pytest.approx(1.0)
    east = next(s for s in parity["subareas"] if s["name"] == "east")
    assert east["calibration"] == pytest.approx(1.0 / (3 * 50 / (3 * 50 + 50)))


def test_series_come_from_the_batch_summary(tmp_path: Path) -> None:
    """A batch folder's jobs are grouped by area and crime, in the summary's order."""
    grid = _grid(6)
    ones = np.ones(grid.n_active)
    outcomes = []
    for area in ("Camden", "Hackney"):
        for period in ("q2", "q1"):  # the summary's order is the series' order
            job = f"{area.lower()}-robbery-{period}"
            make_run(tmp_path / "batch" / "jobs" / job, grid, ones, ones)
            outcomes.append({"job": job, "area": area, "crime": "robbery", "period": period,
                             "output": str(tmp_path / "batch" / "jobs" / job)})  # fmt: skip
    outcomes.append({"job": "failed-one", "area": "Camden", "crime": "robbery", "output": None})
    write_json(tmp_path / "batch" / "batch.json", {"jobs": 5, "outcomes": outcomes})
    result = audit(tmp_path / "batch", out=tmp_path / "audit")
    assert list(result["drift"]) == ["Camden / robbery", "Hackney / robbery"]
    assert [r["run"] for r in result["drift"]["Camden / robbery"]["runs"]] == [
        "camden-robbery-q2",
        "camden-robbery-q1",
    ]


def test_the_forecast_is_read_at_full_precision_from_cells(tmp_path: Path) -> None:
    """cells.gpkg's forecast column (float64, what rtm analyze writes now) is the surface
    audited, not forecast.tif's float32 copy; a folder without the column reads the raster."""
    from rtm.audit.workflow import run_surfaces
    from rtm.export.raster import write_geotiff
    from rtm.runs import load_run

    grid = _grid(10)
    x, _ = grid.cell_centres()
    run = make_run(tmp_path / "run", grid, np.ones(grid.n_active), np.where(x > 500, 4, 0))
    raster = np.where(x > 500, 3.0, 1.0)
    write_geotiff(run / "forecast.tif", grid, raster, names=["forecast"], nodata=-9999.0)
    np.testing.assert_array_equal(run_surfaces(load_run(run))["forecast"], raster)
    exact = 1.0 + 1e-12 * np.arange(grid.n_active)  # differences float32 cannot hold
    columns = {"events": np.zeros(grid.n_active, np.int32), "forecast": exact}
    write_cells(run / "cells.gpkg", grid, {**columns, "rrs": np.ones(grid.n_active)})
    np.testing.assert_array_equal(run_surfaces(load_run(run))["forecast"], exact)
