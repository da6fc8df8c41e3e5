"""What an operationalization is: a raw layer per factor, a binary cut per distance, words.

Every operationalization turns a factor's features into one binary candidate variable per
spatial influence ``d`` on the ladder, in two steps that :func:`rtm.layers.build_candidates`
runs for it: :meth:`Operationalization.raw` computes raw values over the active cells (a
distance, a density, ...), possibly for a band of grid rows only (chunked builds), and
:meth:`Operationalization.binarize` cuts them into 0/1 for one ``d``, over all the active
cells. :meth:`Operationalization.describe` says what a 1 means, in plain words.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rtm.grid import Grid

if TYPE_CHECKING:
    from rtm.layers.network import StreetNetwork

__all__ = ["LayerContext", "Operationalization"]


@dataclass(frozen=True)
class LayerContext:
    """What some operationalizations need beyond the grid and the features.

    Attributes
    ----------
    network : StreetNetwork or None
        The street network (``--network``), for network proximity.
    """

    network: StreetNetwork | None = None


class Operationalization(ABC):
    """How a factor's features become binary candidate variables.

    Class attributes
    ----------------
    name : str
        The registry key (``--operationalization`` names it).
    column : str
        The operationalization's part of candidate names (``bars:proximity:150``).
    replaces : str or None
        The name of the operationalization this one stands in for when its context is
        given (network proximity replaces proximity when there is a network).
    """

    name: ClassVar[str]
    column: ClassVar[str]
    replaces: ClassVar[str | None] = None

    def available(self, context: LayerContext) -> bool:
        """Whether this operationalization can run in ``context`` (default: always)."""
        return True

    @abstractmethod
    def raw(
        self,
        grid: Grid,
        geometries: np.ndarray,
        distances: Sequence[float],
        context: LayerContext,
        *,
        rows: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Raw values over the active cells (of ``rows`` only, when given).

        Returns ``(k, n_cells)`` float64: one row per distance, or a single row that
        serves every distance.
        """

    @abstractmethod
    def binarize(self, raw: np.ndarray, distance: float) -> tuple[np.ndarray, float | None]:
        """The 0/1 (bool) values of the candidate at ``distance`` over all active cells.

        ``raw`` is the row of :meth:`raw` for this distance (over the whole grid); the
        second value is a data-driven cut to report (None when the cut is ``distance``).
        """

    @abstractmethod
    def describe(self, factor: str, distance: float, unit: str = "m") -> str:
        """What a 1 means, in plain words (``within 150 m of bars``)."""

    def row(self, raw: np.ndarray, position: int) -> np.ndarray:
        """The raw row of the ``position``-th distance."""
        return raw[0] if raw.shape[0] == 1 else raw[position]

    def __repr__(self) -> str:
        return f"<operationalization {self.name!r}>"
