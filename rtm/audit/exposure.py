"""Exposure disparity: who lives in the places a run selects, against the whole area.

For each selection (the top 1/5/10/20% of cells by the surface, the risk tiers, the
layers of places.gpkg) and each population group:

* ``share_in_selected``: the group's share of the residents of the selected cells;
* ``share_in_area``: its share of the residents of the study area;
* ``ratio``: the first over the second (1 = exposed like everyone else; 2 = a group's
  members are twice as likely as the average resident to live in a selected place);
* ``ratio_ci``: a percentile bootstrap interval, resampling the population units
  (polygons) with replacement, so the interval reflects how much the ratio rests on a
  few units.

The groups are taken to partition the residents (shares are of their sum).

:func:`parity_selection` is the alternative (Wheeler 2020): the same number of cells,
chosen to maximise the total score subject to every group's ratio lying within
``1 +- tolerance``, solved as a linear programme (HiGHS) and rounded; the capture it
costs is reported beside it, so the trade-off is visible.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import optimize

from rtm.audit.population import Population

__all__ = ["disparity", "parity_selection"]


def _ratios(in_selected: np.ndarray, in_area: np.ndarray) -> np.ndarray:
    """Ratio of group shares; rows are resamples (or one row)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        selected_share = in_selected / in_selected.sum(axis=-1, keepdims=True)
        area_share = in_area / in_area.sum(axis=-1, keepdims=True)
        return selected_share / area_share


#: Bootstrap resamples drawn at a time (bounds memory: a chunk is CHUNK x units floats).
CHUNK = 100


def _intervals(
    population: Population, masks: dict[str, np.ndarray], n_boot: int, seed: int, level: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile intervals of every selection's ratios, resampling population units.

    Each resample weights the units by their multinomial counts (drawn with replacement);
    every selection sees the same resamples, drawn a chunk at a time.
    """
    nan = np.full(len(population.groups), np.nan)
    if not n_boot:
        return {name: (nan, nan) for name in masks}
    rng = np.random.default_rng(seed)
    units = population.n_units
    area_fraction = population.shares @ np.ones(population.shares.shape[1])
    fractions = {name: population.shares @ mask.astype(np.float64) for name, mask in masks.items()}
    draws: dict[str, list[np.ndarray]] = {name: [] for name in masks}
    for start in range(0, n_boot, CHUNK):
        size = min(CHUNK, n_boot - start)
        weights = rng.multinomial(units, np.full(units, 1.0 / units), size=size).astype(float)
        boot_area = (weights * area_fraction) @ population.counts
        for name, fraction in fractions.items():
            draws[name].append(_ratios((weights * fraction) @ population.counts, boot_area))
    tail = 100 * (1 - level) / 2
    out = {}
    for name, parts in draws.items():
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: an empty selection
            low, high = np.nanpercentile(np.vstack(parts), [tail, 100 - tail], axis=0)
        out[name] = (low, high)
    return out


def disparity(
    population: Population,
    selections: dict[str, np.ndarray],
    *,
    n_boot: int = 999,
    seed: int = 0,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    """Exposure of each group to each selection, with bootstrap intervals of the ratio.

    Parameters
    ----------
    population : Population
        Group counts apportioned to the run's cells.
    selections : dict
        Name -> boolean per active cell.
    n_boot : int
        Bootstrap resamples of the population units (0: no intervals).
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the intervals.

    Returns
    -------
    list of dict
        One row per selection and group: ``selection``, ``cells``, ``group``,
        ``residents_in_selected``, ``share_in_selected``, ``share_in_area``, ``ratio``,
        ``ratio_ci``, ``group_share_selected`` (share of the group living in the selection).
    """
    everywhere = np.ones(population.shares.shape[1], dtype=bool)
    in_area = population.in_cells(everywhere)
    masks = {name: np.asarray(selected, dtype=bool) for name, selected in selections.items()}
    intervals = _intervals(population, masks, n_boot, seed, level)
    rows = []
    for name, selected in masks.items():
        in_selected = population.in_cells(selected)
        ratio = _ratios(in_selected, in_area)
        low, high = intervals[name]
        total = float(in_selected.sum())
        for g, group in enumerate(population.groups):
            rows.append(
                {
                    "selection": name,
                    "cells": int(selected.sum()),
                    "group": group,
                    "residents_in_selected": float(in_selected[g]),
                    "share_in_selected": float(in_selected[g] / total) if total > 0 else None,
                    "share_in_area": float(in_area[g] / in_area.sum()),
                    "ratio": float(ratio[g]) if np.isfinite(ratio[g]) else None,
                    "ratio_ci": [float(low[g]), float(high[g])]
                    if np.isfinite(low[g]) and np.isfinite(high[g])
                    else None,
                    "group_share_selected": float(in_selected[g] / in_area[g])
                    if in_area[g] > 0
                    else None,
                }
            )
    return rows


def parity_selection(
    population: Population,
    scores: np.ndarray,
    n_cells: int,
    *,
    tolerance: float = 0.2,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``n_cells`` cells of highest total score with every group's ratio in ``1 +- tolerance``.

    Maximises the sum of ``scores`` over the chosen cells subject to, for each group g,
    ``(1 - t) s_g <= P_g(S) / P(S) <= (1 + t) s_g`` (s_g its share of the area's
    residents, P the residents of S), written linearly. The linear relaxation is solved
    with HiGHS; it has at most one fractional cell per constraint, and those are rounded
    by their value, so the ratios are met up to those few cells (the achieved ratios are
    reported, not assumed).

    Returns
    -------
    selected : ndarray of bool
        The alternative selection (all False when infeasible).
    info : dict
        ``feasible``, ``status``, ``tolerance``, ``fractional_cells``.
    """
    per_cell = population.per_cell()  # (n_cells, n_groups)
    total = per_cell.sum(axis=1)
    area_share = per_cell.sum(axis=0) / per_cell.sum()
    rows = []
    for g in range(per_cell.shape[1]):
        rows.append(per_cell[:, g] - (1 + tolerance) * area_share[g] * total)
        rows.append((1 - tolerance) * area_share[g] * total - per_cell[:, g])
    n = scores.size
    result = optimize.linprog(
        -np.asarray(scores, dtype=np.float64),
        A_ub=np.vstack(rows),
        b_ub=np.zeros(len(rows)),
        A_eq=np.ones((1, n)),
        b_eq=[float(n_cells)],
        bounds=(0.0, 1.0),
        method="highs",
    )
    info: dict[str, Any] = {"tolerance": tolerance, "status": result.message}
    if result.status != 0 or result.x is None:
        info.update(feasible=False, fractional_cells=0)
        return np.zeros(n, dtype=bool), info
    x = result.x
    order = np.lexsort((-np.asarray(scores), -x))  # by LP value, then score
    selected = np.zeros(n, dtype=bool)
    selected[order[:n_cells]] = True
    info.update(feasible=True, fractional_cells=int(((x > 1e-9) & (x < 1 - 1e-9)).sum()))
    return selected, info
