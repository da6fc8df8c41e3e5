"""Risk-factor layers on a grid: the candidate variables of every factor.

* :mod:`rtm.layers.candidates`: factors, the spatial-influence ladder, candidates and
  :func:`build_candidates`;
* :mod:`rtm.layers.registry` and :mod:`rtm.layers.operationalizations`: how a factor
  becomes candidates (proximity, density, network proximity), one module each;
* :mod:`rtm.layers.geometry`: feature geometry as the kernels take it;
* :mod:`rtm.layers.network`: the street network of network proximity;
* :mod:`rtm.layers.chunked`: the same layers built in row chunks on Dask.
"""

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
