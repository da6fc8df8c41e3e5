"""What tiers and places are computed from: a relative risk surface and its factors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtm.errors import ParameterError
from rtm.grid import Grid

__all__ = ["FactorLayer", "RiskSurface"]


@dataclass(frozen=True, eq=False)
class FactorLayer:
    """A selected factor and its 0/1 (or 0/-1 when protective) value per active cell."""

    name: str
    operationalization: str
    spatial_influence: float
    relative_risk_value: float
    protective: bool
    values: np.ndarray = field(repr=False)
    network: bool = False

    @property
    def coverage(self) -> float:
        """Share of the active cells where the factor is present."""
        return float(np.count_nonzero(self.values)) / max(int(self.values.size), 1)

    def describe(self, unit: str = "m") -> str:
        """Plain words, e.g. ``within 150 m of bars``: its operationalization's own."""
        from rtm.layers.registry import describe_candidate

        return describe_candidate(
            self.operationalization,
            self.name,
            self.spatial_influence,
            unit,
            network=self.network,
        )


@dataclass(frozen=True, eq=False)
class RiskSurface:
    """What tiers and places are computed from: the grid, scores, counts and factors."""

    grid: Grid
    rrs: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    expected: np.ndarray = field(repr=False)
    factors: tuple[FactorLayer, ...]
    #: Observed harm per cell (event-equivalents) of a harm-weighted run, else None.
    harm: np.ndarray | None = field(default=None, repr=False)

    @property
    def harm_or_counts(self) -> np.ndarray:
        """Observed harm per cell when the run is harm-weighted, else the event counts."""
        return self.counts if self.harm is None else self.harm

    @classmethod
    def from_result(cls, result: Any, *, network: bool = False) -> RiskSurface:
        """Build from a fitted :class:`rtm.result.RTMResult` with a risk surface.

        ``network``: the run measured proximity along a street network.
        """
        if result.relative_risk_score is None:
            raise ParameterError("no significant factor: there is no risk surface to tier")
        values = result.selected_values()
        layers = tuple(
            FactorLayer(
                f.name,
                f.operationalization,
                f.spatial_influence,
                f.relative_risk_value,
                f.protective,
                values[f.candidate],
                network,
            )
            for f in result.factors
        )
        harm = result.outcome
        if harm is None and result.harm_weighted:  # harm proportional to the counts
            harm = result.counts.astype(np.float64)
        return cls(
            result.grid, result.relative_risk_score, result.counts, result.expected, layers, harm
        )
