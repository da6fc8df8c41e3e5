"""Validation: does the map predict later crime, and does it beat the obvious alternatives.

One owner, one entry point: :func:`validate` scores a fitted surface
(:class:`FittedSurface`, from an analysis in memory or a run folder) against test events
(:class:`TestEvents`), beside the prior-period baselines and the challengers, on the
same cells. ``rtm analyze --test-crimes``, ``rtm validate``, ``rtm validate-temporal``
and ``rtm batch`` all run it.

* :mod:`rtm.validation.metrics`: capture, PAI, PEI, RRI, AUC (ties pro rata), the
  registry of metrics;
* :mod:`rtm.validation.baselines`: prior counts, quartic KDE, lagged features;
* :mod:`rtm.validation.hotspots`, :mod:`rtm.validation.sepp`: the KDE ladder,
  prospective hot-spotting, the self-exciting point process;
* :mod:`rtm.validation.models`, :mod:`rtm.validation.boost`: the challenger models
  (risk + exposure, random forest, gradient-boosted Poisson trees);
* :mod:`rtm.validation.design`: how the challengers are fitted;
* :mod:`rtm.validation.forecast`: the inner validation and the forecast;
* :mod:`rtm.validation.lift`: the forecast's lift over the best baseline;
* :mod:`rtm.validation.inputs`, :mod:`rtm.validation.workflow`,
  :mod:`rtm.validation.report`: the inputs, the entry point, the result;
* :mod:`rtm.validation.temporal`: rolling-origin windows.
"""

from rtm.validation.inputs import FittedSurface, TestEvents, check_test_events
from rtm.validation.report import Validation, compare
from rtm.validation.temporal import rolling_windows, summarize_folds, temporal_validation
from rtm.validation.workflow import forecast_for, validate, validate_run

__all__ = [
    "FittedSurface",
    "TestEvents",
    "Validation",
    "check_test_events",
    "compare",
    "forecast_for",
    "rolling_windows",
    "summarize_folds",
    "temporal_validation",
    "validate",
    "validate_run",
]
