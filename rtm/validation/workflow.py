"""The one entry point of validation: a fitted surface against test events.

:func:`validate` is what ``rtm analyze --test-crimes``, ``rtm validate``,
``rtm validate-temporal`` and ``rtm batch`` all run: the RTM surface, the forecast
(:func:`forecast_for`, the recipe chosen by inner validation), the baselines (prior
counts, the KDE ladder, prospective hot-spotting, the self-exciting process) and,
unless turned off, the challengers (risk + exposure, the random forest, the boosted
trees), scored on the same cells and the same test events, with the forecast's lift
over the best baseline and its interval. :func:`validate_run` reads a run folder and a file of test
events first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm.filters import WhereClause
from rtm.validation import baselines as bl
from rtm.validation import boost as gb
from rtm.validation import forecast as fc
from rtm.validation import models as ch
from rtm.validation.design import ChallengerFits
from rtm.validation.forecast import Forecast
from rtm.validation.hotspots import LADDER_BLOCKS
from rtm.validation.inputs import FittedSurface, TestEvents, check_test_events
from rtm.validation.lift import lift_report
from rtm.validation.patrol import score_patrol_places
from rtm.validation.report import Validation, compare

__all__ = ["CHALLENGERS", "forecast_for", "validate", "validate_run"]

Progress = Callable[[str], None]


def forecast_for(
    fitted: FittedSurface,
    *,
    challengers: bool = True,
    bandwidth: float | None = None,
    covariates: Mapping[str, ArrayLike] | None = None,
    offset: ArrayLike | None = None,
    progress: Progress | None = None,
) -> Forecast:
    """The forecast of a fit: the recipe chosen by inner validation, on all fit events.

    Uses fit-period events only (:mod:`rtm.validation.forecast`); ``rtm analyze
    --forecast`` writes it without test events, and :func:`validate` scores it.
    """
    say = progress or (lambda message: None)
    h = bl.default_bandwidth(fitted.block_length) if bandwidth is None else float(bandwidth)
    common: dict[str, Any] = {
        "block_length": fitted.block_length,
        "bandwidth": h,
        "covariates": covariates,
        "offset": offset,
        "seed": fitted.seed,
    }
    use = challengers and fitted.candidates is not None
    continuous = None
    if use and fitted.factors:
        continuous = gb.continuous_layers(fitted.grid, fitted.factors, fitted.block_length)
    forecast = fc.make_forecast(
        fitted,
        challengers=use,
        common=common,
        continuous=continuous,
        times=fc.event_times(fitted),
        progress=progress,
    )
    say(f"forecast: inner validation chose {forecast.recipe['name']}")
    return forecast


#: The forecast's candidate surfaces that are challengers (the rest are baselines).
CHALLENGERS = ("risk_exposure", "forest", "gbm")


def validate(
    fitted: FittedSurface,
    test: TestEvents,
    *,
    challengers: bool = True,
    choose: bool = True,
    bandwidth: float | None = None,
    covariates: Mapping[str, ArrayLike] | None = None,
    offset: ArrayLike | None = None,
    forecast: Forecast | None = None,
    importance: bool = False,
    progress: Progress | None = None,
) -> Validation:
    """Score a fitted surface, the forecast, its challengers and the baselines on test events.

    Parameters
    ----------
    fitted : FittedSurface
        The fit (:meth:`FittedSurface.from_analysis` or :meth:`FittedSurface.from_run`).
    test : TestEvents
        The test events counted on its cells (:meth:`TestEvents.read`).
    challengers : bool
        Also fit and score the risk + exposure model, the random forest and the boosted
        trees (they need the candidate layers; without them the report says why they
        were left out, and the forecast chooses among the baselines).
    choose : bool
        Make the forecast (the inner choice among baselines, challengers and blends).
    bandwidth : float, optional
        Quartic-kernel radius of the ``prior_kde`` baseline (default two blocks).
    covariates, offset : optional
        Adjustment covariates and a log offset for the risk + exposure model.
    forecast : Forecast, optional
        A forecast already made from this fit (:func:`forecast_for`).
    importance : bool
        Also measure the forest's permutation importance per factor on the test events
        (three permutations per factor: about as long as the rest of the validation).
    progress : callable, optional
        Receives short progress messages.

    Returns
    -------
    Validation
        ``validation["auc"]``, ``validation["forecast"]``, ``validation.table()``.
    """
    say = progress or (lambda message: None)
    check_test_events(fitted, test)
    grid = fitted.grid
    h = bl.default_bandwidth(fitted.block_length) if bandwidth is None else float(bandwidth)
    extra: dict[str, Any] = {
        "bandwidth": {"value": h, "rule": bl.bandwidth_rule(fitted.block_length, h, grid.unit)},
        "training_events": int(np.asarray(fitted.train_counts).sum()),
    }
    bases = bl.baseline_surfaces(
        grid, fitted.train_counts, fitted.train_x, fitted.train_y, bandwidth=h
    )
    surfaces: dict[str, NDArray[np.float64]] = {}
    if forecast is None and (choose or challengers):
        forecast = forecast_for(
            fitted,
            challengers=challengers,
            bandwidth=bandwidth,
            covariates=covariates,
            offset=offset,
            progress=progress,
        )
    if forecast is not None:
        for name, values in forecast.surfaces.items():
            if name in CHALLENGERS:
                surfaces[name] = values
            elif name != "prior_counts":
                bases[name] = values
        bases["kde_inner"] = forecast.surfaces[forecast.recipe["kde_radius"]]
        extra["baseline_notes"] = _baseline_notes(forecast)
        if forecast.fits is not None:
            if importance:
                say("validation: permutation importance of the forest's factors")
            _challenger_report(extra, forecast.fits, test, fitted.seed, importance)
            say(f"validation: challengers fitted ({extra['challenger_design']['kind']} design)")
        extra["model_choice"] = forecast.choice
    if challengers and (forecast is None or forecast.fits is None):
        extra["challengers_note"] = fitted.extra.get(
            "challengers_note", "the candidate layers are not available"
        )
    if fitted.rrs is not None:
        extra["patrol_places"] = score_patrol_places(
            fitted, test, bases["prior_kde"], harm_table=fitted.extra.get("harm_table")
        )
    extra.update(
        test_file=test.source,
        test_where=[clause.label for clause in test.where],
        test_events_outside=test.outside,
        **{k: v for k, v in fitted.extra.items() if k != "challengers_note"},
    )
    validation = compare(
        grid,
        test.counts,
        rtm_scores=fitted.rrs,
        factor_count=fitted.factor_count,
        baselines=bases,
        challengers=surfaces,
        forecast=None if forecast is None else (forecast.surface, forecast.recipe),
        extra=extra,
    )
    if forecast is not None:
        validation.report["lift"] = lift_report(
            grid,
            test.counts,
            forecast.surface,
            bases,
            block_length=fitted.block_length,
            seed=fitted.seed,
        )
    return validation


def _baseline_notes(forecast: Forecast) -> dict[str, Any]:
    return {
        "kde_ladder": "quartic KDE at "
        + ", ".join(f"{b:g}" for b in LADDER_BLOCKS)
        + " block lengths (kde_<k>b); kde_inner is the radius the inner validation chose ("
        + forecast.recipe["kde_radius"]
        + "); prior_kde is the fixed radius of the bandwidth rule",
        "promap": "prospective hot-spotting: events weighted 1 / (1 + periods before the "
        "last fit period), quartic kernel at 1 and 2 block lengths",
        **({"sepp": forecast.reports["sepp"]} if "sepp" in forecast.reports else {}),
    }


def _challenger_report(
    extra: dict[str, Any], fits: ChallengerFits, test: TestEvents, seed: int, importance: bool
) -> None:
    """The challengers' part of the report (permutation importance on the test events)."""
    extra["challenger_design"] = fits.report["design"]
    extra["risk_exposure_model"] = fits.report["risk_exposure_model"]
    extra["gbm"] = fits.report["gbm"]
    if not importance:
        extra["forest"] = {
            **fits.report["forest"],
            "importance_measure": "not measured (--importance measures the fall in test-period "
            "AUC when each factor's columns are permuted together)",
        }
        return
    extra["forest"] = {
        **fits.report["forest"],
        "permutation_importance": ch.permutation_importance_by_group(
            fits.forest_predict,
            fits.forest_design,
            test.counts,
            fits.forest_groups,
            n_repeats=3,
            seed=seed,
        ),
        "importance_measure": "fall in test-period AUC when the factor's columns are "
        "permuted together (mean of 3 permutations)",
    }


def validate_run(
    run_dir: str | Path,
    test_events: str | Path,
    *,
    where: Sequence[str | WhereClause] = (),
    x_column: str | None = None,
    y_column: str | None = None,
    events_crs: str | None = None,
    bandwidth: float | None = None,
    challengers: bool = True,
    importance: bool = False,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Validation:
    """Score a run folder's risk surface against later events (``rtm validate``).

    The test events are read like the training events and counted inside the run's own
    study area (features.gpkg); the KDE baseline uses the run's own training events; the
    challengers use the candidate layers rebuilt from the run's specification. With
    ``out``, the JSON is written there and the capture-curve PNG beside it
    (``NAME_capture.png``), atomically.

    Parameters
    ----------
    run_dir : path
        A run folder written by ``rtm analyze`` (or :func:`rtm.api.analyze` with ``out``).
    test_events : path
        The later events (any format :func:`rtm.api.analyze` reads).
    where : sequence of str
        Filters of the test events, ``COL=V1,V2`` or ``COL=LO..HI``.
    x_column, y_column, events_crs : str, optional
        CSV coordinate columns and their CRS (default: detected).
    bandwidth : float, optional
        Radius of the hot-spot baseline's quartic kernel (default two blocks).
    challengers : bool
        Also score the risk + exposure model, the random forest and the boosted trees.
    importance : bool
        Also measure the forest's permutation importance per factor.
    out : path, optional
        Where to write the JSON (and the capture-curve PNG beside it).
    overwrite : bool
        Replace existing outputs.
    progress : callable, optional
        Receives short progress messages.
    """
    from rtm.errors import InputError

    say = progress or (lambda message: None)
    fitted = FittedSurface.from_run(run_dir, challengers=challengers, progress=progress)
    if fitted.rrs is None:
        raise InputError(
            f"run folder {run_dir}: the model found no significant factor, so there is no "
            "risk surface to validate"
        )
    test = TestEvents.read(
        fitted,
        test_events,
        where=where,
        x_column=x_column,
        y_column=y_column,
        events_crs=events_crs,
    )
    say(f"test events: {int(test.counts.sum()):,} in the study area, {test.outside:,} outside")
    validation = validate(
        fitted,
        test,
        challengers=challengers,
        bandwidth=bandwidth,
        importance=importance,
        progress=progress,
    )
    if out is not None:
        target = Path(out)
        validation.write(
            target, plot=target.with_name(target.stem + "_capture.png"), overwrite=overwrite
        )
    return validation
