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
from typing import Any

import numpy as np

from rtm.errors import InputError, ParameterError
from rtm.periods import event_periods
from rtm.spec import StudySpec
from rtm.validation import metrics as ev
from rtm.validation.inputs import FittedSurface, TestEvents
from rtm.validation.workflow import validate

__all__ = ["rolling_windows", "summarize_folds", "temporal_validation"]

Window = tuple[tuple[int, ...], tuple[int, ...]]


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
    names = [m.name for m in ev.METRICS if not m.proportional_only]
    surfaces = {"rtm": {k: report[k] for k in names}}
    if report.get("forecast"):
        surfaces["forecast"] = report["forecast"]
    for group in ("challengers", "baselines"):
        surfaces.update(report.get(group, {}))
    return surfaces


def _numbers(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    return ev.flat_scores(metrics)


def temporal_validation(
    spec: StudySpec | None = None,
    /,
    *,
    train: int,
    test: int,
    step: int | None = None,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Rolling-origin validation of RTM, the challengers and the baselines.

    Each window fits on ``train`` consecutive periods and scores the next ``test``
    periods; windows move on by ``step`` periods (default ``test``). Every option of the
    study (its events, filters, grid, model, ``challengers``, ``bandwidth``) is the
    specification's, as for :func:`rtm.api.analyze`; the period column is
    ``spec.period_column`` (default ``month``).

    Parameters
    ----------
    spec : StudySpec, optional
        The study; or give its options as keywords.
    train, test : int
        Periods fitted and scored in each window.
    step : int, optional
        Periods between window starts (default ``test``).
    progress : callable, optional
        Receives short progress messages.

    Returns
    -------
    dict
        ``windows`` (each with its training/test periods, events and full validation
        report), ``summary`` (mean and SD of each metric per surface) and the scheme.
    """
    from rtm.study import build_study_candidates, load_study

    spec = StudySpec(**options) if spec is None else spec.replace(**options)
    if spec.events is None:
        raise ParameterError("events: temporal validation needs the events to fit and score")
    say = progress or (lambda message: None)
    column = spec.period_column or "month"
    from rtm.model import RiskTerrainModel

    model = RiskTerrainModel.from_spec(spec)
    study = load_study(spec, progress=progress)
    assert study.events is not None
    periods = event_periods(study.events, column)
    windows = rolling_windows(sorted(set(periods.tolist())), train=train, test=test, step=step)
    candidates = build_study_candidates(study, progress=progress)
    counts_by_period = _counts_by_period(study, periods)
    folds = []
    for fit_periods, test_periods in windows:
        say(f"window: fit on {_span(fit_periods)}, test on {_span(test_periods)}")
        train_counts, test_counts = (
            sum(
                (counts_by_period[p] for p in span if p in counts_by_period),
                np.zeros(study.grid.n_active, dtype=np.int64),
            )
            for span in (fit_periods, test_periods)
        )
        result = model.fit(candidates, train_counts, progress=progress).result_
        fitted = FittedSurface.from_analysis(
            result, study, period_column=column, events=np.isin(periods, fit_periods)
        )
        validation = validate(
            fitted,
            TestEvents.from_counts(test_counts, source=f"periods {_span(test_periods)}"),
            challengers=spec.challengers,
            bandwidth=spec.bandwidth,
            importance=spec.importance,
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
        "period_column": column,
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
