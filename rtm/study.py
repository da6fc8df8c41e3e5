"""Load a study from files: the area, its grid, the events counted on it, the factors."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from rtm.errors import InputError, ParameterError
from rtm.grid import EventCounts, Grid, crs_unit
from rtm.io import factor_sources, read_events, read_factor, read_study_area
from rtm.layers import Factor
from rtm.resources import check_memory

__all__ = [
    "Study",
    "check_length",
    "crs_unit",
    "event_weights",
    "load_study",
    "resolve_cell_size",
]


def resolve_cell_size(block_length: float, cell_size: float | None) -> float:
    """The cell size, defaulting to half the block length."""
    if cell_size is None:
        return float(block_length) / 2.0
    return float(cell_size)


def check_length(value: object, option: str) -> float:
    """A positive, finite length (block length, cell size), or an error naming ``option``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ParameterError(f"{option} must be a positive number of metres, got {value!r}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ParameterError(f"{option} must be a positive, finite number of metres, got {value!r}")
    return float(value)


def _check_scale(
    area: gpd.GeoDataFrame, block_length: float, cell_size: float, unit: str, derived: bool
) -> None:
    """Refuse a block length or cell size larger than the study area itself."""
    minx, miny, maxx, maxy = area.total_bounds
    extent = float(max(maxx - minx, maxy - miny))
    if block_length > extent:
        raise ParameterError(
            f"--block-length {block_length:g} {unit} is larger than the study area "
            f"({extent:,.0f} {unit} across): give the average length of a street block "
            "(typically 50 to 300 m)"
        )
    if not derived and cell_size > extent:
        raise ParameterError(
            f"--cell-size {cell_size:g} {unit} is larger than the study area "
            f"({extent:,.0f} {unit} across)"
        )


def event_weights(frame: gpd.GeoDataFrame, column: str, *, what: str = "events") -> np.ndarray:
    """The weight (harm) of every event: finite, non-negative numbers.

    Raises
    ------
    ParameterError
        ``frame`` has no such column (exit 2).
    InputError
        Some values are missing, non-numeric, infinite or negative: one line naming the
        column and the number of bad rows (exit 4).
    """
    import pandas as pd

    geometry_name = getattr(frame, "_geometry_column_name", None)
    columns = [str(c) for c in frame.columns if c != geometry_name]
    found = next((c for c in columns if c == column), None) or next(
        (c for c in columns if c.strip().lower() == column.strip().lower()), None
    )
    if found is None:
        raise ParameterError(
            f"--weight-column {column!r}: {what} has no such column; "
            f"columns are {', '.join(columns)}"
        )
    raw = frame[found]
    if raw.dtype == bool:
        raw = raw.astype(float)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        missing = int(raw.isna().to_numpy().sum())
        negative = int((values < 0).sum())
        other = int(bad.sum()) - missing - negative
        kinds = ((missing, "missing"), (other, "non-numeric or infinite"), (negative, "negative"))
        parts = [f"{n} {label}" for n, label in kinds if n]
        raise InputError(
            f"{what}: --weight-column {found!r} has {int(bad.sum())} bad rows of {len(values)} "
            f"({', '.join(parts)}); weights must be numbers >= 0"
        )
    return values


@dataclass(frozen=True, eq=False)
class Study:
    """Everything read from the inputs, in one projected CRS.

    Attributes
    ----------
    area : GeoDataFrame
        Study-area polygons.
    grid : Grid
        The analysis grid.
    events : GeoDataFrame or None
        The events used (inside the area, after filters).
    counts : EventCounts or None
        Events per active cell.
    factors : tuple of Factor
        The risk factors.
    sources : dict
        Where each input came from (for the report).
    network : rtm.layers.network.StreetNetwork or None
        The street network proximity is measured along (None: straight lines).
    """

    area: gpd.GeoDataFrame = field(repr=False)
    grid: Grid
    events: gpd.GeoDataFrame | None = field(repr=False)
    counts: EventCounts | None
    factors: tuple[Factor, ...]
    sources: dict[str, object] = field(default_factory=dict)
    network: Any = field(default=None, repr=False)

    @property
    def area_geometry(self) -> shapely.Geometry:
        """The study area as one geometry."""
        return shapely.union_all(np.asarray(self.area.geometry.values))


def load_study(
    *,
    area: str | Path | gpd.GeoDataFrame,
    block_length: float,
    cell_size: float | None = None,
    events: str | Path | None = None,
    factors: Sequence[str] = (),
    factors_dir: str | Path | None = None,
    protective: Sequence[str] = (),
    where: Sequence[str] = (),
    crs: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
    events_crs: str | None = None,
    network: str | Path | None = None,
    weight_column: str | None = None,
    candidates_per_factor: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Study:
    """Read the study area, events and factors from files and build the grid.

    Parameters
    ----------
    area : path or GeoDataFrame
        Study-area polygons (a file, or polygons in memory).
    block_length : float
        Average street-block length (CRS units), used for the default cell size.
    cell_size : float, optional
        Cell side; default half the block length.
    events : path, optional
        Outcome events (points); omitted when only layers are wanted.
    factors : sequence of str
        ``FILE`` or ``NAME=FILE`` specs.
    factors_dir : path, optional
        A folder whose every vector layer is a factor.
    protective : sequence of str
        Names of protective factors.
    where : sequence of str
        Event filters, see :func:`rtm.io.parse_where`.
    crs : str, optional
        Projected CRS to work in (default: the area's own).
    x_column, y_column, events_crs : str, optional
        CSV coordinate columns and their CRS for the events.
    network : path, optional
        A street line layer: proximity is then measured along it (see :mod:`rtm.layers.network`).
    weight_column : str, optional
        A numeric column of the events (e.g. a crime harm index): ``counts.harm`` is then
        the total weight per cell. Every event that passes ``where`` must have a finite,
        non-negative value (``InputError`` otherwise); zero is allowed.
    candidates_per_factor : int, optional
        Candidate layers each factor will give: with it, a study too large for the memory
        available is refused before the grid is built (:func:`rtm.resources.check_memory`).
    progress : callable, optional
        Receives short progress messages.

    Returns
    -------
    Study
        The area, grid, events, counts per cell and factors, in one projected CRS.

    Examples
    --------
    >>> import tempfile
    >>> from rtm.synthetic import generate_city, write_city
    >>> folder = write_city(generate_city(seed=1, radius=1500), tempfile.mkdtemp())
    >>> study = load_study(
    ...     area=folder / "area.gpkg", events=folder / "crimes.csv",
    ...     factors_dir=folder / "factors", protective=["parks"],
    ...     where=["type=robbery"], block_length=150,
    ... )
    >>> study.grid.cell_size, study.grid.n_active, study.counts.n_used
    (75.0, 1356, 1847)
    >>> [f.name for f in study.factors if f.protective]
    ['parks']
    """
    say = progress or (lambda message: None)
    check_length(block_length, "--block-length")
    if cell_size is not None:
        check_length(cell_size, "--cell-size")
    sources = factor_sources(factors, factors_dir)
    if not sources:
        raise ParameterError("no risk factor given: use --factor FILE or --factors-dir DIR")
    study_area = read_study_area(area, crs=crs)
    size = resolve_cell_size(block_length, cell_size)
    unit = crs_unit(study_area.crs)
    _check_scale(study_area, float(block_length), size, unit, cell_size is None)
    if candidates_per_factor:
        geometry = shapely.union_all(np.asarray(study_area.geometry.values))
        minx, miny, maxx, maxy = geometry.bounds
        check_memory(
            geometry.area,
            geometry.length,
            maxx - minx,
            maxy - miny,
            size,
            candidates_per_factor * len(sources),
            option="--cell-size" if cell_size is not None else "--block-length (cell size)",
        )
    grid = Grid.from_area(study_area, size)
    say(
        f"grid: {grid.n_rows} x {grid.n_cols} cells of {size:g} {unit}, "
        f"{grid.n_active:,} in the area"
    )
    names = {name for name, _ in sources}
    unknown = sorted(set(protective) - names)
    if unknown:
        raise ParameterError(
            f"--protective {', '.join(unknown)}: no such factor; "
            f"factors are {', '.join(sorted(names))}"
        )
    grid_crs = grid.crs  # parsed from WKT on every access: once is enough
    loaded = []
    for name, source in sources:
        features = read_factor(source, grid_crs, name=name)
        loaded.append(Factor(name, features, protective=name in set(protective)))
    say(f"factors: {len(loaded)} read")
    street_network = None
    if network is not None:
        from rtm.layers.network import read_network

        street_network = read_network(network, grid_crs)
    event_frame = counts = None
    if events is not None:
        event_frame = read_events(
            events, grid_crs, where=where, x_column=x_column, y_column=y_column, csv_crs=events_crs
        )
        weights = None
        if weight_column is not None:
            weights = event_weights(event_frame, weight_column, what=f"events {events}")
        geometry = shapely.union_all(np.asarray(study_area.geometry.values))
        counts = grid.count_events(event_frame, geometry, weights)
        if counts.n_used == 0:
            raise InputError(
                f"events {events}: all {counts.n_outside} events lie outside the study area "
                "(check that both are in the right CRS)"
            )
        event_frame = event_frame.loc[counts.inside]
        counts.warn_outside(f"events {events}")
        say(f"events: {counts.n_used:,} used, {counts.n_outside:,} outside the area dropped")
        if counts.harm is not None and not float(counts.harm.sum()) > 0:
            raise InputError(
                f"events {events}: --weight-column {weight_column}: the events in the study "
                "area have a total weight of zero"
            )
    return Study(
        area=study_area,
        grid=grid,
        events=event_frame,
        counts=counts,
        factors=tuple(loaded),
        sources={
            "area": "(in memory)" if isinstance(area, gpd.GeoDataFrame) else str(area),
            "events": None if events is None else str(events),
            "factors": dict(sources),
            "where": list(where),
            "network": None if network is None else str(network),
            **({} if weight_column is None else {"weight_column": weight_column}),
        },
        network=street_network,
    )
