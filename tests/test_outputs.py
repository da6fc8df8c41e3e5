"""Outputs people act on: tiers and places in every output, map.html and report.html in a
real headless Chromium with the network disabled, escaping of hostile names, `rtm map`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest

from rtm.api import analyze
from tests.conftest import run_rtm

HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_ATTRIBUTE = "\"'><script>alert(2)</script><img src=y onerror=alert(3)>"


@pytest.fixture(scope="module")
def hostile_run(sample_dir: Path, tmp_path_factory) -> Path:
    """The sample robbery run with the bars factor renamed to an HTML payload."""
    root = tmp_path_factory.mktemp("hostile")
    factors = root / "factors"
    factors.mkdir()
    for path in (sample_dir / "factors").iterdir():
        if not path.stem == "bars":
            shutil.copy(path, factors / path.name)
    bars = gpd.read_file(sample_dir / "factors" / "bars.shp")
    bars["name"] = HOSTILE_ATTRIBUTE
    bars.to_file(factors / f"{HOSTILE}.gpkg", layer="bars", driver="GPKG")
    out = root / "run"
    result = analyze(
        events=sample_dir / "crimes.csv",
        area=sample_dir / "area.gpkg",
        factors_dir=factors,
        protective=["parks"],
        block_length=150,
        where=["type=robbery"],
        out=out,
    )
    assert HOSTILE in {f.name for f in result.factors}, "the renamed bars factor must be selected"
    return out


def test_tiers_and_places_agree_across_report_cells_and_places(hostile_run: Path) -> None:
    report = json.loads((hostile_run / "report.json").read_text())
    cells = pyogrio.read_dataframe(hostile_run / "cells.gpkg", read_geometry=False)
    tiers = report["tiers"]["tiers"]
    assert [t["name"] for t in tiers] == ["highest", "moderately high", "above average"]
    rrs = cells["rrs"].to_numpy()
    assert tiers[0]["rrs_min"] == pytest.approx(rrs.mean() + 2 * rrs.std())
    for tier in tiers:
        in_tier = cells["tier"] == tier["name"]
        assert in_tier.sum() == tier["cells"]
        assert cells.loc[in_tier, "events"].sum() == tier["events"]
        assert tier["area_share"] == pytest.approx(in_tier.mean())
    assert (cells.loc[cells["tier"] == "highest", "rrs"] >= tiers[0]["rrs_min"] * (1 - 1e-9)).all()
    assert (cells.loc[cells["tier"] == "", "rrs"] < tiers[2]["rrs_min"]).all()

    places = gpd.read_file(hostile_run / "places.gpkg", layer="places")
    priority = gpd.read_file(hostile_run / "places.gpkg", layer="priority_places")
    assert len(places) == report["places"]["count"] > 0
    assert len(priority) == report["priority_places"]["count"] > 0
    assert list(places["rank"]) == list(range(1, len(places) + 1))
    assert places["expected"].is_monotonic_decreasing
    assert places["cells"].sum() == tiers[0]["cells"]  # every top-tier cell is in one place
    assert places["events"].sum() == tiers[0]["events"]
    cell_area = report["inputs"]["cell_size"] ** 2
    assert np.allclose(places.geometry.area, places["cells"] * cell_area)
    assert list(priority["recent_events"]) == sorted(priority["recent_events"], reverse=True)
    recent = report["priority_places"]["recent"]
    assert recent["column"] == "date" and recent["resolution"] == "day" and recent["events"] > 0
    first = report["places"]["places"][0]
    assert HOSTILE in {f["name"] for f in first["factors"]}


def test_report_narrative_and_escaping(hostile_run: Path) -> None:
    page = (hostile_run / "report.html").read_text()
    report = json.loads((hostile_run / "report.json").read_text())
    top = report["tiers"]["tiers"][0]
    assert "8 risk factors were tested" in page and "were selected" in page
    assert "of the robberies" in page
    assert f"{100 * top['area_share']:.1f}% of the area" in page
    assert "not valid inference" in page and "Euclidean" in page
    assert "data:image/png;base64," in page and "<script" not in page
    for name in ("report.html", "map.html"):
        text = (hostile_run / name).read_text()
        assert HOSTILE not in text and "<script>alert(2)" not in text
        assert (
            "onerror=alert"
            not in text.replace("onerror=alert(1)\\u003e", "").replace(
                "onerror=alert(3)\\u003e", ""
            )
            or name == "report.html"
        )
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_map_html_has_no_network_dependency(hostile_run: Path) -> None:
    text = (hostile_run / "map.html").read_text()
    assert "<link" not in text and 'src="http' not in text and "unpkg" not in text
    assert "https://tile.openstreetmap.org" in text  # the one optional online layer
    assert text.count("data:image/png;base64,") >= 2  # risk and tiers overlays


def test_rtm_map_rerenders_with_new_tiers(hostile_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "rerendered"
    done = run_rtm("map", hostile_run, "--tiers", "3,2,1", "--recent-days", "30", "--out", out)
    assert done.returncode == 0, done.stderr
    before = json.loads((hostile_run / "report.json").read_text())
    after = json.loads((out / "report.json").read_text())
    assert after["tiers"]["tiers"][0]["cut_sd"] == 3.0
    assert after["tiers"]["tiers"][0]["cells"] < before["tiers"]["tiers"][0]["cells"]
    assert after["model"] == before["model"]  # nothing refitted
    assert after["priority_places"]["recent"]["window_days"] == 30
    cells = pyogrio.read_dataframe(out / "cells.gpkg", read_geometry=False)
    assert (cells["tier"] == "highest").sum() == after["tiers"]["tiers"][0]["cells"]
    places = gpd.read_file(out / "places.gpkg", layer="places")
    assert places["cells"].sum() == after["tiers"]["tiers"][0]["cells"]
    # in place without --overwrite: refused, one line, nothing changed
    again = run_rtm("map", hostile_run, "--tiers", "3,2,1")
    assert (
        again.returncode == 5 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    )
    assert json.loads((hostile_run / "report.json").read_text()) == before
    bad = run_rtm("map", hostile_run, "--tiers", "1,2", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "--tiers" in bad.stderr and not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------- the browser
OFFLINE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    problem = None
    if chromium is None:
        problem = "chromium is not installed (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = problem or "playwright is not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {problem}")
        pytest.skip(f"browser tests skipped: {problem}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=OFFLINE_ARGS)
        yield launched
        launched.close()


def _open(browser, path: Path, **viewport):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    dialogs, requests = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, dialogs, requests


def test_map_works_offline_in_chromium(browser, hostile_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    page, dialogs, requests = _open(browser, hostile_run / "map.html")
    page.wait_for_function("window.rtm && window.rtm.ready", timeout=20_000)
    assert page.evaluate("document.querySelector('img.leaflet-image-layer').naturalWidth") > 0
    shot = tmp_path / "map.png"
    page.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    warm = (r > 180) & (r - b > 60)  # the yellow-orange-red risk ramp, not the grey background
    assert warm.mean() > 0.15, f"risk layer not visible: {warm.mean():.1%} warm pixels"
    red = (r > 150) & (g < 110) & (b < 110)
    assert red.sum() > 50, "no high-risk (red) cells visible"
    external = [u for u in requests if u.startswith("http")]
    assert all(u.startswith("https://tile.openstreetmap.org/") for u in external), external

    assert page.evaluate("rtm.openPopup('places', 1)") is True
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5_000)
    text = popup.inner_text()
    assert "Highest-risk place #1" in text and "Why it is risky" in text
    assert HOSTILE in text  # shown as text, with its RRV
    assert "risk \u00d7" in text
    assert page.evaluate("rtm.openPopup('priority', 1)") is True
    assert "Recent robberies nearby" in page.locator(".leaflet-popup-content").last.inner_text()
    # a feature popup with a hostile attribute value, and the expanded layer control
    page.evaluate(
        "(() => { const g = rtm.factorLayers[0]; g.addTo(rtm.map);"
        " g.getLayers()[0].openPopup(); })()"
    )
    assert HOSTILE_ATTRIBUTE in page.locator(".leaflet-popup-content").last.inner_text()
    labels = page.locator(".leaflet-control-layers-overlays").inner_text()
    assert HOSTILE in labels
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.evaluate('document.querySelectorAll(\'img[src="x"], img[src="y"]\').length') == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 3  # leaflet, data, map


def test_report_renders_and_prints_to_pdf(browser, hostile_run: Path) -> None:
    page, dialogs, requests = _open(browser, hostile_run / "report.html")
    assert page.evaluate("document.querySelector('figure img').naturalWidth") > 500
    assert HOSTILE in page.inner_text("body")
    assert dialogs == [] and not [u for u in requests if u.startswith("http")]
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
