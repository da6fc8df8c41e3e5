"""Results that were silently wrong, and the warnings that now say so.

Each test feeds rtm what a real user fed it (a typo in a filter, coordinates in two
systems, multipoints, a run folder missing a file, a factor present almost everywhere, a
validation on the wrong events) and checks that the result is right or that rtm says, in
one line, what is wrong.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from tests.conftest import SAMPLE, run_rtm, sample_analyze_args


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("honest") / "run"
    result = run_rtm(*_analyze(SAMPLE / "crimes.csv", out, "-q"))
    assert result.returncode == 0, result.stderr
    return out


def _analyze(events: Path, out: Path, *extra: str, where: str = "type=robbery") -> list[str]:
    return sample_analyze_args(out, *extra, events=events, where=where)


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("rtm: warning: ")]


# ------------------------------------------------------------------ filters and coordinates


def test_a_filter_value_that_matches_nothing_is_named(tmp_path: Path) -> None:
    result = run_rtm(
        *_analyze(SAMPLE / "crimes.csv", tmp_path / "run", "-q", where="type=robbery,robery")
    )
    assert result.returncode == 0, result.stderr
    (line,) = _warnings(result.stderr)
    assert "--where 'type=robbery,robery'" in line
    assert "has type = 'robery' (did you mean 'robbery'?)" in line


def test_events_outside_the_area_are_reported_without_verbose(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE / "crimes.csv")
    far = frame.head(100).assign(x=frame["x"].head(100) + 50_000)  # 100 of ~1,950 robberies+
    pd.concat([frame, far]).to_csv(tmp_path / "crimes.csv", index=False)
    result = run_rtm(*_analyze(tmp_path / "crimes.csv", tmp_path / "run", "-q", where=""))
    assert result.returncode == 0, result.stderr
    assert any(
        "100 of " in w and "lie outside the study area and were dropped" in w
        for w in _warnings(result.stderr)
    ), result.stderr


def test_coordinate_columns_that_agree_are_not_an_error(tmp_path: Path) -> None:
    import pyproj

    frame = pd.read_csv(SAMPLE / "crimes.csv")
    to_degrees = pyproj.Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True)
    frame["longitude"], frame["latitude"] = to_degrees.transform(frame["x"], frame["y"])
    frame.to_csv(tmp_path / "both.csv", index=False)
    result = run_rtm(*_analyze(tmp_path / "both.csv", tmp_path / "run", "-q"))
    assert result.returncode == 0, result.stderr
    named = run_rtm(
        *_analyze(tmp_path / "both.csv", tmp_path / "run2", "-q", "--x-column", "x",
                  "--y-column", "y")
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    a = json.loads((tmp_path / "run" / "report.json").read_text())["model"]["factors"]
    b = json.loads((tmp_path / "run2" / "report.json").read_text())["model"]["factors"]
    assert [f["name"] for f in a] == [f["name"] for f in b]


def test_multipoint_events_are_split_and_counted(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE / "crimes.csv")
    frame = frame[frame["type"] == "robbery"].reset_index(drop=True)
    pairs = [
        shapely.MultiPoint([(x, y), (x + 1, y + 1)]) if i < 300 else shapely.Point(x, y)
        for i, (x, y) in enumerate(zip(frame["x"], frame["y"], strict=True))
    ]
    gpd.GeoDataFrame(frame[["type"]], geometry=pairs, crs="EPSG:32630").to_file(
        tmp_path / "events.gpkg"
    )
    result = run_rtm(*_analyze(tmp_path / "events.gpkg", tmp_path / "run", "-q", where=""))
    assert result.returncode == 0, result.stderr
    expected = f"300 multipoint records were split into their points ({len(frame):,} records became {len(frame) + 300:,} events)"  # noqa: E501
    assert any(expected in w for w in _warnings(result.stderr)), result.stderr


# ------------------------------------------------------------------ units and run folders


def test_messages_give_units(tmp_path: Path) -> None:
    far = gpd.GeoDataFrame(geometry=[shapely.Point(450_000, 5_600_000)], crs="EPSG:32630")
    factors = tmp_path / "factors"
    shutil.copytree(SAMPLE / "factors", factors)
    far.to_file(factors / "far.gpkg")
    result = run_rtm(
        "analyze", SAMPLE / "crimes.csv", "--area", SAMPLE / "area.gpkg", "--factors-dir",
        factors, "--block-length", "150", "--where", "type=robbery", "--out", tmp_path / "run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cells of 75 m;" in result.stdout
    assert "factor 'far' has no feature within 450 m of the study area" in result.stderr


def test_rtm_map_without_features_gpkg_names_the_file(tmp_path: Path, run_folder: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_folder, run)
    (run / "features.gpkg").unlink()
    result = run_rtm("map", run, "--out", tmp_path / "again")
    assert result.returncode == 4
    assert "features.gpkg is missing" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "again").exists()


# ------------------------------------------------------------------ coverage


def test_coverage_is_in_the_model_table_and_the_report(run_folder: Path) -> None:
    table = pd.read_csv(run_folder / "factors.csv")
    report = json.loads((run_folder / "report.json").read_text())
    cells = gpd.read_file(run_folder / "cells.gpkg")
    for factor in report["model"]["factors"]:
        column = f"{factor['name']}:{factor['operationalization']}:{factor['spatial_influence']:g}"
        share = float((cells[column] != 0).mean())
        assert factor["coverage"] == pytest.approx(share)
        row = table[table["Risk Factor"] == factor["name"]].iloc[0]
        assert row["Coverage"] == pytest.approx(share, abs=1e-5)


def test_the_narrative_never_leads_with_a_factor_present_almost_everywhere() -> None:
    from types import SimpleNamespace

    from rtm.export.report_html import narrative
    from rtm.places import FactorLayer

    n = 1000
    everywhere = np.ones(n, np.int8)
    everywhere[:40] = 0  # 96% of the cells
    bars = np.zeros(n, np.int8)
    bars[:150] = 1
    layers = (
        FactorLayer("bus_stops", "proximity", 400.0, 4.37, False, everywhere),
        FactorLayer("bars", "proximity", 200.0, 1.8, False, bars),
    )
    top = SimpleNamespace(area_share=0.05, event_share=0.2, events=20)
    analysis = SimpleNamespace(
        tiers=SimpleNamespace(tiers=(top,)),
        places=(),
        priority_places=(),
        recent_distance=200.0,
        recent=SimpleNamespace(note="all events"),
    )
    from rtm.filters import as_clauses

    report = SimpleNamespace(
        where=as_clauses(["type=burglary"]),
        inputs=SimpleNamespace(factors=("a",) * 19),
        candidates=114,
    )
    bundle = SimpleNamespace(
        report=report, surface=SimpleNamespace(factors=layers, counts=np.ones(n))
    )
    text = narrative(bundle, analysis)[0]
    assert "The most attractive was bars" in text
    assert "most attractive was bus_stops" not in text
    assert "bus_stops (within 400 m of bus_stops, 96% of the area) covers almost the whole" in text


# ------------------------------------------------------------------ validation


def test_validating_on_the_training_events_warns(tmp_path: Path, run_folder: Path) -> None:
    result = run_rtm(
        "validate", run_folder, SAMPLE / "crimes.csv", "--where", "type=robbery",
        "--out", tmp_path / "v.json", "--no-challengers",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert any("identical to training events" in w or "same cells" in w
               for w in _warnings(result.stderr)), result.stderr  # fmt: skip


def test_validating_without_the_runs_filter_warns(tmp_path: Path, run_folder: Path) -> None:
    result = run_rtm(
        "validate", run_folder, SAMPLE / "crimes.csv", "--where", "month=7..12",
        "--out", tmp_path / "v.json", "--no-challengers",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [w for w in _warnings(result.stderr) if "filtered by" in w]
    assert "filtered by type=robbery" in line and "--where type=robbery" in line


def test_test_events_that_already_satisfy_the_runs_filter_do_not_warn(
    tmp_path: Path, run_folder: Path
) -> None:
    """A file of robberies only needs no type=robbery filter (no false alarm); a file with
    other types still warns."""
    import pandas as pd

    crimes = pd.read_csv(SAMPLE / "crimes.csv")
    later = crimes[crimes["month"] >= 7]
    later[later["type"] == "robbery"].to_csv(tmp_path / "robberies.csv", index=False)
    later.to_csv(tmp_path / "all.csv", index=False)
    lines = {}
    for name in ("robberies", "all"):
        result = run_rtm(
            "validate", run_folder, tmp_path / f"{name}.csv",
            "--out", tmp_path / f"{name}.json", "--no-challengers",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines[name] = [w for w in _warnings(result.stderr) if "filtered by" in w]
    assert lines["robberies"] == []
    assert len(lines["all"]) == 1 and "filtered by type=robbery" in lines["all"][0]


def test_a_later_period_with_the_same_filter_does_not_warn(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fitted = run_rtm(*_analyze(SAMPLE / "crimes.csv", run, "-q", "--where", "month=1..6"))
    assert fitted.returncode == 0, fitted.stderr
    result = run_rtm(
        "validate", run, SAMPLE / "crimes.csv", "--where", "type=robbery",
        "--where", "month=7..12", "--out", tmp_path / "v.json", "--no-challengers",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _warnings(result.stderr) == []


def test_every_path_counts_test_events_alike_with_a_gpkg_layer(tmp_path: Path) -> None:
    """validate RUN FILE.gpkg:LAYER and analyze --test-crimes give the same counts."""
    frame = pd.read_csv(SAMPLE / "crimes.csv")
    points = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(frame.x, frame.y), crs="EPSG:32630"
    ).drop(columns=["x", "y"])
    # events just outside the area, inside its edge cells: a cell-based count keeps them
    area = gpd.read_file(SAMPLE / "area.gpkg").union_all()
    ring = area.buffer(20).difference(area)
    outline = shapely.get_coordinates(
        shapely.segmentize(shapely.get_exterior_ring(shapely.get_parts(ring)[0]), 50)
    )[:80]
    edge = gpd.GeoDataFrame(
        {"type": ["robbery"] * len(outline), "month": [9] * len(outline)},
        geometry=shapely.points(outline),
        crs="EPSG:32630",
    )
    events = pd.concat([points, edge], ignore_index=True)
    events.to_file(tmp_path / "crimes.gpkg", layer="crimes")
    source = f"{tmp_path / 'crimes.gpkg'}:crimes"
    run = tmp_path / "run"
    fitted = run_rtm(
        *_analyze(Path(source), run, "-q", "--where", "month=1..6", "--test-crimes", source,
                  "--test-where", "type=robbery", "--test-where", "month=7..12", "--no-challengers")
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    validated = run_rtm(
        "validate", run, source, "--where", "type=robbery", "--where", "month=7..12",
        "--out", tmp_path / "v.json", "--no-challengers",
    )  # fmt: skip
    assert validated.returncode == 0, validated.stderr
    inline = json.loads((run / "validation.json").read_text())
    separate = json.loads((tmp_path / "v.json").read_text())
    assert separate["events"] == inline["events"]
    assert separate["test_events_outside"] == inline["test_events_outside"] >= 1
    assert separate["kde_points"] == "the run's training events (features.gpkg)"
    assert separate["baselines"]["prior_kde"]["auc"] == pytest.approx(
        inline["baselines"]["prior_kde"]["auc"], rel=1e-9
    )


# ------------------------------------------------------------------ the map's colours


def _overlays(html: str) -> list[bytes]:
    return [
        base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    ]


def test_every_overlay_pixel_uses_a_colour_of_its_legend(run_folder: Path) -> None:
    from PIL import Image

    from rtm.export._style import TIER_COLOURS, ramp_rgb

    html = (run_folder / "map.html").read_text()
    legend = {tuple(int(c) for c in rgb) for rgb in ramp_rgb()}
    tiers = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in TIER_COLOURS}
    images = [Image.open(io.BytesIO(png)) for png in _overlays(html)]
    checked = 0
    for image in images:
        if image.mode != "P":
            continue  # Leaflet's own control icons
        rgba = np.asarray(image.convert("RGBA")).reshape(-1, 4)
        shown = {tuple(int(c) for c in p[:3]) for p in rgba[rgba[:, 3] > 0]}
        palette = legend if len(shown) > 3 else tiers
        assert shown <= palette, sorted(shown - palette)[:5]
        checked += 1
    assert checked == 2  # the risk surface and the tiers
    # the darkest red of the legend is used: the highest-risk cells are not black
    risk = next(i for i in images if i.mode == "P" and len(set(np.asarray(i).ravel().tolist())) > 4)
    colours = {tuple(p[:3]) for p in np.asarray(risk.convert("RGBA")).reshape(-1, 4) if p[3]}
    assert tuple(int(c) for c in ramp_rgb()[-1]) in colours
    assert (0, 0, 0) not in colours
