"""Settings of the tiers, places and map of a run: light enough to build before the fit.

The command line validates these options before any slow work, and importing the
output machinery (:mod:`rtm.export.outputs`, :mod:`rtm.places`: scipy, shapely,
matplotlib later) would put its import time before the fit instead of beside it (see
:func:`rtm.export.run.prefetch_modules`). The values are checked by the study
specification's checks (:mod:`rtm.spec_values`), so the messages are the same wherever
the options come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rtm.spec import StudySpec
from rtm.spec_values import (
    CONNECTIVITY,
    DEFAULT_PATROL_SIZE,
    DEFAULT_RECENT_DAYS,
    DEFAULT_TIER_CUTS,
    VALIDATORS,
    check_tier_cuts,
)

__all__ = [
    "CONNECTIVITY",
    "DEFAULT_TIER_CUTS",
    "MAX_FEATURES",
    "OutputOptions",
    "check_tier_cuts",
]

#: Features kept per factor for the map (a seeded sample beyond; the map says so).
MAX_FEATURES = 5000


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
    patrol_size: float = DEFAULT_PATROL_SIZE
    #: Street lines (a file) for the patrol places' nearest street; None: no names.
    streets: Any = None
    #: The ACTION pack's task table (TOML file); None: rtm's own.
    tasks: str | None = None
    #: The files to write (``--outputs``); None: all. The record is always written.
    outputs: tuple[str, ...] | None = None

    @classmethod
    def from_spec(cls, spec: StudySpec) -> OutputOptions:
        """The tiers, places and map settings of a study specification."""
        return cls(
            tier_cuts=spec.tier_cuts,
            priority_tier=spec.priority_tier,
            recent_days=spec.recent_days,
            recent_distance=spec.recent_distance,
            date_column=spec.date_column,
            patrol_size=spec.patrol_size,
            streets=getattr(spec, "streets", None),
            tasks=spec.tasks,
            outputs=spec.outputs,
        )

    def __post_init__(self) -> None:
        for name, flag in (
            ("tier_cuts", "--tiers"),
            ("priority_tier", "--priority-tier"),
            ("recent_days", "--recent-days"),
            ("recent_distance", "--recent-distance"),
            ("date_column", "--date-column"),
            ("patrol_size", "--patrol-size"),
            ("tasks", "--tasks"),
            ("outputs", "--outputs"),
        ):
            object.__setattr__(self, name, VALIDATORS[name](getattr(self, name), flag))
