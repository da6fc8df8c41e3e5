"""Score the top patrol places against the KDE baseline's top spots of the same size.

A patrol team works N spots, not a share of the city. The run's top N patrol places
(:mod:`rtm.places.patrol`, recomputed from the fitted surface: windows of the patrol
size seeded by highest-tier cells, ranked by the surface, equal scores by training
events) are compared with the top N spots of the prior-period kernel density, chosen by
the same greedy rule (windows of the same size, at least a spot apart). For each: the
test events (and, with a harm table, the test harm) captured, their share of the total,
and per hectare.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtm.places.patrol import choose_windows, patrol_places, position_raster
from rtm.places.tiers import assign_tiers
from rtm.spec_values import DEFAULT_PATROL_SIZE

__all__ = ["TOP_COUNTS", "score_patrol_places"]

#: Numbers of top places scored.
TOP_COUNTS = (10, 20)


def _test_harm(test: Any, grid: Any, table: str | None) -> NDArray[np.float64] | None:
    """Harm of the test events per cell from the run's harm table (None without one)."""
    if table is None or test.frame is None:
        return None
    from rtm.harm import harm_weights, read_harm_table

    weights = harm_weights(test.frame, read_harm_table(table), what="test events")
    x, y = test.frame.geometry.x.to_numpy(), test.frame.geometry.y.to_numpy()
    row, col = grid.cell_of(x, y)
    ok = (row >= 0) & (row < grid.n_rows) & (col >= 0) & (col < grid.n_cols)
    position = np.full(grid.n_rows * grid.n_cols, -1)
    position[grid.active_index] = np.arange(grid.n_active)
    cell = position[row[ok] * grid.n_cols + col[ok]]
    keep = cell >= 0
    harm = np.bincount(cell[keep], weights=weights[ok][keep], minlength=grid.n_active)
    return harm.astype(np.float64)


def _capture(
    cells: NDArray[np.int64], counts: NDArray[Any], harm: NDArray[Any] | None, cell_area: float
) -> dict[str, Any]:
    hectares = cells.size * cell_area / 10_000
    events = float(np.asarray(counts)[cells].sum())
    total = float(np.sum(counts))
    out: dict[str, Any] = {
        "cells": int(cells.size),
        "hectares": hectares,
        "events": events,
        "event_share": events / total if total else 0.0,
        "events_per_ha": events / hectares if hectares else 0.0,
    }
    if harm is not None:
        captured = float(harm[cells].sum())
        out["harm"] = captured
        out["harm_share"] = captured / float(harm.sum()) if harm.sum() else 0.0
        out["harm_per_ha"] = captured / hectares if hectares else 0.0
    return out


def score_patrol_places(
    fitted: Any,
    test: Any,
    kde: NDArray[np.float64],
    *,
    size: float | None = None,
    harm_table: str | None = None,
    top_counts: tuple[int, ...] = TOP_COUNTS,
) -> dict[str, Any]:
    """Test events (and harm) captured by the top N patrol places and the top N KDE spots.

    Parameters
    ----------
    fitted : FittedSurface
    test : TestEvents
    kde : numpy.ndarray
        The prior-period kernel density per active cell (the baseline's surface).
    size : float, optional
        The patrol size (default: the run's, else 150 m).
    harm_table : str, optional
        The run's harm table: the test harm is scored too.
    top_counts : tuple of int
        The numbers of top places scored (a number with no places enough is left out for
        the side that has too few).
    """
    grid = fitted.grid
    size = float(size or fitted.extra.get("patrol_size") or DEFAULT_PATROL_SIZE)
    size = max(size, grid.cell_size)
    counts = np.asarray(test.counts, dtype=np.float64)
    harm = _test_harm(test, grid, harm_table)
    tiers = assign_tiers(fitted.rrs, fitted.train_counts, grid.cell_size**2)
    top = max(top_counts)
    ours = patrol_places(
        grid,
        fitted.rrs,
        tiers.cell_rank == 1,
        size=size,
        counts=fitted.train_counts,
        max_places=top,
    )
    k = ours.window_cells
    position = position_raster(grid)
    density = np.asarray(kde, dtype=np.float64)
    windows = choose_windows(
        grid.to_raster(density, nodata=0.0), grid.to_raster(density > 0, nodata=False), k, top
    )
    spots = []
    for row, col in windows:
        cells = position[row : row + k, col : col + k].ravel()
        spots.append(cells[cells >= 0])
    results = []
    for n in top_counts:
        item: dict[str, Any] = {"places": n}
        if len(ours.places) >= n:
            cells = np.unique(np.concatenate([p.cell_positions for p in ours.places[:n]]))
            item["rtm"] = _capture(cells, counts, harm, grid.cell_size**2)
        if len(spots) >= n:
            item["prior_kde"] = _capture(
                np.unique(np.concatenate(spots[:n])), counts, harm, grid.cell_size**2
            )
        if len(item) > 1:
            results.append(item)
    return {
        "definition": f"the top N patrol places ({k} x {k} cells, at most {size:g} "
        f"{grid.unit} across) of the RTM surface and the top N spots of the same size of the "
        "prior-period kernel density (same greedy rule), scored on the test events",
        "size": size,
        "harm_table": harm_table,
        "top": results,
    }
