"""Outputs people act on: tiers and places in every output, map.html and report.html in a
real headless Chromium with the network disabled, escaping of hostile names, `rtm map`."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest

from rtm.api import analyze
from tests.conftest import SAMPLE, fresh_python, run_rtm, sample_analyze_args

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


def test_outputs_are_a_registry(sample_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The run folder holds exactly the registered formats that apply, and a format added
    to the registry is written by `analyze` (and, when re-rendered, by `rtm map`)."""
    import dataclasses

    from rtm.export import formats
    from rtm.export.rerender import rerender

    def places_csv(context, path: Path) -> None:
        frame = context.place_frames[0].drop(columns="geometry")
        frame.to_csv(path, index=False)

    extra = formats.OutputFormat("places.csv", "places as a table", "places", True, places_csv)
    monkeypatch.setattr(formats, "OUTPUTS", (*formats.OUTPUTS, extra))
    run = tmp_path / "run"
    analyze(
        events=sample_dir / "crimes.csv",
        area=sample_dir / "area.gpkg",
        factors_dir=sample_dir / "factors",
        block_length=150,
        where=["type=robbery"],
        out=run,
    )
    files = {p.name for p in run.iterdir() if not p.name.startswith(".")}
    # the forecast's files need --forecast (or test events): tests/test_validation.py
    assert files == {o.file for o in formats.OUTPUTS if o.needs != "forecast"}
    table = pd.read_csv(run / "places.csv")
    report = json.loads((run / "report.json").read_text())
    assert len(table) == report["places"]["count"] > 0
    assert table["cells"].sum() == report["tiers"]["tiers"][0]["cells"]
    (run / "places.csv").unlink()
    monkeypatch.setattr(
        formats, "OUTPUTS", (*formats.OUTPUTS[:-1], dataclasses.replace(extra, rerendered=True))
    )
    rerender(run, out=tmp_path / "again")
    assert (tmp_path / "again" / "places.csv").is_file()
    # a run without a risk surface has the formats every run has, and no others
    none = tmp_path / "none"
    analyze(
        events=sample_dir / "crimes.csv",
        area=sample_dir / "area.gpkg",
        factors={"churches": sample_dir / "factors" / "churches.shp"},
        block_length=150,
        where=["type=burglary", "month=1"],
        out=none,
    )
    files = {p.name for p in none.iterdir() if not p.name.startswith(".")}
    assert files == {o.file for o in formats.OUTPUTS if o.needs == "run"}


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
    # (the study area is fitted into the space between the panels, not under them)
    assert warm.mean() > 0.10, f"risk layer not visible: {warm.mean():.1%} warm pixels"
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
    labels = page.locator(".rtm-layers").text_content()  # (groups start collapsed)
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


def test_patrol_places_concentration_and_action_pack(hostile_run: Path) -> None:
    report = json.loads((hostile_run / "report.json").read_text())
    patrol = pyogrio.read_dataframe(hostile_run / "places.gpkg", layer="patrol_places")
    assert len(patrol) == report["patrol_places"]["count"] > 0 and patrol["id"].is_unique
    bounds = patrol.geometry.bounds
    assert (patrol["across"] <= 150).all() and (bounds.maxx - bounds.minx).max() <= 150
    areas = pyogrio.read_dataframe(hostile_run / "places.gpkg", layer="intervention_areas")
    assert len(areas) == report["intervention_areas"]["count"]
    assert [t["cell_share"] for t in report["concentration"]["top_cells"]] == [0.01, 0.05, 0.1]
    assert (hostile_run / "concentration.png").read_bytes().startswith(b"\x89PNG")
    tasks = pd.read_csv(hostile_run / "action_plan.csv")
    assert list(tasks.columns[-3:]) == ["owner", "status", "outcome"] and tasks.owner.isna().all()
    first = list(patrol["id"][:10])
    assert list(dict.fromkeys(tasks["id"])) == first
    assert list(pyogrio.read_dataframe(hostile_run / "action_plan.gpkg")["id"]) == first
    text = (hostile_run / "action_plan.html").read_text()
    assert HOSTILE not in text and text.count('<section class="page">') == len(first)


def test_report_and_action_pack_print_to_their_pages(browser, hostile_run: Path) -> None:
    pages = {}
    for name in ("report.html", "action_plan.html"):
        page, dialogs, requests = _open(browser, hostile_run / name)
        pdf = page.pdf(format="A4", prefer_css_page_size=True)
        pages[name] = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert dialogs == [] and not [u for u in requests if u.startswith("http")]
    places = json.loads((hostile_run / "report.json").read_text())["patrol_places"]["count"]
    assert 1 <= pages["report.html"] <= 4 and pages["action_plan.html"] == min(10, places)


# ------------------------------------------------------------ fast writers, same output
def _gpkg_rows(path: Path, layer: str) -> tuple:
    """Schema and every row of a GeoPackage layer (and its metadata), for comparisons."""
    import sqlite3

    with sqlite3.connect(path) as con:
        schema = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        rows = con.execute(f'SELECT * FROM "{layer}" ORDER BY fid').fetchall()
        tables = {name for name, _ in schema}
        meta = [
            con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")
            if table in tables
        ]
        srs = con.execute("SELECT srs_id, organization, definition FROM gpkg_spatial_ref_sys")
        return schema, rows, meta, sorted(srs.fetchall())


def _frames():
    import shapely

    n = 7
    points = [shapely.Point(i, i) for i in range(n)]
    box = shapely.box(0, 0, 1, 1)
    multi = shapely.MultiPolygon([shapely.box(2, 2, 3, 3), shapely.box(4, 4, 5, 5)])
    columns = {
        "i8": np.arange(n, dtype=np.int8),
        "i16": np.arange(n, dtype=np.int16),
        "i32": np.arange(n, dtype=np.int32),
        "i64": np.arange(n, dtype=np.int64) * 10**12,
        "f32": np.linspace(0, 1, n, dtype=np.float32),
        "f64": np.array([1.5, np.nan, -0.0, np.inf, 1e300, 2.0, 3.0]),
        "flag": np.array([True, False] * 3 + [True]),
        "text": ["a", None, "\u00e9\U0001f600", "", "x" * 300, np.nan, "z"],
        "label": np.array(["p", "q", "", "r", "s", "t", "u"]),
        "string": pd.array(["a", None, "c", "d", "e", "f", "g"], dtype="string"),
    }
    return {
        "dtypes": (gpd.GeoDataFrame(columns, geometry=points, crs="EPSG:27700"), {}),
        "promoted": (
            gpd.GeoDataFrame({"a": range(n)}, geometry=[box, multi] * 3 + [box], crs=4326),
            {},
        ),
        "mixed": (
            gpd.GeoDataFrame({"a": range(n)}, geometry=points[:4] + [box, multi, box], crs=4326),
            {"geometry_type": "Unknown", "layer_options": {"SPATIAL_INDEX": "NO"}},
        ),
        "dates": (  # left to pyogrio
            gpd.GeoDataFrame(
                {"d": pd.date_range("2022-01-01", periods=n)}, geometry=points, crs=27700
            ),
            {},
        ),
    }


@pytest.mark.parametrize("case", ["dtypes", "promoted", "mixed", "dates"])
def test_arrow_layer_writer_writes_what_to_file_writes(case: str, tmp_path: Path) -> None:
    from rtm.export._arrow import write_layer

    frame, options = _frames()[case]
    frame.to_file(tmp_path / "a.gpkg", layer="l", driver="GPKG", engine="pyogrio", **options)
    write_layer(tmp_path / "b.gpkg", frame, "l", **options)
    assert _gpkg_rows(tmp_path / "a.gpkg", "l") == _gpkg_rows(tmp_path / "b.gpkg", "l")


def test_write_cells_writes_what_cells_frame_writes(tmp_path: Path) -> None:
    import pyproj
    import shapely

    from rtm.export._arrow import box_wkb
    from rtm.export.vector import cells_frame, write_cells
    from rtm.grid import Grid

    rng = np.random.default_rng(0)
    mask = rng.random((13, 17)) > 0.3
    grid = Grid(523847.7, 188327.4, 25.0, 13, 17, pyproj.CRS(27700).to_wkt(), mask)
    n = grid.n_active
    columns = {
        "events": rng.integers(0, 5, n).astype(np.int32),
        "rrs": rng.random(n) * 3,
        "bars:proximity:200": rng.integers(0, 2, n).astype(np.int8),
        "tier": np.where(rng.random(n) > 0.8, "highest", ""),
    }
    x, y = grid.cell_centres()
    data, offsets = box_wkb(x - 12.5, y - 12.5, x + 12.5, y + 12.5)
    assert data == b"".join(shapely.to_wkb(grid.cell_polygons())) and len(offsets) == n + 1
    cells_frame(grid, columns).to_file(tmp_path / "a.gpkg", layer="cells", engine="pyogrio")
    write_cells(tmp_path / "b.gpkg", grid, columns)
    assert _gpkg_rows(tmp_path / "a.gpkg", "cells") == _gpkg_rows(tmp_path / "b.gpkg", "cells")


def test_attribute_json_is_json_dumps_of_each_row() -> None:
    from rtm.export.outputs import _attribute_json

    frame = pd.DataFrame(
        {
            "s": ["a", None, '\u00e9\u2028"\\\n<&', "x" * 300, np.nan],
            "i": [1, 2, 3, 4, 5],
            "f": [1.5, np.nan, 1e20, -0.0, np.inf],
            "d": pd.to_datetime(
                ["2022-01-01", None, "2022-01-03 04:05", "2022-01-04", "2022-01-05"], format="mixed"
            ),
            "o": [None, 1, "b", 2.5, pd.NA],
            7: pd.array(["k", None, "m", "n", "o"], dtype="string"),
            "c": pd.Categorical(["u", "v", None, "u", "v"]),
        }
    )
    expected = [
        json.dumps(
            {str(c): str(v)[:120] for c, v in zip(frame.columns, row, strict=True) if pd.notna(v)}
        )
        for row in frame.itertuples(index=False, name=None)
    ]
    assert _attribute_json(frame, list(frame.columns)) == expected
    assert _attribute_json(frame, []) == ["{}"] * 5


def test_overlays_warped_together_match_separate_warps() -> None:
    """overlay_pngs warps cell numbers once; each layer must match its own warp."""
    import io

    import pyproj
    from affine import Affine
    from PIL import Image
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    from rtm.export._style import overlay_pngs, ramp_rgb
    from rtm.grid import Grid

    rng = np.random.default_rng(1)
    mask = rng.random((61, 83)) > 0.2
    grid = Grid(530000.0, 180000.0, 37.5, 61, 83, pyproj.CRS(27700).to_wkt(), mask)
    layers = [
        ((rng.random(grid.shape) * 254).astype(np.uint8) * mask, ramp_rgb(253)),
        (rng.integers(0, 4, grid.shape).astype(np.uint8) * mask, np.eye(3, dtype=np.uint8)),
    ]
    pngs, _ = overlay_pngs(grid, layers)
    transform, width, height = calculate_default_transform(
        grid.crs, "EPSG:3857", grid.n_cols, grid.n_rows, *grid.bounds
    )
    for png, (index, _) in zip(pngs, layers, strict=True):
        warped = np.zeros((height, width), np.uint8)
        reproject(
            index,
            warped,
            src_transform=Affine(37.5, 0, grid.x_min, 0, -37.5, grid.y_max),
            src_crs=grid.crs,
            dst_transform=transform,
            dst_crs="EPSG:3857",
            resampling=Resampling.nearest,
            src_nodata=0,
            dst_nodata=0,
        )
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), warped)


def test_static_map_colours_cells_as_matplotlib_colours_values() -> None:
    """risk.png draws pre-coloured cells: the same pixels as drawing the RRS values."""
    import io

    import pyproj
    from matplotlib.figure import Figure

    from rtm.export.figure import _draw_risk
    from rtm.grid import Grid

    rng = np.random.default_rng(2)
    mask = rng.random((40, 55)) > 0.25
    grid = Grid(530000.0, 180000.0, 100.0, 40, 55, pyproj.CRS(27700).to_wkt(), mask)
    rrs = np.exp(rng.random(grid.n_active) * 3)
    images = []
    for colour in (False, True):
        figure = Figure(figsize=(5, 4), dpi=100)
        ax = figure.add_axes((0.05, 0.05, 0.7, 0.9))
        cax = figure.add_axes((0.8, 0.2, 0.03, 0.6))
        _draw_risk(ax, grid, rrs, area=None, places=None, title="t", colorbar=cax, colour=colour)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        images.append(buffer.getvalue())
    assert images[0] == images[1]


def test_prefetch_imports_the_later_stages_in_a_daemon_thread() -> None:
    """In a fresh interpreter: after the prefetch thread ends, the stages' modules are loaded."""
    out = fresh_python(
        "import sys",
        "from rtm.export.run import PREFETCH, prefetch_modules",
        "assert 'matplotlib.figure' not in sys.modules",
        "assert 'sklearn.ensemble' not in sys.modules",
        "thread = prefetch_modules('outputs', 'forecast')",
        "assert thread.daemon",
        "thread.join(120)",
        "names = PREFETCH['outputs'] + PREFETCH['forecast']",
        "print('missing', [m for m in names if m not in sys.modules])",
    )
    assert out == "missing []"


def test_prefetch_leaves_a_failing_import_to_its_user(monkeypatch) -> None:
    """A module that cannot be imported stops the prefetch quietly: no exception escapes."""
    import threading

    import rtm.export.run as run

    raised: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    monkeypatch.setitem(run.PREFETCH, "outputs", ("rtm.no_such_module", "json"))
    thread = run.prefetch_modules("outputs")
    thread.join(30)
    assert not thread.is_alive()
    assert raised == []


def test_output_options_are_light_and_keep_their_old_homes() -> None:
    """The CLI builds OutputOptions before the fit without importing the output machinery."""
    out = fresh_python(
        "import sys",
        "from rtm_cli.map import output_options_from",
        "options = output_options_from(tier_cuts=(2.5, 1.5, 0.5))",
        "heavy = ('rtm.places', 'rtm.export.outputs', 'scipy.ndimage', 'matplotlib')",
        "print(options.tier_cuts, [m for m in heavy if m in sys.modules])",
    )
    assert out == "(2.5, 1.5, 0.5) []"
    from rtm.export import options, outputs
    from rtm.places import CONNECTIVITY, DEFAULT_TIER_CUTS, check_tier_cuts

    assert outputs.OutputOptions is options.OutputOptions
    assert outputs.MAX_FEATURES == options.MAX_FEATURES
    assert (CONNECTIVITY, DEFAULT_TIER_CUTS) == (options.CONNECTIVITY, options.DEFAULT_TIER_CUTS)
    assert check_tier_cuts is options.check_tier_cuts
    with pytest.raises(ValueError, match="strictly descending"):
        outputs.OutputOptions(tier_cuts=(1.0, 2.0, 0.0))


def test_factor_layers_equal_a_whole_frame_reprojection() -> None:
    """Point layers transformed by coordinates give the numbers of reprojecting every geometry."""
    from types import SimpleNamespace

    import shapely

    from rtm.export.webmap import _factor_layers

    rng = np.random.default_rng(5)
    x, y = 530_000 + rng.random(40) * 4000, 180_000 + rng.random(40) * 4000
    points = list(shapely.points(x, y))
    line = shapely.LineString([(x[0], y[0]), (x[1], y[1]), (x[2], y[2])])
    square = shapely.box(x[3], y[3], x[3] + 150, y[3] + 150)
    frame = gpd.GeoDataFrame(
        {
            "factor": ["bars"] * 20 + ["roads"] + ["mixed"] * 2 + ["atms"] * 19,
            "total": [20] * 20 + [1] + [2] * 2 + [30] * 19,
            "attributes": ['{"name": "x"}'] * 42,
        },
        geometry=points[:20] + [line, points[20], square] + points[21:40],
        crs="EPSG:27700",
    )
    factor = SimpleNamespace(name="bars", relative_risk_value=1.5)
    bundle = SimpleNamespace(features=frame, surface=SimpleNamespace(factors=[factor]))
    layers = {layer["name"]: layer for layer in _factor_layers(bundle)}
    assert set(layers) == {"bars", "roads", "mixed", "atms"}
    assert [layer["name"] for layer in _factor_layers(bundle)][0] == "bars"  # selected first
    degrees = frame.to_crs("EPSG:4326")
    for name, layer in layers.items():
        part = degrees[degrees["factor"] == name].geometry.values
        if name in ("bars", "atms"):
            expected = np.round(np.column_stack([shapely.get_y(part), shapely.get_x(part)]), 6)
            assert layer["points"] == expected.tolist()
            assert "shapes" not in layer
        else:
            rounded = shapely.transform(np.asarray(part), lambda xy: np.round(xy, 6))
            assert layer["shapes"] == [shapely.geometry.mapping(g) for g in rounded]
            assert "points" not in layer
    assert layers["atms"]["total"] == 30 and layers["atms"]["shown"] == 19


def test_outputs_choice_names_every_file_of_the_registry() -> None:
    """--outputs chooses among the registry's files and the validation plot: the light list
    the spec checks against is the registry's, and the record is among them."""
    from rtm.export.formats import OUTPUTS
    from rtm.spec_values import OUTPUT_FILES, RECORD_FILES

    registry = {output.file for output in OUTPUTS} | {"capture.png", "validation.json"}
    assert set(OUTPUT_FILES) | set(RECORD_FILES) == registry
    assert not set(OUTPUT_FILES) & set(RECORD_FILES)
    from rtm.errors import ParameterError
    from rtm.spec import StudySpec

    with pytest.raises(ParameterError, match="--outputs: give file names"):
        StudySpec(area="a.gpkg", block_length=100, outputs=True)  # outputs = true in a TOML


def test_outputs_writes_the_chosen_files_and_the_record(tmp_path: Path) -> None:
    """A nightly refit that wants two rasters gets them and the record, nothing else; the
    record and the rasters are byte for byte those of a run writing everything (the lean
    run skips the factors' features, which only the map and features.gpkg show); a
    misspelt name is a one-line error and no folder."""
    out, full = tmp_path / "lean", tmp_path / "full"
    test = ("--test-crimes", str(SAMPLE / "crimes.csv"), "--test-where", "month=7..12")
    common = ["--where", "month=1..6", "--no-challengers"]
    args = [*sample_analyze_args(out, "-q", "--outputs", "forecast.tif,risk.tif", *test)]
    result = run_rtm(*args, *common)
    assert result.returncode == 0, result.stderr
    everything = run_rtm(*sample_analyze_args(full, "-q", *test), *common)
    assert everything.returncode == 0, everything.stderr
    for name in ("risk.tif", "forecast.tif", "cells.gpkg"):
        assert (out / name).read_bytes() == (full / name).read_bytes(), name
    lean_report, full_report = (json.loads((f / "report.json").read_text()) for f in (out, full))
    lean_report["spec"].pop("outputs")
    full_report["spec"].pop("outputs")
    assert lean_report == full_report
    assert sorted(p.name for p in out.iterdir() if p.name != ".rtm-run") == [
        "cells.gpkg",
        "forecast.tif",
        "report.json",
        "risk.tif",
        "validation.json",
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["spec"]["outputs"] == ["risk.tif", "forecast.tif"]  # registry order

    bad = run_rtm(*sample_analyze_args(tmp_path / "bad", "--outputs", "risk.tiff"))
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert "--outputs: 'risk.tiff' is not a file of a run folder (did you mean risk.tif?)" in line
    assert not (tmp_path / "bad").exists()


def test_rtm_map_keeps_drawing_from_the_forecast(tmp_path: Path) -> None:
    """A run with a forecast keeps it per cell in cells.gpkg: rtm map redraws the same
    priority places from it (not from the tiers) and keeps the map's forecast layer."""
    first, again = tmp_path / "run", tmp_path / "again"
    fitted = run_rtm(*sample_analyze_args(first, "-q", "--forecast", "--no-challengers"))
    assert fitted.returncode == 0, fitted.stderr
    surface = rasterio_values(first / "forecast.tif")
    cells = gpd.read_file(first / "cells.gpkg")
    assert "forecast" in cells.columns
    # the float64 column is the raster's (float32) values, cell for cell
    np.testing.assert_allclose(
        np.sort(cells["forecast"].to_numpy()), np.sort(surface), rtol=1e-6, atol=1e-12
    )
    mapped = run_rtm("map", str(first), "--out", str(again), "-q")
    assert mapped.returncode == 0, mapped.stderr
    for folder in (first, again):
        report = json.loads((folder / "report.json").read_text())
        assert "forecast's top cells" in report["priority_places"]["definition"]
        assert "Where the next crimes are likely" in (folder / "map.html").read_text()
    for layer in ("priority_places", "patrol_places"):
        a = gpd.read_file(first / "places.gpkg", layer=layer)
        b = gpd.read_file(again / "places.gpkg", layer=layer)
        assert len(a) > 0 and a.geometry.equals(b.geometry), layer


def rasterio_values(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as raster:
        band = raster.read(1, masked=True)
    return np.asarray(band.compressed(), dtype=np.float64)
