"""Network proximity: within ``d`` of the nearest feature along the street network.

It stands in for :mod:`~rtm.layers.operationalizations.proximity` when a street network
is given (``--network``); candidates keep the proximity column name, and the report states
the approximation (:meth:`rtm.layers.network.StreetNetwork.describe`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtm.errors import ParameterError
from rtm.grid import Grid
from rtm.layers.operationalizations.base import LayerContext, Operationalization

__all__ = ["OPERATIONALIZATION", "NetworkProximity"]


class NetworkProximity(Operationalization):
    """Within ``d`` of the nearest feature, measured along the streets."""

    name = "network_proximity"
    column = "proximity"
    replaces = "proximity"

    def available(self, context: LayerContext) -> bool:
        """Only with a street network."""
        return context.network is not None

    def raw(
        self,
        grid: Grid,
        geometries: np.ndarray,
        distances: Sequence[float],
        context: LayerContext,
        *,
        rows: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """The network distance (one row for every ``d``), of ``rows`` only when given.

        The shortest paths are searched over the whole network (a path may leave the
        band of rows); a band takes its own cells' distances.
        """
        if context.network is None:
            raise ParameterError("network proximity needs a street network (--network FILE)")
        distance = context.network.distance(grid, geometries, max(distances))
        if rows is not None:
            before = int(grid.mask[: rows[0]].sum())
            distance = distance[before : before + int(grid.mask[rows[0] : rows[1]].sum())]
        return distance[None, :]

    def binarize(self, raw: np.ndarray, distance: float) -> tuple[np.ndarray, float | None]:
        """``network distance <= d``."""
        return raw <= distance, None

    def describe(self, factor: str, distance: float, unit: str = "m") -> str:
        """``within 150 m of bars along the streets``."""
        return f"within {distance:g} {unit} of {factor} along the streets"


OPERATIONALIZATION = NetworkProximity()
