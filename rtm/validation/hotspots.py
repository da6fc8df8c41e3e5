"""Hot-spot baselines: kernel density at a ladder of radii, and prospective hot-spotting.

KDE ladder
    The quartic kernel of :func:`rtm.validation.baselines.quartic_density` at radii of
    half a block to four blocks (:data:`LADDER_BLOCKS`). Which radius forecasts best
    differs between cities and crimes; the inner validation
    (:mod:`rtm.validation.forecast`) picks one inside the fit period, and the fixed
    two-block radius is reported beside it.
Prospective hot-spotting
    Bowers, Johnson & Pease (2004): recent events count more, and near ones more than
    far ones. Each fit-period event is weighted ``1 / (1 + age)`` where ``age`` is the
    number of periods between its period and the last period of the fit window, then
    smoothed with the quartic kernel at one and two blocks. It needs the events'
    periods (months or dates).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from rtm.errors import ParameterError
from rtm.grid import Grid

__all__ = [
    "LADDER_BLOCKS",
    "PROMAP_BLOCKS",
    "kde_ladder",
    "kde_name",
    "prospective_hotspots",
    "weighted_quartic_density",
]

#: Radii of the KDE ladder, in block lengths: half a block to four blocks.
LADDER_BLOCKS: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0)

#: Radii of prospective hot-spotting, in block lengths.
PROMAP_BLOCKS: tuple[float, ...] = (1.0, 2.0)


def kde_name(blocks: float) -> str:
    """The surface name of the KDE at ``blocks`` block lengths (``kde_2b``)."""
    return f"kde_{blocks:g}b"


def weighted_quartic_density(
    grid: Grid,
    x: ArrayLike,
    y: ArrayLike,
    bandwidth: float,
    weights: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Quartic kernel density of weighted points at the active cell centres.

    With ``weights=None`` it equals :func:`rtm.validation.baselines.quartic_density`.
    """
    if not bandwidth > 0:
        raise ParameterError(f"bandwidth must be positive, got {bandwidth!r}")
    px = np.asarray(x, dtype=np.float64).ravel()
    py = np.asarray(y, dtype=np.float64).ravel()
    w = np.ones(px.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if px.shape != py.shape or w.shape != px.shape:
        raise ParameterError("x, y and weights must have the same length")
    density = np.zeros(grid.n_active)
    if px.size == 0:
        return density
    cx, cy = grid.cell_centres()
    cells = cKDTree(np.column_stack([cx, cy]))
    points = cKDTree(np.column_stack([px, py]))
    pairs = points.sparse_distance_matrix(cells, float(bandwidth), output_type="ndarray")
    u2 = (pairs["v"] / bandwidth) ** 2
    kernel = 3.0 / (np.pi * bandwidth**2) * (1.0 - u2) ** 2
    np.add.at(density, pairs["j"], kernel * w[pairs["i"]])
    return density


def kde_ladder(
    grid: Grid,
    x: ArrayLike,
    y: ArrayLike,
    block_length: float,
    blocks: tuple[float, ...] = LADDER_BLOCKS,
) -> dict[str, NDArray[np.float64]]:
    """The KDE at each radius of the ladder, by :func:`kde_name`.

    The (point, cell) pairs are found once at the largest radius and reused.
    """
    px = np.asarray(x, dtype=np.float64).ravel()
    py = np.asarray(y, dtype=np.float64).ravel()
    out = {kde_name(b): np.zeros(grid.n_active) for b in blocks}
    if px.size == 0:
        return out
    top = max(blocks) * float(block_length)
    cx, cy = grid.cell_centres()
    pairs = cKDTree(np.column_stack([px, py])).sparse_distance_matrix(
        cKDTree(np.column_stack([cx, cy])), top, output_type="ndarray"
    )
    for b in blocks:
        h = float(b) * float(block_length)
        near = pairs["v"] <= h
        u2 = (pairs["v"][near] / h) ** 2
        out[kde_name(b)] = np.asarray(
            np.bincount(
                pairs["j"][near],
                weights=3.0 / (np.pi * h**2) * (1.0 - u2) ** 2,
                minlength=grid.n_active,
            ),
            dtype=np.float64,
        )
    return out


def prospective_hotspots(
    grid: Grid,
    x: ArrayLike,
    y: ArrayLike,
    periods: ArrayLike,
    *,
    last_period: int,
    block_length: float,
    blocks: tuple[float, ...] = PROMAP_BLOCKS,
) -> dict[str, NDArray[np.float64]]:
    """Prospective hot-spot surfaces: events weighted ``1 / (1 + age)``, kernel-smoothed.

    ``age = last_period - period`` (0 for the last period of the fit window).
    """
    age = np.clip(int(last_period) - np.asarray(periods, dtype=np.float64).ravel(), 0, None)
    weights = 1.0 / (1.0 + age)
    return {
        f"promap_{b:g}b": weighted_quartic_density(grid, x, y, float(b) * block_length, weights)
        for b in blocks
    }
