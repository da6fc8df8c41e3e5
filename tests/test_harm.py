"""Crime-harm weighting (`--weight-column`): event-equivalents, quasi-Poisson inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from rtm.api import analyze
from rtm.model import RiskTerrainModel
from rtm.runs import report_from_fit
from rtm.selection.data import split_fractional
from rtm.selection.glm import fit_glm
from rtm.study import build_study_candidates, load_study
from tests.conftest import run_rtm

AGGRAVATING = "bars:proximity:300"  # counts concentrate here (many low-harm events)
HARMFUL = "main_roads:proximity:150"  # harm concentrates here (few high-harm events)


def _run(sample: Path, events: Path, **extra):
    return analyze(
        events=events,
        area=sample / "area.gpkg",
        factors_dir=sample / "factors",
        protective=["parks"],
        block_length=150,
        where=["type=robbery"],
        **extra,
    )


def _key(result) -> list[tuple]:
    return sorted((f.name, f.operationalization, f.spatial_influence) for f in result.factors)


@pytest.fixture(scope="module")
def weighted_csv(sample_dir: Path, tmp_path_factory) -> Path:
    frame = pd.read_csv(sample_dir / "crimes.csv")
    frame["constant"] = 37.5
    frame["harm"] = np.random.default_rng(0).gamma(0.5, 20.0, len(frame))
    path = tmp_path_factory.mktemp("harm") / "crimes.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def candidates(sample_dir: Path):
    study = load_study(
        area=sample_dir / "area.gpkg",
        events=sample_dir / "crimes.csv",
        factors_dir=sample_dir / "factors",
        protective=["parks"],
        block_length=150,
        where=["type=robbery"],
    )
    return build_study_candidates(study)


@pytest.fixture(scope="module")
def planted(candidates):
    """Counts driven by one factor, harm by another."""
    rng = np.random.default_rng(7)
    a = candidates.column(AGGRAVATING).astype(float)
    b = candidates.column(HARMFUL).astype(float)
    minor = rng.poisson(np.exp(-1.2 + 1.3 * a))  # harm 1 each
    serious = rng.poisson(np.exp(-4.0 + 1.6 * b))  # harm 40 each
    counts = minor + serious
    harm = minor * 1.0 + serious * 40.0
    unweighted = RiskTerrainModel(seed=0).fit(candidates, counts).result_
    weighted = RiskTerrainModel(seed=0).fit(candidates, counts, harm=harm).result_
    return counts, harm, unweighted, weighted


def test_split_fractional_keeps_the_poisson_sums() -> None:
    y = np.array([0.0, 2.0, 0.3, 4.75])
    w = np.array([1.0, 2.0, 3.0, 0.5])
    y_int, w_split, source = split_fractional(y, w)
    np.testing.assert_allclose(np.bincount(source, weights=w_split), w)
    np.testing.assert_allclose(np.bincount(source, weights=w_split * y_int), w * y)
    assert y_int.dtype == np.int64


def test_constant_weights_give_the_unweighted_model(sample_dir: Path, weighted_csv: Path) -> None:
    plain = _run(sample_dir, sample_dir / "crimes.csv")
    constant = _run(sample_dir, weighted_csv, weight_column="constant")
    assert _key(constant) == _key(plain)
    assert constant.distribution == plain.distribution
    np.testing.assert_allclose(
        [f.coefficient for f in constant.factors],
        [f.coefficient for f in plain.factors],
        rtol=1e-12,
    )
    assert constant.intercept == pytest.approx(plain.intercept, rel=1e-12)
    assert constant.bic == pytest.approx(plain.bic, rel=1e-12)
    model = report_from_fit(constant).model.as_dict()
    assert model["outcome"] == "harm-weighted (event-equivalents)"
    assert model["dispersion_quasi"] is None and "same harm" in model["outcome_note"]
    # the unweighted report has none of the harm keys
    assert "outcome" not in report_from_fit(plain).model.as_dict()


def test_weighted_model_picks_the_harm_factor(planted) -> None:
    _, _, unweighted, weighted = planted
    unweighted_names = {f.candidate for f in unweighted.factors}
    weighted_names = {f.candidate for f in weighted.factors}
    assert AGGRAVATING in unweighted_names
    assert HARMFUL in weighted_names
    top = max(weighted.factors, key=lambda f: f.relative_risk_value)
    assert top.candidate == HARMFUL
    assert weighted.distribution == "poisson" and weighted.dispersion is None
    assert weighted.selection.negative_binomial is None
    assert weighted.dispersion_quasi is not None and weighted.dispersion_quasi > 1
    assert weighted.outcome.sum() == pytest.approx(weighted.counts.sum())
    model = report_from_fit(weighted).model.as_dict()
    assert model["outcome"] == "harm-weighted (event-equivalents)"
    assert model["dispersion_quasi"] == weighted.dispersion_quasi
    assert model["dispersion_quasi_basis"] == "culled full model"
    assert model["bic_negative_binomial"] is None
    assert "negative binomial was not fitted" in model["outcome_note"]


def test_quasi_poisson_matches_statsmodels(candidates, planted) -> None:
    _, _, _, weighted = planted
    y = weighted.outcome
    selected = [f.candidate for f in weighted.factors]
    columns = [candidates.names.index(name) for name in selected]
    X = candidates.values[:, columns].astype(float)
    exog = sm.add_constant(X, has_constant="add")
    x2 = sm.GLM(y, exog, family=sm.families.Poisson()).fit(scale="X2")
    # the final model's own quasi-Poisson fit, as statsmodels computes it
    ours = fit_glm(X, y, quasi=True)
    np.testing.assert_allclose(ours.coef, x2.params, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.se, x2.bse, rtol=1e-6)
    assert ours.scale == pytest.approx(x2.scale, rel=1e-9)
    # the reported model: Poisson coefficients, standard errors scaled by sqrt(phi) where
    # phi is Pearson chi2/df of the culled full model (floored at 1)
    plain = sm.GLM(y, exog, family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(
        [f.coefficient for f in weighted.factors], plain.params[1:], rtol=1e-7, atol=1e-9
    )
    assert weighted.intercept == pytest.approx(plain.params[0], rel=1e-7)
    survivors = list(weighted.cull_result.survivors)
    full = sm.GLM(
        y,
        sm.add_constant(candidates.values[:, survivors].astype(float), has_constant="add"),
        family=sm.families.Poisson(),
    ).fit(scale="X2")
    assert weighted.dispersion_quasi == pytest.approx(max(full.scale, 1.0), rel=1e-7)
    np.testing.assert_allclose(
        [f.standard_error for f in weighted.factors],
        plain.bse[1:] * np.sqrt(weighted.dispersion_quasi),
        rtol=1e-6,
    )
    # BIC: quasi-log-likelihood (Poisson log-likelihood / phi) + k log n, up to the constant
    # that does not depend on the parameters (log y! interpolated between whole numbers)
    null = fit_glm(np.zeros((len(y), 0)), y, quasi=True, scale=weighted.dispersion_quasi)
    plain_null = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Poisson()).fit()
    delta_ours = weighted.bic - null.bic
    k = len(columns)
    delta_sm = -2 * (plain.llf - plain_null.llf) / weighted.dispersion_quasi + k * np.log(len(y))
    assert delta_ours == pytest.approx(delta_sm, rel=1e-7)


def test_bad_weights_one_line_error(sample_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(sample_dir / "crimes.csv").head(400)
    frame["harm"] = ["1.5"] * len(frame)
    frame.loc[3, "harm"] = "abc"
    frame.loc[10, "harm"] = None
    frame.loc[20, "harm"] = "-2"
    events = tmp_path / "crimes.csv"
    frame.to_csv(events, index=False)
    base = [
        "analyze",
        events,
        "--area",
        sample_dir / "area.gpkg",
        "--factors-dir",
        sample_dir / "factors",
        "--block-length",
        "150",
    ]
    bad = run_rtm(*base, "--weight-column", "harm", "--out", tmp_path / "run")
    assert bad.returncode == 4, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtm: error:")
    assert "'harm'" in lines[0] and "3 bad rows" in lines[0]
    assert "Traceback" not in bad.stderr and not (tmp_path / "run").exists()
    missing = run_rtm(*base, "--weight-column", "severity", "--out", tmp_path / "run")
    assert missing.returncode == 2, missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "severity" in missing.stderr
    assert not (tmp_path / "run").exists()


def test_weighted_cli_run_reports_the_outcome(
    sample_dir: Path, weighted_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = run_rtm(
        "analyze",
        weighted_csv,
        "--area",
        sample_dir / "area.gpkg",
        "--factors-dir",
        sample_dir / "factors",
        "--protective",
        "parks",
        "--block-length",
        "150",
        "--where",
        "type=robbery",
        "--weight-column",
        "harm",
        "--out",
        out,
        "-q",
    )
    assert done.returncode in (0, 3), done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["weight_column"] == "harm"
    assert report["model"]["outcome"] == "harm-weighted (event-equivalents)"
    assert report["model"]["dispersion_quasi"] >= 1
    assert report["model"]["variance"].startswith("var = phi * mu")
    combined = run_rtm(
        "analyze",
        weighted_csv,
        "--area",
        sample_dir / "area.gpkg",
        "--factors-dir",
        sample_dir / "factors",
        "--block-length",
        "150",
        "--weight-column",
        "harm",
        "--bootstrap",
        "5",
        "--out",
        tmp_path / "run2",
    )
    assert combined.returncode == 2 and "--weight-column" in combined.stderr
