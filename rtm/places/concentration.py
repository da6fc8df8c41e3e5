"""How concentrated events and harm are: the "power few" (top cells, top places, Gini).

Cells are ranked by their own observed events (or harm), highest first: the share of
all events in the top ``p`` of the cells is read off the Lorenz curve at exactly ``p``
(a cell cut by the share counts pro rata, so tied cells are never split by grid
order). The Gini coefficient is computed over every cell of the study area, those
without events included: 0 when every cell has the same count, near 1 when a few cells
hold everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CELL_SHARES", "Concentration", "concentration", "gini", "lorenz", "top_share"]

#: Shares of the cells at which the concentration is reported.
CELL_SHARES = (0.01, 0.05, 0.10)


def lorenz(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The concentration curve: cumulative share of cells (x) and of ``values`` (y).

    Cells are sorted from the highest value down; both arrays start at 0 and end at 1.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    total = float(v.sum())
    x = np.arange(v.size + 1) / max(v.size, 1)
    y = np.concatenate([[0.0], np.cumsum(v) / total]) if total > 0 else x.copy()
    return x, y


def top_share(values: np.ndarray, share: float) -> float:
    """Share of the total in the top ``share`` of the cells (pro rata at the cut).

    Examples
    --------
    >>> top_share(np.array([10.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0.1)
    1.0
    >>> round(top_share(np.array([4.0, 4, 1, 1]), 0.125), 6)
    0.2
    """
    x, y = lorenz(values)
    return float(np.interp(share, x, y))


def gini(values: np.ndarray) -> float:
    """Gini coefficient of the values over all cells (0 = even, towards 1 = concentrated).

    Examples
    --------
    >>> gini(np.array([1.0, 1, 1, 1]))
    0.0
    >>> gini(np.array([0.0, 0, 0, 4]))
    0.75
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n, total = v.size, float(v.sum())
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * np.sum(ranks * v) / (n * total)) - (n + 1.0) / n)


@dataclass(frozen=True, eq=False)
class Concentration:
    """Concentration figures of a run (``report.json: concentration``)."""

    events_total: float
    harm_total: float | None
    cells: int
    top_cells: tuple[dict[str, float], ...]
    top_places: tuple[dict[str, Any], ...]
    gini_events: float
    gini_harm: float | None
    events: np.ndarray = field(repr=False)
    harm: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "definition": "cells ranked by their own observed events (harm) in the period, "
            "highest first; shares at a cut through tied cells are pro rata; Gini over every "
            "cell of the study area",
            "cells": self.cells,
            "events_total": self.events_total,
            "harm_total": self.harm_total,
            "gini_events": self.gini_events,
            "gini_harm": self.gini_harm,
            "top_cells": [dict(t) for t in self.top_cells],
            "top_places": [dict(t) for t in self.top_places],
        }


def concentration(
    events: np.ndarray,
    harm: np.ndarray | None = None,
    *,
    places: Sequence[tuple[int, np.ndarray]] = (),
    place_kind: str = "patrol places",
    shares: Sequence[float] = CELL_SHARES,
) -> Concentration:
    """Concentration of ``events`` (and ``harm``) per cell.

    Parameters
    ----------
    events : numpy.ndarray
        Observed events per active cell.
    harm : numpy.ndarray, optional
        Observed harm per active cell (harm-weighted runs).
    places : sequence of (N, cell positions)
        For each N, the cells of the top N places (their union), whose share of the area,
        the events and the harm is reported.
    place_kind : str
        What the places are, for the report.
    shares : sequence of float
        Shares of the cells to report.
    """
    counts = np.asarray(events, dtype=np.float64)
    n = counts.size
    top_cells = []
    for share in shares:
        item = {"cell_share": float(share), "event_share": top_share(counts, share)}
        if harm is not None:
            item["harm_share"] = top_share(harm, share)
        top_cells.append(item)
    total = float(counts.sum())
    harm_total = None if harm is None else float(np.sum(harm))
    top_places = []
    for count, chosen in places:
        cells = np.unique(np.asarray(chosen, dtype=np.int64))
        entry: dict[str, Any] = {
            "places": int(count),
            "kind": place_kind,
            "cells": int(cells.size),
            "area_share": cells.size / max(n, 1),
            "event_share": float(counts[cells].sum()) / total if total > 0 else 0.0,
        }
        if harm is not None and harm_total:
            entry["harm_share"] = float(np.asarray(harm)[cells].sum()) / harm_total
        top_places.append(entry)
    return Concentration(
        events_total=total,
        harm_total=harm_total,
        cells=n,
        top_cells=tuple(top_cells),
        top_places=tuple(top_places),
        gini_events=gini(counts),
        gini_harm=None if harm is None else gini(harm),
        events=counts,
        harm=None if harm is None else np.asarray(harm, dtype=np.float64),
    )
