"""rtm trial: the NB fit against statsmodels, allocation, planted effects, power, dosage, files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from rtm.trial.allocation import allocate, crossover_schedule, make_blocks, rerandomise
from rtm.trial.displacement import wdd, wdq
from rtm.trial.dosage import locate_pings
from rtm.trial.models import crossover_estimate, parallel_estimate
from rtm.trial.nb import fit_nb2
from rtm.trial.power import history_dispersion, simulate_power
from rtm.trial.synthetic import planted_world, write_pings
from tests.conftest import run_rtm

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


# --------------------------------------------------------------------------- the NB fit


@pytest.mark.parametrize("shape", [0.8, 5.0])
def test_nb_fit_matches_statsmodels(shape: float) -> None:
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(int(shape * 10))
    n = 48
    blocks = np.repeat(np.arange(12), 4)
    baseline = rng.gamma(2.0, 5.0, n).round()
    treated = allocate(blocks, 1)
    x = np.column_stack(
        [
            np.ones(n),
            (blocks[:, None] == np.arange(1, 12)).astype(float),
            np.log1p(baseline),
            treated,
        ]
    )
    mu = np.exp(0.1 + 0.8 * np.log1p(baseline) - 0.35 * treated)
    y = rng.negative_binomial(shape, shape / (shape + mu))
    ours = fit_nb2(y, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # statsmodels' own path (BFGS from its default start, then Newton), not our start
        start = sm.NegativeBinomial(y, x).fit(method="bfgs", maxiter=2000, gtol=1e-10, disp=0)
        theirs = sm.NegativeBinomial(y, x).fit(
            start_params=start.params, method="newton", maxiter=200, tol=1e-12, disp=0
        )
    np.testing.assert_allclose(ours.params, theirs.params[:-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.bse, theirs.bse[:-1], rtol=1e-4)
    assert ours.alpha == pytest.approx(theirs.params[-1], rel=1e-5)
    assert ours.alpha_se == pytest.approx(theirs.bse[-1], rel=1e-3)
    assert ours.loglik == pytest.approx(theirs.llf, abs=1e-6)


def test_crossover_estimate_matches_statsmodels_poisson_with_place_effects() -> None:
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    days, places = 60, 10
    schedule = crossover_schedule(np.repeat(np.arange(5), 2), days, seed=4)
    rates = rng.gamma(4.0, 0.3, places)
    y = rng.poisson(rates[None, :] * np.where(schedule, 0.6, 1.0))
    assert (y.sum(axis=0) > 0).all()  # every place informative: the same cluster count
    ours = crossover_estimate(y, schedule)
    place = np.tile(np.arange(places), days)
    x = np.column_stack([(place[:, None] == np.arange(places)).astype(float), schedule.ravel()])
    theirs = sm.GLM(y.ravel(), x, family=sm.families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": place}
    )
    assert ours.log_irr == pytest.approx(theirs.params[-1], abs=1e-6)
    # statsmodels' cluster correction also multiplies by (n - 1) / (n - k)
    n, k = x.shape
    assert ours.se == pytest.approx(theirs.bse[-1] / np.sqrt((n - 1) / (n - k)), rel=1e-3)


# --------------------------------------------------------------------------- allocation


def test_allocation_is_balanced_within_blocks_and_reproducible() -> None:
    rng = np.random.default_rng(0)
    baseline = rng.poisson(8, 41)
    strata = np.array(["north", "south"])[rng.integers(0, 2, 41)]
    blocks = make_blocks(baseline, 4, strata)
    for block in np.unique(blocks):
        members = blocks == block
        assert len(set(strata[members])) == 1  # blocks never cross a stratum
        assert members.sum() >= 2
    for seed in range(20):
        treated = allocate(blocks, seed)
        for block in np.unique(blocks):
            n_treated, size = treated[blocks == block].sum(), (blocks == block).sum()
            assert abs(2 * n_treated - size) <= 1
        assert np.array_equal(treated, allocate(blocks, seed))
    assert not np.array_equal(allocate(blocks, 1), allocate(blocks, 2))
    draws = rerandomise(blocks, 5, 50)
    assert len({d.tobytes() for d in draws}) > 40  # re-drawn allocations differ
    assert np.array_equal(draws, rerandomise(blocks, 5, 50))


# --------------------------------------------------------------------------- planted truths


def test_planted_30_percent_reduction_is_recovered() -> None:
    """A few seeded trials here; hundreds in ``python -m benchmarks.trial_coverage``."""
    world = planted_world(40, seed=11)
    rng = np.random.default_rng(12)
    covered, estimates, rejected_null = 0, [], 0
    trials = 40
    for seed in range(trials):
        treated, y = world.trial(seed, 0.7, rng)
        estimate = parallel_estimate(y, treated, world.blocks, world.baseline)
        low, high = estimate.ci()
        covered += low <= 0.7 <= high
        estimates.append(estimate.log_irr)
        treated, y0 = world.trial(seed, 1.0, rng)
        rejected_null += parallel_estimate(y0, treated, world.blocks, world.baseline).p_value < 0.05
    assert covered / trials >= 0.85
    assert abs(np.mean(estimates) - np.log(0.7)) < 0.1
    assert rejected_null / trials <= 0.15


def test_power_agrees_with_the_rejection_rate_of_the_evaluation() -> None:
    world = planted_world(40, mean=12.0, seed=21)
    history = history_dispersion(world.panel())
    predicted = simulate_power(history, world.blocks, trial_periods=6, irr=0.7, sims=80, seed=3)
    rng = np.random.default_rng(22)
    trials = 80
    rejected = 0
    for seed in range(trials):
        treated, y = world.trial(1000 + seed, 0.7, rng)
        rejected += parallel_estimate(y, treated, world.blocks, world.baseline).p_value < 0.05
    observed = rejected / trials
    assert 0.2 < observed < 0.9  # the comparison is informative, not at a ceiling
    # Monte Carlo error of each side is about 0.055; many worlds: benchmarks.trial_coverage
    assert abs(predicted.power - observed) < 0.2


# --------------------------------------------------------------------------- displacement


def test_displacement_measures_by_hand() -> None:
    # treated places fell from 100 to 60, controls flat; treated rings fell 50 -> 40
    assert wdq(100, 60, 100, 100, 50, 40, 50, 50) == pytest.approx((-0.2) / (-0.4))
    assert wdq(100, 60, 100, 100, 50, 60, 50, 50) == pytest.approx(0.2 / (-0.4))  # displacement
    out = wdd({"t0": 100, "t1": 60, "c0": 100, "c1": 100, "d0": 50, "d1": 40, "dc0": 50, "dc1": 50})
    assert out["wdd"] == -50
    assert out["se"] == pytest.approx(np.sqrt(100 + 60 + 100 + 100 + 50 + 40 + 50 + 50))
    halved = wdd(
        {"t0": 200, "t1": 60, "c0": 200, "c1": 100, "d0": 100, "d1": 40, "dc0": 100, "dc1": 50},
        scale=0.5,
    )
    assert halved["wdd"] == -50  # a baseline twice as long, scaled to the trial


# --------------------------------------------------------------------------- files and commands


def _invoke(*args: str, code: int = 0) -> str:
    """The command in this process (click's runner): the same code, without a start-up."""
    from click.testing import CliRunner
    from rtm_cli.main import main

    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def sample_trial(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fake run folder (places.gpkg with patrol_places) from the sample city's H1 robberies."""
    root = tmp_path_factory.mktemp("trial")
    crimes = pd.read_csv(SAMPLE / "crimes.csv")
    h1 = crimes[(crimes["type"] == "robbery") & (crimes["month"] <= 6)]
    cells = (
        (h1["x"] // 200).astype(int).astype(str) + "_" + (h1["y"] // 200).astype(int).astype(str)
    )
    top = cells.value_counts().index[:80]
    xy = np.array(
        [[int(c.split("_")[0]) * 200 + 100, int(c.split("_")[1]) * 200 + 100] for c in top]
    )
    run = root / "run"
    run.mkdir()
    patrol = gpd.GeoDataFrame({"place_id": [f"P{i:02d}" for i in range(len(xy))]},
                              geometry=shapely.points(xy), crs="EPSG:32630")  # fmt: skip
    patrol.to_file(run / "places.gpkg", layer="patrol_places")
    gpd.GeoDataFrame({"rank": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:32630").to_file(
        run / "places.gpkg", layer="places"
    )
    return {"root": root, "run": run, "crimes": SAMPLE / "crimes.csv"}


def test_design_power_dosage_evaluate_through_the_command_line(
    sample_trial: dict[str, Path],
) -> None:
    root, run = sample_trial["root"], sample_trial["run"]
    design = root / "design"
    common = [str(run), "--events", str(sample_trial["crimes"]), "--where", "type=robbery",
              "--where", "month=1..6", "--places", "16", "--block-size", "4", "--rings", "50,100",
              "--place-radius", "100", "--min-spacing", "150", "--seed", "7", "-q"]  # fmt: skip
    done = run_rtm("trial", "design", *common, "--out", str(design))  # a real process, once
    assert done.returncode == 0, done.stderr
    allocation = pd.read_csv(design / "allocation.csv", dtype={"place_id": str})
    assert {"place_id", "block", "arm"} <= set(allocation.columns)
    assert set(allocation["arm"]) == {"treatment", "control"}
    assert allocation["place_id"].str.startswith("P").all()  # the patrol_places layer was read
    for _, block in allocation.groupby("block"):
        assert abs((block["arm"] == "treatment").sum() - (block["arm"] == "control").sum()) <= 1
    record = json.loads((design / "design.json").read_text())
    layers = set(gpd.list_layers(design / "allocation.gpkg")["name"])
    assert layers == {"places", "catchments"}
    assert "Stopping rules" in (design / "preregistration.md").read_text()
    # the same inputs and seed: the same allocation and digest; an existing output is kept
    _invoke("trial", "design", *common, "--out", str(root / "design2"))
    assert (root / "design2" / "allocation.csv").read_bytes() == (
        design / "allocation.csv"
    ).read_bytes()
    assert json.loads((root / "design2" / "design.json").read_text())["sha256"] == record["sha256"]
    assert "--overwrite" in _invoke("trial", "design", *common, "--out", str(design), code=5)
    too_many = run_rtm("trial", "design", *common, "--places", "500", "--out", str(root / "x"))
    assert too_many.returncode == 2 and too_many.stderr.count("\n") == 1
    assert not (root / "x").exists()

    _invoke("trial", "power", str(design), "--days", "182", "--effect", "0.5", "--sims", "20",
            "--out", str(root / "power"))  # fmt: skip
    assert 0.0 <= json.loads((root / "power" / "power.json").read_text())["power"]["power"] <= 1.0

    places = gpd.read_file(design / "allocation.gpkg", layer="places")
    treated = (places["arm"] == "treatment").to_numpy()
    expected = write_pings(
        places.geometry.values, treated, "EPSG:32630", root / "pings.csv", days=3, units=2
    )
    _invoke(
        "trial",
        "dosage",
        str(design),
        "--pings",
        str(root / "pings.csv"),
        "--out",
        str(root / "dosage"),
    )
    table = pd.read_csv(root / "dosage" / "dosage.csv", dtype={"place_id": str})
    per_place = table.groupby("place_id")["minutes"].sum() / 3
    treated_ids = set(places["place_id"][treated])
    assert set(per_place.index) == treated_ids
    np.testing.assert_allclose(per_place.to_numpy(), expected, rtol=1e-9)
    compliance = json.loads((root / "dosage" / "dosage.json").read_text())["compliance"]
    assert compliance["control"]["minutes_per_place_day"] == 0.0
    assert compliance["treatment"]["share_of_place_days_visited"] == 1.0

    _invoke("trial", "evaluate", str(design), "--events", str(sample_trial["crimes"]),
            "--where", "type=robbery", "--where", "month=7..12", "--permutations", "30",
            "--dosage", str(root / "dosage"), "--out", str(root / "evaluation"))  # fmt: skip
    result = json.loads((root / "evaluation" / "evaluation.json").read_text())
    effect = result["effect"]
    assert {"irr", "ci", "p_value", "p_randomization"} <= set(effect)
    assert effect["ci"][0] <= effect["irr"] <= effect["ci"][1]
    assert 1 / 31 <= effect["p_randomization"] <= 1.0
    assert {"rings", "all_rings"} <= set(result["displacement"])
    assert result["dose_response"]["observational"] is True
    assert "CONSORT" in (root / "evaluation" / "evaluation.html").read_text()


def test_locate_pings_matches_a_naive_loop() -> None:
    rng = np.random.default_rng(4)
    fences = shapely.buffer(shapely.points(rng.uniform(0, 1000, (30, 2))), 40.0)
    x, y = rng.uniform(-100, 1100, 5000), rng.uniform(-100, 1100, 5000)
    fast = locate_pings(np.asarray(fences), x, y)
    naive = np.full(len(x), -1)
    for i, point in enumerate(shapely.points(x, y)):
        hits = [j for j, fence in enumerate(fences) if fence.intersects(point)]
        naive[i] = hits[0] if hits else -1
    assert np.array_equal(fast, naive)
    assert (fast >= 0).sum() > 50


def test_crossover_design_and_evaluation(sample_trial: dict[str, Path]) -> None:
    from rtm.trial import DesignSettings, EventSource, design_trial, evaluate_trial

    root = sample_trial["root"]
    settings = DesignSettings(places=12, seed=3, scheme="crossover", crossover_days=40,
                              start_date="2024-07-01", rings=(50.0, 100.0), min_spacing=150.0,
                              place_radius=100.0)  # fmt: skip
    history = EventSource(file=str(sample_trial["crimes"]), where=("type=robbery", "month=1..6"))
    design = design_trial(sample_trial["run"], root / "crossover", settings, events=history)
    schedule = design.schedule
    assert schedule is not None and schedule["date"].nunique() == 40
    for _, day in schedule.groupby(["date", "block"]):  # every day, every block balanced
        assert abs(2 * (day["arm"] == "treatment").sum() - len(day)) <= 1
    result = evaluate_trial(root / "crossover", sample_trial["crimes"], root / "crossover_eval",
                            where=("type=robbery", "month=7..8"), permutations=20)  # fmt: skip
    days = result["place_days"]
    assert days["treatment"]["place_days"] + days["control"]["place_days"] == 12 * 40
    assert result["effect"]["ci"][0] <= result["effect"]["irr"] <= result["effect"]["ci"][1]
    assert "place-days" in result["summary"]
