"""Validation workflows end to end on the sample city: analyze --test-crimes, validate, temporal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

from tests.conftest import run_rtm

SAMPLE_ARGS = ("--factors-dir", "factors", "--protective", "parks", "--block-length", "150")


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("val") / "run"
    done = run_rtm(
        "analyze",
        "crimes.csv",
        "--area",
        "area.gpkg",
        *SAMPLE_ARGS,
        "--where",
        "type=robbery",
        "--where",
        "month=1..6",
        "--out",
        out,
        "--test-crimes",
        "crimes.csv",
        "--test-where",
        "type=robbery",
        "--test-where",
        "month=7..12",
        cwd=sample_dir,
    )
    assert done.returncode == 0, done.stderr
    return out


def _test_counts(sample_dir: Path, run: Path) -> tuple[np.ndarray, np.ndarray]:
    """Independent count of the test events per cell, and the run's RRS, in cell order."""
    cells = pyogrio.read_dataframe(run / "cells.gpkg", read_geometry=False)
    report = json.loads((run / "report.json").read_text())
    grid = report["inputs"]["grid"]
    size = report["inputs"]["cell_size"]
    crimes = pd.read_csv(sample_dir / "crimes.csv")
    test = crimes[(crimes.type == "robbery") & (crimes.month >= 7)]
    row = np.floor((grid["y_max"] - test.y) / size).astype(int)
    col = np.floor((test.x - grid["x_min"]) / size).astype(int)
    index = {(r, c): i for i, (r, c) in enumerate(zip(cells.row, cells.col, strict=True))}
    counts = np.zeros(len(cells))
    for r, c in zip(row, col, strict=True):
        if (r, c) in index:
            counts[index[(r, c)]] += 1
    return counts, cells.rrs.to_numpy()


def test_analyze_with_test_crimes_writes_validation(validated_run: Path, sample_dir: Path) -> None:
    from sklearn.metrics import roc_auc_score

    report = json.loads((validated_run / "validation.json").read_text())
    # the crimes have a month column: the challengers use the lagged design on it
    assert report["period_column"] == "month"
    assert report["challenger_design"]["kind"] == "lagged"
    for key in (
        "events",
        "auc",
        "capture",
        "pai",
        "pei",
        "rri",
        "baselines",
        "challengers",
        "logistic",
    ):
        assert key in report
    assert set(report["capture"]) == {"1", "5", "10", "20"}
    ladder = {"kde_0.5b", "kde_1b", "kde_2b", "kde_3b", "kde_4b"}
    assert set(report["baselines"]) == {
        "prior_counts",
        "prior_kde",
        "kde_inner",
        "promap_1b",
        "promap_2b",
        "sepp",
        *ladder,
    }
    assert set(report["challengers"]) == {"risk_exposure", "forest", "gbm"}
    # the forest's permutation importance costs as much as the rest: only with --importance
    assert "permutation_importance" not in report["forest"]
    assert report["forest"]["importance_measure"].startswith("not measured (--importance")
    # the forecast: the recipe the inner (fit-period-only) validation chose
    recipe = report["forecast"]["recipe"]
    assert recipe["name"] == report["model_choice"]["chosen"]
    assert recipe["name"] in report["model_choice"]["candidates"]
    assert recipe["kde_radius"] in ladder
    assert report["baselines"]["kde_inner"] == report["baselines"][recipe["kde_radius"]]
    lift = report["lift"]["auc"]
    assert lift["lift"] == pytest.approx(lift["forecast"] - lift["baseline"])
    assert lift["ci95"][0] <= lift["lift"] <= lift["ci95"][1]
    import rasterio

    with rasterio.open(validated_run / "forecast.tif") as raster:  # the forecast's own file
        band, nodata = raster.read(1), raster.nodata
    values = band[band != nodata]
    assert values.sum() == pytest.approx(1.0, rel=1e-4)  # shares of the expected events
    written = json.loads((validated_run / "forecast.json").read_text())
    assert written["recipe"] == recipe
    assert "Where the next crimes are likely" in (validated_run / "map.html").read_text()
    # priority places are drawn from the forecast's top cells when there is one
    run_report = json.loads((validated_run / "report.json").read_text())
    assert "the forecast's top cells" in run_report["priority_places"]["definition"]
    assert run_report["priority_places"]["count"] == len(run_report["priority_places"]["places"])
    assert "pro rata" in report["rules"]["ties"]
    assert "2 x block length" in report["bandwidth"]["rule"]
    counts, rrs = _test_counts(sample_dir, validated_run)
    assert report["events"] == int(counts.sum())
    assert report["auc"] == pytest.approx(roc_auc_score(counts > 0, rrs), abs=1e-9)
    for share in ("5", "10"):
        assert report["pai"][share] == pytest.approx(report["capture"][share] / (int(share) / 100))
    assert report["logistic"]["odds_ratio"] > 1  # selected factors raise the odds
    table = report["risk_exposure_model"]["table"]
    environment = [r for r in table if r["kind"] == "environment"]
    exposure = [r for r in table if r["kind"] == "exposure"]
    assert environment and all(r["rrv"] for r in environment)  # RRVs for the factors
    assert {r["name"] for r in exposure} >= {"log1p_own_cell"}  # lagged own-cell exposure
    assert all(r["rrv"] is None for r in exposure)
    assert (validated_run / "capture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_run_folder_matches_analyze(
    validated_run: Path, sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "v.json"
    done = run_rtm(
        "validate",
        validated_run,
        "crimes.csv",
        "--where",
        "type=robbery",
        "--where",
        "month=7..12",
        "--out",
        out,
        cwd=sample_dir,
    )
    assert done.returncode == 0, done.stderr
    again = json.loads(out.read_text())
    first = json.loads((validated_run / "validation.json").read_text())
    assert again["events"] == first["events"]
    for key in ("auc", "capture", "pai", "pei", "rri"):
        assert again[key] == pytest.approx(first[key], rel=1e-6)
    assert again["baselines"]["prior_kde"]["auc"] == pytest.approx(
        first["baselines"]["prior_kde"]["auc"], rel=1e-9
    )
    assert again["kde_points"] == "the run's training events (features.gpkg)"
    assert (tmp_path / "v_capture.png").exists()
    assert "prior_kde" in done.stdout and "rtm" in done.stdout
    # an existing output is not replaced without --overwrite
    refused = run_rtm("validate", validated_run, "crimes.csv", "--out", out, cwd=sample_dir)
    assert refused.returncode == 5 and "already exists" in refused.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("validate", "no_such_run", "crimes.csv"), 4, "no_such_run: no such folder"),
        (("validate", "RUN", "crimes.csv", "--where", "nosuchcol=1"), None, "nosuchcol"),
        (("validate", "RUN", "nosuch.csv"), 4, "nosuch.csv"),
    ],
)
def test_validate_bad_input_is_one_line(
    validated_run: Path,
    sample_dir: Path,
    tmp_path: Path,
    args: tuple[str, ...],
    code: int | None,
    message: str,
) -> None:
    out = tmp_path / "v.json"
    args = tuple(str(validated_run) if a == "RUN" else a for a in args)
    done = run_rtm(*args, "--out", out, cwd=sample_dir)
    assert done.returncode in ((code,) if code else (2, 4)), done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_temporal_validation_on_sample(sample_dir: Path) -> None:
    from rtm.validation import temporal_validation

    result = temporal_validation(
        events=sample_dir / "crimes.csv",
        area=sample_dir / "area.gpkg",
        block_length=150,
        factors_dir=sample_dir / "factors",
        protective=["parks"],
        where=["type=robbery"],
        period_column="month",
        train=6,
        test=3,
        challengers=False,
    )
    crimes = pd.read_csv(sample_dir / "crimes.csv")
    robbery = crimes[crimes.type == "robbery"]
    windows = result["windows"]
    assert [w["test_periods"] for w in windows] == [[7, 8, 9], [10, 11, 12]]
    for window in windows:
        expected = robbery.month.isin(window["test_periods"]).sum()
        assert abs(window["validation"]["events"] - expected) <= 2  # a few fall outside the area
    aucs = [w["validation"]["auc"] for w in windows]
    assert result["summary"]["rtm"]["auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert result["summary"]["prior_kde"]["auc"]["sd"] == pytest.approx(
        np.std([w["validation"]["baselines"]["prior_kde"]["auc"] for w in windows], ddof=1)
    )
    assert "forest" not in result["summary"]


def test_validate_run_api_writes_out_and_reads_like_a_mapping(
    validated_run: Path, sample_dir: Path, tmp_path: Path
) -> None:
    from rtm.validation import validate_run

    out = tmp_path / "api.json"
    validation = validate_run(
        validated_run, sample_dir / "crimes.csv", where=["type=robbery", "month=7..12"], out=out
    )
    assert json.loads(out.read_text())["auc"] == pytest.approx(validation["auc"])
    assert validation.get("capture")["10"] == validation.report["capture"]["10"]
    assert (tmp_path / "api_capture.png").exists()


def test_importance_measures_the_forest_factors_on_request(
    validated_run: Path, sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "v.json"
    done = run_rtm(
        "validate", validated_run, "crimes.csv", "--where", "type=robbery",
        "--where", "month=7..12", "--importance", "--out", out, cwd=sample_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    forest = json.loads(out.read_text())["forest"]
    importance = forest["permutation_importance"]
    assert "mean of 3 permutations" in forest["importance_measure"]
    assert {"own_cell", "ring_150"} & set(importance), importance  # the lagged features
    assert all(set(v) == {"auc_drop", "sd"} for v in importance.values())
    drops = [v["auc_drop"] for v in importance.values()]
    assert drops == sorted(drops, reverse=True) and drops[0] > 0
