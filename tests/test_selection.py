"""Tests of rtm.selection (glm, culling, stepwise) against slow twins (tests/naive_selection.py)."""

from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.discrete.discrete_model import NegativeBinomial

from rtm.errors import FitError, ParameterError
from rtm.selection import cull, enet_path, fold_assignment, select_model, stepwise
from rtm.selection.data import CollapsedData, collapse, loglik_constant
from rtm.selection.enet import column_scale as _column_scale
from rtm.selection.enet import lambda_max as _lambda_max
from rtm.selection.glm import GLMFit, fit_collapsed, fit_glm
from rtm.selection.stepwise import _ModelFitter

sys.path.insert(0, str(Path(__file__).parent))
from naive_selection import (  # noqa: E402
    naive_admissible,
    naive_enet,
    naive_extended_collapse,
    naive_fit,
    naive_folds,
    naive_stepwise,
)


def planted(
    seed, n, n_cols, effects, *, protective=(), intercept=-0.8, size=None, density=(0.1, 0.5)
):
    """Random binary design with planted effects; NB counts when ``size`` is given."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, n_cols)) < rng.uniform(*density, n_cols)).astype(np.int8)
    X[:, list(protective)] *= -1
    beta = np.zeros(n_cols)
    for j, b in effects.items():
        beta[j] = b
    mu = np.exp(intercept + X @ beta)
    y = rng.poisson(mu) if size is None else rng.negative_binomial(size, size / (size + mu))
    return X, y.astype(np.int64)


def sm_bic(llf, k, n):
    return -2 * llf + k * np.log(n)


# ---------------------------------------------------------------------------
# GLM fits vs statsmodels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed,n", [(0, 500), (1, 1500), (2, 3000)])
def test_poisson_matches_statsmodels(seed, n):
    X, y = planted(seed, n, 4, {0: 0.7, 1: 0.3, 3: 0.5}, protective=[3])
    ours = fit_glm(X, y, distribution="poisson")
    exog = sm.add_constant(X.astype(float), has_constant="add")
    ref = sm.GLM(y, exog, family=sm.families.Poisson()).fit(tol=1e-13, maxiter=200)
    np.testing.assert_allclose(ours.coef, ref.params, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours.se, ref.bse, rtol=1e-4)
    np.testing.assert_allclose(ours.pvalues, ref.pvalues, rtol=1e-3, atol=1e-12)
    assert ours.loglik == pytest.approx(ref.llf, rel=1e-9)
    assert ours.bic == pytest.approx(sm_bic(ref.llf, 5, n), rel=1e-9)
    assert ours.aic == pytest.approx(ref.aic, rel=1e-9)
    assert (ours.n, ours.n_params, ours.dispersion, ours.converged) == (n, 5, None, True)


@pytest.mark.parametrize("distribution,method", [("nb2", "nb2"), ("nbii", "nb1")])
@pytest.mark.parametrize("seed,n", [(10, 600), (11, 2000)])
def test_negative_binomial_matches_statsmodels(distribution, method, seed, n):
    X, y = planted(seed, n, 3, {0: 0.8, 2: 0.4}, protective=[1], size=1.5)
    ours = fit_glm(X, y, distribution=distribution)
    exog = sm.add_constant(X.astype(float), has_constant="add")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NegativeBinomial(y, exog, loglike_method=method).fit(
            method="newton", maxiter=300, tol=1e-13, disp=0
        )
    np.testing.assert_allclose(ours.coef, ref.params[:-1], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours.se, ref.bse[:-1], rtol=1e-4)
    assert ours.loglik == pytest.approx(ref.llf, rel=1e-9)
    assert ours.bic == pytest.approx(sm_bic(ref.llf, 5, n), rel=1e-9)
    alpha = ref.params[-1]
    expected_dispersion = 1 / alpha if distribution == "nb2" else alpha
    assert ours.dispersion == pytest.approx(expected_dispersion, rel=1e-5)
    assert ours.n_params == 5 and ours.converged and not ours.at_boundary


@pytest.mark.parametrize("distribution", ["poisson", "nb2", "nbii"])
def test_frequency_weights_equal_expanded_rows(distribution):
    X, y = planted(20, 700, 3, {0: 0.6, 1: 0.4}, size=None if distribution == "poisson" else 2.0)
    weights = np.random.default_rng(21).integers(0, 4, size=len(y))
    weighted = fit_glm(X, y, distribution=distribution, weights=weights)
    expanded = fit_glm(
        np.repeat(X, weights, axis=0), np.repeat(y, weights), distribution=distribution
    )
    np.testing.assert_allclose(weighted.coef, expanded.coef, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(weighted.se, expanded.se, rtol=1e-7)
    assert weighted.loglik == pytest.approx(expanded.loglik, rel=1e-11)
    assert weighted.n == expanded.n == weights.sum()
    assert weighted.bic == pytest.approx(expanded.bic, rel=1e-11)


def _uncollapsed(X, y, w):
    design = np.column_stack([np.ones(len(y)), X.astype(float)])
    return CollapsedData(
        design, y.astype(float), w.astype(float), loglik_constant(y, w), float(w.sum())
    )


@pytest.mark.parametrize("distribution", ["poisson", "nb2", "nbii"])
def test_collapsed_equals_uncollapsed(distribution):
    X, y = planted(
        30,
        900,
        3,
        {0: 0.6, 2: 0.3},
        protective=[2],
        size=None if distribution == "poisson" else 3.0,
    )
    w = np.ones(len(y))
    raw = fit_collapsed(_uncollapsed(X, y, w), distribution)
    data = collapse(X, y, w, distribution)
    assert data.design.shape[0] < len(y) / 10  # the collapse did collapse
    folded = fit_collapsed(data, distribution)
    np.testing.assert_allclose(folded.coef, raw.coef, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(folded.se, raw.se, rtol=1e-8)
    assert folded.loglik == pytest.approx(raw.loglik, rel=1e-12)
    # the bit-pattern collapse used by stepwise gives the same fit
    from rtm.selection.data import validate_binary_design

    Xb, sign = validate_binary_design(X)
    fitter = _ModelFitter(Xb, sign, y, w, distribution)
    via_bits = fitter.fit((0, 1, 2))
    np.testing.assert_allclose(via_bits.coef, raw.coef, rtol=1e-9, atol=1e-11)
    assert via_bits.loglik == pytest.approx(raw.loglik, rel=1e-12)


def test_poisson_loglik_constant_matters():
    # counts > 1 make log(y!) nonzero: a dropped constant would show here
    X, y = planted(31, 400, 2, {0: 1.5}, intercept=0.5)
    assert y.max() > 3
    ref = sm.GLM(y, sm.add_constant(X.astype(float)), family=sm.families.Poisson()).fit()
    assert fit_glm(X, y).loglik == pytest.approx(ref.llf, rel=1e-9)


@pytest.mark.parametrize("distribution", ["poisson", "nb2", "nbii"])
@pytest.mark.parametrize("code", [1, -1])
def test_separation_is_detected_not_looped(distribution, code):
    X, y = planted(40, 800, 2, {0: 0.7}, size=None if distribution == "poisson" else 2.0)
    y[X[:, 1] == 1] = 0  # every exposed cell of column 1 has no event
    X[:, 1] *= code
    fit = fit_glm(X, y, distribution=distribution)
    assert fit.separated and not fit.converged
    assert np.sign(fit.coef[2]) == -code and abs(fit.coef[2]) > 15
    assert fit.pvalues[2] > 0.5  # never admissible
    assert fit.n_iter < 200


@pytest.mark.parametrize("distribution", ["poisson", "nb2", "nbii"])
def test_constant_column_raises_fit_error(distribution):
    X, y = planted(41, 300, 2, {0: 0.7})
    for bad in (np.zeros(300), np.ones(300)):
        with pytest.raises(FitError, match="rank deficient"):
            fit_glm(np.column_stack([X, bad]), y, distribution=distribution)


@pytest.mark.parametrize("distribution,boundary", [("nb2", np.inf), ("nbii", 0.0)])
def test_negative_binomial_poisson_boundary(distribution, boundary):
    X, y = planted(42, 1500, 2, {0: 0.7})
    y = np.minimum(y, 1)  # under-dispersed: the NB MLE sits at the Poisson boundary
    fit = fit_glm(X, y, distribution=distribution)
    pois = fit_glm(X, y, distribution="poisson")
    assert fit.at_boundary and fit.converged and fit.dispersion == boundary
    np.testing.assert_allclose(fit.coef, pois.coef)
    assert fit.loglik == pytest.approx(pois.loglik)
    assert fit.n_params == pois.n_params + 1
    assert fit.bic == pytest.approx(pois.bic + np.log(1500))


def test_no_events_raise_fit_error():
    with pytest.raises(FitError, match="no events"):
        fit_glm(np.zeros((10, 0)), np.zeros(10, dtype=int))


def test_fit_is_frozen():
    X, y = planted(43, 200, 1, {0: 0.5})
    fit = fit_glm(X, y)
    assert isinstance(fit, GLMFit)
    with pytest.raises(AttributeError):
        fit.bic = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        fit.coef[0] = 1.0


# ---------------------------------------------------------------------------
# stepwise
# ---------------------------------------------------------------------------

STEPWISE_CASES = [
    # seed, n, factors x candidates, planted {col: beta}, protective columns, NB size
    (100, 600, (3, 3), {0: 0.6, 4: 0.5}, [3, 4, 5], None),
    (101, 1200, (4, 2), {1: 0.5, 2: 0.3, 7: 0.4}, [6, 7], None),
    (102, 400, (5, 2), {0: 0.9, 9: 0.6}, [9], None),
    (103, 1500, (3, 4), {2: 0.5, 5: 0.4, 11: 0.3}, [4, 5], 2.0),
    (104, 800, (4, 3), {0: 0.7, 7: 0.5}, [6, 7, 8], 1.5),
]


def _stepwise_case(seed, n, shape, effects, protective, size):
    n_factors, per_factor = shape
    n_cols = n_factors * per_factor
    X, y = planted(seed, n, n_cols, effects, protective=protective, size=size)
    groups = np.repeat(np.arange(n_factors), per_factor)
    return X, y, groups


@pytest.mark.parametrize("case", STEPWISE_CASES, ids=[str(c[0]) for c in STEPWISE_CASES])
@pytest.mark.parametrize("distribution", ["poisson", "nb2", "nbii"])
def test_stepwise_matches_naive_twin(case, distribution):
    X, y, groups = _stepwise_case(*case)
    ours = stepwise(X, y, groups, distribution=distribution)
    naive_selected, naive_bic = naive_stepwise(X, y, groups, distribution)
    assert ours.selected == naive_selected
    assert ours.fit.bic == pytest.approx(naive_bic, rel=1e-7)
    assert len(ours.selected) >= 1


def _brute_force_best(X, y, groups, distribution, alpha=0.05):
    per_factor = [[None] + list(np.flatnonzero(groups == g)) for g in np.unique(groups)]
    best = (np.inf, None)
    for combo in itertools.product(*per_factor):
        model = tuple(sorted(int(j) for j in combo if j is not None))
        fit = fit_glm(X[:, list(model)], y, distribution=distribution)
        ok = not model or (
            fit.converged and np.all(fit.coef[1:] > 0) and np.all(fit.pvalues[1:] < alpha)
        )
        if ok and fit.bic < best[0]:
            best = (fit.bic, model)
    return best


@pytest.mark.parametrize("seed", [200, 201, 202])
@pytest.mark.parametrize("distribution", ["poisson", "nbii"])
def test_stepwise_reaches_global_minimum_with_strong_signal(seed, distribution):
    size = None if distribution == "poisson" else 3.0
    X, y = planted(seed, 1200, 9, {1: 0.9, 3: 0.8, 8: 0.7}, protective=[6, 7, 8], size=size)
    groups = np.repeat(np.arange(3), 3)
    result = stepwise(X, y, groups, distribution=distribution)
    best_bic, best_model = _brute_force_best(X, y, groups, distribution)
    assert result.fit.bic == pytest.approx(best_bic, rel=1e-12)
    assert result.selected == best_model


def test_stepwise_history_and_rules():
    X, y, groups = _stepwise_case(*STEPWISE_CASES[3])
    result = stepwise(X, y, groups, distribution="nbii")
    bics = [h.bic for h in result.history]
    assert result.history[0].action == "start" and result.history[0].selected == ()
    assert all(b1 < b0 for b0, b1 in itertools.pairwise(bics))
    assert result.history[-1].selected == result.selected == tuple(sorted(result.selected))
    assert len({groups[j] for j in result.selected}) == len(result.selected)
    assert np.all(result.fit.coef[1:] > 0) and np.all(result.fit.pvalues[1:] < 0.05)
    assert result.fit.coef.shape == (len(result.selected) + 1,)


def test_stepwise_protective_columns_selected_with_positive_coefficient():
    X, y = planted(300, 1000, 4, {2: 0.8}, protective=[2, 3])
    result = stepwise(X, y, [0, 0, 1, 1], distribution="poisson")
    assert result.selected == (2,)
    assert result.fit.coef[1] > 0  # coded 0/-1: a positive coefficient lowers risk where exposed
    assert np.exp(-result.fit.coef[1]) < 1


def test_stepwise_skips_constant_and_separated_columns():
    X, y = planted(301, 800, 2, {0: 0.8})
    sep = (np.random.default_rng(1).random(800) < 0.2).astype(np.int8)
    y = y.copy()
    y[sep == 1] = 0
    X = np.column_stack([X, np.zeros(800, dtype=np.int8), sep])
    result = stepwise(X, y, [0, 1, 2, 3], distribution="poisson")
    assert 2 not in result.selected and 3 not in result.selected
    assert 0 in result.selected


def test_stepwise_candidates_restrict_the_search():
    X, y, groups = _stepwise_case(*STEPWISE_CASES[0])
    full = stepwise(X, y, groups, distribution="poisson")
    limited = stepwise(X, y, groups, distribution="poisson", candidates=[1, 2, 3, 5, 6, 7, 8])
    assert full.selected == (0, 4)
    assert 0 not in limited.selected and 4 not in limited.selected


def test_null_model_can_win_without_raising():
    rng = np.random.default_rng(400)
    X = (rng.random((500, 6)) < 0.3).astype(np.int8)
    y = rng.poisson(0.4, 500)
    result = select_model(X, y, np.repeat(np.arange(3), 2))
    assert result.selected == ()
    assert result.best.fit.coef.shape == (1,)


@pytest.mark.parametrize("nb_form", ["nbii", "nb2"])
def test_select_model_keeps_lower_bic(nb_form):
    X, y, groups = _stepwise_case(*STEPWISE_CASES[4])
    result = select_model(X, y, groups, nb_form=nb_form)
    assert result.negative_binomial.distribution == nb_form
    assert result.winner == nb_form  # over-dispersed data
    assert result.best.fit.bic == min(result.poisson.fit.bic, result.negative_binomial.fit.bic)
    X, y, groups = _stepwise_case(*STEPWISE_CASES[1])  # Poisson data
    assert select_model(X, y, groups, nb_form=nb_form).winner == "poisson"


@pytest.mark.parametrize("nb_form", ["nbii", "nb2"])
def test_select_model_threaded_and_serial_searches_agree(nb_form, monkeypatch):
    """The two searches give the same models whether they run in two threads or in turn."""
    import rtm.selection.select as selection

    X, y, groups = _stepwise_case(*STEPWISE_CASES[4])
    results = {}
    for name, threshold in (("serial", 10**12), ("threaded", 0)):
        monkeypatch.setattr(selection, "_THREADED_SEARCH_ROWS", threshold)
        results[name] = select_model(X, y, groups, nb_form=nb_form)
    serial, threaded = results["serial"], results["threaded"]
    assert serial.winner == threaded.winner
    for attr in ("poisson", "negative_binomial"):
        a, b = getattr(serial, attr), getattr(threaded, attr)
        assert a.selected == b.selected
        assert [(h.step, h.action, h.column, h.bic, h.selected) for h in a.history] == [
            (h.step, h.action, h.column, h.bic, h.selected) for h in b.history
        ]
        np.testing.assert_array_equal(a.fit.coef, b.fit.coef)
        assert a.fit.bic == b.fit.bic


@pytest.mark.parametrize("distribution", ["poisson", "nb2", "nbii"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extended_collapse_kernel_matches_numpy_twin(distribution, seed):
    """A model one column larger than the base: the one-pass kernel's data, bit for bit."""
    rng = np.random.default_rng(seed)
    n, p = 3000, 7
    X = (rng.random((n, p)) < rng.uniform(0.05, 0.6, p)).astype(np.int8)
    X[:, 2] *= -1  # a protective column
    y = rng.negative_binomial(2, 0.6, n).astype(np.int64)
    w = rng.choice([0.0, 1.0, 2.5], n, p=[0.1, 0.6, 0.3])
    sign = np.where(X.min(axis=0) < 0, -1, 1).astype(np.int8)
    fitter = _ModelFitter(X, sign, y, w, distribution)
    base = (1, 4, 6)
    fitter.set_base(base)
    _, ids, bits = fitter._base
    for j in (0, 2, 3, 5):
        columns = tuple(sorted(base + (j,)))
        assert fitter._added_column(columns) == j
        data = fitter._extended_collapsed(columns, j)
        rows, ys, ws, group = naive_extended_collapse(
            ids,
            bits,
            fitter.nonzero[:, j],
            columns.index(j),
            fitter.sign[list(columns)],
            y,
            w,
            distribution,
        )
        np.testing.assert_array_equal(data.design, rows)
        np.testing.assert_array_equal(data.y, ys)
        np.testing.assert_array_equal(data.w, ws)
        if group is None:
            assert data.design_group is None and data.distinct
        else:
            np.testing.assert_array_equal(data.design_group, group)
        assert data.n == float(w.sum()) and data.loglik_constant == fitter.constant
        # and the same fit as from the data rebuilt from scratch (rows in another order)
        scratch = fit_collapsed(fitter.collapsed(columns), distribution)
        fitter._base, kept = None, fitter._base
        rebuilt = fit_collapsed(fitter.collapsed(columns), distribution)
        fitter._base = kept
        np.testing.assert_allclose(scratch.coef, rebuilt.coef, rtol=1e-9, atol=1e-12)
        assert scratch.bic == pytest.approx(rebuilt.bic, rel=1e-12)
    assert fitter._added_column((0, 1)) is None  # not a one-column extension


# ---------------------------------------------------------------------------
# culling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("l1_ratio", [0.8, 1.0])
def test_enet_matches_lbfgsb_twin(standardize, l1_ratio):
    X, y = planted(500, 800, 8, {0: 0.8, 2: 0.6, 5: 0.5}, protective=[2, 5, 6])
    w = np.ones(len(y))
    lam_max = _lambda_max(X, y.astype(float), w, _column_scale(X, w, standardize), l1_ratio)
    lambdas = lam_max * np.array([0.5, 0.1, 0.01, 0.001])
    b0, b = enet_path(X, y, lambdas, l1_ratio=l1_ratio, standardize=standardize)
    for i, lam in enumerate(lambdas):
        nb0, nb = naive_enet(X, y, lam, l1_ratio, standardize=standardize)
        np.testing.assert_allclose(b[i], nb, atol=1e-4)
        assert b0[i] == pytest.approx(nb0, abs=1e-4)
    assert (b >= 0).all()
    assert 0 < (b[0] > 0).sum() < (b[-1] > 0).sum()


def test_enet_weights_equal_expanded_rows():
    X, y = planted(501, 500, 5, {0: 0.8, 3: 0.5})
    weights = np.random.default_rng(3).integers(0, 4, size=500)
    lambdas = [0.05, 0.01, 0.002]
    b0w, bw = enet_path(X, y, lambdas, weights=weights)
    b0e, be = enet_path(np.repeat(X, weights, axis=0), np.repeat(y, weights), lambdas)
    np.testing.assert_allclose(bw, be, atol=1e-6)
    np.testing.assert_allclose(b0w, b0e, atol=1e-6)
    nb0, nb = naive_enet(X, y, 0.01, 0.8, weights=weights)
    np.testing.assert_allclose(bw[1], nb, atol=1e-4)


def test_lambda_max_is_the_smallest_all_zero_penalty():
    X, y = planted(502, 600, 6, {1: 0.6, 4: 0.4}, protective=[4])
    w = np.ones(len(y))
    lam_max = _lambda_max(X, y.astype(float), w, _column_scale(X, w, True), 0.8)
    _, b = enet_path(X, y, [lam_max * (1 + 1e-9), lam_max * 0.99])
    assert np.all(b[0] == 0)
    assert np.count_nonzero(b[1]) == 1


def test_cull_keeps_planted_columns_and_reports_path():
    X, y = planted(503, 2000, 12, {0: 0.6, 5: 0.5, 9: 0.4}, protective=[5, 6])
    result = cull(X, y, n_lambdas=40)
    assert {0, 5, 9} <= set(result.survivors)
    assert result.survivors == tuple(int(j) for j in np.flatnonzero(result.coef > 0))
    assert result.lambdas.shape == result.cv_mean.shape == result.cv_se.shape == (2, 40)
    for row, cv in zip(result.lambdas, result.cv_mean, strict=True):
        reached = np.isfinite(row)
        # glmnet's early end of the path: a prefix of the penalties, at least 5
        n = int(reached.sum())
        assert n >= 5 and reached[:n].all()
        assert np.all(np.diff(row[:n]) < 0)
        np.testing.assert_array_equal(np.isfinite(cv), reached)
    r = result.l1_ratios.index(result.l1_ratio)
    assert result.lambda_ == result.lambdas[r, result.lambda_index]
    assert result.cv_mean[r, result.lambda_index] == np.nanmin(result.cv_mean)
    assert result.folds.shape == (2000,) and set(np.unique(result.folds)) == set(range(5))


def test_cull_early_stop_keeps_the_survivors_of_the_full_path():
    X, y = planted(503, 2000, 12, {0: 0.6, 5: 0.5, 9: 0.4}, protective=[5, 6])
    short = cull(X, y, n_lambdas=60)
    full = cull(X, y, n_lambdas=60, early_stop=False, tol=1e-12)
    assert np.isnan(short.lambdas).any() and not np.isnan(full.lambdas).any()
    assert short.survivors == full.survivors
    assert short.lambda_index == full.lambda_index


def test_cull_one_se_rule_picks_a_larger_penalty():
    X, y = planted(504, 1500, 10, {0: 0.5, 3: 0.3})
    best = cull(X, y, n_lambdas=30, rule="min")
    sparse = cull(X, y, n_lambdas=30, rule="1se")
    assert sparse.l1_ratio == best.l1_ratio
    r = best.l1_ratios.index(best.l1_ratio)
    assert sparse.lambda_ >= best.lambda_
    bound = best.cv_mean[r, best.lambda_index] + best.cv_se[r, best.lambda_index]
    assert sparse.cv_mean[r, sparse.lambda_index] <= bound
    assert np.all(best.cv_mean[r, : sparse.lambda_index] > bound)
    assert len(sparse.survivors) <= len(best.survivors)


def test_cull_cv_mean_matches_naive_refits():
    X, y = planted(505, 400, 4, {0: 0.8, 2: 0.5}, protective=[3])
    result = cull(X, y, l1_ratios=(0.8,), n_lambdas=12, n_jobs=2, tol=1e-12, early_stop=False)
    folds = naive_folds(y, 5, 0)
    np.testing.assert_array_equal(result.folds, folds)
    for index in (2, 7, 11):
        lam = result.lambdas[0, index]
        fold_dev, fold_n = [], []
        for k in range(5):
            train, test = folds != k, folds == k
            b0, b = naive_enet(X[train], y[train], lam, 0.8)
            mu = np.exp(b0 + X[test] @ b)
            yt = y[test]
            with np.errstate(divide="ignore", invalid="ignore"):
                term = np.where(yt > 0, yt * np.log(yt / mu), 0.0)
            fold_dev.append(np.mean(2 * (term - (yt - mu))))
            fold_n.append(test.sum())
        mean = np.average(fold_dev, weights=fold_n)
        se = np.sqrt(np.average((np.array(fold_dev) - mean) ** 2, weights=fold_n) / 4)
        assert result.cv_mean[0, index] == pytest.approx(mean, rel=1e-5)
        assert result.cv_se[0, index] == pytest.approx(se, rel=1e-3, abs=1e-7)


def test_cull_is_reproducible_and_seeded():
    X, y = planted(506, 700, 6, {0: 0.6})
    a = cull(X, y, n_lambdas=15, seed=7)
    b = cull(X, y, n_lambdas=15, seed=7, n_jobs=1)
    c = cull(X, y, n_lambdas=15, seed=8)
    np.testing.assert_array_equal(a.folds, b.folds)
    np.testing.assert_array_equal(a.cv_mean, b.cv_mean)
    np.testing.assert_array_equal(a.coef, b.coef)
    assert a.survivors == b.survivors and a.lambda_ == b.lambda_
    assert not np.array_equal(a.folds, c.folds)
    assert (a.seed, c.seed, a.rule, a.standardize) == (7, 8, "min", True)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=5, max_size=200),
    n_folds=st.integers(2, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_folds_are_balanced_and_match_twin(counts, n_folds, seed):
    y = np.array(counts)
    folds = fold_assignment(y, n_folds, seed=seed)
    np.testing.assert_array_equal(folds, naive_folds(y, n_folds, seed))
    sizes = np.bincount(folds, minlength=n_folds)
    totals = np.bincount(folds, weights=y, minlength=n_folds)
    assert sizes.max() - sizes.min() <= 1
    assert totals.max() - totals.min() <= y.max()


def test_cull_without_positive_association_keeps_nothing():
    # every column lowers the count: under b >= 0 no penalty admits one
    X, y = planted(507, 600, 3, {0: -0.8, 1: -0.5, 2: -0.6})
    result = cull(X, y, n_lambdas=10)
    reached = result.lambdas[np.isfinite(result.lambdas)]
    assert reached.size >= 2 * 5 and np.all(reached > 0)  # glmnet's minimum of 5 penalties
    assert result.survivors == ()
    assert np.all(result.coef == 0)


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


def test_string_options_list_valid_choices():
    X, y = planted(600, 100, 2, {0: 0.5})
    choices = "distribution must be one of 'poisson', 'nb2', 'nbii'"
    with pytest.raises(ParameterError, match=f"{choices}; got 'foo'"):
        fit_glm(X, y, distribution="foo")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=f"{choices}; got 'NB'"):
        stepwise(X, y, [0, 1], distribution="NB")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="rule must be one of 'min', '1se'; got 'max'"):
        cull(X, y, rule="max")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="nb_form must be one of 'nbii', 'nb2'; got 'poisson'"):
        select_model(X, y, [0, 1], nb_form="poisson")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"X": np.full((10, 2), 2)}, "0/1"),
        ({"X": np.array([[1, 0], [-1, 0]] * 5)}, "mixed signs in columns \\[0\\]"),
        ({"y": -np.ones(10, dtype=int)}, "non-negative"),
        ({"y": np.full(10, 0.5)}, "whole-number"),
        ({"y": np.ones(9, dtype=int)}, "one count per row"),
        ({"weights": -np.ones(10)}, "weights"),
        ({"groups": [0]}, "groups"),
        ({"alpha": 1.5}, "alpha must be in \\(0, 1\\); got 1.5"),
    ],
)
def test_bad_arguments_name_parameter_and_value(kwargs, match):
    args = {"X": np.eye(10, 2, dtype=np.int8), "y": np.ones(10, dtype=int), "groups": [0, 1]}
    args.update(kwargs)
    X, y, groups = args.pop("X"), args.pop("y"), args.pop("groups")
    with pytest.raises(ParameterError, match=match):
        stepwise(X, y, groups, distribution="poisson", **args)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"l1_ratios": (0.0, 0.5)}, "l1_ratios"),
        ({"n_folds": 1}, "n_folds must be an integer >= 2; got 1"),
        ({"n_lambdas": 0}, "n_lambdas"),
        ({"lambda_min_ratio": 2.0}, "lambda_min_ratio must be in \\(0, 1\\); got 2.0"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_cull_bad_arguments(kwargs, match):
    X, y = planted(601, 100, 2, {0: 0.5})
    with pytest.raises(ParameterError, match=match):
        cull(X, y, **kwargs)


def test_parameter_error_is_value_error():
    with pytest.raises(ValueError):
        fold_assignment([1, 2, 3], 5)
    assert naive_admissible  # the twin module imports cleanly
    assert naive_fit


@pytest.mark.parametrize("seed", [700, 703])
def test_stepwise_significance_rule_matches_twin(seed):
    # with alpha = 0.001 the Wald rule is stricter than the BIC: it must bind
    X, y = planted(seed, 800, 6, {0: 0.6, 2: 0.25, 4: 0.2}, protective=[4, 5])
    groups = np.repeat(np.arange(3), 2)
    strict = stepwise(X, y, groups, distribution="poisson", alpha=0.001)
    loose = stepwise(X, y, groups, distribution="poisson", alpha=0.999)
    assert strict.selected == naive_stepwise(X, y, groups, "poisson", alpha=0.001)[0]
    assert loose.selected == naive_stepwise(X, y, groups, "poisson", alpha=0.999)[0]
    assert len(strict.selected) < len(loose.selected)
    assert np.all(strict.fit.pvalues[1:] < 0.001)


def test_stepwise_allows_one_variable_per_factor():
    # two independent planted columns in the same factor: only one may enter
    X, y = planted(710, 1500, 4, {0: 0.7, 1: 0.6, 2: 0.5})
    groups = np.array([0, 0, 1, 1])
    result = stepwise(X, y, groups, distribution="poisson")
    assert result.selected in {(0, 2), (1, 2)}
    assert result.selected == naive_stepwise(X, y, groups, "poisson")[0]
    ungrouped = stepwise(X, y, np.arange(4), distribution="poisson")
    assert ungrouped.selected == (0, 1, 2)


def test_cull_collapsing_is_exact():
    """Cells sharing a fold and a pattern are collapsed inside cull: the result is that of
    the naive twin's expanded-row fits (cv_mean matches refits on the uncollapsed cells)."""
    rng = np.random.default_rng(11)
    # few columns on many cells: heavy pattern repetition
    X = (rng.random((3000, 4)) < 0.3).astype(np.int8)
    y = rng.poisson(np.exp(-1.2 + 1.0 * X[:, 0] + 0.5 * X[:, 2]))
    result = cull(X, y, l1_ratios=(0.8,), n_lambdas=8)
    folds = naive_folds(y, 5, 0)
    np.testing.assert_array_equal(result.folds, folds)
    lam = result.lambdas[0, 5]
    dev = []
    for k in range(5):
        train, test = folds != k, folds == k
        kb0, kb = naive_enet(X[train], y[train], lam, 0.8)
        mu = np.exp(kb0 + X[test] @ kb)
        yt = y[test]
        ylogy = np.where(yt > 0, yt * np.log(np.where(yt > 0, yt, 1) / mu), 0.0)
        dev.append(2 * np.sum(ylogy - (yt - mu)) / test.sum())
    weights = np.bincount(folds)
    assert result.cv_mean[0, 5] == pytest.approx(np.average(dev, weights=weights), rel=1e-5)


def test_distinct_rows_are_numpys_unique_rows() -> None:
    """The lexsort twin of np.unique(axis=0): same rows, same order, same inverse, on
    designs with repeated rows, continuous columns, tiny and huge magnitudes and zeros of
    both signs."""
    from rtm.selection.data import distinct_rows

    rng = np.random.default_rng(0)
    for trial in range(300):
        n, k = int(rng.integers(1, 300)), int(rng.integers(1, 6))
        X = rng.integers(-2, 3, (n, k)).astype(float) * rng.choice([1.0, 0.5, 1e-300, 1e300], k)
        if trial % 3 == 0:
            X[:, 0] = rng.normal(size=n)
        if trial % 5 == 0:
            X[X == 0] = -0.0
        expected, inverse = np.unique(X, axis=0, return_inverse=True)
        rows, index = distinct_rows(X)
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(index, inverse.ravel())
    rows, index = distinct_rows(np.zeros((0, 3)))
    assert rows.shape == (0, 3) and index.size == 0
