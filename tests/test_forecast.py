"""The forecast's parts: the KDE ladder, the self-exciting process (vs its naive twin and a
planted cascade), the lift's weighted metrics, the inner splits and the choice on
synthetic cities with planted near repeats and with purely environmental risk."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rtm.validation import baselines as bl
from rtm.validation import metrics as ev
from tests.naive import naive_sepp


def _grid(n: int = 30, size: float = 50.0) -> Any:
    import pyproj

    from rtm.grid import Grid

    wkt = pyproj.CRS.from_epsg(27700).to_wkt()
    return Grid(0.0, n * size, size, n, n, wkt, np.ones((n, n), bool))


def test_kde_ladder_is_the_quartic_density_at_each_radius() -> None:
    from rtm.validation.hotspots import LADDER_BLOCKS, kde_ladder, weighted_quartic_density

    grid = _grid()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1500, 200), rng.uniform(0, 1500, 200)
    ladder = kde_ladder(grid, x, y, 100.0)
    assert list(ladder) == [f"kde_{b:g}b" for b in LADDER_BLOCKS]
    for b in LADDER_BLOCKS:
        expected = bl.quartic_density(grid, x, y, b * 100.0)
        np.testing.assert_allclose(ladder[f"kde_{b:g}b"], expected, rtol=1e-12, atol=1e-18)
    w = rng.random(200)
    weighted = weighted_quartic_density(grid, x, y, 150.0, w)
    one = weighted_quartic_density(grid, x[:1], y[:1], 150.0) * w[0]
    rest = weighted_quartic_density(grid, x[1:], y[1:], 150.0, w[1:])
    np.testing.assert_allclose(weighted, one + rest, rtol=1e-12, atol=1e-18)


def _cascade(
    rng: np.random.Generator, *, n_background: int, theta: float, delay: float, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A planted Hawkes cascade on a 3 km square over 365 days."""
    parents = np.column_stack(
        [rng.uniform(0, 3000, (n_background, 2)), rng.uniform(0, 365, n_background)]
    )
    events = [parents]
    while len(parents):
        source = np.repeat(parents, rng.poisson(theta, len(parents)), axis=0)
        child = source + np.column_stack(
            [rng.normal(0, sigma, (len(source), 2)), rng.exponential(delay, len(source))]
        )
        child = child[child[:, 2] < 365]
        events.append(child)
        parents = child
    every = np.vstack(events)
    return every[:, 0], every[:, 1], every[:, 2]


def test_sepp_em_matches_its_naive_twin() -> None:
    from rtm.validation.sepp import fit_sepp

    rng = np.random.default_rng(3)
    x, y, t = _cascade(rng, n_background=60, theta=0.5, delay=8.0, sigma=60.0)
    for iterations in (1, 4):
        fast = fit_sepp(x, y, t, block_length=100.0, area=9e6, max_iter=iterations, tol=0.0)
        slow = naive_sepp(x, y, t, block_length=100.0, area=9e6, iterations=iterations)
        assert fast.theta == pytest.approx(slow["theta"], rel=1e-9)
        assert 1 / fast.omega == pytest.approx(1 / slow["omega"], rel=1e-9)
        assert fast.sigma == pytest.approx(slow["sigma"], rel=1e-9)
        np.testing.assert_allclose(fast.p_background, slow["p_back"], rtol=1e-9)


def test_sepp_pairs_match_every_pair_checked_by_hand() -> None:
    """The space-time box search gives exactly the pairs of a double loop: later event as
    child, 0 < delay <= the cut-off, distance <= the radius (both cut-offs included), in
    (child, parent) order; events on a grid of places and days put many pairs on the very
    edges, and ties in time are no pair."""
    from rtm.validation.sepp import candidate_pairs

    rng = np.random.default_rng(5)
    n = 400
    x = rng.integers(0, 12, n) * 50.0  # on a 50 m lattice: distances of exactly 100 m, 150 m
    y = rng.integers(0, 12, n) * 50.0
    t = rng.integers(0, 40, n) * 3.0  # whole days, 3 apart: delays of exactly 30 days
    radius, days = 150.0, 30.0
    expected = []
    for child in range(n):
        for parent in range(n):
            dt = t[child] - t[parent]
            d2 = (x[child] - x[parent]) ** 2 + (y[child] - y[parent]) ** 2
            if 0 < dt <= days and d2 <= radius**2:
                expected.append((child, parent, dt, d2))
    parent, child, dt, d2 = candidate_pairs(x, y, t, radius, days)
    got = zip(child.tolist(), parent.tolist(), dt.tolist(), d2.tolist(), strict=True)
    assert list(got) == expected
    assert any(e[2] == days for e in expected) and any(e[3] == radius**2 for e in expected)
    one = candidate_pairs(x[:1], y[:1], t[:1], radius, days)
    assert all(part.size == 0 for part in one)


def test_sepp_pairs_of_a_subset_from_the_store() -> None:
    """A subset's pairs taken from the whole set's search are its own search's, array for
    array (a time prefix, as the inner windows are, and a random half), and a fit given
    them is the same fit; another radius gets None (the caller searches)."""
    from rtm.validation.sepp import PairStore, candidate_pairs, fit_sepp

    rng = np.random.default_rng(8)
    n = 3000
    centres = rng.random((25, 2)) * 6000
    at = rng.integers(0, 25, n)
    x = centres[at, 0] + rng.normal(0, 250, n)
    y = centres[at, 1] + rng.normal(0, 250, n)
    t = rng.random(n) * 270  # unsorted, as events come
    store = PairStore(x, y, t, block_length=200.0)
    for keep in (t < 150.0, rng.random(n) < 0.5, np.ones(n, dtype=bool)):
        own = candidate_pairs(x[keep], y[keep], t[keep], store.radius)
        taken = store.pairs(keep, store.radius)
        assert taken is not None and own[0].size > 1000
        for mine, theirs in zip(taken, own, strict=True):
            assert mine.dtype == theirs.dtype
            np.testing.assert_array_equal(mine, theirs)
    assert store.pairs(t < 150.0, store.radius / 2) is None
    prefix = t < 150.0
    alone = fit_sepp(x[prefix], y[prefix], t[prefix], block_length=200.0, area=36e6)
    shared = fit_sepp(
        x[prefix],
        y[prefix],
        t[prefix],
        block_length=200.0,
        area=36e6,
        pairs=lambda radius: store.pairs(prefix, radius),
    )
    assert alone.as_dict() == shared.as_dict()
    np.testing.assert_array_equal(alone.p_background, shared.p_background)


def test_sepp_recovers_a_planted_cascade() -> None:
    from rtm.validation.sepp import fit_sepp, sepp_surface

    rng = np.random.default_rng(11)
    x, y, t = _cascade(rng, n_background=500, theta=0.5, delay=5.0, sigma=40.0)
    fit = fit_sepp(x, y, t, block_length=100.0, area=9e6)
    assert fit.theta == pytest.approx(0.5, abs=0.12)
    assert 1 / fit.omega == pytest.approx(5.0, rel=0.35)
    assert fit.sigma == pytest.approx(40.0, rel=0.3)
    # the forecast of the next days is highest around the latest events
    grid = _grid(60, 50.0)
    surface = sepp_surface(fit, grid, x, y, t, start=float(t.max()), horizon=7.0)
    latest = np.argmax(t)
    cx, cy = grid.cell_centres()
    near = (cx - x[latest]) ** 2 + (cy - y[latest]) ** 2 < 50.0**2
    assert surface[near].max() > np.quantile(surface, 0.95)


def test_sepp_pair_radius_shrinks_to_a_work_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense events (11,000 thefts in one borough took 66 s): the pair radii halve until
    at most MAX_PAIRS pairs lie within them; the count is checked by brute force."""
    from rtm.validation import sepp

    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 1000, 400), rng.uniform(0, 1000, 400)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    pairs = lambda r: int((d[np.triu_indices(400, 1)] <= r).sum())  # noqa: E731
    assert sepp.radius_within_budget(x, y, 400.0, 25.0) == 400.0  # 2M: far under
    monkeypatch.setattr(sepp, "MAX_PAIRS", pairs(120.0))
    r = sepp.radius_within_budget(x, y, 400.0, 25.0)
    assert r == 100.0 and pairs(r) <= sepp.MAX_PAIRS < pairs(2 * r)
    monkeypatch.setattr(sepp, "MAX_PAIRS", 0)
    assert sepp.radius_within_budget(x, y, 400.0, 25.0) == 25.0  # never below the floor
    t = rng.uniform(0, 100, 400)
    fit = sepp.fit_sepp(x, y, t, block_length=100.0, area=1e6)
    assert fit.as_dict()["pair_radius"] == 25.0 and fit.bandwidth == 25.0


@pytest.mark.parametrize("sigma", [1.0, 30.0, 200.0])
def test_sepp_surface_keeps_the_triggered_mass_whatever_the_kernel_width(sigma: float) -> None:
    """The expected triggered events summed over the cells equal what the process says
    (theta x the share of each event's delays left in the window), also when the kernel
    is far narrower than a cell: police.uk snaps repeats to one point, sigma falls to its
    1 m floor, and a density read at cell centres lost nearly all of that mass."""
    from rtm.validation.sepp import SeppFit, sepp_surface

    rng = np.random.default_rng(9)
    grid = _grid(40, 100.0)
    x, y = rng.uniform(1200, 2800, 50), rng.uniform(1200, 2800, 50)
    t = rng.uniform(0, 30, 50)
    fit = SeppFit(0.0, 0.5, 0.1, sigma, np.ones(50), 1, True, 200.0, 16e6)
    surface = sepp_surface(fit, grid, x, y, t, start=30.0, horizon=10.0)
    age = 30.0 - t
    expected = (0.5 * (np.exp(-0.1 * age) - np.exp(-0.1 * (age + 10.0)))).sum()
    assert surface.sum() == pytest.approx(expected, rel=0.02)


def test_weighted_metrics_with_unit_weights_are_the_metrics() -> None:
    from rtm.validation.lift import _groups, weighted_auc, weighted_capture

    rng = np.random.default_rng(5)
    scores = rng.integers(0, 6, 400).astype(float)  # many ties
    events = rng.poisson(0.4, 400).astype(float)
    ones = np.ones(400)
    group = _groups(scores)
    assert weighted_auc(group, events, ones) == pytest.approx(ev.auc(scores, events), abs=1e-12)
    for share in (0.01, 0.1, 0.2):
        assert weighted_capture(group, events, ones, share) == pytest.approx(
            ev.capture(scores, events, [share])[0], abs=1e-12
        )
    # weight 2 on a cell is the cell drawn twice
    w = np.ones(400)
    w[:50] = 2.0
    twice = np.concatenate([np.arange(400), np.arange(50)])
    assert weighted_auc(group, events, w) == pytest.approx(
        ev.auc(scores[twice], events[twice]), abs=1e-12
    )
    assert weighted_capture(group, events, w, 0.1) == pytest.approx(
        ev.capture(scores[twice], events[twice], [0.1])[0], abs=1e-12
    )


def test_weighted_metrics_on_every_resample_at_once_are_the_same_bytes() -> None:
    """The lift's bootstrap scores all resamples in one pass: the same floats, bit for bit,
    as scoring each resample alone (its slow twin), including resamples without events."""
    from rtm.validation.lift import (
        _groups,
        weighted_auc,
        weighted_auc_many,
        weighted_capture,
        weighted_capture_many,
    )

    for seed, cells in ((11, 700), (12, 4000), (13, 90)):
        rng = np.random.default_rng(seed)
        scores = rng.gamma(0.5, 1.0, cells).round(2 + seed % 2)  # ties
        events = rng.poisson(0.3, cells).astype(float)
        group = _groups(scores)
        draws = rng.poisson(1.0, (60, cells))  # how often each cell was drawn
        draws[3, events > 0] = 0  # a resample without events: no capture, no AUC
        draws[4] = 0
        single_auc = [weighted_auc(group, events, w) for w in draws]
        single_capture = [weighted_capture(group, events, w, 0.1) for w in draws]
        np.testing.assert_array_equal(weighted_auc_many(group, events, draws), single_auc)
        np.testing.assert_array_equal(
            weighted_capture_many(group, events, draws, 0.1), single_capture
        )
        assert np.isnan(single_auc[3]) and np.isnan(single_capture[4])


def test_inner_splits_lagged_and_thinning() -> None:
    from rtm.validation.forecast import inner_splits

    periods = np.repeat(np.arange(1, 7), 10)
    splits = inner_splits(periods, periods.size, 0)
    assert [s.label for s in splits] == [
        "fit periods 1-3, score 4-6",
        "fit periods 1-2, score 3-5",
    ]
    for split in splits:  # fit strictly before the held-out window
        assert periods[split.fit].max() < periods[split.score].min()
    thin = inner_splits(None, 1000, 7)
    assert len(thin) == 3 and all(s.label.startswith("thinning") for s in thin)
    for split in thin:
        assert not np.any(split.fit & split.score) and np.all(split.fit | split.score)
    again = inner_splits(None, 1000, 7)
    assert all(np.array_equal(a.fit, b.fit) for a, b in zip(thin, again, strict=True))
    assert len(inner_splits(np.array([1, 2, 1, 2]), 4, 0)) == 3  # too short: thinning


def _city_forecast(near_repeats: bool, seed: int = 2) -> tuple[Any, np.ndarray]:
    import geopandas as gpd

    from rtm.synthetic import add_near_repeats, generate_city
    from rtm.validation import FittedSurface, forecast_for

    city = generate_city(seed=seed, radius=2500, block_length=150, cell_size=75)
    crimes = city.crimes[city.crimes.type == "robbery"].reset_index(drop=True)
    outline = city.area.geometry.iloc[0]
    if near_repeats:
        crimes = add_near_repeats(crimes, outline, seed=seed, triggered=0.6)
    month = crimes["month"].to_numpy()
    fit = month <= 6
    x, y = crimes.x.to_numpy(), crimes.y.to_numpy()
    counts, _ = bl.counts_in_cells(city.grid, x[fit], y[fit])
    test, _ = bl.counts_in_cells(city.grid, x[~fit], y[~fit])
    frame = gpd.GeoDataFrame(
        crimes[fit].reset_index(drop=True), geometry=gpd.points_from_xy(x[fit], y[fit])
    )
    fitted = FittedSurface(
        grid=city.grid,
        rrs=None,
        train_counts=counts,
        selected={},
        candidates=None,
        train_x=x[fit],
        train_y=y[fit],
        train_periods=month[fit],
        area=outline,
        block_length=150.0,
        train_events=frame,
        extra={"period_column": "date"},
    )
    return forecast_for(fitted, challengers=False), test.astype(float)


def test_forecast_keeps_up_with_the_best_baseline_on_planted_cities() -> None:
    """Three planted cities, each with environmental risk only and with a near-repeat
    cascade: the forecast (chosen on the fit half only) against the best of every
    surface *in hindsight* on the test half. A choice made before the test cannot match
    the hindsight maximum of a dozen noisy surfaces every time (seeds 0-7 trailed it by
    0.06 AUC points and 0.44 capture points on average), so: on average within 0.5 AUC
    and 1 capture point, and never more than 3 points behind in any city."""
    lifts = []
    for seed in (0, 1, 2):
        for near_repeats in (False, True):
            forecast, test = _city_forecast(near_repeats, seed)
            theta = forecast.reports["sepp"]["triggered_per_event"]
            assert (theta > 0.2) if near_repeats else (theta < 0.1)  # planted 0.6
            best_auc = max(ev.auc(v, test) for v in forecast.surfaces.values())
            best_cap = max(ev.capture(v, test, [0.1])[0] for v in forecast.surfaces.values())
            lifts.append(
                (
                    ev.auc(forecast.surface, test) - best_auc,
                    ev.capture(forecast.surface, test, [0.1])[0] - best_cap,
                )
            )
    auc, capture = np.array(lifts).T
    assert auc.mean() >= -0.005 and capture.mean() >= -0.01, lifts
    assert auc.min() >= -0.03 and capture.min() >= -0.03, lifts


def test_boosted_trees_are_the_same_on_one_and_two_threads() -> None:
    """The boosted fit now uses the process's OpenMP threads: it must not depend on them."""
    from threadpoolctl import threadpool_limits

    from rtm.validation.boost import fit_boost

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.integers(0, 2, (3000, 6)), rng.gamma(1.0, 1.0, (3000, 4))])
    y = rng.poisson(np.exp(-1 + X[:, 0] + 0.3 * X[:, 7]))
    fits = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            fit = fit_boost(X, y, feature_names=[f"c{i}" for i in range(10)], seed=4)
            fits.append(fit.predict(X))
    np.testing.assert_array_equal(fits[0], fits[1])


def test_binary_layers_that_threshold_a_continuous_one_are_left_to_it() -> None:
    from types import SimpleNamespace as C

    from rtm.validation.boost import thresholds_of

    names = ["bars:distance", "bars:density_100", "bars:density_200", "bars:density_400"]
    candidates = [
        C(factor="bars", operationalization="proximity", spatial_influence=200.0),
        C(factor="bars", operationalization="proximity", spatial_influence=1000.0),  # > cap
        C(factor="bars", operationalization="density", spatial_influence=400.0),
        C(factor="bars", operationalization="density", spatial_influence=300.0),  # off ladder
        C(factor="bars", operationalization="network_proximity", spatial_influence=200.0),
        C(factor="pubs", operationalization="proximity", spatial_influence=200.0),  # no twin
    ]
    got = thresholds_of(candidates, names, block_length=200.0)
    assert got.tolist() == [True, False, True, False, False, False]
