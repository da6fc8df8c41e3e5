"""Load a study: the area, its grid, the events counted on it, the factors, in one CRS.

:func:`load_study` reads everything a :class:`~rtm.spec.StudySpec` names, in an order
that fails fast: the factor list and the scale of the grid are checked (and the memory
the run needs estimated, :mod:`rtm.resources`) before the grid is built, and the grid
before the factors and events are read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from rtm.errors import InputError, ParameterError, api_warnings
from rtm.grid import EventCounts, Grid, crs_unit
from rtm.io import factor_sources, read_events, read_factor, read_study_area, split_layer
from rtm.layers import CandidateSet, Factor, build_candidates
from rtm.resources import check_memory
from rtm.shared import file_key, is_sharing, remember
from rtm.spec import StudySpec

__all__ = ["Study", "build_study_candidates", "event_weights", "load_study"]

Progress = Callable[[str], None]


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
        Where each input came from (for the report): ``area``, ``events``, ``factors``
        (name -> source).
    network : rtm.layers.network.StreetNetwork or None
        The street network proximity is measured along (None: straight lines).
    spec : StudySpec
        The specification the study was loaded from.
    streets : GeoDataFrame or None
        Street lines for context (``streets``, :func:`rtm.io.read_streets`): ``name``
        and line geometry, clipped to the area; None when not given.
    """

    area: gpd.GeoDataFrame = field(repr=False)
    grid: Grid
    events: gpd.GeoDataFrame | None = field(repr=False)
    counts: EventCounts | None
    factors: tuple[Factor, ...]
    sources: dict[str, object] = field(default_factory=dict)
    network: Any = field(default=None, repr=False)
    spec: StudySpec | None = field(default=None, repr=False)
    streets: gpd.GeoDataFrame | None = field(default=None, repr=False)

    @property
    def area_geometry(self) -> shapely.Geometry:
        """The study area as one geometry."""
        return shapely.union_all(np.asarray(self.area.geometry.values))


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


def load_study(
    spec: StudySpec | None = None,
    /,
    *,
    with_events: bool = True,
    progress: Progress | None = None,
    **options: Any,
) -> Study:
    """Read the study area, events and factors a specification names, and build the grid.

    Parameters
    ----------
    spec : StudySpec, optional
        The study; or give its options as keywords (``area=..., block_length=...``).
    with_events : bool
        Read and count the events (``spec.events``); False when only layers are wanted.
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
    if spec is None:
        spec = StudySpec(**options)
    elif options:
        spec = spec.replace(**options)
    with api_warnings():
        return _load(spec, with_events=with_events, progress=progress)


def _load(spec: StudySpec, *, with_events: bool, progress: Progress | None) -> Study:
    say = progress or (lambda message: None)
    sources = factor_sources(spec.factors, spec.factors_dir)
    if not sources:
        raise ParameterError("no risk factor given: use --factor FILE or --factors-dir DIR")
    names = {name for name, _ in sources}
    unknown = sorted(set(spec.protective) - names)
    if unknown:
        raise ParameterError(
            f"--protective {', '.join(unknown)}: no such factor; "
            f"factors are {', '.join(sorted(names))}"
        )
    study_area = read_study_area(spec.area, crs=spec.crs, where=spec.area_where)
    if "selection" in study_area.attrs:
        say(f"study area: {study_area.attrs['selection']}")
    grid = _grid(spec, study_area, n_factors=len(sources))
    say(
        f"grid: {grid.n_rows} x {grid.n_cols} cells of {grid.cell_size:g} {grid.unit}, "
        f"{grid.n_active:,} in the area"
    )
    grid_crs = grid.crs  # parsed from WKT on every access: once is enough
    csv_options = spec.csv_options
    loaded = tuple(
        Factor(
            name,
            read_factor(source, grid_crs, name=name, csv_options=csv_options),
            name in set(spec.protective),
        )
        for name, source in sources
    )
    say(f"factors: {len(loaded)} read")
    street_network = streets = None
    if spec.network is not None:
        from rtm.layers.network import read_network

        street_network = read_network(spec.network, grid_crs)
    if spec.streets is not None:
        from rtm.io import read_streets

        streets = read_streets(spec.streets, study_area, grid_crs, csv_options=csv_options)
        say(f"streets: {len(streets):,} lines in the area")
    event_frame = counts = None
    if with_events and spec.events is not None:
        event_frame, counts = _count_events(spec, grid, study_area)
        say(f"events: {counts.n_used:,} used, {counts.n_outside:,} outside the area dropped")
    return Study(
        area=study_area,
        grid=grid,
        events=event_frame,
        counts=counts,
        factors=loaded,
        sources={
            "area": _area_label(spec.area, study_area),
            "events": None if spec.events is None else _label(spec.events),
            "factors": {name: _label(source) for name, source in sources},
        },
        network=street_network,
        spec=spec,
        streets=streets,
    )


def _label(source: Any) -> str:
    return source if isinstance(source, str) else "(in memory)"


def _area_label(source: Any, area: gpd.GeoDataFrame) -> str:
    """The area's source, with the polygons ``--area-where`` chose."""
    selection = area.attrs.get("selection")
    return _label(source) + (f" ({selection})" if selection else "")


def _grid(spec: StudySpec, area: gpd.GeoDataFrame, *, n_factors: int) -> Grid:
    """The grid: its scale checked and its memory estimated before it is built."""
    size = spec.cell_size_or_default
    unit = crs_unit(area.crs)
    _check_scale(area, spec.block_length, size, unit, spec.cell_size is None)
    geometry = shapely.union_all(np.asarray(area.geometry.values))
    minx, miny, maxx, maxy = geometry.bounds
    check_memory(
        geometry.area,
        geometry.length,
        maxx - minx,
        maxy - miny,
        size,
        spec.candidates_per_factor * n_factors,
        option="--cell-size" if spec.cell_size is not None else "--block-length (cell size)",
    )
    geometries = shapely.to_wkb(np.asarray(area.geometry.values))
    key = (hashlib.sha256(b"".join(geometries)).hexdigest(), area.crs.to_wkt(), size)
    return remember("grid", key, lambda: Grid.from_area(area, size))


def _candidates_key(study: Study, spec: StudySpec) -> tuple[Any, ...] | None:
    """What a study's candidate layers depend on (None: something is not a file)."""
    grid = study.grid
    factor_files = dict(study.sources.get("factors", {}))  # type: ignore[call-overload]
    if len(factor_files) != len(study.factors) or not is_sharing():
        return None
    if spec.network is not None and not isinstance(spec.network, str | Path):
        return None
    mask = hashlib.sha256(np.ascontiguousarray(grid.mask).tobytes()).hexdigest()
    return (
        (grid.x_min, grid.y_max, grid.cell_size, grid.n_rows, grid.n_cols, grid.crs_wkt, mask),
        tuple(
            (f.name, file_key(split_layer(factor_files[f.name])[0]), factor_files[f.name])
            + (f.protective,)
            for f in study.factors
        ),
        spec.operationalization,
        tuple(spec.spatial_influences),
        None if spec.network is None else file_key(spec.network),
    )


def _count_events(
    spec: StudySpec, grid: Grid, area: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame, EventCounts]:
    """The events (filtered, inside the area) and their counts (and harm) per cell."""
    source = spec.events
    frame = read_events(
        source,
        grid.crs,
        where=spec.where,
        x_column=spec.x_column,
        y_column=spec.y_column,
        csv_crs=spec.events_crs,
        csv_options=spec.csv_options,
    )
    source = _label(source)
    weights = None
    if spec.weight_column is not None:
        weights = event_weights(frame, spec.weight_column, what=f"events {source}")
    elif spec.harm is not None:
        weights = _table_weights(spec.harm, frame, f"events {source}")
    counts = grid.count_events(frame, shapely.union_all(np.asarray(area.geometry.values)), weights)
    if counts.n_used == 0:
        raise InputError(
            f"events {source}: all {counts.n_outside} events lie outside the study area "
            "(check that both are in the right CRS)"
        )
    if not spec.area_where:  # a part of an area file: most events lie outside by design
        counts.warn_outside(f"events {source}")
    if counts.harm is not None and not float(counts.harm.sum()) > 0:
        raise InputError(
            f"events {source}: "
            + (
                f"--weight-column {spec.weight_column}"
                if spec.harm is None
                else f"--harm {spec.harm}"
            )
            + ": the events in the study area have a total weight of zero"
        )
    return frame.loc[counts.inside], counts


def _table_weights(table: str, frame: gpd.GeoDataFrame, what: str) -> np.ndarray:
    """Event weights from a harm table; warns when the table marks weights unverified."""
    import warnings

    from rtm.errors import RTMWarning
    from rtm.harm import harm_weights, read_harm_table

    harm_table = read_harm_table(table)
    weights = harm_weights(frame, harm_table, what=what)
    if harm_table.unverified:
        warnings.warn(
            f"--harm {table}: {len(harm_table.unverified)} weights are marked unverified in "
            "the table (see its derivation notes); check them before operational use",
            RTMWarning,
            stacklevel=2,
        )
    return weights


def build_study_candidates(
    study: Study, *, progress: Progress | None = None, compute: Any = None
) -> CandidateSet:
    """Candidate layers for every factor of ``study``, as its specification asks.

    ``compute`` is :func:`rtm.layers.build_candidates`'s hook (e.g. the chunked,
    Dask-backed :func:`rtm.layers.chunked.chunked_layers`).
    """
    from dataclasses import replace

    spec = study.spec
    if spec is None:
        raise ParameterError("the study has no specification: load it with load_study")
    factors = [replace(f, operationalization=spec.operationalization) for f in study.factors]

    def build() -> CandidateSet:
        return build_candidates(
            study.grid,
            factors,
            spec.spatial_influences,
            progress=progress,
            network=study.network,
            compute=compute,
        )

    # the jobs of a batch on one area share its layers (rtm.shared)
    key = _candidates_key(study, spec) if compute is None else None
    candidates = build() if key is None else remember("candidates", key, build)
    if progress:
        progress(
            f"layers: {len(candidates.candidates)} candidates, "
            f"{len(candidates.dropped)} constant dropped"
        )
    return candidates
