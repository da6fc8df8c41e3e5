"""Re-render a finished run folder (``rtm map``): new tiers and places, no refit."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtm.errors import InputError, OutputError
from rtm.export.atomic import atomic_dir
from rtm.export.outputs import (
    OutputOptions,
    bundle_from_run,
    cell_tiers,
    run_places,
    with_places,
)
from rtm.export.ownership import MARKER, foreign_entries

__all__ = ["SavedForecast", "rerender"]


@dataclass(frozen=True, eq=False)
class SavedForecast:
    """A run's forecast as its folder keeps it (cells.gpkg's ``forecast`` column).

    What the re-rendered outputs draw from it: the surface. Its recipe stays in the
    folder's forecast.json and forecast.tif, which ``rtm map`` leaves as they are.
    """

    surface: np.ndarray


def rerender(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    options: OutputOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Recompute tiers and places of ``run_dir`` and re-render its outputs.

    Parameters
    ----------
    run_dir : path
        A run folder written by ``rtm analyze``.
    out : path, optional
        Write a re-rendered copy of the folder here; default: update ``run_dir`` itself
        (which needs ``overwrite``, as it replaces outputs).
    overwrite : bool
        Replace existing outputs.
    options : OutputOptions, optional
        Tier cuts and priority-place settings.
    progress : callable, optional
        Receives short progress messages.

    Returns
    -------
    Path
        The folder written. It is replaced atomically: a failure leaves it as it was.
    """
    from rtm.export.formats import OutputContext, write_outputs
    from rtm.runs import load_run

    say = progress or (lambda message: None)
    run = Path(run_dir)
    if not run.is_dir():
        kind = "is a file, not a run folder" if run.exists() else "no such folder"
        raise InputError(f"RUN_DIR {run}: {kind}")
    target = Path(out) if out is not None else run
    in_place = target.resolve() == run.resolve()
    if in_place and not overwrite:
        from rtm.export.formats import OUTPUTS

        replaced = ", ".join(o.file for o in OUTPUTS if o.rerendered)
        raise OutputError(
            f"RUN_DIR {run}: re-rendering replaces its {replaced} "
            "(use --overwrite, or --out DIR for a copy)"
        )
    options = options or OutputOptions()
    loaded = load_run(run)
    bundle = bundle_from_run(loaded)
    # a run with a forecast keeps drawing its priority places (and the map's layer) from it
    forecast = loaded.column("forecast") if "forecast" in loaded.cells.columns else None
    analysis = run_places(bundle, options, forecast)
    say(f"places: {len(analysis.places)} highest-risk, {len(analysis.priority_places)} priority")
    cells = loaded.cells
    columns = {c: cells[c].to_numpy() for c in cells.columns if c not in ("row", "col", "tier")}
    columns["tier"] = cell_tiers(analysis)
    report = with_places(bundle.report, options, analysis)
    with atomic_dir(target, overwrite=overwrite or in_place, what="--out") as folder:
        foreign = set(foreign_entries(run))
        for path in run.iterdir():
            # only rtm's own files travel: a user's notes stay where they are
            if path.is_file() and path.name not in foreign and path.name != MARKER:
                shutil.copy2(path, folder / path.name)
        context = OutputContext(
            report,
            bundle.grid,
            columns,
            bundle=bundle.with_report(report),
            analysis=analysis,
            forecast=None if forecast is None else SavedForecast(forecast),
        )
        write_outputs(folder, context, rerender=True)
    say(f"outputs written to {target}")
    return target
