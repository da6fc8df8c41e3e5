"""Prior-period surfaces: event counts per cell and quartic kernel-density hot spots.

These are the baselines every risk model is compared with (a risk model is only useful
where it beats or complements them), and the source of the recent-crime *exposure*
covariate of :mod:`rtm.validation.models`.

Bandwidth rule
--------------
The kernel is the quartic (biweight) kernel ``K(r) = 3 / (pi h^2) (1 - r^2 / h^2)^2``
for ``r <= h`` (the hot-spot kernel of CrimeStat and ArcGIS), and ``h`` is its radius.
By default ``h = 2 x block length`` (:data:`KDE_BLOCKS`): the middle of RTM's
spatial-influence ladder (1 to 3 blocks), so that the hot-spot map smooths events over
the same scale at which the risk factors are allowed to act. The rule is fixed by the
method, not fitted to any city, and is recorded in every validation output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from rtm.errors import ParameterError
from rtm.grid import Grid

__all__ = [
    "KDE_BLOCKS",
    "LAG_BLOCKS",
    "LagSplit",
    "bandwidth_rule",
    "baseline_surfaces",
    "counts_in_cells",
    "default_bandwidth",
    "exposure_covariate",
    "lag_features",
    "lag_split",
    "quartic_density",
    "smoothed_counts",
]

#: Default quartic-kernel radius, in block lengths.
KDE_BLOCKS = 2.0

#: Radii (in block lengths) of the kernel-smoothed exposure features of the lagged
#: design: 1 and 2 blocks, the bottom and middle of RTM's 1-3 block influence ladder.
LAG_BLOCKS: tuple[float, ...] = (1.0, 2.0)


def default_bandwidth(block_length: float) -> float:
    """The default quartic-kernel radius: :data:`KDE_BLOCKS` block lengths."""
    if not block_length > 0:
        raise ParameterError(f"block_length must be positive, got {block_length!r}")
    return KDE_BLOCKS * float(block_length)


def bandwidth_rule(block_length: float, bandwidth: float, unit: str = "m") -> str:
    """The sentence that states the bandwidth in outputs."""
    if bandwidth == default_bandwidth(block_length):
        return (
            f"quartic kernel, radius {bandwidth:g} {unit} = {KDE_BLOCKS:g} x block length "
            f"({block_length:g} {unit}), the middle of the 1-3 block spatial-influence ladder"
        )
    return f"quartic kernel, radius {bandwidth:g} {unit} (set by the user)"


def quartic_density(
    grid: Grid, x: ArrayLike, y: ArrayLike, bandwidth: float
) -> NDArray[np.float64]:
    """Quartic kernel density of points at the active cell centres (points per unit area).

    Exact at every cell centre: each (point, cell) pair within the radius is summed.

    Parameters
    ----------
    grid : Grid
        The grid.
    x, y : array_like
        Point coordinates in the grid's CRS.
    bandwidth : float
        Kernel radius ``h`` (CRS units).

    Returns
    -------
    numpy.ndarray
        ``(n_active,)`` densities.
    """
    if not bandwidth > 0:
        raise ParameterError(f"bandwidth must be positive, got {bandwidth!r}")
    px = np.asarray(x, dtype=np.float64).ravel()
    py = np.asarray(y, dtype=np.float64).ravel()
    if px.shape != py.shape:
        raise ParameterError("x and y must have the same length")
    density = np.zeros(grid.n_active)
    if px.size == 0:
        return density
    cx, cy = grid.cell_centres()
    cells = cKDTree(np.column_stack([cx, cy]))
    points = cKDTree(np.column_stack([px, py]))
    pairs = points.sparse_distance_matrix(cells, float(bandwidth), output_type="ndarray")
    u2 = (pairs["v"] / bandwidth) ** 2
    weight = 3.0 / (np.pi * bandwidth**2) * (1.0 - u2) ** 2
    np.add.at(density, pairs["j"], weight)
    return density


def smoothed_counts(
    grid: Grid,
    x: ArrayLike,
    y: ArrayLike,
    bandwidth: float,
    *,
    exclude_own_cell: bool = False,
) -> NDArray[np.float64]:
    """Kernel-smoothed events per cell: the quartic density times the cell area.

    Over a large area its sum is about the number of events, so it reads as "recent
    events around this cell".

    Parameters
    ----------
    grid : Grid
        The grid.
    x, y : array_like
        Event coordinates in the grid's CRS.
    bandwidth : float
        Kernel radius.
    exclude_own_cell : bool
        Leave out each cell's own events (the exposure covariate of a model fitted to
        the same events must not contain the outcome it explains).
    """
    px = np.asarray(x, dtype=np.float64).ravel()
    py = np.asarray(y, dtype=np.float64).ravel()
    density = quartic_density(grid, px, py, bandwidth)
    if exclude_own_cell and px.size:
        cell = active_cell(grid, px, py)
        inside = cell >= 0
        cx, cy = grid.cell_centres()
        r2 = (px[inside] - cx[cell[inside]]) ** 2 + (py[inside] - cy[cell[inside]]) ** 2
        u2 = r2 / bandwidth**2
        own = np.where(u2 <= 1.0, 3.0 / (np.pi * bandwidth**2) * (1.0 - u2) ** 2, 0.0)
        np.subtract.at(density, cell[inside], own)
        np.maximum(density, 0.0, out=density)  # rounding only
    return density * grid.cell_size**2


def active_cell(grid: Grid, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int64]:
    """Active-cell index of each point, -1 outside the active cells."""
    row, col = grid.cell_of(x, y)
    ok = (row >= 0) & (row < grid.n_rows) & (col >= 0) & (col < grid.n_cols)
    lookup = np.full(grid.n_rows * grid.n_cols, -1, dtype=np.int64)
    lookup[grid.active_index] = np.arange(grid.n_active)
    cell = np.full(x.shape, -1, dtype=np.int64)
    cell[ok] = lookup[row[ok] * grid.n_cols + col[ok]]
    return cell


def counts_in_cells(grid: Grid, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.int64], int]:
    """Events per active cell, and how many points fall outside the active cells."""
    px = np.asarray(x, dtype=np.float64).ravel()
    py = np.asarray(y, dtype=np.float64).ravel()
    cell = active_cell(grid, px, py)
    inside = cell >= 0
    counts = np.bincount(cell[inside], minlength=grid.n_active).astype(np.int64)
    return counts, int((~inside).sum())


def exposure_covariate(smoothed: ArrayLike) -> NDArray[np.float64]:
    """The recent-crime exposure covariate: ``log(1 + smoothed prior events per cell)``.

    The log makes its coefficient an elasticity: the risk model's expected count grows
    as ``(1 + smoothed)^gamma``, so exposure multiplies, not replaces, the environment.
    """
    values = np.asarray(smoothed, dtype=np.float64)
    if np.any(values < 0):
        raise ParameterError("smoothed prior events must be non-negative")
    return np.log1p(values)


# --------------------------------------------------------------------------- lagged design


@dataclass(frozen=True)
class LagSplit:
    """How a fit period is split for the lagged (forecasting) design.

    Attributes
    ----------
    earlier : tuple of int
        Periods the fitting features are computed from.
    later : tuple of int
        Periods whose events are the fitting outcome.
    recent : tuple of int
        The last ``len(earlier)`` periods of the fit period: the prediction features.
    """

    earlier: tuple[int, ...]
    later: tuple[int, ...]
    recent: tuple[int, ...]

    @property
    def lag(self) -> int:
        """Length (in periods) of the feature windows."""
        return len(self.earlier)

    def describe(self) -> str:
        """The split in words."""
        return (
            f"features from periods {_span(self.earlier)} -> outcome periods "
            f"{_span(self.later)}; prediction features from periods {_span(self.recent)} "
            f"(the last {self.lag} of the fit period)"
        )


def _span(periods: tuple[int, ...]) -> str:
    return f"{periods[0]}-{periods[-1]}" if len(periods) > 1 else f"{periods[0]}"


def lag_split(periods: ArrayLike, *, parts: int = 2) -> LagSplit | None:
    """Split the fit period's span into feature and outcome windows.

    Rule (fixed by the design, not by any city): the span ``first..last`` of the fit
    periods (gaps count as periods) is cut so that the feature window is the first
    ``n // parts`` periods and the outcome window the rest; the prediction features come
    from the last ``n // parts`` periods, so fitting and prediction features cover
    windows of the same length. ``parts=2`` is the main design (first half -> second
    half); ``parts=3`` is the inner validation's (first third -> second third, scored on
    the last third).

    Returns None when the span is too short (fewer than ``parts`` periods).
    """
    values = np.asarray(periods, dtype=np.int64).ravel()
    if values.size == 0:
        return None
    first, last = int(values.min()), int(values.max())
    n = last - first + 1
    if n < parts:
        return None
    lag = n // parts
    return LagSplit(
        earlier=tuple(range(first, first + lag)),
        later=tuple(range(first + lag, last + 1)),
        recent=tuple(range(last - lag + 1, last + 1)),
    )


def lag_features(
    grid: Grid,
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_periods: int,
    block_length: float,
    blocks: tuple[float, ...] = LAG_BLOCKS,
) -> dict[str, NDArray[np.float64]]:
    """Recent-crime features of one window, in events per period per cell.

    ``own_cell`` is the window's events in the cell itself; ``ring_<r>`` is the events
    around it kernel-smoothed with the quartic kernel of radius ``r = b x block length``
    (see :func:`smoothed_counts`), the cell's own events left out so the two features
    do not repeat each other. Dividing by the window's length in periods keeps
    features of windows of different lengths on the same scale.

    Parameters
    ----------
    grid : Grid
        The grid.
    x, y : array_like
        The window's events.
    n_periods : int
        Length of the window in periods.
    block_length : float
        The study's block length.
    blocks : tuple of float
        Kernel radii in block lengths (default :data:`LAG_BLOCKS`).
    """
    if int(n_periods) < 1:
        raise ParameterError(f"n_periods must be at least 1, got {n_periods!r}")
    if not block_length > 0:
        raise ParameterError(f"block_length must be positive, got {block_length!r}")
    scale = 1.0 / int(n_periods)
    own, _ = counts_in_cells(grid, x, y)
    features = {"own_cell": own.astype(np.float64) * scale}
    for b in blocks:
        radius = float(b) * float(block_length)
        features[f"ring_{radius:g}"] = (
            smoothed_counts(grid, x, y, radius, exclude_own_cell=True) * scale
        )
    return features


def baseline_surfaces(
    grid: Grid,
    train_counts: ArrayLike,
    train_x: ArrayLike,
    train_y: ArrayLike,
    *,
    bandwidth: float,
) -> dict[str, NDArray[np.float64]]:
    """The prior-period baselines: counts per cell and the quartic kernel density."""
    return {
        "prior_counts": np.asarray(train_counts, dtype=np.float64),
        "prior_kde": quartic_density(grid, train_x, train_y, bandwidth),
    }
