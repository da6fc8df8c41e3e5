"""Checks across a series of runs (a batch folder): feedback and drift.

A series is the runs of one area and crime type over successive periods (a batch
folder's jobs grouped by area and crime, in the configuration's period order), or the
run folders inside a folder, in name order.

**Feedback monitor.** For each pair of consecutive runs: how many of the places
selected in the first (the top ``share`` of cells by risk) are selected again in the
second (*selection persistence*), against how many of the places with the most crime
in the first period have the most again in the second (*crime persistence*); and, in the
places selected both times, how their events changed relative to the rest of the area.
A selection far more persistent than the crime, or places that stay selected while their
crime falls, is what a feedback loop looks like (Lum & Isaac 2016; Ensign et al. 2018):
the map keeps sending patrols back whatever happens there. A warning is raised for
places selected twice whose events fell by at least ``fall`` relative to the rest.

**Drift.** The selected factors and their RRVs run by run; a run is flagged for human
review when its factors overlap the previous run's by less than ``min_overlap``
(Jaccard), an RRV changes by more than a factor ``rrv_change``, or the model loses
significance.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtm.audit.accuracy import selection_weights
from rtm.errors import InputError
from rtm.runs import Run, load_run

__all__ = ["Thresholds", "drift", "feedback", "find_series"]


@dataclass(frozen=True)
class Thresholds:
    """When a series is flagged.

    Attributes
    ----------
    share : float
        Share of the area selected (the top cells by risk, and by events).
    fall : float
        Warn when places selected twice saw events fall by at least this share,
        relative to the rest of the area.
    min_overlap : float
        Flag a run whose factors overlap the previous run's less than this (Jaccard).
    rrv_change : float
        Flag a run where a factor's RRV changed by more than this factor.
    """

    share: float = 0.05
    fall: float = 0.2
    min_overlap: float = 0.5
    rrv_change: float = 1.5


_DEFAULT = Thresholds()


def find_series(folder: str | Path) -> dict[str, list[Path]]:
    """The series in a batch folder (or a folder of run folders), by name, in order."""
    root = Path(folder)
    summary = root / "batch.json"
    if summary.is_file():
        try:
            rows = json.loads(summary.read_text(encoding="utf-8")).get("outcomes", [])
        except (ValueError, AttributeError) as exc:
            raise InputError(f"RUN_DIR {root}: batch.json is not rtm's ({exc})") from exc
        series: dict[str, list[Path]] = {}
        for row in rows:
            path = Path(row.get("output") or root / "jobs" / str(row.get("job")))
            if not path.is_absolute():
                path = root / path
            if (path / "report.json").is_file() and (path / "cells.gpkg").is_file():
                key = " / ".join(str(row.get(k)) for k in ("area", "crime") if row.get(k))
                series.setdefault(key or "runs", []).append(path)
        if series:
            return series
    base = root / "jobs" if (root / "jobs").is_dir() else root
    runs = (
        sorted(p for p in base.iterdir() if (p / "report.json").is_file()) if base.is_dir() else []
    )
    if not runs:
        raise InputError(f"RUN_DIR {root}: no run folders found (a batch folder or runs inside)")
    return {root.name: runs}


def _mapping(a: Run, b: Run) -> np.ndarray:
    """For each active cell of ``b``, the index of the cell of ``a`` holding its centre (-1)."""
    x, y = b.grid.cell_centres()
    rows, cols = a.grid.cell_of(x, y)
    inside = (rows >= 0) & (rows < a.grid.n_rows) & (cols >= 0) & (cols < a.grid.n_cols)
    flat = np.where(inside, rows * a.grid.n_cols + cols, -1)
    index = np.searchsorted(a.grid.active_index, flat)
    index = np.clip(index, 0, a.grid.n_active - 1)
    found = inside & (a.grid.active_index[index] == flat)
    return np.where(found, index, -1)


def _persistence(first: np.ndarray, second: np.ndarray) -> float | None:
    total = float(first.sum())
    return float((first * second).sum() / total) if total > 0 else None


def _pair(a: Run, b: Run, thresholds: Thresholds) -> dict[str, Any]:
    """The feedback measures of two consecutive runs, on the cells they share."""
    where = _mapping(a, b)
    shared = where >= 0
    ia, ib = where[shared], np.flatnonzero(shared)
    events_a, events_b = a.column("events")[ia], b.column("events")[ib]
    out: dict[str, Any] = {"from": a.folder.name, "to": b.folder.name, "cells": int(shared.sum())}
    if a.rrs is None or b.rrs is None:
        out["note"] = "a run has no risk surface"
        return out
    share = thresholds.share
    selected_a = selection_weights(a.rrs[ia], share)
    selected_b = selection_weights(b.rrs[ib], share)
    both = selected_a * selected_b
    rest = 1.0 - np.maximum(selected_a, selected_b)
    out["selection_persistence"] = _persistence(selected_a, selected_b)
    out["crime_persistence"] = _persistence(
        selection_weights(events_a, share), selection_weights(events_b, share)
    )
    kept_before, kept_after = float((both * events_a).sum()), float((both * events_b).sum())
    rest_before, rest_after = float((rest * events_a).sum()), float((rest * events_b).sum())
    out.update(
        events_selected_both_before=kept_before,
        events_selected_both_after=kept_after,
        events_rest_before=rest_before,
        events_rest_after=rest_after,
    )
    relative = None
    if kept_before > 0 and rest_before > 0 and rest_after > 0:
        relative = (kept_after / kept_before) / (rest_after / rest_before)
    out["relative_change_selected"] = relative
    warn = relative is not None and relative <= 1.0 - thresholds.fall
    out["warning"] = (
        f"places selected in both runs saw their events change by a factor {relative:.2f} "
        "relative to the rest of the area while they stayed selected: check whether the "
        "map is following police activity rather than crime"
        if warn
        else None
    )
    return out


def feedback(runs: list[Run], thresholds: Thresholds = _DEFAULT) -> dict[str, Any]:
    """The feedback monitor of one series (consecutive pairs), with its warnings."""
    pairs = [_pair(a, b, thresholds) for a, b in zip(runs, runs[1:], strict=False)]
    return {
        "share": thresholds.share,
        "fall": thresholds.fall,
        "pairs": pairs,
        "warnings": [
            f"{p['from']} -> {p['to']}: {p['warning']}" for p in pairs if p.get("warning")
        ],
    }


def _factors(run: Run) -> dict[str, float]:
    return {f.name: f.rrv for f in run.report.model.factors}


def drift(runs: list[Run], thresholds: Thresholds = _DEFAULT) -> dict[str, Any]:
    """Factor selections and RRVs run by run, each run flagged for review or not."""
    rows = []
    previous: dict[str, float] | None = None
    previous_significant = None
    before: dict[str, str] = {}
    for run in runs:
        factors = _factors(run)
        # how each factor entered the model (operationalization:influence), to tell a change
        # of strength from a change of the layer it is measured by
        layers = {
            f.name: f"{f.operationalization}:{f.spatial_influence:g}"
            for f in run.report.model.factors
        }
        reasons = []
        overlap = None
        if previous is not None:
            union = set(previous) | set(factors)
            overlap = len(set(previous) & set(factors)) / len(union) if union else 1.0
            if overlap < thresholds.min_overlap:
                reasons.append(f"factor overlap with the previous run {overlap:.2f}")
            for name in sorted(set(previous) & set(factors)):
                change = factors[name] / previous[name]
                if abs(math.log(change)) > math.log(thresholds.rrv_change):
                    how = (
                        f" ({before[name]} -> {layers[name]})"
                        if before[name] != layers[name]
                        else ""
                    )
                    reasons.append(f"RRV of {name} changed by a factor {change:.2f}{how}")
            if previous_significant and not run.report.significant:
                reasons.append("no significant factor any more")
        provenance = run.report.section("outcome_provenance") or {}
        rows.append(
            {
                "run": run.folder.name,
                "events": run.report.inputs.events,
                "significant": run.report.significant,
                "factors": factors,
                "layers": layers,
                "overlap_with_previous": overlap,
                "police_generated_share": provenance.get("share"),
                "review": bool(reasons),
                "reasons": reasons,
            }
        )
        previous, previous_significant, before = factors, run.report.significant, layers
    return {
        "min_overlap": thresholds.min_overlap,
        "rrv_change": thresholds.rrv_change,
        "runs": rows,
        "flagged": [r["run"] for r in rows if r["review"]],
    }


def series_checks(folder: str | Path, thresholds: Thresholds = _DEFAULT) -> dict[str, Any]:
    """Feedback and drift of every series in ``folder``, by series name."""
    out: dict[str, Any] = {"feedback": {}, "drift": {}}
    for name, paths in find_series(folder).items():
        runs = [load_run(p) for p in paths]
        out["feedback"][name] = feedback(runs, thresholds)
        out["drift"][name] = drift(runs, thresholds)
    return out
