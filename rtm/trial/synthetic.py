"""Synthetic trials with a planted truth, for the tests, the benchmarks and the how-to.

:func:`planted_world` draws places whose true rates vary (gamma), a monthly history around
them (negative binomial), and blocks from that history; :meth:`PlantedWorld.trial` draws
one trial: an allocation with the design's scheme and outcomes with the planted effect.
:func:`write_pings` writes GPS pings of patrol units that visit the treated places of a
design (and, now and then, a control place): a dosage input with a known answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely

from rtm.trial.allocation import allocate, make_blocks

__all__ = ["PlantedWorld", "planted_world", "write_pings"]


@dataclass(frozen=True)
class PlantedWorld:
    """Places with true rates, their monthly history and blocks."""

    rates: np.ndarray
    history: np.ndarray
    blocks: np.ndarray
    alpha: float

    @property
    def baseline(self) -> np.ndarray:
        """Events per place over the whole history."""
        return self.history.sum(axis=1)

    def panel(self) -> pd.DataFrame:
        """The history as ``baseline_periods.csv`` holds it."""
        n_places, months = self.history.shape
        return pd.DataFrame(
            {
                "place_id": np.repeat([str(i) for i in range(n_places)], months),
                "period": np.tile([f"m{m:02d}" for m in range(months)], n_places),
                "events": self.history.ravel(),
            }
        )

    def trial(
        self, seed: int, irr: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """One trial as long as the history, drawn as it was: (treated flags, outcomes)."""
        treated = allocate(self.blocks, seed)
        months = self.history.shape[1]
        mean = self.rates / months * np.where(treated, irr, 1.0)
        outcome = np.zeros(len(mean))
        for _ in range(months):
            outcome += _nb(rng, mean, self.alpha)
        return treated, outcome


def _nb(rng: np.random.Generator, mean: np.ndarray, alpha: float) -> np.ndarray:
    shape = 1.0 / alpha
    return rng.poisson(mean * rng.gamma(shape, 1.0 / shape, size=np.shape(mean))).astype(np.float64)


def planted_world(
    n_places: int = 40,
    *,
    mean: float = 10.0,
    alpha: float = 0.3,
    months: int = 6,
    block_size: int = 4,
    seed: int = 0,
) -> PlantedWorld:
    """Places whose rates (events per ``months``) are gamma around ``mean``, and their history."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(1.5, mean / 1.5, size=n_places)
    history = np.stack([_nb(rng, rates / months, alpha) for _ in range(months)], axis=1)
    return PlantedWorld(rates, history, make_blocks(history.sum(axis=1), block_size), alpha)


def write_pings(
    places: np.ndarray,
    treated: np.ndarray,
    crs: str,
    path: str | Path,
    *,
    days: int = 7,
    units: int = 4,
    visit_minutes: float = 15.0,
    interval: float = 30.0,
    start: str = "2024-07-01",
    seed: int = 0,
) -> float:
    """Write pings (``time, lon, lat, unit``) of units patrolling the treated places.

    Each unit, each day, visits every treated place once for ``visit_minutes`` (pinging
    every ``interval`` seconds at the place's centre, jittered a metre), with travel pings
    far from every place between visits. Returns the minutes each treated place receives
    per day (units x visit minutes), the answer dosage must give.
    """
    rng = np.random.default_rng(seed)
    centres = shapely.point_on_surface(np.asarray(places, dtype=object))
    cx, cy = shapely.get_x(centres), shapely.get_y(centres)
    far_x, far_y = float(cx.min()) - 5000.0, float(cy.min()) - 5000.0
    per_visit = int(round(visit_minutes * 60.0 / interval))
    rows_t, rows_x, rows_y, rows_u = [], [], [], []
    origin = int(np.datetime64(start, "s").astype(np.int64))
    targets = np.flatnonzero(treated)
    for day in range(days):
        for unit in range(units):
            clock = origin + day * 86400 + 8 * 3600 + unit * 600
            for place in rng.permutation(targets):
                ticks = clock + np.arange(per_visit + 1) * interval
                rows_t.append(ticks)
                rows_x.append(cx[place] + rng.normal(0, 1, per_visit + 1))
                rows_y.append(cy[place] + rng.normal(0, 1, per_visit + 1))
                rows_u.append(np.full(per_visit + 1, unit))
                # travel: pings far away, the first one interval after the last at the place
                travel = ticks[-1] + interval * np.arange(1, 11)
                rows_t.append(travel)
                rows_x.append(np.full(10, far_x))
                rows_y.append(np.full(10, far_y))
                rows_u.append(np.full(10, unit))
                clock = int(travel[-1]) + int(interval)
    x, y = np.concatenate(rows_x), np.concatenate(rows_y)
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(np.concatenate(rows_t), unit="s").strftime("%Y-%m-%dT%H:%M:%S"),
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "unit": [f"unit{u}" for u in np.concatenate(rows_u)],
        }
    )
    frame.to_csv(path, index=False, lineterminator="\n")
    return units * (per_visit + 1) * interval / 60.0  # each ping: the time to the next
