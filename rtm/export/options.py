"""Settings of the tiers, places and map of a run: light enough to build before the fit.

The command line validates these options before any slow work, and importing the
output machinery (:mod:`rtm.export.outputs`, :mod:`rtm.places`: scipy, shapely,
matplotlib later) would put its import time before the fit instead of beside it (see
:func:`rtm.export.run.prefetch_output_modules`). The names stay importable from their
old homes, :mod:`rtm.places` and :mod:`rtm.export.outputs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rtm.errors import ParameterError
from rtm.recent import DEFAULT_RECENT_DAYS

__all__ = [
    "CONNECTIVITY",
    "DEFAULT_TIER_CUTS",
    "MAX_FEATURES",
    "OutputOptions",
    "check_tier_cuts",
]

#: Tier cuts, in standard deviations of the RRS above its mean over the study area.
DEFAULT_TIER_CUTS = (2.0, 1.0, 0.0)
#: Cells touching at an edge or a corner belong to the same place.
CONNECTIVITY = 8
#: Features kept per factor for the map (a seeded sample beyond; the map says so).
MAX_FEATURES = 5000


def check_tier_cuts(cuts: Sequence[float]) -> tuple[float, float, float]:
    """Validate three cut points (SDs above the mean), strictly descending."""
    values = tuple(float(c) for c in cuts)
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ParameterError(f"--tiers needs three numbers of SDs above the mean, got {cuts!r}")
    if not values[0] > values[1] > values[2]:
        raise ParameterError(f"--tiers cut points must be strictly descending, got {cuts!r}")
    return values


@dataclass(frozen=True)
class OutputOptions:
    """Settings of tiers, places and the map (each a CLI option)."""

    tier_cuts: tuple[float, ...] = DEFAULT_TIER_CUTS
    priority_tier: int = 1
    recent_days: float = DEFAULT_RECENT_DAYS
    recent_distance: float | None = None
    date_column: str | None = None
    connectivity: int = CONNECTIVITY
    max_features: int = MAX_FEATURES

    def __post_init__(self) -> None:
        object.__setattr__(self, "tier_cuts", check_tier_cuts(self.tier_cuts))
        if self.priority_tier not in (1, 2, 3):
            raise ParameterError(f"--priority-tier must be 1, 2 or 3, got {self.priority_tier!r}")
        if not (isinstance(self.recent_days, int | float) and math.isfinite(self.recent_days)):
            raise ParameterError(
                f"--recent-days must be a number of days, got {self.recent_days!r}"
            )
        if not self.recent_days > 0:
            raise ParameterError(
                f"--recent-days must be more than 0 days, got {self.recent_days:g} (the window "
                "of recent events counts back from the latest event)"
            )
        distance = self.recent_distance
        if distance is not None and not (math.isfinite(distance) and distance >= 0):
            raise ParameterError(f"--recent-distance must be 0 or more metres, got {distance!r}")
