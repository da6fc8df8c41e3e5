"""The forecast's lift over the best baseline, with an interval (spatial block bootstrap).

The lift is the forecast's AUC (and capture@10%) minus that of the best baseline *on
the test period itself* (the best in hindsight: the hardest comparison). Its interval
comes from a spatial block bootstrap of the test cells: square blocks of cells (side
four block lengths, the top of the KDE ladder, so that blocks are about as large as the
spatial dependence the hot-spot maps smooth over) are resampled with replacement, both
surfaces are rescored on each resample (with the pro-rata tie rule and the half-credit
AUC of :mod:`rtm.validation.metrics`, cells weighted by how often they were drawn), and
the 2.5% and 97.5% percentiles of the differences are reported. Rolling-origin
windows (:mod:`rtm.validation.temporal`) give the other interval, where periods exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm.grid import Grid

__all__ = [
    "BOOTSTRAP_REPLICATES",
    "block_ids",
    "lift_report",
    "weighted_auc",
    "weighted_auc_many",
    "weighted_capture",
    "weighted_capture_many",
]

#: Resamples of the spatial block bootstrap.
BOOTSTRAP_REPLICATES = 200


def _groups(scores: NDArray[np.float64]) -> NDArray[np.int64]:
    """Tied-group index of each cell, 0 for the highest score."""
    _, group = np.unique(-scores, return_inverse=True)
    return np.asarray(group.ravel(), dtype=np.int64)


def weighted_capture(
    group: NDArray[np.int64],
    events: NDArray[np.float64],
    weights: NDArray[np.float64],
    share: float,
) -> float:
    """Capture at ``share`` of the (weighted) area, ties pro rata; ``group`` from the scores."""
    n_groups = int(group.max()) + 1
    cells = np.concatenate([[0.0], np.cumsum(np.bincount(group, weights, n_groups))])
    values = np.concatenate([[0.0], np.cumsum(np.bincount(group, weights * events, n_groups))])
    total = values[-1]
    return float(np.interp(share * cells[-1], cells, values) / total) if total > 0 else np.nan


def weighted_auc(
    group: NDArray[np.int64], events: NDArray[np.float64], weights: NDArray[np.float64]
) -> float:
    """AUC of "cell has an event", cells weighted, tied pairs counted one half."""
    n_groups = int(group.max()) + 1
    hit = events > 0
    pos = np.bincount(group, weights * hit, n_groups)[::-1]  # lowest score first
    neg = np.bincount(group, weights * ~hit, n_groups)[::-1]
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    p, n = pos.sum(), neg.sum()
    return float(np.sum(pos * (below + 0.5 * neg)) / (p * n)) if p > 0 and n > 0 else np.nan


def _by_group(group: NDArray[np.int64], values: NDArray, n_groups: int) -> NDArray[np.float64]:
    """Per row of ``values`` (resamples x cells), its sums per group (resamples x groups).

    One ``bincount`` over every row at once (bin ``row * n_groups + group``); each bin
    adds its cells in the same order as a ``bincount`` of the row alone, so the sums are
    the same bytes.
    """
    rows = values.shape[0]
    bins = (np.arange(rows, dtype=np.int64)[:, None] * n_groups + group[None, :]).ravel()
    sums = np.bincount(bins, np.asarray(values, dtype=np.float64).ravel(), rows * n_groups)
    return sums.reshape(rows, n_groups)


def weighted_capture_many(
    group: NDArray[np.int64], events: NDArray[np.float64], weights: NDArray, share: float
) -> NDArray[np.float64]:
    """:func:`weighted_capture` for each row of ``weights`` (resamples x cells)."""
    n_groups = int(group.max()) + 1
    zero = np.zeros((weights.shape[0], 1))
    cells = np.concatenate([zero, np.cumsum(_by_group(group, weights, n_groups), axis=1)], 1)
    values = np.concatenate(
        [zero, np.cumsum(_by_group(group, weights * events, n_groups), axis=1)], 1
    )
    out = np.full(weights.shape[0], np.nan)
    for r in range(weights.shape[0]):
        total = values[r, -1]
        if total > 0:
            out[r] = float(np.interp(share * cells[r, -1], cells[r], values[r]) / total)
    return out


def weighted_auc_many(
    group: NDArray[np.int64], events: NDArray[np.float64], weights: NDArray
) -> NDArray[np.float64]:
    """:func:`weighted_auc` for each row of ``weights`` (resamples x cells)."""
    n_groups = int(group.max()) + 1
    hit = events > 0
    pos = _by_group(group, weights * hit, n_groups)[:, ::-1]  # lowest score first
    neg = _by_group(group, weights * ~hit, n_groups)[:, ::-1]
    # sums and running sums along a row are those of the row alone (numpy reduces each
    # row with the same pairwise summation; the twin test checks the bytes)
    below = np.concatenate([np.zeros((neg.shape[0], 1)), np.cumsum(neg, axis=1)[:, :-1]], 1)
    p, n = pos.sum(axis=1), neg.sum(axis=1)
    area = np.sum(pos * (below + 0.5 * neg), axis=1)
    scored = (p > 0) & (n > 0)
    out = np.full(weights.shape[0], np.nan)
    out[scored] = area[scored] / (p[scored] * n[scored])
    return out


def block_ids(grid: Grid, side: float) -> NDArray[np.int64]:
    """The bootstrap block of each active cell (square blocks of ``side`` CRS units)."""
    per = max(1, int(round(side / grid.cell_size)))
    flat = np.asarray(grid.active_index, dtype=np.int64)
    row, col = flat // grid.n_cols, flat % grid.n_cols
    key = (row // per) * (grid.n_cols // per + 1) + col // per
    _, block = np.unique(key, return_inverse=True)
    return np.asarray(block.ravel(), dtype=np.int64)


def lift_report(
    grid: Grid,
    events: ArrayLike,
    forecast: ArrayLike,
    baselines: Mapping[str, ArrayLike],
    *,
    block_length: float,
    seed: int = 0,
    replicates: int = BOOTSTRAP_REPLICATES,
) -> dict[str, Any]:
    """The forecast's lift over the best baseline (in hindsight), with bootstrap intervals."""
    e = np.asarray(events, dtype=np.float64)
    ones = np.ones(e.size)
    groups = {name: _groups(np.asarray(v, dtype=np.float64)) for name, v in baselines.items()}
    mine = _groups(np.asarray(forecast, dtype=np.float64))
    metrics = {
        "auc": lambda g, w: weighted_auc(g, e, w),
        "capture@10%": lambda g, w: weighted_capture(g, e, w, 0.10),
    }
    # the same on every resample at once (the same bytes as one at a time)
    on_resamples = {
        "auc": lambda g, ws: weighted_auc_many(g, e, ws),
        "capture@10%": lambda g, ws: weighted_capture_many(g, e, ws, 0.10),
    }
    blocks = block_ids(grid, 4.0 * float(block_length))
    n_blocks = int(blocks.max()) + 1
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            np.bincount(rng.integers(0, n_blocks, n_blocks), minlength=n_blocks)[blocks]
            for _ in range(int(replicates))
        ]
    ).reshape(int(replicates), e.size)
    out: dict[str, Any] = {}
    for key, metric in metrics.items():
        scores = {name: metric(g, ones) for name, g in groups.items()}
        best = max(scores, key=lambda k: scores[k])
        value = metric(mine, ones)
        many = on_resamples[key]
        diffs = many(mine, draws) - many(groups[best], draws)
        low, high = np.nanpercentile(diffs, [2.5, 97.5])
        out[key] = {
            "forecast": value,
            "best_baseline": best,
            "baseline": scores[best],
            "lift": value - scores[best],
            "ci95": [float(low), float(high)],
        }
    out["interval"] = (
        f"spatial block bootstrap of the test cells: {int(replicates)} resamples of "
        f"{n_blocks} square blocks of side {4.0 * float(block_length):g} {grid.unit} "
        "(four block lengths), seeded; 2.5% and 97.5% percentiles of the lift"
    )
    out["best_baseline_rule"] = "the baseline with the best value on the test period itself"
    return out
