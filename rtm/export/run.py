"""Write a finished analysis into a run folder (the files: :data:`rtm.export.formats.OUTPUTS`).

report.json, factors.csv, cells.gpkg; with a risk surface also risk.tif, places.gpkg,
features.gpkg, risk.png, map.html and report.html.
"""

from __future__ import annotations

import gc
import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rtm.export.formats import RISK_NODATA
from rtm.result import RTMResult
from rtm.runs import RunReport

__all__ = ["PREFETCH", "RISK_NODATA", "prefetch_modules", "write_run"]

#: What each later stage imports, by stage (:func:`prefetch_modules`).
PREFETCH: dict[str, tuple[str, ...]] = {
    "outputs": (
        "rtm.export.outputs",
        "rtm.export.figure",
        "matplotlib.figure",
        "matplotlib.backends.backend_agg",
        "rtm.export.webmap",
        "rtm.export.report_html",
    ),
    # the forecast's challengers: scikit-learn's trees (about 1 s) and the validation
    "forecast": (
        "rtm.validation",
        "sklearn.ensemble",
        "threadpoolctl",
    ),
}


def prefetch_modules(*stages: str) -> threading.Thread:
    """Import the modules of ``stages`` (keys of :data:`PREFETCH`) in a background thread.

    Started when the fit begins: the fit runs in nogil kernels, so the imports (about
    0.15-0.3 s for the outputs, mostly matplotlib; 1 s for the forecast, mostly
    scikit-learn) overlap it instead of following it. Python's import lock makes this
    safe: a module the main thread asks for meanwhile is waited for, not imported twice.
    A failed import is left to fail again, with its own message, where the module is
    used. Returns the thread (join it before the next stage imports anything).
    """
    names = [name for stage in stages for name in PREFETCH[stage]]

    def load() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - reported by the real import later
                return

    thread = threading.Thread(target=load, name="rtm-prefetch", daemon=True)
    thread.start()
    return thread


def write_run(
    folder: Path,
    result: RTMResult,
    report: RunReport,
    *,
    study: Any = None,
    options: Any = None,
    forecast: Any = None,
    progress: Any = None,
) -> list[Path]:
    """Write every output of a fit into ``folder``; returns the files written.

    With a risk surface, also the outputs people act on (see :mod:`rtm.export.outputs`):
    tiers and places (added to the report), places.gpkg, features.gpkg, risk.png,
    map.html and report.html. ``study`` (an :class:`rtm.study.Study`) supplies the area,
    events and factor features for the map; ``options`` an ``OutputOptions``; with
    ``forecast`` (a :class:`rtm.validation.forecast.Forecast`), also forecast.tif,
    forecast.json and the map's forecast layer.
    """
    with _paused_gc():
        return _write_run(
            folder,
            result,
            report,
            study=study,
            options=options,
            forecast=forecast,
            progress=progress,
        )


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the outputs are built.

    Building them allocates many small containers (map JSON, pandas and matplotlib
    objects), which triggers full collections, each traversing every object alive in the
    process: after a fit, hundreds of thousands, for nothing (the outputs hold no garbage
    worth collecting early). Cycles made meanwhile are collected once it resumes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write_run(
    folder: Path,
    result: RTMResult,
    report: RunReport,
    *,
    study: Any = None,
    options: Any = None,
    forecast: Any = None,
    progress: Any = None,
) -> list[Path]:
    from rtm.export.formats import OutputContext, write_outputs

    files = None if options is None else options.outputs
    bundle = analysis = None
    if result.relative_risk_score is not None:
        from rtm.export.outputs import present
        from rtm.spec_values import FEATURE_FILES

        bundle, analysis = present(
            result,
            report,
            study=study,
            options=options,
            forecast=None if forecast is None else forecast.surface,
            with_features=files is None or not FEATURE_FILES.isdisjoint(files),
        )
        report = bundle.report
    columns: dict[str, np.ndarray] = {
        "events": result.counts.astype(np.int32),
        "expected": result.expected.astype(np.float64),
    }
    if bundle is not None and bundle.surface.harm is not None:
        columns["harm"] = bundle.surface.harm.astype(np.float64)
    if result.relative_risk_score is not None:
        columns["rrs"] = result.relative_risk_score.astype(np.float64)
    if forecast is not None:  # rtm map draws priority places and the map layer from it
        columns["forecast"] = np.asarray(forecast.surface, dtype=np.float64)
    for name, values in result.selected_values().items():
        columns[name] = values.astype(np.int8)
    if analysis is not None:
        from rtm.export.outputs import cell_tiers

        columns["tier"] = cell_tiers(analysis)
    context = OutputContext(report, result.grid, columns, result, bundle, analysis, forecast)
    return write_outputs(folder, context, progress=progress, files=files)
