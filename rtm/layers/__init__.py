"""Risk-factor layers on a grid: the candidate variables of every factor.

* :mod:`rtm.layers.candidates`: factors, the spatial-influence ladder, candidates and
  :func:`build_candidates`;
* :mod:`rtm.layers.registry` and :mod:`rtm.layers.operationalizations`: how a factor
  becomes candidates (proximity, density, network proximity), one module each;
* :mod:`rtm.layers.geometry`: feature geometry as the kernels take it;
* :mod:`rtm.layers.network`: the street network of network proximity;
* :mod:`rtm.layers.chunked`: the same layers built in row chunks on Dask.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it, imported on first access: reading a study needs
# ``Factor`` long before the numba kernels of the layers are wanted (start-up time)
_LAZY = {
    **dict.fromkeys(
        (
            "MAX_BLOCKS",
            "Candidate",
            "CandidateSet",
            "DroppedCandidate",
            "Factor",
            "Increment",
            "LayerComputer",
            "build_candidates",
            "spatial_influences",
        ),
        "rtm.layers.candidates",
    ),
    "LayerContext": "rtm.layers.operationalizations.base",
    "Operationalization": "rtm.layers.operationalizations.base",
    "binarize_density": "rtm.layers.operationalizations.density",
    "kernel_density": "rtm.layers.operationalizations.density",
    "nearest_distance": "rtm.layers.operationalizations.proximity",
    "available_operationalizations": "rtm.layers.registry",
    "get_operationalization": "rtm.layers.registry",
    "resolve_operationalizations": "rtm.layers.registry",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from rtm.layers.candidates import (
        MAX_BLOCKS,
        Candidate,
        CandidateSet,
        DroppedCandidate,
        Factor,
        Increment,
        LayerComputer,
        build_candidates,
        spatial_influences,
    )
    from rtm.layers.operationalizations.base import LayerContext, Operationalization
    from rtm.layers.operationalizations.density import binarize_density, kernel_density
    from rtm.layers.operationalizations.proximity import nearest_distance
    from rtm.layers.registry import (
        available_operationalizations,
        get_operationalization,
        resolve_operationalizations,
    )

__all__ = [
    "MAX_BLOCKS",
    "Candidate",
    "CandidateSet",
    "DroppedCandidate",
    "Factor",
    "Increment",
    "LayerComputer",
    "LayerContext",
    "Operationalization",
    "available_operationalizations",
    "binarize_density",
    "build_candidates",
    "get_operationalization",
    "kernel_density",
    "nearest_distance",
    "resolve_operationalizations",
    "spatial_influences",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rtm.layers' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
