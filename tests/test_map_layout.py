"""map.html on real screens, in a real browser: panels that never cover each other or the
study area (1280x720, 1920x1080, a 390x844 phone), grouped layers, a legend that follows its
layers, popups clear of the panels, and the street context (``--streets``) on the map and
in risk.png. Read from screenshots, by their pixels."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from PIL import Image

from tests.conftest import SAMPLE
from tests.test_outputs import browser  # noqa: F401 - the shared Chromium fixture

VIEWPORTS = [(1280, 720), (1920, 1080), (390, 844)]
PANELS = (
    ".rtm-info, .rtm-layers, .rtm-legend, .leaflet-control-zoom, .leaflet-control-scale, "
    ".leaflet-control-attribution"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample robbery run, with named streets for context."""
    from rtm.api import analyze

    root = tmp_path_factory.mktemp("layout")
    roads = gpd.read_file(SAMPLE / "factors" / "main_roads.shp")
    roads["name"] = [f"Street {chr(65 + i)}" for i in range(len(roads))]
    roads.to_file(root / "streets.gpkg")
    out = root / "run"
    analyze(
        events=str(SAMPLE / "crimes.csv"),
        area=str(SAMPLE / "area.gpkg"),
        factors_dir=str(SAMPLE / "factors"),
        protective=["parks"],
        where=["type=robbery"],
        block_length=150,
        streets=str(root / "streets.gpkg"),
        out=out,
    )
    return out


def _page(browser, run: Path, width: int, height: int):  # noqa: F811
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto((run / "map.html").as_uri(), wait_until="load")
    page.wait_for_function("window.rtm && window.rtm.ready", timeout=20_000)
    page.wait_for_timeout(200)
    return page


def _pixels(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)


def _rects(page) -> list[dict]:
    return page.evaluate(
        f"""Array.from(document.querySelectorAll({PANELS!r})).map(e => {{
            const r = e.getBoundingClientRect();
            return {{name: e.className, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}};
        }}).filter(r => r.x1 > r.x0 && r.y1 > r.y0)"""
    )


def _overlap(a: dict, b: dict) -> bool:
    return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]


def _area_box(page) -> tuple[int, int, int, int]:
    box = page.evaluate(
        """(() => { const b = rtm.layers.area.getBounds(), m = rtm.map;
            const p = m.latLngToContainerPoint(b.getNorthWest());
            const q = m.latLngToContainerPoint(b.getSouthEast());
            return [p.x, p.y, q.x, q.y]; })()"""
    )
    return tuple(int(round(v)) for v in box)  # type: ignore[return-value]


@pytest.mark.parametrize(("width", "height"), VIEWPORTS, ids=[f"{w}x{h}" for w, h in VIEWPORTS])
def test_panels_leave_the_study_area_in_view(browser, run: Path, width: int, height: int) -> None:  # noqa: F811
    page = _page(browser, run, width, height)
    rects = _rects(page)
    names = " ".join(r["name"] for r in rects)
    assert all(panel in names for panel in ("rtm-info", "rtm-layers", "rtm-legend"))
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not _overlap(a, b), f"{a['name']} overlaps {b['name']} at {width}x{height}"
    x0, y0, x1, y1 = _area_box(page)
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, "the study area is cut off"
    assert (x1 - x0) * (y1 - y0) > 0.15 * width * height, "the study area is drawn too small"
    with_panels = _pixels(page)[y0:y1, x0:x1]
    page.add_style_tag(content=".leaflet-control-container { display: none !important; }")
    page.wait_for_timeout(100)
    bare = _pixels(page)[y0:y1, x0:x1]
    same = (np.abs(with_panels - bare).sum(axis=2) == 0).mean()
    assert same > 0.995, f"panels cover {1 - same:.1%} of the study area at {width}x{height}"
    page.context.close()


def test_layers_are_grouped_and_the_legend_follows_them(browser, run: Path) -> None:  # noqa: F811
    report = json.loads((run / "report.json").read_text())
    n_model = len(report["model"]["factors"])
    page = _page(browser, run, 1280, 720)
    groups = page.evaluate(
        "Array.from(document.querySelectorAll('details.rtm-group')).map("
        "g => [g.querySelector('summary').textContent, g.open])"
    )
    names = dict(groups)
    assert names[f"Risk factors in the model ({n_model})"] is False  # collapsed
    assert names[f"Risk factors not selected ({8 - n_model})"] is False
    assert names["Risk"] is True and names["Places"] is True
    legend = page.locator(".rtm-legend")

    def warm_in_legend() -> int:
        box = legend.bounding_box()
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB"))
        r, g, b = (shot[..., i].astype(int) for i in range(3))
        return int(((r > 150) & (r - b > 80) & (g < 200)).sum())  # the orange-red ramp

    assert warm_in_legend() > 200
    page.get_by_label("Relative risk score").uncheck()
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.rtm-legend-risk')).display")
        == "none"
    )
    assert warm_in_legend() == 0
    page.get_by_label("Risk tiers").check()  # its legend appears with it
    assert page.locator(".rtm-legend-tiers").is_visible()
    page.context.close()


def test_a_popup_opens_clear_of_the_panels(browser, run: Path) -> None:  # noqa: F811
    page = _page(browser, run, 1280, 720)
    for rank in (1, 2, 3):
        assert page.evaluate(f"rtm.openPopup('places', {rank})") is True
        page.wait_for_timeout(400)  # the map pans the popup into view
        popup = page.locator(".leaflet-popup").last.bounding_box()
        box = {"x0": popup["x"], "y0": popup["y"], "x1": popup["x"] + popup["width"],
               "y1": popup["y"] + popup["height"]}  # fmt: skip
        for panel in _rects(page):
            if "rtm-" in panel["name"]:
                assert not _overlap(box, panel), f"popup of place {rank} under {panel['name']}"
    page.context.close()


def test_streets_give_offline_context_with_their_names(browser, run: Path) -> None:  # noqa: F811
    html = (run / "map.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="rtm-data">(.*?)</script>', html, re.S).group(1))
    names = {f["properties"]["name"] for f in data["streets"]["collection"]["features"]}
    assert names <= {"Street A", "Street B", "Street C", "Street D"} and len(names) >= 3
    page = _page(browser, run, 1280, 720)
    page.evaluate("rtm.map.removeLayer(rtm.layers.risk); rtm.map.removeLayer(rtm.layers.places);"
                  "rtm.map.removeLayer(rtm.layers.priority); null")  # fmt: skip
    page.wait_for_timeout(100)
    x0, y0, x1, y1 = _area_box(page)
    shot = _pixels(page)[y0:y1, x0:x1]
    page.evaluate("rtm.map.removeLayer(rtm.layers.streets); null")
    page.wait_for_timeout(100)
    without = _pixels(page)[y0:y1, x0:x1]
    changed = np.abs(shot - without).sum(axis=2) > 30
    assert changed.sum() > 300, "the street lines are not drawn"
    colours = shot[changed]
    grey = (colours.max(axis=1) - colours.min(axis=1) < 20).mean()
    assert grey > 0.9, "the streets are drawn in grey"
    page.evaluate("rtm.map.addLayer(rtm.layers.streets); null")
    text = page.evaluate(
        "(() => { let t = null; rtm.layers.streets.eachLayer(l => { if (!t) { l.openPopup();"
        " t = document.querySelector('.rtm-street').textContent; } }); return t; })()"
    )
    assert text.startswith("Street ")
    page.context.close()


# --------------------------------------------------------------------------- risk.png


def _risk_figure(run: Path, *, streets: bool = True):
    """risk.png's figure of the run (as rtm map draws it), on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rtm.export.figure import LABELLED_PLACES, _draw_risk
    from rtm.export.options import OutputOptions
    from rtm.export.outputs import read_bundle, run_places
    from rtm.places import place_frame

    bundle = read_bundle(run)
    analysis = run_places(bundle, OutputOptions())
    places = place_frame(bundle.grid, analysis.places[:LABELLED_PLACES])
    figure = Figure(figsize=(8, 8), dpi=150)
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_axes((0.02, 0.05, 0.82, 0.9))
    cax = figure.add_axes((0.87, 0.2, 0.025, 0.6))
    _draw_risk(
        ax, bundle.grid, bundle.surface.rrs, area=bundle.area, places=places, title=None,
        colorbar=cax, colour=True, streets=bundle.streets if streets else None,
    )  # fmt: skip
    canvas.draw()
    return figure, canvas, ax, cax, places


def test_risk_png_numbers_every_place_legibly_and_its_colour_bar_reads(run: Path) -> None:
    figure, canvas, ax, cax, places = _risk_figure(run)
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    labels = [t for t in ax.texts if t.get_gid() == "rtm-place-label"]
    assert len(labels) == len(places) > 10  # every place drawn is numbered
    renderer = canvas.get_renderer()
    height = pixels.shape[0]
    for label in labels:
        box = label.get_bbox_patch().get_window_extent(renderer)
        x0, x1 = int(box.x0) + 1, int(box.x1) - 1
        y0, y1 = height - int(box.y1) + 1, height - int(box.y0) - 1
        disc = pixels[y0:y1, x0:x1]
        light = (disc.min(axis=2) > 235).mean()
        dark = (disc.max(axis=2) < 90).mean()
        assert light > 0.25 and dark > 0.05, f"place {label.get_text()} unreadable"
    ticks = [t.get_text() for t in cax.get_yticklabels() if t.get_text()]
    assert len(ticks) >= 5 and ticks[0] == "1", ticks


def test_risk_png_draws_the_streets_light(run: Path) -> None:
    _, with_canvas, *_ = _risk_figure(run)
    _, without_canvas, *_ = _risk_figure(run, streets=False)
    a = np.asarray(with_canvas.buffer_rgba())[..., :3].astype(int)
    b = np.asarray(without_canvas.buffer_rgba())[..., :3].astype(int)
    changed = np.abs(a - b).sum(axis=2) > 20
    assert changed.sum() > 500, "no street drawn on risk.png"
    # light: a thin translucent line, never black
    assert np.median(a[changed].sum(axis=1)) > 3 * 60


def test_the_map_overlay_warp_has_no_deprecated_affine_product() -> None:
    import warnings

    import pyproj
    from rasterio.warp import calculate_default_transform

    from rtm.export._style import mercator_transform

    for crs, shape, bounds in (
        ("EPSG:32630", (70, 60), (496000, 5696000, 503000, 5702000)),
        ("EPSG:27700", (158, 187), (523000, 175000, 538800, 193700)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error", PendingDeprecationWarning)
            ours, width, height = mercator_transform(pyproj.CRS(crs), *shape, bounds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            theirs, w, h = calculate_default_transform(
                crs, "EPSG:3857", *shape, left=bounds[0], bottom=bounds[1], right=bounds[2],
                top=bounds[3],
            )  # fmt: skip
        assert (width, height) == (w, h)
        np.testing.assert_allclose(tuple(ours)[:6], tuple(theirs)[:6], rtol=1e-12)
