"""Risk-factor layers on a grid: proximity, density, the spatial-influence ladder, candidates.

For each factor and each spatial influence ``d`` on the ladder (``k x block length``),
rtm builds binary candidate variables over the active cells:

* **proximity(d)**: 1 where the cell centre is within Euclidean distance ``d`` of the
  nearest feature (exact distance to points, to line segments, and 0 inside polygons);
* **density(d)**: the Epanechnikov kernel density of the features with radius ``d``,
  evaluated exactly at cell centres, then 1 where it is at least mean + 2 SD of the
  density over the active cells (sample SD, ``ddof=1``, as R's ``sd``).

Protective factors are coded 0/-1 so that every admissible coefficient is positive.
Candidates that are constant over the study area carry no information: they are
dropped and reported.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine

from rtm._kernels.design import transpose_int8
from rtm._kernels.spatial import epanechnikov_density, min_sq_distance_to_segments
from rtm.errors import InputError, ParameterError, RTMWarning
from rtm.grid import Grid

if TYPE_CHECKING:
    from rtm.network import StreetNetwork

__all__ = [
    "Candidate",
    "CandidateSet",
    "DroppedCandidate",
    "Factor",
    "Increment",
    "Operationalization",
    "build_candidates",
    "kernel_density",
    "nearest_distance",
    "resolve_operationalizations",
    "spatial_influences",
]

#: ``(geometries, reach, distances) -> (nearest distance, densities)`` over active cells.
RawLayers = Callable[[np.ndarray, float, list[float]], tuple[np.ndarray, np.ndarray]]

Operationalization = Literal["proximity", "density"]
OperationalizationChoice = Literal["both", "proximity", "density"]
Increment = Literal["whole", "half"]

_OPERATIONALIZATIONS: dict[str, tuple[Operationalization, ...]] = {
    "both": ("proximity", "density"),
    "proximity": ("proximity",),
    "density": ("density",),
}

#: The largest ``max_blocks`` accepted (RTMDx allows 4; larger ladders get slow and vague).
MAX_BLOCKS = 20


def resolve_operationalizations(choice: str) -> tuple[Operationalization, ...]:
    """Map ``"both" | "proximity" | "density"`` to the operationalizations it means."""
    try:
        return _OPERATIONALIZATIONS[choice]
    except KeyError:
        valid = ", ".join(repr(k) for k in _OPERATIONALIZATIONS)
        raise ParameterError(f"operationalization must be one of {valid}; got {choice!r}") from None


def spatial_influences(
    block_length: float, max_blocks: int = 3, increment: Increment = "whole"
) -> tuple[float, ...]:
    """The spatial-influence ladder: ``k x block_length``.

    Parameters
    ----------
    block_length : float
        Average street-block length, in CRS units.
    max_blocks : int
        Largest multiple of the block length (default 3).
    increment : {"whole", "half"}
        Steps of one block (1, 2, 3) or half a block (0.5, 1, 1.5, ...).

    Examples
    --------
    >>> spatial_influences(200)
    (200.0, 400.0, 600.0)
    >>> spatial_influences(100, max_blocks=2, increment="half")
    (50.0, 100.0, 150.0, 200.0)
    """
    if not (isinstance(block_length, int | float) and math.isfinite(block_length)) or (
        block_length <= 0
    ):
        raise ParameterError(f"block length must be a positive distance, got {block_length!r}")
    if not isinstance(max_blocks, int) or not 1 <= max_blocks <= MAX_BLOCKS:
        raise ParameterError(
            f"max blocks must be a whole number 1..{MAX_BLOCKS}, got {max_blocks!r}"
        )
    if increment not in get_args(Increment):
        raise ParameterError(f"increment must be one of 'whole', 'half'; got {increment!r}")
    step = 1.0 if increment == "whole" else 0.5
    count = int(round(max_blocks / step))
    return tuple(float(block_length) * step * k for k in range(1, count + 1))


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
    operationalization : {"both", "proximity", "density"}
        Which candidate variables to build.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> Factor("pubs", gpd.GeoSeries(shapely.points([[120, 130]]), crs="EPSG:27700"))
    Factor(name='pubs', protective=False, operationalization='both')
    """

    name: str
    features: gpd.GeoDataFrame | gpd.GeoSeries = field(repr=False)
    protective: bool = False
    operationalization: OperationalizationChoice = "both"

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
    operationalization: Operationalization
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
        The mean + 2 SD cut per density candidate name.
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


# --------------------------------------------------------------------------- geometry prep


def _segments(geometries: np.ndarray) -> tuple[np.ndarray, ...]:
    """Endpoints of every segment of lines and polygon rings; points as zero-length segments."""
    parts = shapely.get_parts(geometries)
    kind = shapely.get_type_id(parts)
    points = parts[kind == 0]
    px, py = shapely.get_x(points), shapely.get_y(points)
    lines = parts[(kind == 1) | (kind == 2)]
    polygons = parts[kind == 3]
    if polygons.size:
        rings = shapely.get_parts(shapely.boundary(polygons))
        lines = np.concatenate([lines, rings])
    ax, ay, bx, by = [px], [py], [px], [py]
    if lines.size:
        coords, index = shapely.get_coordinates(lines, return_index=True)
        same = index[1:] == index[:-1]
        ax.append(coords[:-1, 0][same])
        ay.append(coords[:-1, 1][same])
        bx.append(coords[1:, 0][same])
        by.append(coords[1:, 1][same])
        single = np.bincount(index, minlength=lines.size) == 1  # degenerate one-point lines
        if single.any():
            lone = coords[np.isin(index, np.flatnonzero(single))]
            for target, values in (
                (ax, lone[:, 0]),
                (ay, lone[:, 1]),
                (bx, lone[:, 0]),
                (by, lone[:, 1]),
            ):
                target.append(values)
    return tuple(
        np.ascontiguousarray(np.concatenate(v), dtype=np.float64) for v in (ax, ay, bx, by)
    )


def _polygon_parts(geometries: np.ndarray) -> np.ndarray:
    parts = shapely.get_parts(geometries)
    return parts[shapely.get_type_id(parts) == 3]


def _weighted_points(
    geometries: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points standing for the features in a density.

    Points weigh 1; lines and polygons are sampled every ``spacing`` and weigh the length
    or area each sample stands for.
    """
    parts = shapely.get_parts(geometries)
    kind = shapely.get_type_id(parts)
    xs = [shapely.get_x(parts[kind == 0])]
    ys = [shapely.get_y(parts[kind == 0])]
    ws = [np.ones(int((kind == 0).sum()))]
    lines = parts[(kind == 1) | (kind == 2)]
    if lines.size:
        dense = shapely.segmentize(lines, spacing)
        coords, index = shapely.get_coordinates(dense, return_index=True)
        same = index[1:] == index[:-1]
        a, b = coords[:-1][same], coords[1:][same]
        xs.append((a[:, 0] + b[:, 0]) / 2)
        ys.append((a[:, 1] + b[:, 1]) / 2)
        ws.append(np.hypot(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]))
    for polygon in parts[kind == 3]:
        minx, miny, maxx, maxy = polygon.bounds
        gx = np.arange(minx + spacing / 2, maxx, spacing)
        gy = np.arange(miny + spacing / 2, maxy, spacing)
        mx, my = np.meshgrid(gx, gy)
        inside = shapely.contains_xy(polygon, mx.ravel(), my.ravel())
        if inside.any():
            xs.append(mx.ravel()[inside])
            ys.append(my.ravel()[inside])
            ws.append(np.full(int(inside.sum()), polygon.area / inside.sum()))
        else:  # smaller than the sampling step
            point = polygon.representative_point()
            xs.append(np.array([point.x]))
            ys.append(np.array([point.y]))
            ws.append(np.array([polygon.area]))
    return tuple(np.ascontiguousarray(np.concatenate(v), dtype=np.float64) for v in (xs, ys, ws))  # type: ignore[return-value]


def _geometries(features: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray) -> np.ndarray:
    if isinstance(features, gpd.GeoDataFrame | gpd.GeoSeries):
        return np.asarray(features.geometry.values)
    return np.asarray(features)


# --------------------------------------------------------------------------- layers


def nearest_distance(
    grid: Grid,
    features: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray,
    reach: float,
    *,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Exact Euclidean distance from each active cell centre to the nearest feature.

    Parameters
    ----------
    grid : Grid
        The grid.
    features : GeoDataFrame, GeoSeries or array of geometries
        Points, lines or polygons in the grid's CRS (inside a polygon the distance is 0).
    reach : float
        Distances beyond ``reach`` are reported as ``inf`` (the kernel visits only
        cells within reach of a feature).
    rows : (int, int), optional
        Only the grid rows ``rows[0]`` to ``rows[1] - 1`` (a chunk); the values are
        those the whole grid would give.

    Returns
    -------
    numpy.ndarray
        ``(n_active,)`` float64 distances (of the chunk's active cells with ``rows``).
    """
    geometries = _geometries(features)
    row0, row1 = rows if rows is not None else (0, grid.n_rows)
    sq = np.full((row1 - row0, grid.n_cols), np.inf)
    if geometries.size:
        ax, ay, bx, by = _segments(geometries)
        min_sq_distance_to_segments(
            ax,
            ay,
            bx,
            by,
            grid.x_min,
            grid.y_max,
            grid.cell_size,
            row0,
            row1 - row0,
            grid.n_cols,
            float(reach),
            sq,
        )
        polygons = _polygon_parts(geometries)
        if polygons.size:
            from rasterio import features as rio_features

            inside = rio_features.rasterize(
                [(p, 1) for p in polygons],
                out_shape=sq.shape,
                transform=grid.transform * Affine.translation(0, row0),
                fill=0,
                dtype="uint8",
            ).astype(bool)
            sq[inside] = 0.0
    distance = np.sqrt(sq[grid.mask[row0:row1]])
    distance[distance > reach] = np.inf
    return distance


def kernel_density(
    grid: Grid,
    features: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray,
    bandwidths: Sequence[float],
    *,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Epanechnikov kernel density at the active cell centres, for each bandwidth.

    ``K(r) = 2 / (pi h^2) * (1 - r^2 / h^2)`` for ``r <= h``: the bandwidth is the
    kernel's radius (as in ArcGIS), not a standard deviation. Lines and polygons are
    sampled every quarter cell and weighted by the length or area each sample stands for.
    With ``rows``, only those grid rows (a chunk), as in :func:`nearest_distance`.

    Returns
    -------
    numpy.ndarray
        ``(len(bandwidths), n_active)`` float64 densities (features per unit area).
    """
    geometries = _geometries(features)
    widths = np.ascontiguousarray(bandwidths, dtype=np.float64)
    row0, row1 = rows if rows is not None else (0, grid.n_rows)
    active = grid.mask[row0:row1]
    index = np.full(active.shape, -1, dtype=np.int64)
    index[active] = np.arange(int(active.sum()))
    out = np.zeros((widths.size, int(active.sum())))
    if geometries.size and widths.size:
        px, py, weight = _weighted_points(geometries, grid.cell_size / 4)
        epanechnikov_density(
            px,
            py,
            weight,
            grid.x_min,
            grid.y_max,
            grid.cell_size,
            row0,
            row1 - row0,
            grid.n_cols,
            widths,
            index,
            out,
        )
    return out


def binarize_density(density: np.ndarray) -> tuple[np.ndarray, float]:
    """1 where ``density >= mean + 2 SD`` over the given (active) cells; SD with ddof=1."""
    mean = float(density.mean())
    sd = float(density.std(ddof=1)) if density.size > 1 else 0.0
    threshold = mean + 2.0 * sd
    return density >= threshold, threshold


def _within_reach(grid: Grid, geometries: np.ndarray, reach: float) -> np.ndarray:
    minx, miny, maxx, maxy = grid.bounds
    window = shapely.box(minx - reach, miny - reach, maxx + reach, maxy + reach)
    return geometries[shapely.intersects(window, geometries)]


def build_candidates(
    grid: Grid,
    factors: Iterable[Factor],
    influences: Sequence[float],
    *,
    progress: Callable[[str], None] | None = None,
    network: StreetNetwork | None = None,
    raw_layers: RawLayers | None = None,
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
    network : rtm.network.StreetNetwork, optional
        Measure proximity along this street network instead of in straight lines
        (density stays Euclidean); see :mod:`rtm.network` for the approximation.
    raw_layers : callable, optional
        Computes a factor's raw layers, ``raw_layers(geometries, reach, distances)
        -> (nearest distance, densities)`` over the active cells; by default
        :func:`nearest_distance` and :func:`kernel_density` on the whole grid
        (:func:`rtm.distributed.chunked_layers` computes them in chunks).

    Returns
    -------
    CandidateSet
        Columns ordered by factor, then operationalization (proximity first), then distance.

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
    reach = distances[-1]
    columns: list[np.ndarray] = []
    kept: list[Candidate] = []
    dropped: list[DroppedCandidate] = []
    skipped: list[str] = []
    thresholds: dict[str, float] = {}
    seen: dict[str, str] = {}
    for factor in factors:
        geometries = _within_reach(grid, _geometries(factor.features), reach)
        if geometries.size == 0:
            why = (
                "has no features"
                if factor.n_features == 0
                else (f"has no feature within {reach:g} {grid.unit} of the study area")
            )
            warnings.warn(f"factor {factor.name!r} {why}: skipped", RTMWarning, stacklevel=2)
            skipped.append(factor.name)
            continue
        sign = -1 if factor.protective else 1
        ops = resolve_operationalizations(factor.operationalization)
        made: list[tuple[Candidate, np.ndarray]] = []
        raw_distance = raw_density = None
        if raw_layers is not None and network is None:
            raw_distance, raw_density = raw_layers(geometries, reach, distances)
        if "proximity" in ops:
            if raw_distance is not None:
                distance = raw_distance
            elif network is None:
                distance = nearest_distance(grid, geometries, reach)
            else:
                distance = network.distance(grid, geometries, reach)
            for d in distances:
                made.append(
                    (Candidate(factor.name, "proximity", d, factor.protective), distance <= d)
                )
        if "density" in ops:
            densities = (
                raw_density
                if raw_density is not None
                else kernel_density(grid, geometries, distances)
            )
            for d, density in zip(distances, densities, strict=True):
                candidate = Candidate(factor.name, "density", d, factor.protective)
                binary, thresholds[candidate.name] = binarize_density(density)
                made.append((candidate, binary))
        signature = hashlib.sha256(b"".join(np.packbits(b).tobytes() for _, b in made)).hexdigest()
        if signature in seen:
            # Same layers under two names (often one file given twice): both stay
            # candidates, and stepwise can never hold both (their columns are collinear).
            warnings.warn(
                f"factor {factor.name!r} gives the same candidate layers as {seen[signature]!r} "
                "(the same features under two names?): at most one of them can enter the model",
                RTMWarning,
                stacklevel=2,
            )
        seen.setdefault(signature, factor.name)
        for candidate, binary in made:
            ones = int(binary.sum())
            if ones == 0 or ones == binary.size:
                dropped.append(
                    DroppedCandidate(candidate, f"constant: {'every' if ones else 'no'} cell is 1")
                )
                continue
            kept.append(candidate)
            columns.append((binary.astype(np.int8) * sign).astype(np.int8))
        if progress is not None:
            progress(f"factor {factor.name}: {geometries.size} features, {len(made)} candidates")
    if not kept:
        raise InputError(
            "no usable candidate variable: every factor was empty or constant over the study area"
        )
    stacked = np.empty((len(columns), columns[0].shape[0]), dtype=np.int8)
    for index in range(len(columns)):
        stacked[index] = columns[index]
        columns[index] = stacked[index]  # frees the column as it goes
    values = np.empty((stacked.shape[1], stacked.shape[0]), dtype=np.int8)
    transpose_int8(stacked, values)
    del stacked, columns
    values.setflags(write=False)
    return CandidateSet(
        grid=grid,
        candidates=tuple(kept),
        values=values,
        dropped=tuple(dropped),
        skipped_factors=tuple(skipped),
        density_thresholds=thresholds,
    )
