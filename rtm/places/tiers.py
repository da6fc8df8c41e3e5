"""Risk tiers: the relative risk score cut at ``mean + k * SD`` over the study-area cells.

A cell belongs to the highest tier whose cut its RRS reaches (``RRS >= cut``, inclusive,
with a relative tolerance of 1e-9 against rounding). RRS takes few distinct values (a
product of a handful of RRVs), so whole groups of tied cells land on the same side of a
cut: tiers never split a tie, and their areas follow the distinct scores, not fixed shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtm.spec_values import DEFAULT_TIER_CUTS, VALIDATORS

__all__ = ["TIER_NAMES", "TIE_RULE", "Tier", "Tiers", "assign_tiers"]

TIER_NAMES = ("highest", "moderately high", "above average")

_TOLERANCE = 1e-9

TIE_RULE = (
    "a cell belongs to the highest tier whose cut its RRS reaches (RRS >= cut, inclusive); "
    "tied scores are never split, so tier areas follow the distinct RRS values"
)


@dataclass(frozen=True)
class Tier:
    """One risk tier: its RRS cut and its share of the area and of the events."""

    name: str
    rank: int
    sd_cut: float
    rrs_min: float
    rrs_max: float | None
    cells: int
    area: float
    area_share: float
    events: int
    event_share: float

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "name": self.name,
            "rank": self.rank,
            "cut_sd": self.sd_cut,
            "rrs_min": self.rrs_min,
            "rrs_max": self.rrs_max,
            "cells": self.cells,
            "area": self.area,
            "area_share": self.area_share,
            "events": self.events,
            "event_share": self.event_share,
        }


@dataclass(frozen=True, eq=False)
class Tiers:
    """The tiers and each active cell's tier rank (1 = highest, 0 = in no tier)."""

    tiers: tuple[Tier, ...]
    cell_rank: np.ndarray = field(repr=False)
    mean: float
    sd: float
    distinct_scores: int

    def empty_note(self) -> str | None:
        """Why there are no highest-risk places, when no cell reaches the highest tier.

        RTMDx's cut (mean + 2 SD) can lie above every score when many cells share high
        scores; the places, patrol places and the ACTION pack are then empty, and the
        analyst is told why and what widens them.
        """
        if not self.tiers or self.tiers[0].cells > 0:
            return None
        top = self.tiers[0]
        best = next((t for t in self.tiers if t.cells > 0), None)
        return (
            f"no cell reaches the {top.name} tier (RRS >= {top.rrs_min:.2f}, mean + "
            f"{top.sd_cut:g} SD), so there are no highest-risk places, patrol places or "
            "ACTION pages"
            + (
                f"; the first tier with cells is '{best.name}' (--tiers lowers the cuts)"
                if best is not None
                else "; --tiers lowers the cuts"
            )
        )

    def cell_names(self) -> np.ndarray:
        """Tier name per active cell (None where the cell is in no tier)."""
        names = np.array([None, *TIER_NAMES], dtype=object)
        return names[self.cell_rank]

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "rule": "RRS >= mean + k * SD over the study-area cells (population SD)",
            "ties": TIE_RULE,
            "rrs_mean": self.mean,
            "rrs_sd": self.sd,
            "distinct_scores": self.distinct_scores,
            "tiers": [t.as_dict() for t in self.tiers],
        }


# ---------------------------------------------------------------------- tiers
def assign_tiers(
    rrs: np.ndarray, counts: np.ndarray, cell_area: float, cuts: Sequence[float] = DEFAULT_TIER_CUTS
) -> Tiers:
    """Cut the RRS into tiers at ``mean + k * SD`` for each ``k`` in ``cuts``.

    Parameters
    ----------
    rrs : numpy.ndarray
        Relative risk score per active cell.
    counts : numpy.ndarray
        Events per active cell.
    cell_area : float
        Area of one cell (CRS units squared).
    cuts : sequence of three floats
        SDs above the mean, strictly descending (default 2, 1, 0).

    Returns
    -------
    Tiers

    Examples
    --------
    >>> t = assign_tiers(np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 50]), np.ones(10), 1.0)
    >>> [tier.cells for tier in t.tiers]
    [1, 0, 0]
    """
    sds = VALIDATORS["tier_cuts"](cuts, "--tiers")
    rrs = np.asarray(rrs, dtype=float)
    counts = np.asarray(counts)
    mean, sd = float(rrs.mean()), float(rrs.std())
    lows = [mean + k * sd for k in sds]
    rank = np.zeros(rrs.size, dtype=np.int8)
    for position in range(len(lows) - 1, -1, -1):  # lowest tier first; higher ones overwrite
        rank[rrs >= lows[position] * (1 - _TOLERANCE)] = position + 1
    total_events = max(int(counts.sum()), 1)
    tiers = []
    for position, name in enumerate(TIER_NAMES):
        inside = rank == position + 1
        cells = int(inside.sum())
        events = int(counts[inside].sum())
        tiers.append(
            Tier(
                name=name,
                rank=position + 1,
                sd_cut=sds[position],
                rrs_min=lows[position],
                rrs_max=None if position == 0 else lows[position - 1],
                cells=cells,
                area=cells * cell_area,
                area_share=cells / max(rrs.size, 1),
                events=events,
                event_share=events / total_events,
            )
        )
    return Tiers(tuple(tiers), rank, mean, sd, int(np.unique(np.round(rrs, 9)).size))
