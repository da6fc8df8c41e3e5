"""Accuracy parity: whether a surface works as well in every sub-area (borough, ward).

Two views, both from the metrics registry (:mod:`rtm.validation.metrics`):

* **local**: every registered metric (capture, PAI, AUC...) of the surface *within* the
  sub-area, ranking its own cells: how well the map orders places there;
* **the area-wide selection**: the top 1/5/10/20% of the whole area, as deployed, and
  the share of the sub-area's events it covers (``capture_of_selection``) against the
  share of the sub-area's cells it takes (``selected_share``): whether a sub-area's
  crime is as well covered as elsewhere. Ties are shared pro rata, as validation does;
* **calibration**: the sub-area's share of the events over its share of the predicted
  score (1 = as predicted; above 1 = more events than the surface expected there). A
  risk score is proportional to predicted counts, so any run's surface can be used.

Merging every sub-area into one gives the overall metrics back exactly (tests check it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtm.validation.metrics import AREA_SHARES, score_surface

__all__ = ["accuracy_parity", "selection_weights"]


def selection_weights(scores: np.ndarray, share: float) -> np.ndarray:
    """How much of each cell the top ``share`` of the area takes (ties shared pro rata)."""
    scores = np.asarray(scores, dtype=np.float64)
    _, group = np.unique(-scores, return_inverse=True)
    group = group.ravel()
    sizes = np.bincount(group).astype(np.float64)
    before = np.concatenate([[0.0], np.cumsum(sizes)[:-1]])
    wanted = share * scores.size
    taken = np.clip((wanted - before) / sizes, 0.0, 1.0)
    return taken[group]


def _scores_or_none(scores: np.ndarray, events: np.ndarray) -> dict[str, Any] | None:
    if scores.size == 0 or float(events.sum()) <= 0:
        return None
    return score_surface(scores, events)


def accuracy_parity(
    scores: np.ndarray,
    events: np.ndarray,
    labels: np.ndarray,
    *,
    surface: str = "risk",
    shares: tuple[float, ...] = AREA_SHARES,
) -> dict[str, Any]:
    """The surface's accuracy overall and in each sub-area.

    Parameters
    ----------
    scores : ndarray
        Score per active cell (higher = riskier; proportional to predicted counts for
        calibration).
    events : ndarray
        Events per active cell (test events, or the run's own).
    labels : ndarray of str
        The sub-area of each cell ("" for cells in none: counted overall only).
    surface : str
        The surface's name, for the record.
    shares : tuple of float
        Shares of the area of the area-wide selections.

    Returns
    -------
    dict
        ``surface``, ``overall`` (metrics), ``subareas``: one dict per sub-area with
        ``name``, ``cells``, ``events``, ``local`` (metrics or None without events),
        ``selection`` (per share: ``selected_share``, ``capture_of_selection``,
        ``pai_of_selection``) and
        ``calibration``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    events = np.asarray(events, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    weights = {share: selection_weights(scores, share) for share in shares}
    total_events, total_score = float(events.sum()), float(scores.sum())
    rows = []
    for name in sorted(set(labels.tolist()) - {""}):
        inside = labels == name
        sub_events = float(events[inside].sum())
        selection = {}
        for share, weight in weights.items():
            taken = float(weight[inside].mean())
            captured = float((weight * events)[inside].sum() / sub_events) if sub_events else None
            selection[f"{100 * share:g}"] = {
                "selected_share": taken,
                "capture_of_selection": captured,
                # PAI within the sub-area: its events captured per share of its area taken
                "pai_of_selection": captured / taken if captured is not None and taken else None,
            }
        predicted = float(scores[inside].sum()) / total_score if total_score > 0 else 0.0
        observed = sub_events / total_events if total_events > 0 else 0.0
        rows.append(
            {
                "name": name,
                "cells": int(inside.sum()),
                "events": sub_events,
                "local": _scores_or_none(scores[inside], events[inside]),
                "selection": selection,
                "observed_share": observed,
                "predicted_share": predicted,
                "calibration": observed / predicted if predicted > 0 else None,
            }
        )
    return {
        "surface": surface,
        "overall": _scores_or_none(scores, events),
        "subareas": rows,
    }
