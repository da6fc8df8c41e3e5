"""The lagged forecasting design of the challengers and the inner model choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest

from rtm.grid import Grid
from rtm.validation import FittedSurface
from rtm.validation import baselines as bl


def _grid(n: int = 7, size: float = 10.0) -> Grid:
    wkt = pyproj.CRS.from_epsg(27700).to_wkt()
    return Grid(0.0, n * size, size, n, n, wkt, np.ones((n, n), bool))


def test_lag_split_rule() -> None:
    split = bl.lag_split([1, 2, 3, 4, 5, 6])
    assert split is not None
    assert (split.earlier, split.later, split.recent) == ((1, 2, 3), (4, 5, 6), (4, 5, 6))
    odd = bl.lag_split([3, 7, 5])  # span 3..7, gaps count as periods
    assert odd is not None
    assert (odd.earlier, odd.later, odd.recent) == ((3, 4), (5, 6, 7), (6, 7))
    thirds = bl.lag_split(range(1, 7), parts=3)
    assert thirds is not None and thirds.recent == (5, 6)
    assert bl.lag_split([4, 4, 4]) is None
    assert bl.lag_split([]) is None


def test_lag_features_match_a_hand_computation() -> None:
    grid = _grid()
    # cell centres are at 5, 15, 25, ...; the cell of interest is row 3, col 3: centre (35, 35)
    x = np.array([35.0, 33.0, 44.0, 35.0, 58.0, 5.0])
    y = np.array([35.0, 36.0, 35.0, 52.0, 35.0, 5.0])
    block = 10.0
    features = bl.lag_features(grid, x, y, n_periods=2, block_length=block)
    assert list(features) == ["own_cell", "ring_10", "ring_20"]
    cx, cy = grid.cell_centres()
    cell = int(np.flatnonzero((cx == 35.0) & (cy == 35.0))[0])
    # own cell: the first two events lie in [30, 40) x [30, 40); 2 events over 2 periods
    assert features["own_cell"][cell] == pytest.approx(1.0)
    assert features["own_cell"].sum() == pytest.approx(len(x) / 2)

    def quartic(r: float, h: float) -> float:
        return 3 / (np.pi * h**2) * (1 - r**2 / h**2) ** 2 if r <= h else 0.0

    for h, name in ((10.0, "ring_10"), (20.0, "ring_20")):
        # other cells' events only: (44, 35) at 9 m, (35, 52) at 17 m, (58, 35) at 23 m
        expected = sum(quartic(r, h) for r in (9.0, 17.0, 23.0)) * grid.cell_size**2 / 2
        assert features[name][cell] == pytest.approx(expected, rel=1e-12)


def evaluate_models(result, x, y, test, *, block_length, train_periods, seed):
    """The validation entry point on a fit in memory and test counts."""
    from rtm.validation import FittedSurface, TestEvents, validate

    fitted = FittedSurface(
        grid=result.grid,
        rrs=result.relative_risk_score,
        train_counts=result.counts,
        selected=result.selected_values(),
        candidates=result.candidates,
        train_x=x,
        train_y=y,
        train_periods=train_periods,
        area=None,
        block_length=block_length,
        seed=seed,
    )
    return validate(fitted, TestEvents.from_counts(test, source="test periods"))


@pytest.fixture(autouse=True)
def _small_forest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer trees: these tests are about which events the design uses, not accuracy."""
    from rtm.validation import boost as gb
    from rtm.validation import models as ch

    monkeypatch.setitem(ch.FOREST_DEFAULTS, "n_estimators", 40)
    monkeypatch.setitem(gb.BOOST_DEFAULTS, "max_iter", 40)


@pytest.fixture(scope="module")
def sample_fit(sample_dir: Path) -> dict[str, Any]:
    from rtm.model import RiskTerrainModel
    from rtm.periods import event_periods
    from rtm.study import build_study_candidates, load_study

    study = load_study(
        area=sample_dir / "area.gpkg",
        block_length=150.0,
        events=sample_dir / "crimes.csv",
        factors_dir=sample_dir / "factors",
        protective=["parks"],
        where=["type=robbery"],
    )
    candidates = build_study_candidates(study)
    month = event_periods(study.events, "month")
    train = month <= 6
    area = study.area_geometry
    counts = study.grid.count_events(study.events.loc[train], area).counts
    test = study.grid.count_events(study.events.loc[~train], area).counts
    result = RiskTerrainModel(seed=0).fit(candidates, counts).result_
    x, y = study.events.geometry.x.to_numpy(), study.events.geometry.y.to_numpy()
    return {
        "result": result,
        "x": x[train],
        "y": y[train],
        "periods": month[train],
        "test": test.astype(float),
    }


def test_lagged_challengers_never_use_test_events(sample_fit: dict[str, Any]) -> None:
    from rtm.validation import metrics as ev
    from rtm.validation.design import challenger_surfaces

    f = sample_fit
    fits = challenger_surfaces(
        f["result"],
        f["x"],
        f["y"],
        block_length=150.0,
        bandwidth=300.0,
        train_periods=f["periods"],
        seed=0,
    )
    forecast = _forecast(f)
    assert fits.report["design"]["kind"] == "lagged"
    assert fits.report["design"]["periods"] == {
        "earlier": [1, 2, 3],
        "later": [4, 5, 6],
        "recent": [4, 5, 6],
    }
    rng = np.random.default_rng(1)
    # shuffled across cells, and half of the cells' test events removed
    changed = np.where(np.arange(f["test"].size) % 2 == 0, rng.permutation(f["test"]), 0.0)
    reports = []
    for test in (f["test"], changed):
        validation = evaluate_models(
            f["result"],
            f["x"],
            f["y"],
            test,
            block_length=150.0,
            train_periods=f["periods"],
            seed=0,
        )
        report = validation.report
        reports.append(report)
        # the scored surfaces are exactly those fitted without any test input
        for name in ("risk_exposure", "forest", "gbm"):
            assert report["challengers"][name]["auc"] == pytest.approx(
                ev.auc(fits.surfaces[name], test), abs=1e-12
            )
        # the forecast is the one made without any test input
        assert report["forecast"]["auc"] == pytest.approx(ev.auc(forecast.surface, test), abs=1e-12)
    first = reports[0]
    for other in reports[1:]:
        assert other["risk_exposure_model"]["table"] == first["risk_exposure_model"]["table"]
        assert other["model_choice"] == first["model_choice"]
        assert other["forecast"]["recipe"] == first["forecast"]["recipe"]
    choice = first["model_choice"]
    assert choice["splits"] == [
        "fit periods 1-3, score 4-6",
        "fit periods 1-2, score 3-5",
    ]
    assert choice["chosen"] in choice["candidates"] == forecast.choice["candidates"]
    assert first["forecast"]["recipe"] == forecast.recipe
    names = [
        row["name"] for row in first["risk_exposure_model"]["table"] if row["kind"] == "exposure"
    ]
    assert names == ["log1p_own_cell", "log1p_ring_150", "log1p_ring_300"]


def test_lagged_prediction_features_come_from_the_recent_window(
    sample_fit: dict[str, Any],
) -> None:
    from rtm.validation.design import challenger_surfaces

    f = sample_fit
    fits = challenger_surfaces(
        f["result"],
        f["x"],
        f["y"],
        block_length=150.0,
        bandwidth=300.0,
        train_periods=f["periods"],
        seed=0,
    )
    recent = f["periods"] >= 4
    expected = bl.lag_features(
        f["result"].grid, f["x"][recent], f["y"][recent], n_periods=3, block_length=150.0
    )
    n_cand = f["result"].candidates.values.shape[1]
    for i, values in enumerate(expected.values()):
        np.testing.assert_allclose(fits.forest_design[:, n_cand + i], values, rtol=1e-6)


def _fitted(f: dict[str, Any], periods: Any) -> FittedSurface:
    result = f["result"]
    return FittedSurface(
        grid=result.grid,
        rrs=result.relative_risk_score,
        train_counts=result.counts,
        selected=result.selected_values(),
        candidates=result.candidates,
        train_x=f["x"],
        train_y=f["y"],
        train_periods=periods,
        area=None,
        block_length=150.0,
        seed=0,
    )


def _forecast(f: dict[str, Any], periods: Any = "given") -> Any:
    from rtm.validation import forecast_for

    return forecast_for(_fitted(f, f["periods"] if periods == "given" else periods))


def test_without_periods_the_same_period_design_is_used(sample_fit: dict[str, Any]) -> None:
    from rtm.validation.design import challenger_surfaces

    f = sample_fit
    fits = challenger_surfaces(
        f["result"], f["x"], f["y"], block_length=150.0, bandwidth=300.0, seed=0
    )
    assert fits.report["design"]["kind"] == "same-period"
    assert "no period" in fits.report["design"]["rule"]
    # the inner validation still runs: Poisson thinning, seeded
    forecast = _forecast(f, periods=None)
    assert forecast.choice["chosen"] in forecast.choice["candidates"]
    assert all(label.startswith("thinning") for label in forecast.choice["splits"])
    assert "promap_1b" not in forecast.surfaces and "sepp" not in forecast.surfaces
    again = _forecast(f, periods=None)
    np.testing.assert_array_equal(again.surface, forecast.surface)


@pytest.mark.parametrize("periods", ["given", None], ids=["lagged", "thinning"])
def test_the_forest_lane_changes_nothing(
    sample_fit: dict[str, Any], monkeypatch: pytest.MonkeyPatch, periods: Any
) -> None:
    """Forests grown on their own thread beside the other fits: the same forecast, byte
    for byte, as everything in turn; the main thread's OpenMP threads are given back."""
    from contextlib import contextmanager

    from threadpoolctl import threadpool_info

    from rtm.validation import forecast as fc

    def openmp() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]

    threads: list[str] = []
    grow = fc.start_challengers

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append("lane" if kwargs["lane"] is not None else "none")
        return grow(*args, **kwargs)

    import os

    import sklearn.ensemble  # noqa: F401  # the OpenMP runtime, loaded

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: there is no lane")
    monkeypatch.setattr(fc, "start_challengers", spy)
    before = openmp()
    laned = _forecast(sample_fit, periods)
    assert set(threads) == {"lane"}, "on 2+ cores the forests go to the lane"
    assert openmp() == before

    @contextmanager
    def no_lane(enabled: bool = True) -> Any:
        yield None

    monkeypatch.setattr(fc, "forest_lane", no_lane)
    threads.clear()
    serial = _forecast(sample_fit, periods)
    assert set(threads) == {"none"}
    np.testing.assert_array_equal(laned.surface, serial.surface)
    assert laned.recipe == serial.recipe and laned.choice == serial.choice
    assert list(laned.surfaces) == list(serial.surfaces)  # the order breaks the rule's ties
    for name, surface in serial.surfaces.items():
        np.testing.assert_array_equal(laned.surfaces[name], surface, err_msg=name)
