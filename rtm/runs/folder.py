"""The run folder on disk: report.json written and read here, the grid rebuilt once.

:func:`write_report` writes deterministic JSON; :func:`read_report` reads it back as a
:class:`~rtm.runs.records.RunReport`; :func:`load_run` rebuilds the run's
:class:`~rtm.grid.Grid` from the report and ``cells.gpkg`` (the only place a grid is
reconstructed) and gives the per-cell columns in active-cell order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtm.errors import InputError
from rtm.grid import Grid
from rtm.runs.records import RunReport

__all__ = [
    "Run",
    "json_default",
    "load_run",
    "read_features",
    "read_report",
    "write_json",
    "write_report",
]


def json_default(value: Any) -> Any:
    """Make numpy scalars and arrays JSON-safe."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """Replace NaN and infinities by None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Deterministic, human-readable JSON."""
    text = json.dumps(_finite(data), indent=2, default=json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def write_report(path: Path, report: RunReport) -> None:
    """Write ``report`` as ``report.json`` at ``path``."""
    write_json(path, report.as_dict())


def read_report(folder: str | Path, *, what: str = "RUN_DIR") -> RunReport:
    """The report of a run folder, or an :class:`~rtm.errors.InputError` naming it."""
    run = Path(folder)
    if not run.is_dir():
        kind = "is a file, not a run folder" if run.exists() else "no such folder"
        raise InputError(f"{what} {run}: {kind}")
    path = run / "report.json"
    if not path.is_file():
        raise InputError(f"{what} {run}: report.json is missing (is it an rtm analyze output?)")
    try:
        return RunReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{what} {run}: report.json is not an rtm report ({exc})") from exc


@dataclass(frozen=True, eq=False)
class Run:
    """A run folder read back: its report, its grid and its per-cell columns.

    Attributes
    ----------
    folder : Path
    report : RunReport
    grid : Grid
        Rebuilt from the report (corner, shape, cell size, CRS) and the cells present in
        cells.gpkg (the mask).
    cells : pandas.DataFrame
        cells.gpkg's attributes in active-cell order: ``events``, ``expected``, ``rrs``
        (with a risk surface), ``tier``, and one column per selected candidate.
    """

    folder: Path
    report: RunReport
    grid: Grid
    cells: Any = field(repr=False)

    def column(self, name: str, dtype: Any = np.float64) -> np.ndarray:
        """A per-cell column, in active-cell order."""
        return self.cells[name].to_numpy(dtype)

    @property
    def rrs(self) -> np.ndarray | None:
        """The relative risk score per active cell (None without a risk surface)."""
        return self.column("rrs") if "rrs" in self.cells.columns else None

    @property
    def selected(self) -> dict[str, np.ndarray]:
        """The selected candidates' values per active cell, by candidate name."""
        return {
            f.candidate: self.column(f.candidate, np.int8)
            for f in self.report.model.factors
            if f.candidate in self.cells.columns
        }


def load_run(folder: str | Path, *, what: str = "RUN_DIR") -> Run:
    """Read a run folder's report and cells, and rebuild its grid.

    Raises
    ------
    InputError
        The folder, report.json or cells.gpkg is missing or not rtm's (the message names
        the file).
    """
    import pyogrio
    import pyproj

    run = Path(folder)
    report = read_report(run, what=what)
    cells_path = run / "cells.gpkg"
    if not cells_path.is_file():
        raise InputError(f"{what} {run}: cells.gpkg is missing (is it an rtm analyze output?)")
    try:
        cells = pyogrio.read_dataframe(cells_path, read_geometry=False)
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types for one cause
        raise InputError(f"{what} {run}: cells.gpkg cannot be read ({exc})") from exc
    record = report.inputs.grid
    flat = cells["row"].to_numpy(np.int64) * record.n_cols + cells["col"].to_numpy(np.int64)
    order = np.argsort(flat, kind="stable")
    cells = cells.iloc[order].reset_index(drop=True)
    mask = np.zeros(record.n_rows * record.n_cols, dtype=bool)
    mask[flat] = True
    grid = Grid(
        x_min=record.x_min,
        y_max=record.y_max,
        cell_size=report.inputs.cell_size,
        n_rows=record.n_rows,
        n_cols=record.n_cols,
        crs_wkt=pyproj.CRS.from_user_input(report.inputs.crs).to_wkt(),
        mask=mask.reshape(record.n_rows, record.n_cols),
    )
    return Run(folder=run, report=report, grid=grid, cells=cells)


def read_features(run: Path) -> tuple[Any, Any, Any]:
    """The study area, thinned factor features and events of a run folder (features.gpkg).

    Raises
    ------
    InputError
        features.gpkg is missing or has no ``area`` layer: without it the map would lack
        the study area, the factor layers and the priority places, so nothing is drawn.
    """
    import geopandas as gpd
    import pyogrio

    path = run / "features.gpkg"
    if not path.is_file():
        raise InputError(
            f"RUN_DIR {run}: features.gpkg is missing (it holds the study area, the events and "
            "the factor features the map and priority places are drawn from); re-run "
            "rtm analyze to make it (with --outputs, name features.gpkg among them)"
        )
    try:
        present = {name for name, _ in pyogrio.list_layers(path)}
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types for one cause
        raise InputError(f"RUN_DIR {run}: features.gpkg cannot be read ({exc})") from exc
    if "area" not in present:
        raise InputError(f"RUN_DIR {run}: features.gpkg has no 'area' layer; re-run rtm analyze")
    area = gpd.read_file(path, layer="area")
    features = gpd.read_file(path, layer="factors") if "factors" in present else None
    events = gpd.read_file(path, layer="events") if "events" in present else None
    return area, features, events
