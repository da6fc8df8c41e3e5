"""Validation: does the map predict later crime, and does it beat the obvious alternatives.

One owner, one entry point: :func:`validate` scores a fitted surface
(:class:`FittedSurface`, from an analysis in memory or a run folder) against test events
(:class:`TestEvents`), beside the prior-period baselines and the challengers, on the
same cells. ``rtm analyze --test-crimes``, ``rtm validate``, ``rtm validate-temporal``
and ``rtm batch`` all run it.

* :mod:`rtm.validation.metrics`: capture, PAI, PEI, RRI, AUC (ties pro rata), the
  registry of metrics;
* :mod:`rtm.validation.baselines`: prior counts, quartic KDE, lagged features;
* :mod:`rtm.validation.models`: the challenger models (risk + exposure, random forest);
* :mod:`rtm.validation.design`: how the challengers are fitted, and the inner choice;
* :mod:`rtm.validation.inputs`, :mod:`rtm.validation.workflow`,
  :mod:`rtm.validation.report`: the inputs, the entry point, the result;
* :mod:`rtm.validation.temporal`: rolling-origin windows.
"""

from rtm.validation.inputs import FittedSurface, TestEvents, check_test_events
from rtm.validation.report import Validation, compare
from rtm.validation.temporal import rolling_windows, summarize_folds, temporal_validation
from rtm.validation.workflow import validate, validate_run

__all__ = [
    "FittedSurface",
    "TestEvents",
    "Validation",
    "check_test_events",
    "compare",
    "rolling_windows",
    "summarize_folds",
    "temporal_validation",
    "validate",
    "validate_run",
]
