"""A validation's result: the JSON report and the capture curves, compared on the same cells.

:func:`compare` scores the RTM surface, the challengers and the baselines on the same test
counts with every metric of :data:`~rtm.validation.metrics.METRICS` (ties shared pro
rata) and :class:`Validation` holds the result, written as ``validation.json`` and a
capture-curve PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm._version import __version__
from rtm.errors import FitError, InputError, ParameterError
from rtm.grid import Grid
from rtm.validation import metrics as ev

__all__ = ["Validation", "compare", "factor_count"]


@dataclass(frozen=True, eq=False)
class Validation:
    """A validation: the JSON-ready report and the capture curves.

    Attributes
    ----------
    report : dict
        What ``validation.json`` holds: ``events``, ``auc``, ``capture``, ``pai``, ``pei``,
        ``rri`` (of the RTM surface), ``logistic``, ``baselines``, ``challengers``, ``rules``.
    curves : dict
        ``{label: (area_shares, capture_rates)}`` for the plot.
    """

    report: dict[str, Any]
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        """A key of :attr:`report` (``validation["auc"]``)."""
        return self.report[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A key of :attr:`report`, or ``default``."""
        return self.report.get(key, default)

    def table(self) -> list[dict[str, Any]]:
        """One row per surface: AUC and capture/PAI at each area share."""
        rows = [{"model": "rtm", **_flat(self.report)}]
        if self.report.get("forecast"):
            rows.append({"model": "forecast", **_flat(self.report["forecast"])})
        for group in ("challengers", "baselines"):
            for name, metrics in self.report.get(group, {}).items():
                rows.append({"model": name, **_flat(metrics)})
        return rows

    def write(
        self, path: str | Path, *, plot: str | Path | None = None, overwrite: bool = False
    ) -> list[Path]:
        """Write ``validation.json`` (and the capture-curve PNG), atomically."""
        from rtm.export.atomic import atomic_file, check_writable
        from rtm.export.plots import plot_capture_curves
        from rtm.runs import write_json

        targets = [Path(path)] + ([Path(plot)] if plot is not None else [])
        for target in targets:
            check_writable(target, overwrite=overwrite)
        with atomic_file(path, overwrite=overwrite) as tmp:
            write_json(tmp, {"written_by": f"rtm {__version__}", **self.report})
            if plot is not None:
                with atomic_file(plot, overwrite=overwrite) as png:
                    plot_capture_curves(png, self.curves)
        return targets


def _flat(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return dict(ev.flat_scores(dict(metrics), table_only=True))


def compare(
    grid: Grid,
    test_counts: ArrayLike,
    *,
    rtm_scores: ArrayLike | None,
    factor_count: ArrayLike | None,
    baselines: Mapping[str, ArrayLike],
    challengers: Mapping[str, ArrayLike] | None = None,
    forecast: tuple[ArrayLike, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Validation:
    """Score the RTM surface, the baselines and the challengers on the same test counts."""
    events = np.asarray(test_counts, dtype=np.float64)
    if events.shape != (grid.n_active,):
        raise ParameterError(
            f"test counts have shape {events.shape}; the grid has {grid.n_active} cells"
        )
    if events.sum() <= 0:
        raise InputError("no test event falls in the study area: nothing to validate against")
    significant = rtm_scores is not None
    scores = np.ones(grid.n_active) if rtm_scores is None else np.asarray(rtm_scores, dtype=float)
    report: dict[str, Any] = {
        "events": int(events.sum()),
        "cells": grid.n_active,
        "cells_with_events": int(np.count_nonzero(events)),
        "significant": significant,
        **ev.score_surface(scores, events),
    }
    curves = {"RTM": ev.curve(scores, events)}
    report["logistic"] = None
    if factor_count is not None:
        try:
            report["logistic"] = {
                "covariate": "number of selected risk factors present in the cell "
                "(a protective factor present counts -1)",
                **ev.logistic_odds_ratio(factor_count, events).as_dict(),
            }
        except FitError as exc:
            report["logistic"] = {"error": str(exc)}
    if forecast is not None:
        values, recipe = forecast
        report["forecast"] = {**ev.score_surface(values, events), "recipe": dict(recipe)}
        curves["forecast"] = ev.curve(values, events)
    report["challengers"] = {}
    for name, values in (challengers or {}).items():
        report["challengers"][name] = ev.score_surface(values, events)
        curves[name] = ev.curve(values, events)
    report["baselines"] = {}
    for name, values in baselines.items():
        report["baselines"][name] = ev.score_surface(values, events)
        curves[name] = ev.curve(values, events)
    curves["best possible"] = ev.curve(events, events)
    report["rules"] = {
        "ties": ev.TIE_RULE,
        "area": "each active cell counts as one unit of area",
        "auc": "cell has at least one test event; Mann-Whitney with tied pairs counted one half",
        "pei": "capture / the best capture any ranking reaches at the same area",
        "rri": "share of predicted risk / share of test events, in the same top cells",
    }
    report.update(extra or {})
    return Validation(report=report, curves=curves)


def factor_count(selected: Mapping[str, ArrayLike]) -> NDArray[np.float64] | None:
    """Number of selected factors present per cell (protective factors count -1)."""
    if not selected:
        return None
    return np.sum([np.asarray(v, dtype=np.float64) for v in selected.values()], axis=0)
