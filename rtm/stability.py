"""Honest inference for a selected model: bootstrap selection stability and split-sample refits.

The p-values of the model table come from the same data that chose the model, so they
overstate significance. Two remedies (method section 7):

* :func:`bootstrap_selection` reruns the whole selection (culling + stepwise, with the
  model's settings and seed) on ``B`` resamples of the cells, and reports how often each
  factor and each candidate (factor, operationalization, distance) is chosen, and the
  bagged relative risk value of each factor with a percentile interval.

  Resampling schemes: ``"block"`` (the default) draws square blocks of cells with
  replacement (a spatial block bootstrap): neighbouring cells share unmeasured causes,
  so resampling them one by one pretends to more independent information than there is.
  ``"cells"`` draws single cells with replacement (the textbook bootstrap). A resample is
  expressed as frequency weights (how many times each cell was drawn), which every
  fitting routine accepts.

* :func:`split_sample` divides the cells into two halves made of whole spatial blocks
  (seeded), selects the model on one half and refits the selected model on the other:
  those p-values are valid (selection did not see the refit half).

The default block side is the largest spatial influence of the candidates (at least
three cells): the distance over which one feature shapes the candidate layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from rtm.checks import check_choice
from rtm.errors import FitError, ParameterError
from rtm.layers import CandidateSet
from rtm.selection import cull, fit_glm, select_model

__all__ = ["SCHEMES", "block_ids", "bootstrap_selection", "split_sample"]

Scheme = Literal["block", "cells"]
SCHEMES: tuple[Scheme, ...] = ("block", "cells")


def _default_block_size(candidates: CandidateSet) -> float:
    largest = max((c.spatial_influence for c in candidates.candidates), default=0.0)
    return max(float(largest), 3.0 * candidates.grid.cell_size)


def block_ids(
    candidates: CandidateSet, block_size: float | None = None
) -> tuple[np.ndarray, float]:
    """The spatial block of each active cell (square blocks of side ``block_size``)."""
    grid = candidates.grid
    size = _default_block_size(candidates) if block_size is None else float(block_size)
    if not (math.isfinite(size) and size > 0):
        raise ParameterError(f"block size must be a positive distance, got {block_size!r}")
    k = max(1, math.ceil(size / grid.cell_size - 1e-9))
    rows, cols = np.divmod(grid.active_index, grid.n_cols)
    blocks_per_row = math.ceil(grid.n_cols / k)
    raw = (rows // k) * blocks_per_row + cols // k
    _, ids = np.unique(raw, return_inverse=True)
    return ids.ravel().astype(np.int64), k * grid.cell_size


def _resample_weights(
    rng: np.random.Generator, scheme: Scheme, blocks: np.ndarray, n_cells: int
) -> np.ndarray:
    if scheme == "cells":
        return rng.multinomial(n_cells, np.full(n_cells, 1.0 / n_cells)).astype(np.float64)
    n_blocks = int(blocks.max()) + 1
    drawn = np.bincount(rng.integers(0, n_blocks, size=n_blocks), minlength=n_blocks)
    return drawn[blocks].astype(np.float64)


def _select(
    model: Any, values: np.ndarray, y: np.ndarray, groups: np.ndarray, w: np.ndarray | None
) -> Any:
    params = model.get_params()
    culled = cull(
        values,
        y,
        weights=w,
        l1_ratios=params["l1_ratios"],
        n_folds=params["n_folds"],
        rule=params["cv_rule"],
        standardize=params["standardize"],
        seed=int(params["seed"]),
    )
    return select_model(
        values,
        y,
        groups,
        weights=w,
        nb_form=params["nb_form"],
        alpha=float(params["alpha"]),
        candidates=culled.survivors,
    )


def bootstrap_selection(
    candidates: CandidateSet,
    counts: np.ndarray,
    *,
    model: Any,
    n_resamples: int = 100,
    scheme: Scheme = "block",
    block_size: float | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Selection stability over ``n_resamples`` bootstrap resamples of the cells.

    Parameters
    ----------
    candidates : CandidateSet
    counts : numpy.ndarray
        Events per active cell.
    model : RiskTerrainModel
        Its settings (l1 ratios, folds, CV rule, NB form, alpha, seed) drive each rerun.
    n_resamples : int
        ``B``.
    scheme : {"block", "cells"}
        Spatial block bootstrap (default) or single cells.
    block_size : float, optional
        Block side (CRS units); default the largest spatial influence (>= 3 cells).
    seed : int
        Seeds the resamples.

    Returns
    -------
    dict
        For the report: ``factors`` (frequency, bagged RRV and its 95% percentile
        interval; RRV 1 counts for resamples that left the factor out) and
        ``candidates`` (frequency of each factor:operationalization:distance).
    """
    scheme = check_choice("bootstrap scheme", scheme, SCHEMES)
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, int | np.integer)
        or n_resamples < 1
    ):
        raise ParameterError(f"--bootstrap must be a positive whole number, got {n_resamples!r}")
    y = np.asarray(counts, dtype=np.int64)
    blocks, side = block_ids(candidates, block_size)
    rng = np.random.default_rng(seed)
    groups = candidates.factor_ids
    names = candidates.names
    factor_names = list(dict.fromkeys(c.factor for c in candidates.candidates))
    coef = np.zeros((n_resamples, len(factor_names)))
    succeeded = np.zeros(n_resamples, dtype=bool)
    chosen_candidates = np.zeros(len(names), dtype=np.int64)
    for b in range(n_resamples):
        w = _resample_weights(rng, scheme, blocks, y.size)
        used = w > 0
        try:
            selection = _select(model, candidates.values[used], y[used], groups, w[used])
        except FitError:
            continue
        succeeded[b] = True
        best = selection.best
        for position, column in enumerate(best.selected, start=1):
            chosen_candidates[column] += 1
            coef[b, factor_names.index(candidates.candidates[column].factor)] = best.fit.coef[
                position
            ]
        if progress and (b + 1) % max(1, n_resamples // 5) == 0:
            progress(f"bootstrap: {b + 1} of {n_resamples} resamples")
    failed = int(n_resamples - succeeded.sum())
    factors = _factor_stability(factor_names, coef[succeeded])
    chosen = _candidate_frequencies(names, chosen_candidates, int(succeeded.sum()))
    return {
        "resamples": int(n_resamples),
        "failed_resamples": failed,
        "scheme": scheme,
        "block_size": side if scheme == "block" else None,
        "seed": int(seed),
        "method": (
            "culling and stepwise selection rerun on each resample with the model's settings; "
            + (
                "square blocks of cells drawn with replacement (spatial block bootstrap)"
                if scheme == "block"
                else "cells drawn with replacement"
            )
            + "; bagged RRV = exp(mean coefficient), 0 where the factor was not selected; "
            "interval: 2.5th and 97.5th percentiles of the per-resample RRV"
        ),
        "factors": factors,
        "candidates": chosen,
    }


def _factor_stability(factor_names: list[str], coef: np.ndarray) -> list[dict[str, Any]]:
    """Per factor, over the resamples that fitted (the rows of ``coef``).

    How often it was selected, its bagged RRV and the 95% percentile interval of its RRV.
    """
    done = coef.shape[0]
    if done == 0:
        return []
    factors = []
    for k, name in enumerate(factor_names):
        kept = coef[:, k]
        rrv = np.exp(kept)
        factors.append(
            {
                "name": name,
                "frequency": np.count_nonzero(kept) / done,
                "bagged_rrv": float(np.exp(kept.mean())),
                "rrv_interval": [float(np.percentile(rrv, 2.5)), float(np.percentile(rrv, 97.5))],
            }
        )
    factors.sort(key=lambda f: (-f["frequency"], f["name"]))
    return factors


def _candidate_frequencies(names: list[str], chosen: np.ndarray, done: int) -> list[dict[str, Any]]:
    """How often each factor:operationalization:distance was chosen, most often first."""
    if done == 0:
        return []
    order = sorted(np.flatnonzero(chosen), key=lambda j: (-int(chosen[j]), names[j]))
    return [{"candidate": names[j], "frequency": int(chosen[j]) / done} for j in order]


def split_sample(
    candidates: CandidateSet,
    counts: np.ndarray,
    *,
    model: Any,
    block_size: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Select on one half of the cells (whole spatial blocks), refit on the other half.

    Returns a dict for the report: the selection half's model and the refit's
    coefficients, RRVs, standard errors and p-values (valid: selection did not see them).
    """
    from rtm.model import MIN_EVENTS

    y = np.asarray(counts, dtype=np.int64)
    blocks, side = block_ids(candidates, block_size)
    rng = np.random.default_rng(seed)
    n_blocks = int(blocks.max()) + 1
    half_a = np.zeros(n_blocks, dtype=bool)
    half_a[rng.permutation(n_blocks)[: n_blocks // 2]] = True
    select_half = half_a[blocks]
    refit_half = ~select_half
    report: dict[str, Any] = {
        "method": (
            "cells split into two halves of whole square blocks (seeded); the model is selected "
            "on the selection half and refitted on the other: the refit's p-values are valid"
        ),
        "block_size": side,
        "seed": int(seed),
        "selection_cells": int(select_half.sum()),
        "refit_cells": int(refit_half.sum()),
        "selection_events": int(y[select_half].sum()),
        "refit_events": int(y[refit_half].sum()),
    }
    if min(report["selection_events"], report["refit_events"]) < MIN_EVENTS:
        report["status"] = f"not done: a half has fewer than {MIN_EVENTS} events"
        report["factors"] = []
        return report
    selection = _select(
        model, candidates.values[select_half], y[select_half], candidates.factor_ids, None
    )
    columns = list(selection.best.selected)
    report["distribution"] = selection.winner
    report["status"] = "done" if columns else "no factor selected on the selection half"
    report["factors"] = []
    if not columns:
        return report
    fit = fit_glm(
        candidates.values[refit_half][:, columns].astype(np.float64),
        y[refit_half],
        distribution=selection.winner,
    )
    for position, column in enumerate(columns, start=1):
        candidate = candidates.candidates[column]
        report["factors"].append(
            {
                "name": candidate.factor,
                "candidate": candidate.name,
                "coefficient": float(fit.coef[position]),
                "rrv": float(math.exp(fit.coef[position])),
                "standard_error": float(fit.se[position]),
                "p_value": float(fit.pvalues[position]),
            }
        )
    return report
