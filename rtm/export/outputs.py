"""Outputs people act on: tiers and places, map.html, report.html, risk.png, places.gpkg.

A :class:`RunBundle` holds everything these outputs are drawn from. It is built from a
fit (:func:`bundle_from_result`) or read back from a run folder (:func:`read_bundle`),
so ``rtm map RUN_DIR`` re-renders without refitting. The run folder keeps what the
bundle needs: ``report.json`` (model and settings), ``cells.gpkg`` (scores, counts and
the selected factors per cell) and ``features.gpkg`` (the study area, the events used,
and a thinned copy of every factor's features for the map's layers).
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from rtm.errors import InputError
from rtm.export.options import MAX_FEATURES, OutputOptions
from rtm.grid import Grid
from rtm.places import (
    FactorLayer,
    PlaceAnalysis,
    RiskSurface,
    analyze_places,
    place_frame,
)
from rtm.runs import Run, RunReport, load_run, read_features

__all__ = [
    "OutputOptions",
    "RunBundle",
    "bundle_from_result",
    "bundle_from_run",
    "cell_tiers",
    "options_report",
    "read_bundle",
    "run_places",
    "with_places",
    "place_polygons",
    "present",
    "write_features",
    "write_places",
]

#: Event attribute columns copied into features.gpkg (others are not needed to re-render).
_EVENT_COLUMNS = (
    "type",
    "date",
    "datetime",
    "date_time",
    "occurred",
    "occurred_at",
    "timestamp",
    "month",
)
_MAX_ATTRIBUTES = 6


@dataclass(frozen=True, eq=False)
class RunBundle:
    """What the presentation outputs are drawn from."""

    surface: RiskSurface
    report: RunReport = field(repr=False)
    area: gpd.GeoDataFrame | None = field(default=None, repr=False)
    features: gpd.GeoDataFrame | None = field(default=None, repr=False)
    events: gpd.GeoDataFrame | None = field(default=None, repr=False)
    #: Street lines for context (``streets``: name, geometry), when the study has them.
    streets: gpd.GeoDataFrame | None = field(default=None, repr=False)

    @property
    def grid(self) -> Grid:
        """The analysis grid."""
        return self.surface.grid

    def with_report(self, report: RunReport) -> RunBundle:
        """The same bundle with another report (e.g. with new tiers and places)."""
        return RunBundle(self.surface, report, self.area, self.features, self.events, self.streets)


def _items(series: pd.Series) -> list[Any]:
    """The values itertuples yields for a column (Python scalars, Timestamps, ...)."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "biufO"):
        # numpy-backed or strings: tolist() gives the same objects as iteration, at C speed
        # (iterating a pandas string array fetches element by element through Python)
        return list(series.to_numpy().tolist())
    return list(series)


def _attribute_json(frame: pd.DataFrame, columns: list[Any]) -> list[str]:
    """Per row, ``json.dumps({str(c): str(v)[:120] for c, v in row if pd.notna(v)})``.

    Built a column at a time, as the same text: each value goes once through the C string
    encoder ``json.dumps`` itself uses (``encode_basestring_ascii``), and rows are joined
    from ready ``"key": "value"`` fragments (empty where the value is missing).
    """
    keys = [str(c) for c in columns]
    if len(set(keys)) != len(keys):  # a dict would merge them: keep json.dumps' behaviour
        return [
            json.dumps(
                {str(c): str(v)[:120] for c, v in zip(columns, row, strict=True) if pd.notna(v)}
            )
            for row in frame[columns].itertuples(index=False, name=None)
        ]
    encode = json.encoder.encode_basestring_ascii
    clip = operator.itemgetter(slice(0, 120))
    text = np.full(len(frame), "", dtype=object)
    for column, key in zip(columns, keys, strict=True):
        series = frame[column]
        # map() keeps the per-value work in C
        fragment = np.fromiter(
            map((encode(key) + ": ").__add__, map(encode, map(clip, map(str, _items(series))))),
            dtype=object,
            count=len(series),
        )
        missing = series.isna().to_numpy()
        fragment[missing] = ""
        separator = np.where((text != "") & ~missing, ", ", "")
        text = text + separator + fragment
    return ("{" + text + "}").tolist()


def _thin_features(name: str, features: Any, limit: int, seed: int = 0) -> gpd.GeoDataFrame:
    """At most ``limit`` features of one factor, with a few attributes as JSON text."""
    names, totals, attributes, geometry, crs = _thin_parts(name, features, limit, seed)
    return gpd.GeoDataFrame(
        {"factor": names, "total": totals, "attributes": attributes}, geometry=geometry, crs=crs
    )


def _thin_parts(
    name: str, features: Any, limit: int, seed: int = 0
) -> tuple[list[str], list[int], list[str], np.ndarray, Any]:
    """The columns of :func:`_thin_features` (its factor, total, attributes, geometry, CRS).

    Works on plain arrays: per factor, GeoDataFrame row selection and construction cost
    more than the thinning itself.
    """
    if isinstance(features, gpd.GeoDataFrame):
        geometry_name = features.geometry.name  # once: each .geometry builds a GeoSeries
        geometry = np.asarray(features[geometry_name].values)
        crs = features[geometry_name].crs
        positions = [i for i, c in enumerate(features.columns) if c != geometry_name]
        attributes = pd.DataFrame(features.iloc[:, positions[:_MAX_ATTRIBUTES]])
    else:
        series = gpd.GeoSeries(features)
        geometry, crs = np.asarray(series.values), series.crs
        attributes = pd.DataFrame(index=pd.RangeIndex(len(geometry)))
    total = len(geometry)
    if total > limit:
        keep = np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False))
        geometry, attributes = geometry[keep], attributes.iloc[keep]
    shown = len(geometry)
    texts = _attribute_json(attributes, list(attributes.columns)) if shown else []
    return [name] * shown, [total] * shown, texts, geometry, crs


def bundle_from_result(
    result: Any,
    report: RunReport,
    *,
    study: Any = None,
    max_features: int = MAX_FEATURES,
    with_features: bool = True,
) -> RunBundle:
    """Build a bundle from a fitted :class:`rtm.result.RTMResult` (and its Study, if any).

    ``with_features=False`` leaves out the factors' thinned features (only the map and
    ``features.gpkg`` show them: :data:`rtm.spec_values.FEATURE_FILES`).
    """
    surface = RiskSurface.from_result(result, network=report.inputs.network is not None)
    if study is None:
        return RunBundle(surface, report)
    factors = study.factors if with_features else ()
    parts = [_thin_parts(f.name, f.features, max_features) for f in factors]
    features = None
    if parts and all(p[4] == parts[0][4] for p in parts):
        # one frame from the factors' columns, as pd.concat of their frames would give
        features = gpd.GeoDataFrame(
            {
                "factor": [n for p in parts for n in p[0]],
                "total": [t for p in parts for t in p[1]],
                "attributes": [a for p in parts for a in p[2]],
            },
            geometry=np.concatenate([p[3] for p in parts]),
            crs=parts[0][4],
        )
    elif parts:  # mixed CRSs: let geopandas decide, as before
        frames = [_thin_features(f.name, f.features, max_features) for f in factors]
        features = pd.concat(frames, ignore_index=True)
    events = None
    if study.events is not None:
        keep = [c for c in study.events.columns if str(c).lower() in _EVENT_COLUMNS]
        events = gpd.GeoDataFrame(
            study.events[keep].reset_index(drop=True),
            geometry=np.asarray(study.events.geometry.values),
            crs=study.events.crs,
        )
    area = gpd.GeoDataFrame(geometry=np.asarray(study.area.geometry.values), crs=study.area.crs)
    return RunBundle(surface, report, area, features, events, getattr(study, "streets", None))


def present(
    result: Any,
    report: RunReport,
    *,
    study: Any = None,
    options: OutputOptions | None = None,
    forecast: np.ndarray | None = None,
    with_features: bool = True,
) -> tuple[RunBundle, PlaceAnalysis]:
    """The bundle (its report with tiers and places) and the places of a fit.

    What the run folder's map, report and places are drawn from, and what
    ``RTMResult.explore`` shows: one path for both. ``with_features``: see
    :func:`bundle_from_result`.
    """
    options = options or OutputOptions()
    bundle = bundle_from_result(
        result,
        report,
        study=study,
        max_features=options.max_features,
        with_features=with_features,
    )
    analysis = run_places(bundle, options, forecast)
    return bundle.with_report(with_places(report, options, analysis)), analysis


def run_places(
    bundle: RunBundle, options: OutputOptions, forecast: np.ndarray | None = None
) -> PlaceAnalysis:
    """Tiers and places of a bundle (the recent distance defaults to one block length).

    With ``forecast`` (per cell), priority places are drawn from the forecast's top cells.
    """
    distance = options.recent_distance
    if distance is None and math.isfinite(bundle.report.inputs.block_length):
        distance = bundle.report.inputs.block_length
    return analyze_places(
        bundle.surface,
        bundle.events,
        tier_cuts=options.tier_cuts,
        connectivity=options.connectivity,
        priority_tier=options.priority_tier,
        recent_days=options.recent_days,
        recent_distance=distance,
        date_column=options.date_column,
        patrol_size=options.patrol_size,
        streets=_streets(options.streets, bundle.grid),
        forecast=forecast,
    )


def _streets(source: Any, grid: Grid) -> gpd.GeoDataFrame | None:
    """The street lines (for patrol places' names), in the grid's CRS; None without."""
    if source is None:
        return None
    if isinstance(source, gpd.GeoDataFrame):
        return source.to_crs(grid.crs) if source.crs is not None else source
    from rtm.io import read_vector

    frame = read_vector(source, what="--streets", default_crs=grid.crs)
    return frame.to_crs(grid.crs)


def write_features(path: Path, bundle: RunBundle) -> None:
    """Write the area, events and thinned factor features to ``features.gpkg``."""
    from rtm.export._arrow import write_layer

    if bundle.area is not None:
        write_layer(path, bundle.area, "area")
    if bundle.features is not None and len(bundle.features):
        write_layer(
            path,
            bundle.features,
            "factors",
            geometry_type="Unknown",
            layer_options={"SPATIAL_INDEX": "NO"},
        )
    if bundle.events is not None and len(bundle.events):
        write_layer(path, bundle.events, "events", layer_options={"SPATIAL_INDEX": "NO"})
    if bundle.streets is not None and len(bundle.streets):
        write_layer(path, bundle.streets, "streets", geometry_type="Unknown")


def read_bundle(folder: str | Path) -> RunBundle:
    """Read a bundle back from a run folder written by ``rtm analyze``."""
    return bundle_from_run(load_run(folder))


def bundle_from_run(run: Run) -> RunBundle:
    """The bundle of a run folder read back (:func:`rtm.runs.load_run`)."""
    if not run.report.significant or run.rrs is None:
        raise InputError(
            f"RUN_DIR {run.folder}: the run found no significant factor; there is no risk map"
        )
    layers = []
    for f in run.report.model.factors:
        if f.candidate not in run.cells.columns:
            raise InputError(
                f"RUN_DIR {run.folder}: cells.gpkg has no column {f.candidate!r} for factor "
                f"{f.name!r}"
            )
        layers.append(
            FactorLayer(
                f.name,
                f.operationalization,
                f.spatial_influence,
                f.rrv,
                f.protective,
                run.column(f.candidate, np.int8),
                run.report.inputs.network is not None,
            )
        )
    surface = RiskSurface(
        run.grid,
        run.column("rrs"),
        run.column("events", np.int64),
        run.column("expected"),
        tuple(layers),
        run.column("harm") if "harm" in run.cells.columns else None,
    )
    area, features, events = read_features(run.folder)
    return RunBundle(surface, run.report, area, features, events, _read_streets(run.folder))


def _read_streets(folder: Path) -> gpd.GeoDataFrame | None:
    """The street lines a run folder keeps for context (features.gpkg, layer ``streets``)."""
    import pyogrio

    path = Path(folder) / "features.gpkg"
    if "streets" not in {name for name, _ in pyogrio.list_layers(path)}:
        return None
    return gpd.read_file(path, layer="streets")


def write_places(
    path: Path, grid: Grid, analysis: PlaceAnalysis, frames: tuple[Any, Any] | None = None
) -> None:
    """Write the places and priority places (``frames``: their :func:`place_polygons`)."""
    from rtm.export._arrow import write_layer

    if frames is None:
        frames = place_polygons(grid, analysis)
    layers = list(zip(("places", "priority_places"), frames, strict=True))
    if analysis.patrol is not None:
        from rtm.places.patrol import patrol_frame

        layers.append(("patrol_places", patrol_frame(grid, analysis.patrol)))
    if analysis.intervention is not None:
        layers.append(("intervention_areas", analysis.intervention.frame(grid)))
    for layer, frame in layers:
        write_layer(path, frame, layer, geometry_type="MultiPolygon" if len(frame) == 0 else None)


def place_polygons(grid: Grid, analysis: PlaceAnalysis) -> tuple[Any, Any]:
    """The place_frame of the places and of the priority places.

    Highest-risk places larger than a patrol place list the patrol places inside them.
    """
    places = place_frame(grid, analysis.places)
    if analysis.patrol is not None:
        spot = analysis.patrol.size**2
        places["patrol_places"] = [
            ", ".join(analysis.patrol.inside(p.rank)) if p.area > spot else ""
            for p in analysis.places
        ]
    return (places, place_frame(grid, analysis.priority_places, priority=True))


def cell_tiers(analysis: PlaceAnalysis) -> np.ndarray:
    """The ``tier`` column of cells.gpkg (tier name, empty where the cell is in no tier)."""
    # the few tier labels are made once and indexed, not converted cell by cell
    rank = np.asarray(analysis.tiers.cell_rank)
    present = np.flatnonzero(np.bincount(rank))  # tier ranks in use (0: in no tier)
    names = analysis.tiers.cell_names()[[int(np.argmax(rank == r)) for r in present]]
    labels = np.array(["" if pd.isna(n) else str(n) for n in names])
    return labels[np.searchsorted(present, rank)]


def with_places(report: RunReport, options: OutputOptions, analysis: PlaceAnalysis) -> RunReport:
    """``report`` with the tiers, places and output settings of ``analysis``."""
    return report.with_sections(
        **analysis.report(), output_settings=options_report(options, analysis)
    )


def options_report(options: OutputOptions, analysis: PlaceAnalysis) -> dict[str, Any]:
    """The settings of the outputs, for report.json."""
    return {
        "tier_cuts_sd": list(options.tier_cuts),
        "priority_tier": options.priority_tier,
        "recent_days": options.recent_days,
        "recent_distance": analysis.recent_distance,
        "connectivity": options.connectivity,
        "max_features_per_factor": options.max_features,
        "patrol_size": options.patrol_size,
        "tasks": options.tasks,
    }


def fraction(value: float) -> str:
    """A share as a percentage for people (``0.4%``, ``12%``)."""
    percent = 100 * value
    if percent == 0:
        return "0%"
    return f"{percent:.1f}%" if percent < 10 else f"{percent:.0f}%"
