"""rtm: Risk Terrain Modeling in Python.

The names most analyses need are importable from the package itself; each loads its module on
first use, so ``import rtm`` stays fast (numba, geopandas and scikit-learn load only when needed).

Examples
--------
>>> import rtm
>>> rtm.spatial_influences(200)
(200.0, 400.0, 600.0)
>>> issubclass(rtm.errors.CRSError, ValueError)
True
>>> sorted(rtm.__all__)[:3]
['CandidateSet', 'Factor', 'Grid']
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from rtm._version import __version__

# OpenMP threads (the boosted trees' histograms) sleep when idle instead of spinning: two
# rtm processes on two cores otherwise spin against each other (a 1 s fit took 35 s).
# Read when the OpenMP runtime loads, so it must be set before scikit-learn is imported;
# a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# public name -> module that defines it (imported on first access)
_LAZY = {
    # file-to-file workflows
    "analyze": "rtm.api",
    "write_layers": "rtm.api",
    "build_study_candidates": "rtm.study",
    "load_study": "rtm.study",
    "Study": "rtm.study",
    # the model
    "RiskTerrainModel": "rtm.model",
    "RTMResult": "rtm.result",
    "ModelFactor": "rtm.result",
    # grid and layers
    "Grid": "rtm.grid",
    "Factor": "rtm.layers",
    "CandidateSet": "rtm.layers",
    "build_candidates": "rtm.layers",
    "spatial_influences": "rtm.layers",
    # the study specification
    "StudySpec": "rtm.spec",
    # validation
    "validate": "rtm.validation",
    "validate_run": "rtm.validation",
    "temporal_validation": "rtm.validation",
    # batch runs
    "run_batch": "rtm.batch",
    "load_config": "rtm.batch",
    # the synthetic sample city
    "generate_city": "rtm.synthetic",
}
_SUBMODULES = {"errors"}

__all__ = [
    "CandidateSet",
    "Factor",
    "Grid",
    "ModelFactor",
    "RTMResult",
    "RiskTerrainModel",
    "Study",
    "StudySpec",
    "__version__",
    "analyze",
    "build_candidates",
    "build_study_candidates",
    "errors",
    "generate_city",
    "load_config",
    "load_study",
    "run_batch",
    "spatial_influences",
    "temporal_validation",
    "validate",
    "validate_run",
    "write_layers",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from rtm import errors
    from rtm.api import analyze, write_layers
    from rtm.batch import load_config, run_batch
    from rtm.grid import Grid
    from rtm.layers import CandidateSet, Factor, build_candidates, spatial_influences
    from rtm.model import RiskTerrainModel
    from rtm.result import ModelFactor, RTMResult
    from rtm.spec import StudySpec
    from rtm.study import Study, build_study_candidates, load_study
    from rtm.synthetic import generate_city
    from rtm.validation import temporal_validation, validate, validate_run


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"rtm.{name}")
    else:
        raise AttributeError(f"module 'rtm' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
