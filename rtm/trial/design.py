"""``design_trial``: eligible places, blocks, a seeded allocation, catchments and a plan.

The design folder is what every later step reads (:func:`read_design`):

* ``allocation.csv``: ``place_id``, ``block``, ``arm`` (treatment/control), the baseline
  events and harm, the stratum, the baseline in each catchment ring, a point per place;
* ``allocation.gpkg``: layers ``places`` and ``catchments`` (the rings);
* ``baseline_periods.csv``: events per place per month of the history (the over-dispersion
  the power calculation needs);
* ``schedule.csv`` (crossover only): the arm of every place on every day;
* ``design.json``: the settings, the source of the events and places, the CONSORT counts,
  and SHA-256 digests of the inputs and of inputs + seed + allocation;
* ``preregistration.md``: outcomes, analysis and stopping rules, stated before the trial.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from rtm.errors import InputError, ParameterError
from rtm.export.atomic import atomic_dir
from rtm.filters import parse_where
from rtm.io.readers import read_events
from rtm.runs.folder import write_json
from rtm.trial.allocation import ARMS, allocate, allocation_digest, crossover_schedule, make_blocks
from rtm.trial.places import (
    catchments,
    count_in,
    days_spanned,
    period_labels,
    read_places,
    select_spaced,
)
from rtm.trial.report import preregistration

__all__ = [
    "DesignSettings",
    "EventSource",
    "TrialDesign",
    "design_trial",
    "read_design",
    "read_trial_events",
]

SCHEMA = "rtm-trial-design/1"


@dataclass(frozen=True)
class EventSource:
    """Where a trial's events come from and how they are read."""

    file: str
    where: tuple[str, ...] = ()
    x_column: str | None = None
    y_column: str | None = None
    events_crs: str | None = None
    harm_column: str | None = None


@dataclass(frozen=True)
class DesignSettings:
    """The choices of a design (all stored in design.json)."""

    places: int = 40
    seed: int = 0
    scheme: str = "parallel"
    block_size: int = 4
    block_by: str = "events"
    stratify_column: str | None = None
    rings: tuple[float, ...] = (50.0, 100.0, 150.0)
    min_spacing: float | None = None
    place_radius: float = 50.0
    crossover_days: int = 0
    start_date: str | None = None
    baseline_days: float | None = None

    def spacing(self) -> float:
        """The minimum distance between places: by default twice the widest ring."""
        if self.min_spacing is not None:
            return self.min_spacing
        return 2.0 * max(self.rings) if self.rings else 0.0


@dataclass(frozen=True, eq=False)
class TrialDesign:
    """A design folder read back."""

    folder: Path
    settings: DesignSettings
    events: EventSource
    crs: str
    allocation: pd.DataFrame = field(repr=False)
    places: gpd.GeoDataFrame = field(repr=False)
    rings: gpd.GeoDataFrame = field(repr=False)
    panel: pd.DataFrame = field(repr=False)
    schedule: pd.DataFrame | None = field(repr=False)
    record: dict[str, Any] = field(repr=False)

    @property
    def treated(self) -> np.ndarray:
        """True for each place in the treatment arm (allocation order)."""
        return (self.allocation["arm"] == ARMS[0]).to_numpy()

    @property
    def blocks(self) -> np.ndarray:
        """Block number per place."""
        return self.allocation["block"].to_numpy(np.int64)


def _check_settings(settings: DesignSettings) -> None:
    if settings.places < 2:
        raise ParameterError(f"--places {settings.places}: a trial needs at least 2 places")
    if settings.block_size < 2:
        raise ParameterError(f"--block-size {settings.block_size}: must be at least 2")
    if settings.scheme not in ("parallel", "crossover"):
        raise ParameterError(f"--scheme {settings.scheme!r}: choose parallel or crossover")
    if settings.block_by not in ("events", "harm"):
        raise ParameterError(f"--block-by {settings.block_by!r}: choose events or harm")
    if any(r <= 0 for r in settings.rings) or list(settings.rings) != sorted(set(settings.rings)):
        raise ParameterError(f"--rings {settings.rings}: must be increasing positive distances")
    if settings.scheme == "crossover" and settings.crossover_days < 1:
        raise ParameterError("--days: a crossover schedule needs its number of days (at least 1)")


def _source_from_run(
    run_dir: Path | None, events: EventSource | None
) -> tuple[EventSource, str | None]:
    """The events (and the CRS) of the run, unless the events are given."""
    if events is not None:
        return events, None  # the places' own CRS is the design's
    if run_dir is None:
        raise ParameterError("trial design: give a RUN_DIR or the --events file")
    from rtm.runs.folder import read_report

    inputs = read_report(run_dir).inputs
    if not inputs.events_file:
        raise InputError(f"RUN_DIR {run_dir}: the run names no events file; give --events")
    source = EventSource(
        file=inputs.events_file,
        where=tuple(clause.label for clause in inputs.where),
        x_column=inputs.x_column,
        y_column=inputs.y_column,
        events_crs=inputs.events_crs,
        harm_column=inputs.weight_column,
    )
    return source, inputs.crs


def read_trial_events(
    source: EventSource, crs: pyproj.CRS, *, what: str = "events"
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Points, harm weights (1 without a harm column) and attributes of the events."""
    if not Path(source.file).exists():
        raise InputError(f"{what} {source.file}: file not found (give --events)")
    frame = read_events(
        source.file,
        crs,
        where=[parse_where(text) for text in source.where],
        x_column=source.x_column,
        y_column=source.y_column,
        csv_crs=source.events_crs,
        what=what,
    )
    points = np.asarray(frame.geometry.values)
    if source.harm_column is None:
        return points, np.ones(len(frame)), frame
    if source.harm_column not in frame.columns:
        raise ParameterError(
            f"--harm-column {source.harm_column!r}: no such column in {source.file}"
        )
    harm = pd.to_numeric(frame[source.harm_column], errors="coerce").to_numpy(np.float64)
    bad = int((~np.isfinite(harm) | (harm < 0)).sum())
    if bad:
        raise InputError(
            f"{what} {source.file}: {bad} rows of {source.harm_column!r} are not "
            "non-negative numbers"
        )
    return points, harm, frame


def design_trial(
    run_dir: str | Path | None,
    out: str | Path,
    settings: DesignSettings,
    *,
    events: EventSource | None = None,
    place_layer: str | None = None,
    overwrite: bool = False,
) -> TrialDesign:
    """Design a randomised patrol trial and write its folder (atomically).

    Parameters
    ----------
    run_dir : path or None
        An ``rtm analyze`` run folder: its places (``patrol_places`` or ``places``), its
        events file and filters (the history) and its CRS.
    out : path
        The design folder to write.
    settings : DesignSettings
    events : EventSource, optional
        The history's events instead of the run's.
    place_layer : str, optional
        Places to use instead of the run's (``file.gpkg:layer``; polygons or points).
    """
    _check_settings(settings)
    run = Path(run_dir) if run_dir is not None else None
    source, run_crs = _source_from_run(run, events)
    places, places_source = read_places(
        run,
        place_layer,
        pyproj.CRS.from_user_input(run_crs) if run_crs else None,
        place_radius=settings.place_radius,
    )
    crs = places.crs
    with atomic_dir(out, overwrite=overwrite, kind="trial-design") as folder:
        points, harm, frame = read_trial_events(source, crs)
        table, geometries, rings, panel, consort = _build(places, points, harm, frame, settings)
        baseline_days = settings.baseline_days or days_spanned(frame)
        if baseline_days is None:
            raise ParameterError(
                "--baseline-days: the events have no date or month column; give it"
            )
        final = DesignSettings(**{**asdict(settings), "baseline_days": float(baseline_days)})
        schedule = _schedule(table, final) if final.scheme == "crossover" else None
        record = _record(final, source, crs, places_source, table, consort, geometries)
        _write(Path(folder), table, geometries, rings, panel, schedule, record, crs)
    return read_design(out)


def _build(
    places: gpd.GeoDataFrame,
    points: np.ndarray,
    harm: np.ndarray,
    frame: pd.DataFrame,
    settings: DesignSettings,
) -> tuple[pd.DataFrame, np.ndarray, gpd.GeoDataFrame, pd.DataFrame, dict[str, int]]:
    geometries = np.asarray(places.geometry.values, dtype=object)
    counts = count_in(geometries, points)
    harms = count_in(geometries, points, harm)
    priority = harms if settings.block_by == "harm" else counts
    eligible = np.flatnonzero(priority > 0)
    chosen_local, skipped = select_spaced(
        geometries[eligible], priority[eligible], settings.places, settings.spacing()
    )
    chosen = eligible[chosen_local]
    if len(chosen) < settings.places:
        raise ParameterError(
            f"--places {settings.places}: only {len(chosen)} of the {len(places)} places have "
            f"baseline events and are at least {settings.spacing():g} m apart; ask for fewer "
            "places or lower --min-spacing"
        )
    strata = None
    if settings.stratify_column is not None:
        if settings.stratify_column not in places.columns:
            raise ParameterError(
                f"--stratify-column {settings.stratify_column!r}: the places have no such column"
            )
        strata = places[settings.stratify_column].to_numpy()[chosen]
    blocks = make_blocks(priority[chosen], settings.block_size, strata)
    treated = allocate(blocks, settings.seed)
    chosen_geoms = geometries[chosen]
    centres = shapely.point_on_surface(chosen_geoms)
    table = pd.DataFrame(
        {
            "place_id": places["place_id"].to_numpy()[chosen],
            "block": blocks,
            "arm": np.where(treated, ARMS[0], ARMS[1]),
            "baseline": counts[chosen].astype(np.int64),
            "baseline_harm": harms[chosen],
            "stratum": [str(v) for v in strata] if strata is not None else "",
            "x": np.round(shapely.get_x(centres), 3),
            "y": np.round(shapely.get_y(centres), 3),
        }
    )
    ring_list = catchments(chosen_geoms, settings.rings)
    ring_counts = count_in([r.geometry for r in ring_list], points)
    for outer in settings.rings:
        table[f"ring_{outer:g}_baseline"] = [
            int(ring_counts[i]) for i, r in enumerate(ring_list) if r.outer == outer
        ]
    rings = gpd.GeoDataFrame(
        {
            "place_id": [table["place_id"].iloc[r.place] for r in ring_list],
            "arm": [table["arm"].iloc[r.place] for r in ring_list],
            "inner": [r.inner for r in ring_list],
            "outer": [r.outer for r in ring_list],
        },
        geometry=[r.geometry for r in ring_list],
        crs=places.crs,
    )
    panel = _panel(chosen_geoms, table["place_id"].to_numpy(), points, frame)
    consort = {
        "candidate_places": int(len(places)),
        "without_baseline_events": int(len(places) - len(eligible)),
        "too_close": int(skipped),
        "not_needed": int(len(eligible) - len(chosen) - skipped),
        "randomised": int(len(chosen)),
        "treatment": int(treated.sum()),
        "control": int((~treated).sum()),
    }
    return table, chosen_geoms, rings, panel, consort


def _panel(
    geoms: np.ndarray, ids: np.ndarray, points: np.ndarray, frame: pd.DataFrame
) -> pd.DataFrame:
    """Events per place per month of the history (months without events included)."""
    labels = period_labels(frame)
    if labels is None:
        return pd.DataFrame({"place_id": ids, "period": "all", "events": count_in(geoms, points)})
    periods = sorted(set(labels.tolist()))
    rows = []
    for period in periods:
        counts = count_in(geoms, points[labels == period])
        rows.append(
            pd.DataFrame({"place_id": ids, "period": period, "events": counts.astype(np.int64)})
        )
    return pd.concat(rows, ignore_index=True)


def _schedule(table: pd.DataFrame, settings: DesignSettings) -> pd.DataFrame:
    start = pd.Timestamp(settings.start_date) if settings.start_date else pd.Timestamp("2000-01-01")
    days = pd.date_range(start, periods=settings.crossover_days, freq="D")
    treated = crossover_schedule(table["block"].to_numpy(), settings.crossover_days, settings.seed)
    n_places = len(table)
    return pd.DataFrame(
        {
            "date": np.repeat(days.strftime("%Y-%m-%d").to_numpy(), n_places),
            "place_id": np.tile(table["place_id"].to_numpy(), len(days)),
            "block": np.tile(table["block"].to_numpy(), len(days)),
            "arm": np.where(treated.ravel(), ARMS[0], ARMS[1]),
        }
    )


def _record(
    settings: DesignSettings,
    source: EventSource,
    crs: pyproj.CRS,
    places_source: str,
    table: pd.DataFrame,
    consort: dict[str, int],
    geometries: np.ndarray,
) -> dict[str, Any]:
    inputs = {
        "places": [
            [pid, shapely.to_wkb(geom, hex=True, output_dimension=2), int(b), float(h)]
            for pid, geom, b, h in zip(
                table["place_id"],
                geometries,
                table["baseline"],
                table["baseline_harm"],
                strict=True,
            )
        ],
        "strata": table["stratum"].tolist(),
        "block_size": settings.block_size,
        "block_by": settings.block_by,
        "scheme": settings.scheme,
        "crossover_days": settings.crossover_days,
    }
    rows: list[dict[str, object]] = [
        {str(k): v for k, v in row.items()}
        for row in table[["place_id", "block", "arm"]].to_dict("records")
    ]
    digests = allocation_digest(inputs, settings.seed, rows)
    settings_dict = asdict(settings)
    settings_dict["rings"] = list(settings.rings)
    return {
        "schema": SCHEMA,
        "settings": settings_dict,
        "events": {**asdict(source), "where": list(source.where)},
        "crs": crs.to_string() if crs.to_epsg() is None else f"EPSG:{crs.to_epsg()}",
        "places_source": places_source,
        "consort": consort,
        "sha256": digests,
    }


def _write(
    folder: Path,
    table: pd.DataFrame,
    geometries: np.ndarray,
    rings: gpd.GeoDataFrame,
    panel: pd.DataFrame,
    schedule: pd.DataFrame | None,
    record: dict[str, Any],
    crs: pyproj.CRS,
) -> None:
    table.to_csv(folder / "allocation.csv", index=False, lineterminator="\n")
    places = gpd.GeoDataFrame(table.drop(columns=["x", "y"]), geometry=list(geometries), crs=crs)
    places.to_file(folder / "allocation.gpkg", layer="places", driver="GPKG")
    rings.to_file(folder / "allocation.gpkg", layer="catchments", driver="GPKG")
    panel.to_csv(folder / "baseline_periods.csv", index=False, lineterminator="\n")
    if schedule is not None:
        schedule.to_csv(folder / "schedule.csv", index=False, lineterminator="\n")
    write_json(folder / "design.json", record)
    (folder / "preregistration.md").write_text(preregistration(record, table), encoding="utf-8")


def read_design(folder: str | Path, *, what: str = "DESIGN_DIR") -> TrialDesign:
    """Read a design folder written by :func:`design_trial`."""
    path = Path(folder)
    record_path = path / "design.json"
    if not record_path.is_file():
        raise InputError(
            f"{what} {path}: design.json is missing (is it an rtm trial design output?)"
        )
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("schema") != SCHEMA:
            raise ValueError(f"schema {record.get('schema')!r}, expected {SCHEMA}")
        table = pd.read_csv(
            path / "allocation.csv", dtype={"place_id": str, "stratum": str}, keep_default_na=False
        )
        places = gpd.read_file(path / "allocation.gpkg", layer="places")
        rings = gpd.read_file(path / "allocation.gpkg", layer="catchments")
        panel = pd.read_csv(path / "baseline_periods.csv", dtype={"place_id": str, "period": str})
        schedule_path = path / "schedule.csv"
        schedule = (
            pd.read_csv(schedule_path, dtype={"place_id": str}) if schedule_path.is_file() else None
        )
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc})") from exc
    settings = dict(record["settings"])
    settings["rings"] = tuple(settings["rings"])
    events = dict(record["events"])
    events["where"] = tuple(events["where"])
    return TrialDesign(
        folder=path,
        settings=DesignSettings(**settings),
        events=EventSource(**events),
        crs=record["crs"],
        allocation=table,
        places=places,
        rings=rings,
        panel=panel,
        schedule=schedule,
        record=record,
    )
