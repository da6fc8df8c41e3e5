"""Temporal validation: fit on one period, score the next, over rolling origins.

With a numeric period column (e.g. ``month`` 1-12) or a date column (turned into
calendar months), :func:`rolling_windows` lays out windows such as "fit on months 1-6,
test on 7-9; fit on 4-9, test on 10-12", and :func:`temporal_validation` fits RTM (and
the challengers) on each training window and scores every surface on the following
test window, reporting each metric's mean and standard deviation over the windows.
The candidate layers do not depend on the events, so they are built once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rtm.errors import InputError, ParameterError

__all__ = ["event_periods", "rolling_windows", "summarize_folds", "temporal_validation"]

Window = tuple[tuple[int, ...], tuple[int, ...]]


def event_periods(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Integer period of each event: the column itself if numeric, else calendar months."""
    if column not in frame.columns:
        raise ParameterError(
            f"--period-column {column}: no such column; columns are "
            + ", ".join(c for c in frame.columns if c != "geometry")
        )
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(np.float64)
        if np.any(np.isnan(numbers)) or np.any(numbers != np.round(numbers)):
            raise InputError(f"period column {column}: needs whole numbers (e.g. months 1-12)")
        return numbers.astype(np.int64)
    dates = pd.to_datetime(values, errors="coerce")
    if dates.isna().any():
        bad = values[dates.isna()].iloc[0]
        raise InputError(f"period column {column}: {bad!r} is neither a whole number nor a date")
    return (dates.dt.year * 12 + dates.dt.month - 1).to_numpy(np.int64)


def rolling_windows(
    periods: Sequence[int], *, train: int, test: int, step: int | None = None
) -> list[Window]:
    """Rolling-origin windows over consecutive periods.

    Parameters
    ----------
    periods : sequence of int
        The periods present (consecutive integers expected; gaps are kept as periods).
    train, test : int
        Periods per training and per test window.
    step : int, optional
        How far the origin moves each time (default ``test``).

    Examples
    --------
    >>> rolling_windows(range(1, 13), train=6, test=3)
    [((1, 2, 3, 4, 5, 6), (7, 8, 9)), ((4, 5, 6, 7, 8, 9), (10, 11, 12))]
    """
    step = test if step is None else step
    for name, value in (("train", train), ("test", test), ("step", step)):
        if int(value) < 1:
            raise ParameterError(f"--{name} must be at least 1 period, got {value}")
    if len(periods) == 0:
        raise InputError("no event has a period")
    first, last = int(min(periods)), int(max(periods))
    windows: list[Window] = []
    start = first
    while start + train + test - 1 <= last:
        fit = tuple(range(start, start + train))
        score = tuple(range(start + train, start + train + test))
        windows.append((fit, score))
        start += step
    if not windows:
        raise InputError(
            f"the events span periods {first}-{last} ({last - first + 1}); a window needs "
            f"{train} training + {test} test periods"
        )
    return windows


def summarize_folds(folds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over folds of every numeric metric, per surface."""
    rows: dict[str, dict[str, list[float]]] = {}
    for fold in folds:
        for surface, metrics in _surfaces(fold["validation"]).items():
            for key, value in _numbers(metrics):
                rows.setdefault(surface, {}).setdefault(key, []).append(value)
    summary: dict[str, Any] = {}
    for surface, metrics in rows.items():
        summary[surface] = {
            key: {
                "mean": float(np.nanmean(values)),
                "sd": float(np.nanstd(values, ddof=1)) if len(values) > 1 else None,
                "values": values,
            }
            for key, values in metrics.items()
        }
    return summary


def _surfaces(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    surfaces = {"rtm": {k: report[k] for k in ("auc", "capture", "pai", "pei")}}
    for group in ("challengers", "baselines"):
        surfaces.update(report.get(group, {}))
    return surfaces


def _numbers(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    out = [("auc", float(metrics["auc"]))]
    for name in ("capture", "pai", "pei"):
        for share, value in metrics[name].items():
            out.append((f"{name}@{share}%", float(value)))
    return out


def temporal_validation(
    *,
    events: str | Path,
    area: str | Path,
    block_length: float,
    period_column: str,
    train: int,
    test: int,
    step: int | None = None,
    factors: Sequence[str] = (),
    factors_dir: str | Path | None = None,
    protective: Sequence[str] = (),
    cell_size: float | None = None,
    max_blocks: int = 3,
    increment: str = "whole",
    operationalization: str = "both",
    where: Sequence[str] = (),
    crs: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
    events_crs: str | None = None,
    model: Any = None,
    challengers: bool = True,
    bandwidth: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Rolling-origin validation of RTM, the challengers and the baselines.

    Each window fits on ``train`` consecutive periods and scores the next ``test``
    periods; windows move on by ``step`` periods (default ``test``). The arguments
    shared with :func:`rtm.api.analyze` mean the same there.

    Parameters
    ----------
    events, area, block_length, factors, factors_dir, protective, cell_size : optional
        As :func:`rtm.api.analyze`.
    max_blocks, increment, operationalization, where, crs : optional
        As :func:`rtm.api.analyze`.
    x_column, y_column, events_crs, model : optional
        As :func:`rtm.api.analyze`.
    period_column : str
        Column of the events holding the period: numbers, or dates (calendar months).
    train, test : int
        Periods fitted and scored in each window.
    step : int, optional
        Periods between window starts (default ``test``).
    challengers : bool
        Also score the risk + exposure model and the random forest.
    bandwidth : float, optional
        Radius of the hot-spot baseline's quartic kernel (default two blocks).
    progress : callable, optional
        Receives short progress messages.

    Returns
    -------
    dict
        ``windows`` (each with its training/test periods, events and full validation
        report), ``summary`` (mean and SD of each metric per surface) and ``settings``.
    """
    from rtm.api import build_study_candidates
    from rtm.model import RiskTerrainModel
    from rtm.study import load_study
    from rtm.validate import evaluate_models

    say = progress or (lambda message: None)
    model = model or RiskTerrainModel()
    model._validate()
    study = load_study(
        area=area,
        block_length=block_length,
        cell_size=cell_size,
        events=events,
        factors=factors,
        factors_dir=factors_dir,
        protective=protective,
        where=where,
        crs=crs,
        x_column=x_column,
        y_column=y_column,
        events_crs=events_crs,
        progress=progress,
    )
    assert study.events is not None
    periods = event_periods(study.events, period_column)
    windows = rolling_windows(sorted(set(periods.tolist())), train=train, test=test, step=step)
    candidates = build_study_candidates(
        study,
        block_length=block_length,
        max_blocks=max_blocks,
        increment=increment,
        operationalization=operationalization,
        progress=progress,
    )
    x = study.events.geometry.x.to_numpy()
    y = study.events.geometry.y.to_numpy()
    counts_by_period = _counts_by_period(study, periods)
    folds = []
    for fit_periods, test_periods in windows:
        say(f"window: fit on {_span(fit_periods)}, test on {_span(test_periods)}")
        train_counts = sum(
            (counts_by_period[p] for p in fit_periods if p in counts_by_period),
            np.zeros(study.grid.n_active, dtype=np.int64),
        )
        test_counts = sum(
            (counts_by_period[p] for p in test_periods if p in counts_by_period),
            np.zeros(study.grid.n_active, dtype=np.int64),
        )
        result = model.fit(candidates, train_counts, progress=progress).result_
        in_fit = np.isin(periods, fit_periods)
        validation = evaluate_models(
            result,
            x[in_fit],
            y[in_fit],
            test_counts,
            block_length=block_length,
            bandwidth=bandwidth,
            challengers=challengers,
            train_periods=periods[in_fit],
            seed=int(model.seed),
            progress=progress,
        )
        folds.append(
            {
                "train_periods": list(fit_periods),
                "test_periods": list(test_periods),
                "factors": [f.candidate for f in result.factors],
                "validation": validation.report,
            }
        )
    return {
        "period_column": period_column,
        "scheme": f"rolling origin: fit on {train} periods, test on the next {test}, "
        f"origin moved by {step or test}",
        "windows": folds,
        "summary": summarize_folds(folds),
    }


def _counts_by_period(study: Any, periods: np.ndarray) -> dict[int, np.ndarray]:
    out = {}
    for period in np.unique(periods):
        subset = study.events.loc[periods == period]
        out[int(period)] = study.grid.count_events(subset, study.area_geometry).counts
    return out


def _span(periods: Sequence[int]) -> str:
    return f"{periods[0]}-{periods[-1]}" if len(periods) > 1 else f"{periods[0]}"
