"""Candidate variables: every factor x operationalization x spatial influence, on a grid.

For each factor and each spatial influence ``d`` on the ladder (``k x block length``),
rtm builds one binary candidate variable per operationalization (proximity and density by
default; :mod:`rtm.layers.registry` lists them) over the active cells. Protective factors
are coded 0/-1 so that every admissible coefficient is positive. Candidates that are
constant over the study area carry no information: they are dropped and reported.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np

from rtm.errors import InputError, ParameterError, RTMWarning
from rtm.grid import Grid
from rtm.layers.geometry import as_geometries, within_reach
from rtm.layers.operationalizations.base import LayerContext, Operationalization
from rtm.layers.registry import resolve_operationalizations
from rtm.spec import MAX_BLOCKS, spatial_influences

if TYPE_CHECKING:
    from rtm.layers.network import StreetNetwork

__all__ = [
    "MAX_BLOCKS",
    "Candidate",
    "CandidateSet",
    "DroppedCandidate",
    "Factor",
    "Increment",
    "LayerComputer",
    "build_candidates",
    "spatial_influences",
]

#: ``(operationalization, geometries, distances, context) -> raw layers`` over active cells.
LayerComputer = Callable[[Operationalization, np.ndarray, list[float], LayerContext], np.ndarray]

Increment = Literal["whole", "half"]


@dataclass(frozen=True, eq=False)
class Factor:
    """A risk factor: named features, aggravating (default) or protective.

    Parameters
    ----------
    name : str
        The factor's name (in the model table and the candidates' names).
    features : GeoDataFrame or GeoSeries
        Points, lines or polygons, in the grid's CRS.
    protective : bool
        Expected to lower risk: its candidates are coded 0/-1 instead of 0/1.
    operationalization : str
        Which candidate variables to build: ``both`` (proximity and density), or names
        of registered operationalizations, comma-separated (:mod:`rtm.layers.registry`).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> Factor("pubs", gpd.GeoSeries(shapely.points([[120, 130]]), crs="EPSG:27700"))
    Factor(name='pubs', protective=False, operationalization='both')
    """

    name: str
    features: gpd.GeoDataFrame | gpd.GeoSeries = field(repr=False)
    protective: bool = False
    operationalization: str = "both"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"a factor needs a non-empty name, got {self.name!r}")
        resolve_operationalizations(self.operationalization)

    @property
    def n_features(self) -> int:
        """Number of features."""
        return len(self.features)


@dataclass(frozen=True)
class Candidate:
    """One binary candidate variable."""

    factor: str
    operationalization: str
    spatial_influence: float
    protective: bool = False

    @property
    def name(self) -> str:
        """``factor:operationalization:distance``, e.g. ``bars:proximity:400``."""
        return f"{self.factor}:{self.operationalization}:{self.spatial_influence:g}"


@dataclass(frozen=True)
class DroppedCandidate:
    """A candidate left out of the model, and why."""

    candidate: Candidate
    reason: str


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """The candidate matrix over a grid's active cells.

    Attributes
    ----------
    grid : Grid
        The grid the values refer to.
    candidates : tuple of Candidate
        One per column of ``values``.
    values : numpy.ndarray
        ``(n_active, n_candidates)`` int8: 0/1, or 0/-1 for protective factors.
    dropped : tuple of DroppedCandidate
        Constant candidates, with the reason.
    skipped_factors : tuple of str
        Factors with no feature within reach of the study area.
    density_thresholds : dict
        The data-driven cut per candidate name, where its operationalization has one
        (the mean + 2 SD of density candidates).
    """

    grid: Grid
    candidates: tuple[Candidate, ...]
    values: np.ndarray = field(repr=False)
    dropped: tuple[DroppedCandidate, ...] = ()
    skipped_factors: tuple[str, ...] = ()
    density_thresholds: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def names(self) -> list[str]:
        """Candidate names, in column order."""
        return [c.name for c in self.candidates]

    @property
    def factor_ids(self) -> np.ndarray:
        """Integer id of each column's factor (the grouping for "one variable per factor")."""
        order: dict[str, int] = {}
        return np.array(
            [order.setdefault(c.factor, len(order)) for c in self.candidates], dtype=np.int64
        )

    def column(self, name: str) -> np.ndarray:
        """Values of one candidate by name."""
        return self.values[:, self.names.index(name)]


def build_candidates(
    grid: Grid,
    factors: Iterable[Factor],
    influences: Sequence[float],
    *,
    progress: Callable[[str], None] | None = None,
    network: StreetNetwork | None = None,
    compute: LayerComputer | None = None,
) -> CandidateSet:
    """Build every candidate variable for every factor and spatial influence.

    Parameters
    ----------
    grid : Grid
        The analysis grid.
    factors : iterable of Factor
        Risk factors, with their features in the grid's CRS.
    influences : sequence of float
        The spatial-influence ladder (see :func:`spatial_influences`).
    progress : callable, optional
        Called with a short message as each factor is done.
    network : rtm.layers.network.StreetNetwork, optional
        Measure proximity along this street network instead of in straight lines
        (density stays Euclidean); see :mod:`rtm.layers.network` for the approximation.
    compute : callable, optional
        Computes an operationalization's raw layers,
        ``compute(operationalization, geometries, distances, context)`` over the active
        cells; by default on the whole grid (:func:`rtm.layers.chunked.chunked_layers`
        computes them in row chunks, on Dask).

    Returns
    -------
    CandidateSet
        Columns ordered by factor, then operationalization (in the order asked for:
        proximity, then density by default), then distance.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from rtm.grid import Grid
    >>> area = gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs="EPSG:27700")
    >>> grid = Grid.from_area(area, 50)
    >>> pubs = Factor("pubs", gpd.GeoSeries(shapely.points([[120, 130], [700, 800]]), crs=area.crs))
    >>> parks = Factor("parks", gpd.GeoSeries([shapely.box(400, 0, 600, 200)], crs=area.crs),
    ...                protective=True)
    >>> candidates = build_candidates(grid, [pubs, parks], [100, 200])
    >>> candidates.names[:4]
    ['pubs:proximity:100', 'pubs:proximity:200', 'pubs:density:100', 'pubs:density:200']
    >>> int(candidates.column("pubs:proximity:100").sum())  # cells within 100 of a pub
    23
    >>> int(candidates.column("parks:proximity:100").min())  # protective: coded 0/-1
    -1
    """
    factors = list(factors)
    names = [f.name for f in factors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ParameterError(f"factor names must be unique; repeated: {', '.join(duplicates)}")
    if not factors:
        raise ParameterError("at least one risk factor is needed")
    distances = sorted(set(float(d) for d in influences))
    if not distances or distances[0] <= 0:
        raise ParameterError(
            f"spatial influences must be positive distances, got {list(influences)}"
        )
    context = LayerContext(network=network)
    compute = compute or _whole_grid(grid)
    built = _Built()
    seen: dict[str, str] = {}
    for factor in factors:
        geometries = within_reach(grid, as_geometries(factor.features), distances[-1])
        if geometries.size == 0:
            why = (
                "has no features"
                if factor.n_features == 0
                else (f"has no feature within {distances[-1]:g} {grid.unit} of the study area")
            )
            warnings.warn(f"factor {factor.name!r} {why}: skipped", RTMWarning, stacklevel=2)
            built.skipped.append(factor.name)
            continue
        made = _factor_candidates(factor, geometries, distances, context, compute, built)
        _warn_duplicate(factor.name, made, seen)
        built.add(factor, made)
        if progress is not None:
            progress(f"factor {factor.name}: {geometries.size} features, {len(made)} candidates")
    return built.finish(grid)


def _whole_grid(grid: Grid) -> LayerComputer:
    def compute(
        op: Operationalization, geometries: np.ndarray, distances: list[float], context: Any
    ) -> np.ndarray:
        return op.raw(grid, geometries, distances, context)

    return compute


def _factor_candidates(
    factor: Factor,
    geometries: np.ndarray,
    distances: list[float],
    context: LayerContext,
    compute: LayerComputer,
    built: _Built,
) -> list[tuple[Candidate, np.ndarray]]:
    """Every candidate of one factor: (candidate, bool values), in column order."""
    made = []
    for op in resolve_operationalizations(factor.operationalization, context):
        raw = compute(op, geometries, distances, context)
        for position, distance in enumerate(distances):
            candidate = Candidate(factor.name, op.column, distance, factor.protective)
            binary, cut = op.binarize(op.row(raw, position), distance)
            if cut is not None:
                built.thresholds[candidate.name] = cut
            made.append((candidate, binary))
    return made


def _warn_duplicate(name: str, made: list[tuple[Candidate, np.ndarray]], seen: dict) -> None:
    """Warn when a factor's layers equal an earlier factor's (often one file given twice).

    Both stay candidates, and stepwise can never hold both (their columns are collinear).
    """
    signature = hashlib.sha256(b"".join(np.packbits(b).tobytes() for _, b in made)).hexdigest()
    if signature in seen:
        warnings.warn(
            f"factor {name!r} gives the same candidate layers as {seen[signature]!r} "
            "(the same features under two names?): at most one of them can enter the model",
            RTMWarning,
            stacklevel=3,
        )
    seen.setdefault(signature, name)


class _Built:
    """The columns kept so far, the candidates dropped, the factors skipped, the cuts."""

    def __init__(self) -> None:
        self.columns: list[np.ndarray] = []
        self.kept: list[Candidate] = []
        self.dropped: list[DroppedCandidate] = []
        self.skipped: list[str] = []
        self.thresholds: dict[str, float] = {}

    def add(self, factor: Factor, made: list[tuple[Candidate, np.ndarray]]) -> None:
        sign = -1 if factor.protective else 1
        for candidate, binary in made:
            ones = int(binary.sum())
            if ones == 0 or ones == binary.size:
                self.dropped.append(
                    DroppedCandidate(candidate, f"constant: {'every' if ones else 'no'} cell is 1")
                )
                continue
            self.kept.append(candidate)
            self.columns.append((binary.astype(np.int8) * sign).astype(np.int8))

    def finish(self, grid: Grid) -> CandidateSet:
        if not self.kept:
            raise InputError(
                "no usable candidate variable: every factor was empty or constant over the "
                "study area"
            )
        columns = self.columns
        stacked = np.empty((len(columns), columns[0].shape[0]), dtype=np.int8)
        for index in range(len(columns)):
            stacked[index] = columns[index]
            columns[index] = stacked[index]  # frees the column as it goes
        from rtm._kernels.design import transpose_int8  # numba: loaded when layers are built

        values = np.empty((stacked.shape[1], stacked.shape[0]), dtype=np.int8)
        transpose_int8(stacked, values)
        del stacked
        self.columns = []
        values.setflags(write=False)
        return CandidateSet(
            grid=grid,
            candidates=tuple(self.kept),
            values=values,
            dropped=tuple(self.dropped),
            skipped_factors=tuple(self.skipped),
            density_thresholds=self.thresholds,
        )
