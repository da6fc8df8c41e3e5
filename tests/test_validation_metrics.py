"""Validation metrics, baselines and challengers: hand cases and independent implementations."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from rtm.errors import FitError, ParameterError
from rtm.grid import Grid
from rtm.validation import baselines as bl
from rtm.validation import metrics as ev
from rtm.validation.models import fit_exposure_model, fit_forest, permutation_importance_by_group
from rtm.validation.temporal import rolling_windows, summarize_folds

# --------------------------------------------------------------------------- capture / PAI / PEI


def test_capture_hand_case_with_ties_is_pro_rata() -> None:
    # scores 3 | 2 2 | 1 ; events 1 | 2 0 | 1 (total 4); 4 cells
    scores, events = [3, 2, 2, 1], [1, 2, 0, 1]
    # 25% = the top cell -> 1/4; 50% = top + half the tied pair (2 events * 1/2) -> 2/4
    np.testing.assert_allclose(
        ev.capture(scores, events, [0.25, 0.5, 0.75, 1.0]), [0.25, 0.5, 0.75, 1.0]
    )
    # 37.5% = 1.5 cells: top (1) + a quarter of the pair's events (2 * 0.5 / 2) -> 1.5 / 4
    np.testing.assert_allclose(ev.capture(scores, events, 0.375), [0.375])


def test_capture_ignores_grid_order_of_tied_cells() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, 200).astype(float)
    events = rng.poisson(scores)
    base = ev.capture(scores, events)
    for _ in range(5):
        order = rng.permutation(200)
        np.testing.assert_allclose(ev.capture(scores[order], events[order]), base)


def test_capture_equals_expectation_over_random_tie_orders() -> None:
    scores = np.array([5, 4, 4, 4, 4, 1, 1, 0])
    events = np.array([3, 4, 0, 0, 1, 2, 0, 1])
    rng = np.random.default_rng(0)
    k = 3  # 3 of 8 cells = 37.5%: the top cell and 2 of the 4 tied at 4
    draws = []
    for _ in range(20000):
        jitter = rng.random(8) * 1e-3
        order = np.argsort(-(scores + jitter), kind="stable")
        draws.append(events[order[:k]].sum() / events.sum())
    assert ev.capture(scores, events, k / 8)[0] == pytest.approx(np.mean(draws), abs=0.005)
    assert ev.capture(scores, events, k / 8)[0] == pytest.approx((3 + 2 * 5 / 4) / 11)


def test_capture_without_ties_matches_sorting() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(500)
    events = rng.poisson(3 * scores)
    cumulative = np.cumsum(events[np.argsort(-scores)]) / events.sum()
    for k in (5, 25, 50, 100):
        assert ev.capture(scores, events, k / 500)[0] == pytest.approx(cumulative[k - 1])


def test_pai_pei_and_best_capture() -> None:
    scores, events = [3, 2, 2, 1], [1, 2, 0, 1]
    np.testing.assert_allclose(ev.pai(scores, events, [0.25, 0.5]), [1.0, 1.0])
    # the best ranking puts the 2-event cell first: 2/4 at 25%, 3/4 at 50%
    np.testing.assert_allclose(ev.best_capture(events, [0.25, 0.5]), [0.5, 0.75])
    np.testing.assert_allclose(ev.pei(scores, events, [0.25, 0.5]), [0.5, 2 / 3])
    assert ev.pei(events, events, [0.1])[0] == pytest.approx(1.0)


def test_rri_hand_case() -> None:
    # predicted 4,2,2,2 (total 10): top 25% holds 40% of the prediction; observed 1/4 there
    scores, events = [4, 2, 2, 2], [1, 1, 1, 1]
    assert ev.rri(scores, events, [0.25])[0] == pytest.approx(0.4 / 0.25)
    assert ev.predicted_share(scores, [0.5])[0] == pytest.approx(0.6)  # 4 + one tied 2


def test_metric_inputs_are_checked() -> None:
    with pytest.raises(ParameterError, match="events has"):
        ev.capture([1, 2], [1, 2, 3])
    with pytest.raises(ParameterError, match="area shares"):
        ev.capture([1, 2], [1, 0], [1.5])
    with pytest.raises(ParameterError, match="finite"):
        ev.auc([np.nan, 1], [1, 0])


# --------------------------------------------------------------------------- AUC / logistic


def test_auc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    for _ in range(5):
        scores = rng.integers(0, 6, 300).astype(float)  # many ties
        events = rng.poisson(0.3 * scores)
        assert ev.auc(scores, events) == pytest.approx(roc_auc_score(events > 0, scores), abs=1e-12)


def test_auc_hand_case_and_degenerate() -> None:
    assert ev.auc([2, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert ev.auc([1, 1, 1], [1, 1, 1]) != ev.auc([1, 1, 1], [1, 1, 1])  # NaN: one class


def test_logistic_odds_ratio_matches_statsmodels() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    count = rng.integers(0, 5, 2000).astype(float)
    presence = rng.random(2000) < 1 / (1 + np.exp(-(-2 + 0.6 * count)))
    fit = ev.logistic_odds_ratio(count, presence.astype(int))
    reference = sm.Logit(presence.astype(float), sm.add_constant(count)).fit(disp=0)
    assert fit.slope == pytest.approx(reference.params[1], rel=1e-7)
    assert fit.slope_se == pytest.approx(reference.bse[1], rel=1e-6)
    assert fit.odds_ratio == pytest.approx(np.exp(reference.params[1]), rel=1e-7)
    assert fit.ci_low < fit.odds_ratio < fit.ci_high


def test_logistic_refuses_constant_covariate() -> None:
    with pytest.raises(FitError, match="varies"):
        ev.logistic_odds_ratio([1, 1, 1, 1], [0, 1, 0, 1])


# --------------------------------------------------------------------------- baselines


def _grid(n: int = 6, size: float = 10.0) -> Grid:
    return Grid.from_area(gpd.GeoSeries([box(0, 0, n * size, n * size)], crs="EPSG:27700"), size)


def test_quartic_density_matches_double_loop() -> None:
    grid = _grid()
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 60, 40), rng.uniform(0, 60, 40)
    h = 17.0
    cx, cy = grid.cell_centres()
    brute = np.zeros(grid.n_active)
    for i in range(grid.n_active):
        for px, py in zip(x, y, strict=True):
            r2 = (cx[i] - px) ** 2 + (cy[i] - py) ** 2
            if r2 <= h * h:
                brute[i] += 3 / (np.pi * h * h) * (1 - r2 / (h * h)) ** 2
    np.testing.assert_allclose(bl.quartic_density(grid, x, y, h), brute, rtol=1e-12, atol=1e-15)


def test_smoothed_counts_can_leave_out_own_cell() -> None:
    grid = _grid()
    x, y = np.array([5.0, 7.0, 33.0]), np.array([55.0, 52.0, 20.0])  # two in cell (0, 0)
    h = 25.0
    full = bl.smoothed_counts(grid, x, y, h)
    loo = bl.smoothed_counts(grid, x, y, h, exclude_own_cell=True)
    cx, cy = grid.cell_centres()
    # cell 0 (row 0, col 0) keeps only the third point's contribution
    r2 = (cx[0] - 33) ** 2 + (cy[0] - 20) ** 2
    expected0 = 3 / (np.pi * h * h) * max(0.0, 1 - r2 / h**2) ** 2 * 100
    assert loo[0] == pytest.approx(expected0)
    assert full[0] > loo[0]
    counts, outside = bl.counts_in_cells(grid, np.append(x, 100.0), np.append(y, 5.0))
    assert counts.sum() == 3 and outside == 1 and counts[0] == 2


def test_default_bandwidth_rule_is_two_blocks() -> None:
    assert bl.default_bandwidth(150) == 300
    assert "2 x block length" in bl.bandwidth_rule(150, 300)
    with pytest.raises(ParameterError, match="block_length"):
        bl.default_bandwidth(0)


# --------------------------------------------------------------------------- challengers


def test_exposure_model_matches_statsmodels_poisson_with_offset() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(6)
    n = 3000
    env = rng.integers(0, 2, (n, 2)).astype(float)
    exposure = rng.gamma(2.0, 0.5, n)
    offset = np.log(rng.uniform(50, 150, n))
    mu = np.exp(-5 + env @ [0.7, 0.3] + 0.5 * exposure + offset)
    y = rng.poisson(mu)
    fit = fit_exposure_model(env, ["a", "b"], y, exposure, offset=offset)
    X = sm.add_constant(np.column_stack([env, exposure]))
    reference = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit(cov_type="HC0")
    np.testing.assert_allclose(fit.coef, reference.params, rtol=1e-6)
    np.testing.assert_allclose(fit.se, reference.bse, rtol=1e-5)
    assert fit.loglik == pytest.approx(reference.llf, rel=1e-9)
    table = fit.table()
    assert [row["name"] for row in table] == ["a", "b", "exposure"]
    assert table[0]["rrv"] == pytest.approx(np.exp(fit.coef[1])) and table[2]["rrv"] is None
    np.testing.assert_allclose(
        fit.predict(np.column_stack([env, exposure]), offset), reference.fittedvalues, rtol=1e-6
    )


def test_exposure_model_aliases_constant_and_duplicate_columns_like_r() -> None:
    """A window where a layer is constant or copies another: those columns are left out
    (R's glm gives them NA), the rest match statsmodels without them, predict still works."""
    import statsmodels.api as sm

    rng = np.random.default_rng(8)
    n = 2000
    a = rng.integers(0, 2, n).astype(float)
    env = np.column_stack([a, np.zeros(n), a, 1.0 - a])  # constant, duplicate, complement
    exposure = rng.gamma(2.0, 0.5, n)
    y = rng.poisson(np.exp(-2 + 0.6 * a + 0.4 * exposure))
    fit = fit_exposure_model(env, ["a", "none", "copy", "not_a"], y, exposure)
    reference = sm.GLM(
        y, sm.add_constant(np.column_stack([a, exposure])), family=sm.families.Poisson()
    ).fit(cov_type="HC0")
    np.testing.assert_allclose(fit.coef[[0, 1, 5]], reference.params, rtol=1e-6)
    np.testing.assert_allclose(fit.se[[0, 1, 5]], reference.bse, rtol=1e-5)
    table = {row["name"]: row for row in fit.table()}
    assert [name for name, row in table.items() if row.get("aliased")] == ["none", "copy", "not_a"]
    assert table["none"]["coefficient"] is None and table["a"]["rrv"] > 1
    np.testing.assert_allclose(
        fit.predict(np.column_stack([env, exposure])), reference.fittedvalues, rtol=1e-6
    )


def test_forest_is_seeded_and_importance_finds_the_signal() -> None:
    rng = np.random.default_rng(7)
    n = 1500
    X = rng.integers(0, 2, (n, 4)).astype(float)
    y = rng.poisson(np.exp(-1 + 1.5 * X[:, 0]))
    names, groups = ["s1", "s2", "n1", "n2"], ["signal", "signal", "noise", "noise"]
    a = fit_forest(X, y, feature_names=names, groups=groups, seed=1, n_estimators=30)
    b = fit_forest(X, y, feature_names=names, groups=groups, seed=1, n_estimators=30)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    y_test = rng.poisson(np.exp(-1 + 1.5 * X[:, 0]))
    importance = permutation_importance_by_group(a.predict, X, y_test, groups, n_repeats=3)
    assert list(importance) == ["signal", "noise"]
    assert importance["signal"]["auc_drop"] > 0.1 > abs(importance["noise"]["auc_drop"])


# --------------------------------------------------------------------------- temporal


def test_rolling_windows() -> None:
    assert rolling_windows(range(1, 13), train=6, test=3) == [
        ((1, 2, 3, 4, 5, 6), (7, 8, 9)),
        ((4, 5, 6, 7, 8, 9), (10, 11, 12)),
    ]
    assert len(rolling_windows(range(1, 13), train=6, test=1, step=1)) == 6
    with pytest.raises(Exception, match="window needs"):
        rolling_windows(range(1, 5), train=6, test=3)


def test_summarize_folds_mean_and_sd() -> None:
    def report(auc: float) -> dict:
        metrics = {
            "auc": auc,
            "capture": {"10": auc / 2},
            "pai": {"10": auc * 5},
            "pei": {"10": 0.5},
        }
        return {"validation": {**metrics, "baselines": {"prior_kde": metrics}}}

    summary = summarize_folds([report(0.6), report(0.8)])
    assert summary["rtm"]["auc"]["mean"] == pytest.approx(0.7)
    assert summary["rtm"]["auc"]["sd"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert summary["prior_kde"]["capture@10%"]["mean"] == pytest.approx(0.35)


def test_a_metric_is_one_registry_entry(monkeypatch) -> None:
    """A metric added to METRICS is computed for the RTM surface, the challengers and the
    baselines alike, and lands in the validation report."""
    from rtm.validation.report import compare

    def events_in_top_cell(scores, events) -> float:
        return float(np.asarray(events)[int(np.argmax(scores))])

    planted = ev.Metric("top_cell_events", events_in_top_cell, per_share=False)
    monkeypatch.setattr(ev, "METRICS", (*ev.METRICS, planted))
    grid = Grid.from_area(gpd.GeoDataFrame(geometry=[box(0, 0, 40, 40)], crs="EPSG:27700"), 10)
    events = np.arange(grid.n_active, dtype=float)
    scores = events[::-1].copy()
    validation = compare(
        grid,
        events,
        rtm_scores=events,
        factor_count=None,
        baselines={"reversed": scores},
        challengers={"flat": np.ones(grid.n_active)},
    )
    assert validation["top_cell_events"] == grid.n_active - 1
    assert validation["baselines"]["reversed"]["top_cell_events"] == 0
    assert validation["challengers"]["flat"]["top_cell_events"] == 0
    # the printed table and the rolling-origin summaries carry it too
    assert validation.table()[0]["top_cell_events"] == grid.n_active - 1
    assert ("top_cell_events", grid.n_active - 1) in ev.flat_scores(validation.report)
