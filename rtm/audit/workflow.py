"""``rtm audit``: the accountability checks of a run folder or a batch folder.

:func:`audit` runs what its inputs allow and writes ``audit.json`` (and a readable
``audit.md``) into a new folder, atomically and marked as rtm's:

* ``exposure_disparity`` (with ``population``): each group's share of the residents of
  each selection against its share of the area (:mod:`rtm.audit.exposure`), and
  ``exposure_parity``: the parity-constrained alternative and the capture it costs;
* ``accuracy_parity`` (with ``subareas``): :mod:`rtm.audit.accuracy`;
* ``feedback`` and ``drift`` (when RUN_DIR is a batch folder): :mod:`rtm.audit.series`;
* ``outcome_provenance``: the share of the outcome in police-generated categories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rtm._version import __version__
from rtm.audit.accuracy import accuracy_parity
from rtm.audit.exposure import disparity, parity_selection
from rtm.audit.population import read_population
from rtm.audit.report import audit_markdown
from rtm.audit.series import Thresholds, series_checks
from rtm.errors import InputError, ParameterError
from rtm.export.atomic import claim
from rtm.filters import as_clauses
from rtm.runs import Run, load_run, write_json
from rtm.validation.metrics import AREA_SHARES

__all__ = ["audit", "is_series", "run_surfaces"]

Progress = Callable[[str], None]

#: Rasters a run folder may hold besides cells.gpkg's risk score, by surface name.
SURFACE_FILES = {"forecast": "forecast.tif"}


def is_series(folder: Path) -> bool:
    """Whether ``folder`` is a batch folder (or a folder of run folders), not a run."""
    if (folder / "report.json").is_file():
        return False
    return (
        (folder / "batch.json").is_file()
        or (folder / "jobs").is_dir()
        or any((p / "report.json").is_file() for p in folder.iterdir() if p.is_dir())
    )


def run_surfaces(run: Run) -> dict[str, np.ndarray]:
    """The surfaces of a run, by name, one value per active cell (``risk`` first)."""
    surfaces: dict[str, np.ndarray] = {}
    if run.rrs is not None:
        surfaces["risk"] = run.rrs
    for name, file in SURFACE_FILES.items():
        path = run.folder / file
        if name in run.cells.columns:  # cells.gpkg keeps it at full precision (float64)
            surfaces[name] = run.column(name)
        elif path.is_file():  # a run folder written before cells.gpkg kept it
            import rasterio

            with rasterio.open(path) as source:
                band = source.read(1, masked=True)
            values = np.ma.filled(band.astype(np.float64), np.nan).ravel()[run.grid.active_index]
            surfaces[name] = np.nan_to_num(values, nan=0.0)
    return surfaces


def _selections(run: Run, scores: np.ndarray, surface: str) -> dict[str, np.ndarray]:
    """Top shares of the surface, the tiers (cumulative) and the layers of places.gpkg."""
    out = {}
    for share in AREA_SHARES:
        k = max(1, int(round(share * scores.size)))
        cut = np.sort(scores)[::-1][k - 1]
        out[f"top {100 * share:g}% by {surface}"] = scores >= cut  # ties kept whole
    tiers = (run.report.section("tiers") or {}).get("tiers", [])
    if "tier" in run.cells.columns and tiers:
        labels = run.cells["tier"].astype(str).to_numpy()
        names: list[str] = []
        for tier in sorted(tiers, key=lambda t: t.get("rank", 0)):
            names.append(str(tier["name"]))
            out[f"tier {names[-1]}" + (" or higher" if len(names) > 1 else "")] = np.isin(
                labels, names
            )
    places = run.folder / "places.gpkg"
    if places.is_file():
        import geopandas as gpd
        import pyogrio
        import shapely

        x, y = run.grid.cell_centres()
        points = shapely.points(x, y)
        for layer, _ in pyogrio.list_layers(places):
            frame = gpd.read_file(places, layer=layer)
            if frame.empty:
                continue
            tree = shapely.STRtree(np.asarray(frame.to_crs(run.grid.crs).geometry.values))
            inside = np.zeros(scores.size, dtype=bool)
            inside[np.unique(tree.query(points, predicate="within")[0])] = True
            out[f"places.gpkg {layer}"] = inside
    return out


def _events(run: Run, test_events: Any, test_where: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Events per active cell: the test events given, else the run's own (in sample)."""
    if test_events is None:
        return run.column("events"), {"source": "the run's own events", "in_sample": True}
    from rtm.io import read_events

    clauses = as_clauses(test_where or ())
    frame = read_events(test_events, run.grid.crs, where=clauses, what="--test-crimes")
    x, y = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    rows, cols = run.grid.cell_of(x, y)
    ok = (rows >= 0) & (rows < run.grid.n_rows) & (cols >= 0) & (cols < run.grid.n_cols)
    flat = rows[ok] * run.grid.n_cols + cols[ok]
    index = np.clip(np.searchsorted(run.grid.active_index, flat), 0, run.grid.n_active - 1)
    found = run.grid.active_index[index] == flat
    counts = np.bincount(index[found], minlength=run.grid.n_active).astype(np.float64)
    return counts, {
        "source": str(test_events),
        "where": [c.label for c in clauses],
        "in_sample": False,
        "events": int(found.sum()),
        "outside": int(len(frame) - found.sum()),
    }


def _subarea_labels(run: Run, source: Any, column: str | None) -> np.ndarray:
    import geopandas as gpd
    import shapely

    from rtm.io.vectors import read_vector

    if column is None:
        raise ParameterError("--subarea-column: needed with --subareas (the sub-area names)")
    frame = read_vector(source, what="--subareas")
    what = f"--subareas {source}"
    if column not in frame.columns:
        columns = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
        raise ParameterError(f"--subarea-column {column!r}: no such column; columns are {columns}")
    if frame.crs is None:
        raise InputError(f"{what}: the layer has no CRS")
    frame = gpd.GeoDataFrame(frame, geometry=frame.geometry).to_crs(run.grid.crs)
    x, y = run.grid.cell_centres()
    tree = shapely.STRtree(np.asarray(frame.geometry.values))
    cell, polygon = tree.query(shapely.points(x, y), predicate="within")
    labels = np.full(run.grid.n_active, "", dtype=object)
    names = frame[column].astype(str).to_numpy()
    labels[cell[::-1]] = names[polygon[::-1]]  # a cell in two polygons takes the first
    return labels.astype(str)


def _exposure(
    run: Run,
    scores: np.ndarray,
    selections: dict[str, np.ndarray],
    events: np.ndarray,
    options: dict[str, Any],
    say: Progress,
) -> dict[str, Any]:
    population = read_population(options["population"], run.grid, options.get("groups"))
    say(f"population: {population.n_units:,} units, groups {', '.join(population.groups)}")
    rows = disparity(population, selections, n_boot=options["n_boot"], seed=options["seed"])
    alternatives = []
    total = float(events.sum())
    for name, selected in selections.items():
        if not name.startswith("top "):
            continue
        parity, info = parity_selection(
            population, scores, int(selected.sum()), tolerance=options["tolerance"]
        )
        achieved = disparity(population, {name: parity}, n_boot=0) if info["feasible"] else []
        original = float(events[selected].sum()) / total if total > 0 else None
        captured = float(events[parity].sum()) / total if total > 0 and info["feasible"] else None
        alternatives.append(
            {
                "selection": name,
                "cells": int(selected.sum()),
                **info,
                "capture": original,
                "capture_parity": captured,
                "capture_cost": None
                if captured is None or original is None
                else original - captured,
                "ratios": {r["group"]: r["ratio"] for r in achieved},
            }
        )
    return {
        "population": {
            "source": population.source,
            "units": population.n_units,
            "groups": list(population.groups),
        },
        "exposure_disparity": rows,
        "exposure_parity": alternatives,
    }


def _run_audit(run_dir: Path, options: dict[str, Any], say: Progress) -> dict[str, Any]:
    run = load_run(run_dir)
    surfaces = run_surfaces(run)
    name = options.get("surface") or "risk"
    if name not in surfaces:
        have = ", ".join(surfaces) or "none (no significant factor)"
        raise ParameterError(f"--surface {name!r}: not in RUN_DIR {run_dir}; it has {have}")
    scores = surfaces[name]
    events, events_info = _events(run, options.get("test_events"), options.get("test_where"))
    out: dict[str, Any] = {"run": str(run_dir), "surface": name, "events": events_info}
    selections = _selections(run, scores, name)
    out["selections"] = {k: int(v.sum()) for k, v in selections.items()}
    out["exposure_disparity"] = []
    if options.get("population") is not None:
        out.update(_exposure(run, scores, selections, events, options, say))
    else:
        out["exposure_note"] = "not computed: no --population layer given"
    if options.get("subareas") is not None:
        labels = _subarea_labels(run, options["subareas"], options.get("subarea_column"))
        out["accuracy_parity"] = accuracy_parity(scores, events, labels, surface=name)
        out["accuracy_parity"]["events"] = events_info
    out["outcome_provenance"] = run.report.section("outcome_provenance")
    return out


def audit(
    run_dir: str | Path,
    *,
    out: str | Path,
    overwrite: bool = False,
    population: str | Path | None = None,
    groups: list[str] | None = None,
    subareas: str | Path | None = None,
    subarea_column: str | None = None,
    test_events: str | Path | None = None,
    test_where: tuple[str, ...] = (),
    surface: str | None = None,
    tolerance: float = 0.2,
    n_boot: int = 999,
    seed: int = 0,
    thresholds: Thresholds | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Audit a run folder (or a batch folder) and write ``audit.json`` and ``audit.md``.

    Parameters
    ----------
    run_dir : path
        A run folder (``rtm analyze``), or a batch folder for ``feedback`` and ``drift``.
    out : path
        The folder to write (replaced only with ``overwrite``, and only if rtm's).
    population : path, optional
        Polygons with group counts (``groups``: the columns; default every numeric one).
    subareas, subarea_column : optional
        Polygons and the column naming them, for accuracy parity.
    test_events, test_where : optional
        Events to score accuracy and capture on (default: the run's own, in sample).
    surface : str, optional
        The surface audited (``risk``; ``forecast`` when the run has one).
    tolerance : float
        The parity constraint: every group's ratio within ``1 +- tolerance``.
    n_boot, seed : int
        Bootstrap resamples of population units for the ratio intervals, and their seed.
    thresholds : Thresholds, optional
        When the feedback monitor warns and drift flags a run.

    Returns
    -------
    dict
        What ``audit.json`` holds.
    """
    say = progress or (lambda message: None)
    thresholds = thresholds or Thresholds()
    folder = Path(run_dir)
    if not folder.is_dir():
        raise InputError(f"RUN_DIR {folder}: no such folder")
    if not 0 < tolerance < 1:
        raise ParameterError(f"--parity-tolerance {tolerance}: must lie between 0 and 1")
    options = {
        "population": population,
        "groups": groups,
        "subareas": subareas,
        "subarea_column": subarea_column,
        "test_events": test_events,
        "test_where": test_where,
        "surface": surface,
        "tolerance": tolerance,
        "n_boot": n_boot,
        "seed": seed,
    }
    with claim(out, overwrite=overwrite) as held:
        result: dict[str, Any] = {"written_by": f"rtm {__version__}"}
        if is_series(folder):
            if population is not None or subareas is not None:
                raise ParameterError(
                    f"--population and --subareas audit one run: RUN_DIR {folder} is a batch "
                    "folder (give one of its jobs/ folders)"
                )
            result.update(
                run=str(folder),
                exposure_disparity=[],
                exposure_note="not computed: RUN_DIR is a batch folder",
            )
            result.update(series_checks(folder, thresholds))
        else:
            result.update(_run_audit(folder, options, say))
        result["thresholds"] = asdict(thresholds) | {"parity_tolerance": tolerance}
        with held.staging("audit") as tmp:
            write_json(tmp / "audit.json", result)
            (tmp / "audit.md").write_text(audit_markdown(result), encoding="utf-8")
    say(f"audit written to {out}")
    return result
