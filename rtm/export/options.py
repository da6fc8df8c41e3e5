"""Settings of the tiers, places and map of a run: light enough to build before the fit.

The command line validates these options before any slow work, and importing the
output machinery (:mod:`rtm.export.outputs`, :mod:`rtm.places`: scipy, shapely,
matplotlib later) would put its import time before the fit instead of beside it (see
:func:`rtm.export.run.prefetch_output_modules`). The values are checked by the study
specification's checks (:mod:`rtm.spec_values`), so the messages are the same wherever
the options come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtm.spec_values import DEFAULT_RECENT_DAYS, DEFAULT_TIER_CUTS, VALIDATORS

__all__ = [
    "CONNECTIVITY",
    "DEFAULT_TIER_CUTS",
    "MAX_FEATURES",
    "OutputOptions",
    "check_tier_cuts",
]

#: Cells touching at an edge or a corner belong to the same place.
CONNECTIVITY = 8
#: Features kept per factor for the map (a seeded sample beyond; the map says so).
MAX_FEATURES = 5000


def check_tier_cuts(cuts: Sequence[float]) -> tuple[float, float, float]:
    """Validate three cut points (SDs above the mean), strictly descending."""
    return VALIDATORS["tier_cuts"](cuts, "--tiers")


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
        for name, flag in (
            ("tier_cuts", "--tiers"),
            ("priority_tier", "--priority-tier"),
            ("recent_days", "--recent-days"),
            ("recent_distance", "--recent-distance"),
            ("date_column", "--date-column"),
        ):
            object.__setattr__(self, name, VALIDATORS[name](getattr(self, name), flag))
