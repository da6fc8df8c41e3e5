"""``map.html``: a self-contained Leaflet map that works with no network.

Leaflet's JavaScript and CSS (vendored under ``rtm/export/static/``) are inlined, the risk
surface and the tiers are PNG overlays (warped to Web Mercator, embedded as base64: a
million-cell area stays a few hundred kB and opens at once), places and factor features
are embedded as JSON. Only the basemap needs the network: offline its tiles simply fail
and every rtm layer still shows. User text (factor names, attribute values, file names)
reaches the page as JSON data written into the DOM as text, never as markup.
"""

from __future__ import annotations

import base64
import html
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from rtm._version import __version__
from rtm.export._style import (
    PLACE_COLOUR,
    PRIORITY_COLOUR,
    RAMP,
    TIER_COLOURS,
    data_uri,
    legend_ticks,
    overlay_pngs,
    ramp_index,
    ramp_rgb,
)
from rtm.export.words import environment, fraction
from rtm.filters import crime_word
from rtm.io.crs import transformer as crs_transformer
from rtm.places import Place, PlaceAnalysis, place_frame

__all__ = ["MAX_MAP_PLACES", "MapView", "render_map"]

STATIC = Path(__file__).parent / "static"
#: Places of each kind drawn on the map (all of them are in places.gpkg and report.json).
MAX_MAP_PLACES = 500
#: Recent events drawn on the map.
MAX_MAP_EVENTS = 5000
PATROL_COLOUR = "#0077bb"
INTERVENTION_COLOUR = "#009988"
FACTOR_COLOURS = (
    "#1b9e77",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#1f78b4",
    "#b15928",
    "#6a3d9a",
)
LEAFLET_VERSION = "1.9.4"


@lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS, the CSS's images inlined as data URIs."""
    js = (STATIC / "leaflet.js").read_text(encoding="utf-8")
    css = (STATIC / "leaflet.css").read_text(encoding="utf-8")
    for image in ("layers-2x.png", "layers.png"):
        encoded = base64.b64encode((STATIC / image).read_bytes()).decode("ascii")
        css = css.replace(f"url(images/{image})", f"url(data:image/png;base64,{encoded})")
    css = css.replace("url(images/marker-icon.png)", "none")  # markers are not used
    return js, css


@lru_cache(maxsize=1)
def _map_js() -> str:
    return (STATIC / "map.js").read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` left raw)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _round(geometry: Any) -> Any:
    """Coordinates rounded to 6 decimals (one call rounds a whole array of geometries)."""
    return shapely.transform(geometry, lambda xy: np.round(xy, 6))


def _to_degrees(frame: Any) -> Any:
    return frame.to_crs("EPSG:4326")


def _geojson(geometry: Any) -> dict[str, Any]:
    return shapely.geometry.mapping(_round(geometry))


def _place_features(
    grid: Any, places: tuple[Place, ...], kind: str, frame: Any = None
) -> list[dict[str, Any]]:
    """GeoJSON features of the first places (``frame``: their ``place_frame``, if known)."""
    shown = places[:MAX_MAP_PLACES]
    if not shown:
        return []
    if frame is None:
        frame = place_frame(grid, shown, priority=kind == "Priority place")
    geometries = _round(np.asarray(_to_degrees(frame.iloc[: len(shown)]).geometry.values))
    features = []
    for place, geometry in zip(shown, geometries, strict=True):
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(geometry),
                "properties": {
                    "kind": kind,
                    "rank": place.rank,
                    "cells": place.cells,
                    "area_ha": place.area / 10_000,
                    "events": place.events,
                    "recent": place.recent_events,
                    "mean_rrs": place.mean_rrs,
                    "max_rrs": place.max_rrs,
                    "why": [
                        {
                            "text": f.description,
                            "rrv": f.relative_risk_value,
                            "share": f.cell_share,
                            "protective": f.protective,
                        }
                        for f in place.factors
                    ],
                },
            }
        )
    return features


def _factor_layers(bundle: Any) -> list[dict[str, Any]]:
    frame = bundle.features
    selected = {f.name: f for f in bundle.surface.factors}
    if frame is None or not len(frame):
        return []
    # A layer of points needs only their coordinates in degrees: transform those (what
    # to_crs does inside) rather than rebuild every point geometry (most of to_crs's
    # time); the other layers are reprojected whole.
    transformer = crs_transformer(frame.crs, "EPSG:4326")
    parts = {str(name): part for name, part in frame.groupby("factor", sort=False)}
    names = sorted(parts, key=lambda n: (n not in selected, n.lower()))
    layers = []
    for position, name in enumerate(names):
        part = parts[name]
        total, shown = int(part["total"].iloc[0]), len(part)
        geometry = part.geometry.values
        texts = part["attributes"].to_numpy(dtype=object).tolist()  # fast, unlike iteration
        attrs = json.loads("[" + ",".join(a or "{}" for a in texts) + "]")
        factor = selected.get(name)
        label = name + (
            f" (in the model, RRV {factor.relative_risk_value:.2f})"
            if factor
            else " (not selected)"
        )
        if shown < total:
            label += f" (showing {shown:,} of {total:,})"
        layer: dict[str, Any] = {
            "name": name,
            "label": label,
            "colour": FACTOR_COLOURS[position % len(FACTOR_COLOURS)],
            "attrs": attrs,
            "shown": shown,
            "total": total,
            "group": "Risk factors in the model" if factor else "Risk factors not selected",
        }
        if all(shapely.get_type_id(geometry) == 0):
            lon, lat = transformer.transform(shapely.get_x(geometry), shapely.get_y(geometry))
            layer["points"] = np.round(np.column_stack([lat, lon]), 6).tolist()
        else:
            degrees = np.asarray(_to_degrees(part).geometry.values)
            layer["shapes"] = [shapely.geometry.mapping(g) for g in _round(degrees)]
        layers.append(layer)
    return layers


def map_data(
    bundle: Any,
    analysis: PlaceAnalysis,
    *,
    places_frame: Any = None,
    priority_frame: Any = None,
) -> dict[str, Any]:
    """Everything map.html draws, as JSON-ready data.

    ``places_frame`` and ``priority_frame``, the :func:`rtm.places.place_frame` of the
    places and of the priority places when the caller has them, save recomputing them.
    """
    grid, surface, report = bundle.grid, bundle.surface, bundle.report
    rrs_max = float(surface.rrs.max())
    risk_png, tier_png, bounds = _overlays(grid, surface, analysis, rrs_max)
    crime = crime_word(report.where)
    data: dict[str, Any] = {
        "title": f"Risk terrain: {crime}",
        "lines": _headline(bundle, analysis, crime),
        "crime": crime,
        "crime_cap": crime[:1].upper() + crime[1:],
        "recent_label": _recent_label(analysis),
        "bounds": bounds,
        "colours": {"place": PLACE_COLOUR, "priority": PRIORITY_COLOUR},
        "risk": {
            "url": data_uri(risk_png),
            "bounds": bounds,
            "ramp": list(RAMP),
            "ticks": [[p, f"{v:.3g}"] for p, v in legend_ticks(rrs_max)],
        },
        "tiers": {
            "url": data_uri(tier_png),
            "bounds": bounds,
            "items": [
                {
                    "colour": colour,
                    "label": f"{t.name}: RRS \u2265 {t.rrs_min:.3g}, "
                    f"{fraction(t.area_share)} of area, "
                    f"{fraction(t.event_share)} of {crime}",
                }
                for t, colour in zip(analysis.tiers.tiers, TIER_COLOURS, strict=True)
            ],
        },
        "places": {
            "label": _capped("Highest-risk places", len(analysis.places)),
            "type": "FeatureCollection",
            "features": _place_features(grid, analysis.places, "Highest-risk place", places_frame),
        },
        "priority": {
            "label": _capped(
                "Priority places (high risk + recent " + crime + ")", len(analysis.priority_places)
            ),
            "features": _place_features(
                grid, analysis.priority_places, "Priority place", priority_frame
            ),
        },
        "patrol": _patrol_layer(grid, analysis),
        "intervention": _intervention_layer(grid, analysis),
        "area": None,
        "events": _recent_events(bundle, analysis, crime),
        "factors": _factor_layers(bundle),
        "streets": _streets(bundle),
    }
    if bundle.area is not None:
        area = bundle.area.geometry.simplify(grid.cell_size / 4)
        data["area"] = _geojson(shapely.union_all(np.asarray(area.to_crs("EPSG:4326").values)))
    return data


def _patrol_layer(grid: Any, analysis: PlaceAnalysis) -> dict[str, Any] | None:
    """The patrol places (outline and facts) for map.html, or None."""
    patrol = analysis.patrol
    if patrol is None or not patrol.places:
        return None
    from rtm.places.patrol import patrol_frame

    shown = patrol.places[:MAX_MAP_PLACES]
    frame = _to_degrees(patrol_frame(grid, patrol).iloc[: len(shown)])
    features = []
    for place, geometry in zip(shown, _round(np.asarray(frame.geometry.values)), strict=True):
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(geometry),
                "properties": {
                    "id": place.id,
                    "rank": place.rank,
                    "ref": place.grid_ref,
                    "street": place.street,
                    "expected": place.expected,
                    "events": place.events,
                    "recent": place.recent_events,
                    "why": place.why(),
                },
            }
        )
    return {
        "label": _capped(f"Patrol places (at most {patrol.size:g} m across)", len(patrol.places)),
        "colour": PATROL_COLOUR,
        "features": features,
    }


def _intervention_layer(grid: Any, analysis: PlaceAnalysis) -> dict[str, Any] | None:
    """The intervention areas for map.html, or None."""
    areas = analysis.intervention
    if areas is None or not areas.areas:
        return None
    frame = _to_degrees(areas.frame(grid))
    return {
        "label": f"Intervention areas: highest risk + recent hot spot ({len(areas.areas)})",
        "colour": INTERVENTION_COLOUR,
        "shapes": [shapely.geometry.mapping(g) for g in _round(np.asarray(frame.geometry.values))],
    }


def _concentration_line(analysis: PlaceAnalysis, crime: str) -> str | None:
    figures = analysis.concentration
    if figures is None:
        return None
    cells = {round(t["cell_share"], 4): t for t in figures.top_cells}
    if 0.05 not in cells:
        return None
    text = f"Top 5% of cells: {fraction(cells[0.05]['event_share'])} of the {crime}"
    if "harm_share" in cells[0.05]:
        text += f", {fraction(cells[0.05]['harm_share'])} of the harm"
    return text + f" (Gini {figures.gini_events:.2f})."


def _streets(bundle: Any) -> dict[str, Any] | None:
    """The study's street lines (simplified to a quarter cell, in degrees) with their names."""
    streets = getattr(bundle, "streets", None)
    if streets is None or not len(streets):
        return None
    lines = streets.geometry.simplify(bundle.grid.cell_size / 4).to_crs("EPSG:4326")
    geometries = _round(np.asarray(lines.values))
    names = streets["name"].tolist() if "name" in streets.columns else [None] * len(streets)
    features = [
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(geometry),
            "properties": {"name": None if name is None or name != name else str(name)},
        }
        for geometry, name in zip(geometries, names, strict=True)
        if not shapely.is_empty(geometry)
    ]
    return {
        "label": f"Streets ({len(features):,})",
        "collection": {"type": "FeatureCollection", "features": features},
    }


def _overlays(
    grid: Any, surface: Any, analysis: PlaceAnalysis, rrs_max: float
) -> tuple[bytes, bytes, list[list[float]]]:
    """The risk and tier overlays as PNGs, and their [[south, west], [north, east]] bounds."""
    risk_index = grid.to_raster(ramp_index(surface.rrs, rrs_max), nodata=0).astype(np.uint8)
    tier_index = grid.to_raster(analysis.tiers.cell_rank.astype(np.uint8), nodata=0).astype(
        np.uint8
    )
    palette = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in TIER_COLOURS], np.uint8)
    (risk_png, tier_png), (south, west, north, east) = overlay_pngs(
        grid, [(risk_index, ramp_rgb()), (tier_index, palette)]
    )
    return risk_png, tier_png, [[south, west], [north, east]]


def _headline(bundle: Any, analysis: PlaceAnalysis, crime: str) -> list[str]:
    """The map's few lines of explanation."""
    grid, surface, report = bundle.grid, bundle.surface, bundle.report
    tested = len(report.inputs.factors) or len(surface.factors)
    top = analysis.tiers.tiers[0]
    return [
        f"{len(surface.factors)} of {tested} risk factors selected; "
        f"cells of {grid.cell_size:g} {grid.unit}; "
        f"{int(surface.counts.sum()):,} {crime}.",
        f"Highest-risk places: {fraction(top.area_share)} of the area, "
        f"{fraction(top.event_share)} of the {crime}.",
        *filter(None, [_concentration_line(analysis, crime)]),
        f"Recent window: {analysis.recent.note}.",
        "Click a place to see why it is risky. The basemap needs internet; the risk layers do not.",
    ]


def _recent_events(bundle: Any, analysis: PlaceAnalysis, crime: str) -> dict[str, Any] | None:
    """The recent events as [lat, lon] points, a fixed sample of them when there are many."""
    recent = analysis.recent
    if bundle.events is None or recent.mask is None or not recent.events:
        return None
    chosen = bundle.events.geometry.values[recent.mask]
    total = len(chosen)
    if total > MAX_MAP_EVENTS:
        chosen = chosen[
            np.sort(np.random.default_rng(0).choice(total, MAX_MAP_EVENTS, replace=False))
        ]
    import geopandas as gpd

    lonlat = gpd.GeoSeries(chosen, crs=bundle.events.crs).to_crs("EPSG:4326").values
    label = f"Recent {crime} ({_recent_label(analysis)})"
    if total > MAX_MAP_EVENTS:
        label += f" (showing {MAX_MAP_EVENTS:,} of {total:,})"
    return {
        "label": label,
        "points": np.round(
            np.column_stack([shapely.get_y(lonlat), shapely.get_x(lonlat)]), 6
        ).tolist(),
    }


def _capped(label: str, total: int) -> str:
    if total > MAX_MAP_PLACES:
        return f"{label} (top {MAX_MAP_PLACES} of {total:,})"
    return f"{label} ({total:,})"


def _recent_label(analysis: PlaceAnalysis) -> str:
    recent = analysis.recent
    if recent.resolution is None:
        return "all events: no dates"
    return f"{recent.start} to {recent.end}, within {analysis.recent_distance:g} m"


#: The forecast layer's classes: the top 1%, 5%, 10% and 20% of cells, darkest first.
FORECAST_SHARES: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20)
FORECAST_COLOURS: tuple[str, ...] = ("#3f007d", "#6a51a3", "#9e9ac8", "#dadaeb")


def forecast_layer(grid: Any, forecast: Any) -> dict[str, Any]:
    """The "Where the next crimes are likely" layer: the forecast's top cells, in classes.

    Distinct from the risk terrain (why a place is risky): this is where the forecast
    expects the next events (:mod:`rtm.validation.forecast`).
    """
    values = np.asarray(forecast, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    rank = np.empty(values.size)
    rank[order] = (np.arange(values.size) + 1) / values.size
    index = np.zeros(values.size, dtype=np.uint8)
    for k, share in reversed(list(enumerate(FORECAST_SHARES, start=1))):
        index[rank <= share] = k
    palette = np.array(
        [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in FORECAST_COLOURS], np.uint8
    )
    raster = grid.to_raster(index, nodata=0).astype(np.uint8)
    (png,), (south, west, north, east) = overlay_pngs(grid, [(raster, palette)])
    previous = 0.0
    items = []
    for share, colour in zip(FORECAST_SHARES, FORECAST_COLOURS, strict=True):
        items.append({"colour": colour, "label": f"top {fraction(previous)}-{fraction(share)}"})
        previous = share
    return {
        "label": "Where the next crimes are likely",
        "url": data_uri(png),
        "bounds": [[south, west], [north, east]],
        "items": items,
    }


def render_map(
    bundle: Any,
    analysis: PlaceAnalysis,
    *,
    places_frame: Any = None,
    priority_frame: Any = None,
    forecast: Any = None,
) -> str:
    """The complete, self-contained map.html (for the frames, see :func:`map_data`).

    With ``forecast`` (per cell), the map also has the :func:`forecast_layer`.
    """
    from markupsafe import Markup

    js, css = leaflet_assets()
    data = map_data(bundle, analysis, places_frame=places_frame, priority_frame=priority_frame)
    if forecast is not None:
        data["forecast"] = forecast_layer(bundle.grid, forecast)
    return (
        environment()
        .get_template("map.html.j2")
        .render(
            title=data["title"],
            version=__version__,
            leaflet_version=LEAFLET_VERSION,
            leaflet_css=Markup(css),
            leaflet_js=Markup(js),
            map_js=Markup(_map_js()),
            data_json=Markup(script_json(data)),
        )
    )


class MapView:
    """An rtm map for notebooks: shows inline (an iframe), saves to a file.

    Attributes
    ----------
    html : str
        The complete, self-contained map.html.
    """

    def __init__(self, html_text: str, height: int = 600) -> None:
        self.html = html_text
        self.height = height

    def save(self, path: str | Path) -> Path:
        """Write the map to ``path``."""
        target = Path(path)
        target.write_text(self.html, encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        document = html.escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{document}" style="width:100%;height:{self.height}px;border:0" '
            'sandbox="allow-scripts allow-popups"></iframe>'
        )
