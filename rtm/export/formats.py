"""The output formats of a run folder: a registry, written in order by one loop.

Each :class:`OutputFormat` names its file, says which runs have it and whether ``rtm
map`` rewrites it, and writes it from an :class:`OutputContext` (what the fit and the
places analysis produced; shared intermediates such as the places' polygons and the
static map's PNG are made once, on first use). :func:`write_outputs` writes every
format that applies: ``rtm analyze`` all of them, ``rtm map`` the re-rendered ones.

Adding a format (say, a GeoJSON of the places) is one writer function and one entry in
:data:`OUTPUTS` here, plus its test; a large renderer gets a module of its own, as the
map (:mod:`rtm.export.webmap`) and the printable report (:mod:`rtm.export.report_html`)
have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rtm.grid import Grid
from rtm.runs import RunReport, write_report

__all__ = ["OUTPUTS", "RISK_NODATA", "OutputContext", "OutputFormat", "write_outputs"]

#: nodata of risk.tif (outside the study area).
RISK_NODATA = -9999.0


@dataclass(eq=False)
class OutputContext:
    """What the outputs are written from.

    Attributes
    ----------
    report : RunReport
        The run's report (with tiers and places when there are some).
    grid : Grid
    cell_columns : dict
        The columns of cells.gpkg, by name.
    result : RTMResult or None
        The fit; None when re-rendering a run folder (``rtm map``).
    bundle : RunBundle or None
        What the map and report are drawn from; None without a risk surface.
    analysis : PlaceAnalysis or None
        Tiers and places; None without a risk surface.
    forecast : rtm.validation.forecast.Forecast or None
        The forecast (its ``surface``, ``recipe`` and inner ``choice``), when one was made.
    """

    report: RunReport
    grid: Grid
    cell_columns: dict[str, np.ndarray]
    result: Any = None
    bundle: Any = None
    analysis: Any = None
    forecast: Any = None

    @cached_property
    def place_frames(self) -> tuple[Any, Any]:
        """The polygons of the places and priority places (places.gpkg, risk.png, map.html)."""
        from rtm.export.outputs import place_polygons

        return place_polygons(self.grid, self.analysis)

    @cached_property
    def risk_png(self) -> bytes:
        """The static map (risk.png, and the picture in report.html)."""
        from rtm.export.figure import render_risk_png

        return render_risk_png(self.bundle, self.analysis, places_frame=self.place_frames[0])

    @cached_property
    def concentration_png(self) -> bytes:
        """The concentration curve (concentration.png, and the figure in report.html)."""
        from rtm.export.plots import render_concentration_png
        from rtm.filters import crime_word

        figures = self.analysis.concentration
        if figures is None:
            return b""
        return render_concentration_png(figures, crime=crime_word(self.report.where))


Needs = Literal["run", "surface", "places", "forecast"]


@dataclass(frozen=True)
class OutputFormat:
    """One file of a run folder.

    Attributes
    ----------
    file : str
        Its name in the run folder.
    what : str
        What it holds, for people (the docs list these).
    needs : {"run", "surface", "places", "forecast"}
        Every run has it; only a run with a risk surface (a fit: ``result``); only a run
        with tiers and places (``bundle`` and ``analysis``); only a run with a forecast.
    rerendered : bool
        Whether ``rtm map`` rewrites it (it must then not need ``result``).
    write : callable
        ``write(context, path)``.
    """

    file: str
    what: str
    needs: Needs
    rerendered: bool
    write: Callable[[OutputContext, Path], None]

    def applies(self, context: OutputContext, *, rerender: bool) -> bool:
        """Whether this output is written for ``context``."""
        if rerender and not self.rerendered:
            return False
        if self.needs == "surface":
            return context.result is not None and context.result.relative_risk_score is not None
        if self.needs == "places":
            return context.analysis is not None
        if self.needs == "forecast":
            return context.forecast is not None
        return True


def _report_json(context: OutputContext, path: Path) -> None:
    write_report(path, context.report)


def _factors_csv(context: OutputContext, path: Path) -> None:
    context.result.model_table().to_csv(path, index=False, float_format="%.6g")


def _risk_tif(context: OutputContext, path: Path) -> None:
    from rtm.export.raster import write_geotiff

    write_geotiff(
        path,
        context.grid,
        context.result.relative_risk_score,
        names=["relative_risk_score"],
        nodata=RISK_NODATA,
        dtype="float32",
    )


def _forecast_tif(context: OutputContext, path: Path) -> None:
    from rtm.export.raster import write_geotiff

    assert context.forecast is not None
    write_geotiff(
        path,
        context.grid,
        context.forecast.surface,
        names=["forecast_share_of_events"],
        nodata=RISK_NODATA,
        dtype="float32",
    )


def _forecast_json(context: OutputContext, path: Path) -> None:
    from rtm.runs import write_json

    assert context.forecast is not None
    write_json(path, {"recipe": context.forecast.recipe, "model_choice": context.forecast.choice})


def _cells_gpkg(context: OutputContext, path: Path) -> None:
    from rtm.export.vector import write_cells

    write_cells(path, context.grid, context.cell_columns)


def _features_gpkg(context: OutputContext, path: Path) -> None:
    from rtm.export.outputs import write_features

    write_features(path, context.bundle)


def _places_gpkg(context: OutputContext, path: Path) -> None:
    from rtm.export.outputs import write_places

    write_places(path, context.grid, context.analysis, context.place_frames)


def _risk_png(context: OutputContext, path: Path) -> None:
    path.write_bytes(context.risk_png)


def _map_html(context: OutputContext, path: Path) -> None:
    from rtm.export.webmap import render_map

    places, priority = context.place_frames
    text = render_map(
        context.bundle,
        context.analysis,
        places_frame=places,
        priority_frame=priority,
        forecast=None if context.forecast is None else context.forecast.surface,
    )
    path.write_text(text, encoding="utf-8")


def _report_html(context: OutputContext, path: Path) -> None:
    from rtm.accountability.model_card import add_model_card, read_validation
    from rtm.export.report_html import render_report

    text = render_report(
        context.bundle, context.analysis, context.risk_png, context.concentration_png
    )
    text = add_model_card(text, context.report, read_validation(path.parent))
    path.write_text(text, encoding="utf-8")


def _model_card_md(context: OutputContext, path: Path) -> None:
    # validation.json is written into the folder before the outputs (rtm analyze) or
    # copied there first (rtm map), so the card reports it when the run was validated
    from rtm.accountability.model_card import model_card_markdown, read_validation

    text = model_card_markdown(context.report, read_validation(path.parent))
    path.write_text(text, encoding="utf-8")


def _transparency_record_md(context: OutputContext, path: Path) -> None:
    from rtm.accountability.model_card import read_validation
    from rtm.accountability.transparency import transparency_record

    text = transparency_record(context.report, read_validation(path.parent))
    path.write_text(text, encoding="utf-8")


def _concentration_png(context: OutputContext, path: Path) -> None:
    path.write_bytes(context.concentration_png)


def _action_html(context: OutputContext, path: Path) -> None:
    from rtm.export.action import render_action

    path.write_text(render_action(context), encoding="utf-8")


def _action_csv(context: OutputContext, path: Path) -> None:
    from rtm.export.action import write_action_csv

    write_action_csv(context, path)


def _action_gpkg(context: OutputContext, path: Path) -> None:
    from rtm.export.action import write_action_gpkg

    write_action_gpkg(context, path)


#: Every output, in the order written.
OUTPUTS: tuple[OutputFormat, ...] = (
    OutputFormat("report.json", "the model, settings and diagnostics", "run", True, _report_json),
    OutputFormat("factors.csv", "the model table: factors and RRVs", "run", False, _factors_csv),
    OutputFormat("risk.tif", "relative risk score raster (GeoTIFF)", "surface", False, _risk_tif),
    OutputFormat(
        "forecast.tif",
        "where the next crimes are likely: the forecast's share of events per cell (GeoTIFF)",
        "forecast",
        False,
        _forecast_tif,
    ),
    OutputFormat(
        "forecast.json",
        "the forecast's recipe and the inner validation that chose it",
        "forecast",
        False,
        _forecast_json,
    ),
    OutputFormat("cells.gpkg", "per-cell scores, counts, factors, tier", "run", True, _cells_gpkg),
    OutputFormat("features.gpkg", "area, events, thinned factors", "places", False, _features_gpkg),
    OutputFormat("places.gpkg", "highest-risk and priority places", "places", True, _places_gpkg),
    OutputFormat("risk.png", "static risk map", "places", True, _risk_png),
    OutputFormat("map.html", "offline interactive map", "places", True, _map_html),
    OutputFormat("report.html", "printable briefing report", "places", True, _report_html),
    OutputFormat(
        "model_card.md", "model card: data, method, validation, uses", "run", True, _model_card_md
    ),
    OutputFormat(
        "transparency_record.md",
        "draft UK algorithmic transparency record (fields to fill marked)",
        "run",
        True,
        _transparency_record_md,
    ),
    OutputFormat(
        "concentration.png",
        "how concentrated events and harm are",
        "places",
        True,
        _concentration_png,
    ),
    OutputFormat(
        "action_plan.html",
        "ACTION pack: a page per top patrol place",
        "places",
        True,
        _action_html,
    ),
    OutputFormat("action_plan.csv", "ACTION tasks tracker", "places", True, _action_csv),
    OutputFormat("action_plan.gpkg", "ACTION places and tasks", "places", True, _action_gpkg),
)


def write_outputs(
    folder: Path,
    context: OutputContext,
    *,
    rerender: bool = False,
    progress: Callable[[str], None] | None = None,
    files: tuple[str, ...] | None = None,
) -> list[Path]:
    """Write every output that applies into ``folder``; returns the files written.

    ``files`` (``--outputs``) chooses among them; None: all. The record
    (:data:`~rtm.spec_values.RECORD_FILES`) is always written. ``progress`` receives one
    message per file (``outputs: map.html (8 of 9)``).
    """
    from rtm.spec_values import RECORD_FILES

    written = []
    chosen = [
        output
        for output in OUTPUTS
        if output.applies(context, rerender=rerender)
        and (files is None or output.file in files or output.file in RECORD_FILES)
    ]
    for number, output in enumerate(chosen, 1):
        path = folder / output.file
        output.write(context, path)
        written.append(path)
        if progress is not None:
            progress(f"outputs: {output.file} ({number} of {len(chosen)})")
    return written
