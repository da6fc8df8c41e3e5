"""Predictive-quality metrics of a risk surface against later events: pure functions.

Every metric takes one score per cell (higher = riskier) and the events observed per
cell in the test period, on the same cells. Cells count as equal units of area.

Ties
----
A relative risk score is a product of a few relative risk values, so it takes few
distinct values, and "the top p% of cells" usually cuts through a group of tied
cells. Ordering tied cells by their position in the grid would make the result
arbitrary. Every area-based metric here therefore uses the **pro-rata rule**: cells
with equal scores are ranked together, and a cut through a tied group takes the
group's events (and predicted risk) in proportion to the share of the group's cells
it takes. That is the expected value over all random orderings of the tied cells, and
it makes the capture curve the piecewise-linear curve through the tied groups' corners.
The AUC gives tied (event, no-event) pairs half credit (Mann-Whitney with mid-ranks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from rtm.errors import FitError, ParameterError

__all__ = [
    "AREA_SHARES",
    "CURVE_SHARES",
    "METRICS",
    "TIE_RULE",
    "Metric",
    "OddsRatio",
    "auc",
    "best_capture",
    "capture",
    "logistic_odds_ratio",
    "pai",
    "pei",
    "predicted_share",
    "rri",
    "curve",
    "flat_scores",
    "score_surface",
]

Shares = float | Sequence[float] | NDArray[np.float64]

#: Shares of the study area at which capture, PAI, PEI and RRI are reported.
AREA_SHARES: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20)

#: How ties are handled, as written into every validation output.
TIE_RULE = (
    "pro rata: cells with equal scores are ranked together; a cut through a tied group takes "
    "its events in proportion to the share of its cells taken (the expectation over random "
    "orderings of tied cells); AUC gives tied pairs half credit"
)


def _pair(scores: ArrayLike, events: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    e = np.asarray(events, dtype=np.float64).ravel()
    if s.shape != e.shape:
        raise ParameterError(f"scores has {s.size} cells but events has {e.size}")
    if s.size == 0:
        raise ParameterError("scores is empty: there are no cells to evaluate")
    if not np.all(np.isfinite(s)):
        raise ParameterError("scores must be finite in every cell")
    if np.any(e < 0) or not np.all(np.isfinite(e)):
        raise ParameterError("events must be non-negative counts")
    return s, e


def _shares(area_shares: Shares) -> NDArray[np.float64]:
    shares = np.atleast_1d(np.asarray(area_shares, dtype=np.float64))
    if np.any((shares < 0) | (shares > 1)) or not np.all(np.isfinite(shares)):
        raise ParameterError(f"area shares must lie in [0, 1], got {shares.tolist()}")
    return shares


def _cumulative(
    scores: NDArray[np.float64], values: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cells and ``values`` accumulated over tied groups, highest score first (from 0)."""
    _, group = np.unique(-scores, return_inverse=True)
    group = group.ravel()
    cells = np.bincount(group).astype(np.float64)
    totals = np.bincount(group, weights=values, minlength=cells.size)
    return np.concatenate([[0.0], np.cumsum(cells)]), np.concatenate([[0.0], np.cumsum(totals)])


def _top_share(
    scores: NDArray[np.float64], values: NDArray[np.float64], shares: NDArray[np.float64]
) -> NDArray[np.float64]:
    total = float(values.sum())
    if total <= 0:
        return np.full(shares.shape, np.nan)
    cum_cells, cum_values = _cumulative(scores, values)
    return np.interp(shares * scores.size, cum_cells, cum_values) / total


def capture(
    scores: ArrayLike, events: ArrayLike, area_shares: Shares = AREA_SHARES
) -> NDArray[np.float64]:
    """Share of the events that fall in the top ``area_shares`` of cells by score.

    Ties are shared pro rata (see the module docstring).

    Parameters
    ----------
    scores : array_like, shape (n_cells,)
        Risk score per cell; higher is riskier.
    events : array_like, shape (n_cells,)
        Test-period events per cell.
    area_shares : float or sequence of float
        Shares of the cells (0 to 1).

    Returns
    -------
    numpy.ndarray
        One capture rate (0 to 1) per area share; NaN when there are no events.

    Examples
    --------
    >>> capture([3, 2, 2, 1], [1, 2, 0, 1], [0.25, 0.5])
    array([0.25, 0.5 ])
    """
    s, e = _pair(scores, events)
    return _top_share(s, e, _shares(area_shares))


def best_capture(events: ArrayLike, area_shares: Shares = AREA_SHARES) -> NDArray[np.float64]:
    """The largest capture any ranking can reach at each area share (ranking by the events)."""
    e = np.asarray(events, dtype=np.float64).ravel()
    return capture(e, e, area_shares)


def pai(
    scores: ArrayLike, events: ArrayLike, area_shares: Shares = AREA_SHARES
) -> NDArray[np.float64]:
    """Predictive Accuracy Index: capture rate / area share (Chainey et al. 2008)."""
    shares = _shares(area_shares)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(shares > 0, capture(scores, events, shares) / shares, np.nan)


def pei(
    scores: ArrayLike, events: ArrayLike, area_shares: Shares = AREA_SHARES
) -> NDArray[np.float64]:
    """Predictive Efficiency Index: PAI / the best PAI possible at the same area (0 to 1)."""
    shares = _shares(area_shares)
    best = best_capture(events, shares)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(best > 0, capture(scores, events, shares) / best, np.nan)


def predicted_share(scores: ArrayLike, area_shares: Shares = AREA_SHARES) -> NDArray[np.float64]:
    """Share of the total predicted risk in the top cells (scores proportional to predictions)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if np.any(s < 0):
        raise ParameterError("predicted shares need non-negative scores (predicted counts)")
    s, _ = _pair(s, np.zeros_like(s))
    return _top_share(s, s, _shares(area_shares))


def rri(
    scores: ArrayLike, events: ArrayLike, area_shares: Shares = AREA_SHARES
) -> NDArray[np.float64]:
    """Recapture Rate Index: predicted share / observed share of events in the top cells.

    ``scores`` must be proportional to predicted counts (RRS, expected counts, a kernel
    density). 1 means the surface concentrates risk as much as the events concentrate;
    above 1 it over-concentrates, below 1 it under-concentrates.
    """
    shares = _shares(area_shares)
    observed = capture(scores, events, shares)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(observed > 0, predicted_share(scores, shares) / observed, np.nan)


def auc(scores: ArrayLike, events: ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` for "the cell has at least one event".

    Mann-Whitney statistic with mid-ranks: a tied (event, no-event) pair counts one half.

    Examples
    --------
    >>> auc([2, 1, 1, 0], [1, 1, 0, 0])
    0.875
    """
    s, e = _pair(scores, events)
    positive = e > 0
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(s)
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


@dataclass(frozen=True)
class OddsRatio:
    """A logistic regression of event presence on one covariate.

    Attributes
    ----------
    odds_ratio : float
        ``exp(slope)``: the multiplier of the odds per unit of the covariate.
    ci_low, ci_high : float
        95% Wald interval of the odds ratio.
    p_value : float
        Wald test of slope = 0.
    intercept, slope, slope_se : float
        On the log-odds scale.
    n : int
        Cells used.
    """

    odds_ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    intercept: float
    slope: float
    slope_se: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "odds_ratio": self.odds_ratio,
            "ci95": [self.ci_low, self.ci_high],
            "p_value": self.p_value,
            "intercept": self.intercept,
            "slope": self.slope,
            "slope_se": self.slope_se,
            "cells": self.n,
        }


def logistic_odds_ratio(
    covariate: ArrayLike, events: ArrayLike, *, max_iter: int = 100
) -> OddsRatio:
    """Odds ratio of "the cell has >= 1 event" per unit of ``covariate`` (maximum likelihood).

    Used with the number of selected risk factors present in a cell, this is the
    "odds per additional risk factor" of the original RTM validations.

    Raises
    ------
    FitError
        The covariate is constant, every cell has events or none has, or the fit
        separates (the slope runs to infinity).
    """
    x, e = _pair(covariate, events)
    y = (e > 0).astype(np.float64)
    if y.min() == y.max():
        raise FitError("logistic regression needs cells both with and without events")
    if x.min() == x.max():
        raise FitError("logistic regression needs a covariate that varies between cells")
    design = np.column_stack([np.ones_like(x), x])
    mean = y.mean()
    beta = np.array([math.log(mean / (1 - mean)), 0.0])
    info = np.eye(2)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        weight = p * (1 - p)
        info = design.T @ (design * weight[:, None])
        step = np.linalg.solve(info, design.T @ (y - p))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:  # pragma: no cover - logistic Newton converges on non-separated data
        raise FitError(
            "logistic regression did not converge (the covariate may separate the cells)"
        )
    if not np.all(np.isfinite(beta)) or abs(beta[1]) > 30:
        raise FitError("logistic regression separates: the covariate predicts presence perfectly")
    cov = np.linalg.inv(info)
    se = math.sqrt(float(cov[1, 1]))
    slope = float(beta[1])
    return OddsRatio(
        odds_ratio=math.exp(slope),
        ci_low=math.exp(slope - 1.959963984540054 * se),
        ci_high=math.exp(slope + 1.959963984540054 * se),
        p_value=float(2 * stats.norm.sf(abs(slope / se))),
        intercept=float(beta[0]),
        slope=slope,
        slope_se=se,
        n=int(x.size),
    )


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Metric:
    """A metric of a surface against test events, as validation reports it.

    Attributes
    ----------
    name : str
        Its key in ``validation.json``.
    compute : callable
        ``compute(scores, events)`` for a scalar metric, ``compute(scores, events, shares)``
        for one evaluated at each area share.
    per_share : bool
        Reported at each of :data:`AREA_SHARES` (``capture`` at 1, 5, 10, 20%).
    proportional_only : bool
        Only for scores proportional to predicted counts (RRI).
    in_table : bool
        A column of the printed comparison table (:meth:`Validation.table`).
    """

    name: str
    compute: Callable[..., Any]
    per_share: bool = True
    proportional_only: bool = False
    in_table: bool = True


#: Every metric validation reports, in report order. A new metric is one entry here.
METRICS: tuple[Metric, ...] = (
    Metric("auc", auc, per_share=False),
    Metric("capture", capture),
    Metric("pai", pai),
    Metric("pei", pei, in_table=False),
    Metric("rri", rri, proportional_only=True, in_table=False),
)

#: Area shares at which capture curves are drawn.
CURVE_SHARES = np.linspace(0.0, 1.0, 401)


def _key(share: float) -> str:
    return f"{100 * share:g}"


def score_surface(
    scores: ArrayLike, events: ArrayLike, *, proportional: bool = True
) -> dict[str, Any]:
    """Every metric of :data:`METRICS` for one surface, and its number of distinct scores.

    Parameters
    ----------
    scores : array_like
        Score per cell (higher = riskier).
    events : array_like
        Test events per cell.
    proportional : bool
        Whether scores are proportional to predicted counts (then RRI is reported).
    """
    out: dict[str, Any] = {}
    for metric in METRICS:
        if metric.proportional_only and not proportional:
            continue
        if metric.per_share:
            values = metric.compute(scores, events, AREA_SHARES).tolist()
            out[metric.name] = dict(zip(map(_key, AREA_SHARES), values, strict=True))
        else:
            out[metric.name] = metric.compute(scores, events)
    out["distinct_scores"] = int(np.unique(np.asarray(scores)).size)
    return out


def flat_scores(scores: dict[str, Any], *, table_only: bool = False) -> list[tuple[str, float]]:
    """The numbers of a :func:`score_surface` result as ``(label, value)`` pairs.

    Labels are the metric's name, with ``@10%`` for a metric per area share. Metrics only
    some surfaces have (RRI) are left out, so that every surface has the same labels; with
    ``table_only``, so are those not in the printed table.
    """
    out = []
    for metric in METRICS:
        if metric.proportional_only or (table_only and not metric.in_table):
            continue
        value = scores[metric.name]
        if metric.per_share:
            out += [(f"{metric.name}@{share}%", float(v)) for share, v in value.items()]
        else:
            out.append((metric.name, float(value)))
    return out


def curve(scores: ArrayLike, events: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The capture curve: (area shares, capture) at :data:`CURVE_SHARES`."""
    return CURVE_SHARES, capture(scores, events, CURVE_SHARES)
