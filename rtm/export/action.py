"""The ACTION pack: one printable page per top patrol place, for the problem-solving meeting.

RTMDx's practice is the ACTION meeting (Assessment, Connections, Tasks, Interventions,
Outcomes, Notifications). Each page has the place's location (grid reference, street,
longitude/latitude), a mini-map, the risk narrative (one sentence per factor present),
suggested tasks from the factor -> task table (:mod:`rtm.places.tasks`) and empty
Owner, Status and Outcome fields. ``action_plan.csv`` has one row per place and task (for
a spreadsheet tracker), ``action_plan.gpkg`` the places with their tasks (for a GIS).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from rtm._version import __version__
from rtm.export._style import PLACE_COLOUR, RAMP, data_uri
from rtm.export.words import environment
from rtm.filters import crime_word
from rtm.places.patrol import PatrolPlace
from rtm.places.tasks import TaskTable, read_tasks

__all__ = ["ACTION_PLACES", "action_rows", "write_action_csv", "write_action_gpkg", "render_action"]

#: Patrol places that get an ACTION page (all of them are in places.gpkg).
ACTION_PLACES = 10
#: Half the side of a page's mini-map, in patrol sizes.
_MINI_MAP_REACH = 2.5


def _tasks(context: Any) -> TaskTable:
    settings = context.report.section("output_settings") or {}
    return read_tasks(settings.get("tasks"))


def _places(context: Any) -> tuple[PatrolPlace, ...]:
    patrol = context.analysis.patrol
    return () if patrol is None else patrol.places[:ACTION_PLACES]


def _sentences(place: PatrolPlace, crime: str) -> list[str]:
    out = []
    for f in place.factors:
        text = f.description[:1].upper() + f.description[1:]
        out.append(
            f"{text} (RRV {f.relative_risk_value:.2f}): cells under this influence are expected "
            f"to see {f.relative_risk_value:.1f} times as many {crime} as otherwise similar cells."
        )
    if not out:
        out.append("No selected factor that could be acted on covers this place.")
    return out


def _suggestions(place: PatrolPlace, tasks: TaskTable) -> list[tuple[str, str]]:
    """(factors, task) per distinct suggested task, factors joined by ``, ``."""
    grouped: dict[str, list[str]] = {}
    for f in place.factors:
        grouped.setdefault(tasks.task_for(f.name), []).append(f.name)
    if not grouped:
        return [("", tasks.default)]
    return [(", ".join(names), task) for task, names in grouped.items()]


def action_rows(context: Any) -> list[dict[str, Any]]:
    """One row per place and suggested task (the CSV and GeoPackage rows)."""
    tasks = _tasks(context)
    rows = []
    for place in _places(context):
        suggestions = {f.name: tasks.task_for(f.name) for f in place.factors} or {"": tasks.default}
        for factor, task in suggestions.items():
            rows.append(
                {
                    "id": place.id,
                    "rank": place.rank,
                    "grid_ref": place.grid_ref,
                    "street": place.street,
                    "lon": round(place.lon_lat[0], 6),
                    "lat": round(place.lon_lat[1], 6),
                    "factor": factor,
                    "task": task,
                    "owner": "",
                    "status": "",
                    "outcome": "",
                }
            )
    return rows


def write_action_csv(context: Any, path: Path) -> None:
    """``action_plan.csv``: one row per place and task, Owner/Status/Outcome empty."""
    import pandas as pd

    columns = ["id", "rank", "grid_ref", "street", "lon", "lat", "factor", "task"]
    frame = pd.DataFrame(action_rows(context), columns=[*columns, "owner", "status", "outcome"])
    frame.to_csv(path, index=False)


def write_action_gpkg(context: Any, path: Path) -> None:
    """``action_plan.gpkg``: the ACTION places (polygons) with their tasks joined by ``; ``."""
    import geopandas as gpd

    from rtm.export._arrow import write_layer
    from rtm.places.patrol import patrol_frame

    frame = patrol_frame(context.grid, context.analysis.patrol).head(ACTION_PLACES)
    tasks: dict[str, list[str]] = {}
    for row in action_rows(context):
        tasks.setdefault(row["id"], []).append(row["task"])
    frame = frame.assign(
        tasks=["; ".join(tasks.get(i, [])) for i in frame["id"]], owner="", status="", outcome=""
    )
    write_layer(path, gpd.GeoDataFrame(frame), "action_plan", geometry_type="Polygon")


def _mini_map(context: Any, place: PatrolPlace) -> bytes:
    """A small map around the place: the risk surface, the place, the events."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LinearSegmentedColormap, LogNorm
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    grid, surface = context.grid, context.bundle.surface
    reach = _MINI_MAP_REACH * max(context.analysis.patrol.size, grid.cell_size)
    cx, cy = place.centroid
    figure = Figure(figsize=(3.2, 3.2), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1))
    cmap = LinearSegmentedColormap.from_list("rtm_risk", list(RAMP))
    raster = np.ma.masked_invalid(grid.to_raster(np.asarray(surface.rrs, float), nodata=np.nan))
    x0, y0, x1, y1 = grid.bounds
    norm = LogNorm(vmin=1.0, vmax=max(float(np.nanmax(surface.rrs)), 1.0 + 1e-6))
    ax.imshow(raster, extent=(x0, x1, y0, y1), cmap=cmap, norm=norm, interpolation="nearest")
    x, y = grid.cell_centres()
    half = grid.cell_size / 2
    cells = place.cell_positions
    ax.add_patch(
        Rectangle(
            (x[cells].min() - half, y[cells].min() - half),
            x[cells].max() - x[cells].min() + grid.cell_size,
            y[cells].max() - y[cells].min() + grid.cell_size,
            fill=False,
            edgecolor="white",
            linewidth=4.5,
        )
    )
    ax.add_patch(
        Rectangle(
            (x[cells].min() - half, y[cells].min() - half),
            x[cells].max() - x[cells].min() + grid.cell_size,
            y[cells].max() - y[cells].min() + grid.cell_size,
            fill=False,
            edgecolor=PLACE_COLOUR,
            linewidth=2.0,
        )
    )
    events = context.bundle.events
    if events is not None and len(events):
        ex, ey = events.geometry.x.to_numpy(), events.geometry.y.to_numpy()
        near = (np.abs(ex - cx) <= reach) & (np.abs(ey - cy) <= reach)
        ax.scatter(ex[near], ey[near], s=8, c="white", edgecolors="black", linewidths=0.5)
    ax.set_xlim(cx - reach, cx + reach)
    ax.set_ylim(cy - reach, cy + reach)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(
        0.03,
        0.03,
        f"{2 * reach:,.0f} {grid.unit} across",
        transform=ax.transAxes,
        fontsize=7,
        bbox={"fc": "white", "ec": "none", "alpha": 0.8},
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": f"rtm {__version__}"})
    return buffer.getvalue()


def render_action(context: Any) -> str:
    """The complete, self-contained action_plan.html (one A4 page per place)."""
    report = context.report
    crime = crime_word(report.where)
    tasks = _tasks(context)
    harm = context.bundle.surface.harm is not None
    pages = []
    for place in _places(context):
        pages.append(
            {
                "place": place,
                "image": data_uri(_mini_map(context, place)),
                "sentences": _sentences(place, crime),
                "tasks": _suggestions(place, tasks),
            }
        )
    return (
        environment()
        .get_template("action.html.j2")
        .render(
            title=f"ACTION plan: {crime}",
            version=__version__,
            crime=crime,
            pages=pages,
            harm=harm,
            total=0 if context.analysis.patrol is None else len(context.analysis.patrol.places),
            tasks_source=tasks.source,
            recent_note=context.analysis.recent.note,
            empty_note=context.analysis.tiers.empty_note(),
        )
    )
