"""`rtm analyze` end to end: planted truth recovered, outputs consistent, golden master."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from rtm.api import analyze
from rtm.model import RiskTerrainModel
from tests.conftest import run_rtm

GOLDEN = Path(__file__).parent / "golden"
REQUIRED_KEYS = [
    "inputs.events",
    "inputs.events_outside",
    "inputs.crs",
    "inputs.cell_size",
    "inputs.block_length",
    "inputs.cells",
    "inputs.cells_with_events",
    "candidates",
    "culled",
    "model.distribution",
    "model.intercept",
    "model.bic",
    "model.dispersion",
    "model.factors",
    "rrs.min",
    "rrs.max",
    "seed",
    "version",
]


def _get(report: dict, dotted: str):
    value = report
    for key in dotted.split("."):
        value = value[key]
    return value


def _sample_run(sample: Path, out: Path | None, crime: str, **extra):
    return analyze(
        events=sample / "crimes.csv",
        area=sample / "area.gpkg",
        factors_dir=sample / "factors",
        protective=["parks"],
        block_length=150,
        where=[f"type={crime}"],
        out=out,
        **extra,
    )


@pytest.fixture(scope="module")
def robbery_run(sample_dir: Path, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("run") / "robbery"
    return out, _sample_run(sample_dir, out, "robbery")


@pytest.mark.parametrize("crime", ["robbery", "burglary"])
def test_planted_truth_is_recovered(sample_dir: Path, crime: str) -> None:
    truth = json.loads((sample_dir / "truth.json").read_text())["crime_types"][crime]
    result = _sample_run(sample_dir, None, crime)
    found = {(f.name, f.operationalization, f.spatial_influence) for f in result.factors}
    planted = {
        (e["factor"], e["operationalization"], e["spatial_influence"]) for e in truth["effects"]
    }
    assert found == planted
    for effect in truth["effects"]:
        factor = next(f for f in result.factors if f.name == effect["factor"])
        # the estimate is within 3 standard errors of the planted coefficient
        assert abs(factor.coefficient - effect["coefficient"]) < 3 * factor.standard_error
        assert factor.protective == effect["protective"]


def test_report_has_the_documented_keys(robbery_run) -> None:
    out, result = robbery_run
    report = json.loads((out / "report.json").read_text())
    for key in REQUIRED_KEYS:
        _get(report, key)
    assert report["inputs"]["events"] == result.n_events == 1821
    assert report["inputs"]["crs"] == "EPSG:32630"
    assert report["candidates"] == 48 and report["culled"] == len(result.cull_result.survivors)
    assert report["model"]["distribution"] == "negative_binomial"
    assert report["model"]["nb_form"] == "nbii"
    assert report["model"]["dispersion"] > 0
    for f in report["model"]["factors"]:
        assert set(f) >= {
            "name",
            "operationalization",
            "spatial_influence",
            "coefficient",
            "rrv",
            "p_value",
        }
        assert f["rrv"] == pytest.approx(np.exp(f["coefficient"]))
        assert f["p_value"] < 0.05 and f["coefficient"] > 0
    assert report["rrs"]["min"] == pytest.approx(1.0)
    # BIC of the winner is the lower of the two
    assert report["model"]["bic"] == min(
        report["model"]["bic_poisson"], report["model"]["bic_negative_binomial"]
    )


def test_outputs_agree_with_each_other(robbery_run) -> None:
    out, result = robbery_run
    with rasterio.open(out / "risk.tif") as src:
        assert src.dtypes[0] == "float32" and src.crs.to_epsg() == 32630
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        risk = src.read(1)
        nodata = src.nodata
    active = risk != nodata
    np.testing.assert_array_equal(active, result.grid.mask)
    cells = gpd.read_file(out / "cells.gpkg")
    assert len(cells) == result.grid.n_active
    assert cells["events"].sum() == result.n_events
    np.testing.assert_allclose(risk[active], cells["rrs"].to_numpy(), rtol=1e-6)
    # RRS = product of the RRVs of the factors present in each cell
    table = pd.read_csv(out / "factors.csv")
    rrv = dict(zip(table["Risk Factor"], table["Relative Risk Value"], strict=True))
    product = np.ones(len(cells))
    for f in result.factors:
        present = cells[f.candidate].to_numpy()
        product *= np.where(present != 0, rrv[f.name] ** np.sign(present), 1.0)
    np.testing.assert_allclose(cells["rrs"], product / product.min(), rtol=1e-4)
    # expected counts sum to the observed total (a property of the intercept's MLE in Poisson;
    # for the NB fits it holds approximately)
    assert cells["expected"].sum() == pytest.approx(result.n_events, rel=0.05)


def test_same_seed_same_bytes(sample_dir: Path, tmp_path: Path, robbery_run) -> None:
    out, _ = robbery_run
    again = tmp_path / "again"
    _sample_run(sample_dir, again, "robbery")
    # every file, the GeoPackages included (their timestamps are fixed)
    names = sorted(p.name for p in out.iterdir() if p.is_file())
    assert {"cells.gpkg", "places.gpkg", "features.gpkg", "map.html", "risk.png"} <= set(names)
    for name in names:
        assert (
            hashlib.sha256((out / name).read_bytes()).hexdigest()
            == hashlib.sha256((again / name).read_bytes()).hexdigest()
        ), name


def test_golden_master(robbery_run) -> None:
    """Selected factors and coefficients of the sample city; regenerate only on purpose
    (RTM_REGENERATE_GOLDEN=1) and say why in the commit."""
    out, _ = robbery_run
    report = json.loads((out / "report.json").read_text())
    current = {
        "culled": report["culling"]["survivors"],
        "distribution": report["model"]["distribution"],
        "intercept": report["model"]["intercept"],
        "bic": report["model"]["bic"],
        "factors": [
            [f["name"], f["operationalization"], f["spatial_influence"], f["coefficient"]]
            for f in report["model"]["factors"]
        ],
    }
    path = GOLDEN / "sample_robbery.json"
    if os.environ.get("RTM_REGENERATE_GOLDEN") == "1":
        path.write_text(json.dumps(current, indent=2) + "\n")
    golden = json.loads(path.read_text())
    assert current["culled"] == golden["culled"]
    assert current["distribution"] == golden["distribution"]
    assert [f[:3] for f in current["factors"]] == [f[:3] for f in golden["factors"]]
    np.testing.assert_allclose(
        [f[3] for f in current["factors"]], [f[3] for f in golden["factors"]], rtol=1e-6
    )
    assert current["intercept"] == pytest.approx(golden["intercept"], rel=1e-6)
    assert current["bic"] == pytest.approx(golden["bic"], rel=1e-9)


def test_cli_analyze_prints_the_model(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_rtm(
        "analyze",
        sample_dir / "crimes.csv",
        "--area",
        sample_dir / "area.gpkg",
        "--factors-dir",
        sample_dir / "factors",
        "--protective",
        "parks",
        "--block-length",
        "150",
        "--where",
        "type=burglary",
        "--where",
        "month=1..12",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "schools" in result.stdout and "main_roads" in result.stdout
    assert (out / "risk.tif").exists()
    # a second run into the same folder needs --overwrite, and leaves the first intact
    before = (out / "report.json").read_bytes()
    again = run_rtm(
        "analyze",
        sample_dir / "crimes.csv",
        "--area",
        sample_dir / "area.gpkg",
        "--factors-dir",
        sample_dir / "factors",
        "--block-length",
        "150",
        "--out",
        out,
    )
    assert again.returncode == 5 and "already exists" in again.stderr
    assert (out / "report.json").read_bytes() == before


def test_bad_model_options_list_choices() -> None:
    with pytest.raises(ValueError, match="nb_form must be one of 'nbii', 'nb2'; got 'nb3'"):
        RiskTerrainModel(nb_form="nb3")._validate()  # type: ignore[arg-type]


@pytest.mark.london
@pytest.mark.slow
def test_london_robbery(london_dir: Path, tmp_path: Path) -> None:
    result = analyze(
        events=london_dir / "crimes_2022.csv.gz",
        area=london_dir / "study_area.shp",
        factors_dir=london_dir / "factors",
        block_length=200,
        cell_size=100,
        where=["type=robbery", "month=1..6"],
        out=tmp_path / "london",
    )
    report = json.loads((tmp_path / "london" / "report.json").read_text())
    assert report["inputs"]["cells"] == 16444 and report["candidates"] == 114
    assert result.significant and len(result.factors) >= 3
    names = [f.name for f in result.factors]
    assert len(names) == len(set(names))  # one variable per factor
