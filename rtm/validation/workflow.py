"""The one entry point of validation: a fitted surface against test events.

:func:`validate` is what ``rtm analyze --test-crimes``, ``rtm validate``,
``rtm validate-temporal`` and ``rtm batch`` all run: the RTM surface, the prior-period
baselines (counts and kernel density) and, unless turned off, the challengers (risk +
exposure and the random forest, with the inner model choice), scored on the same cells
and the same test events. :func:`validate_run` reads a run folder and a file of test
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
from rtm.validation import models as ch
from rtm.validation.design import candidate_surfaces, challenger_surfaces, choose_model
from rtm.validation.inputs import FittedSurface, TestEvents, check_test_events
from rtm.validation.patrol import score_patrol_places
from rtm.validation.report import Validation, compare

__all__ = ["validate", "validate_run"]

Progress = Callable[[str], None]


def validate(
    fitted: FittedSurface,
    test: TestEvents,
    *,
    challengers: bool = True,
    choose: bool = True,
    bandwidth: float | None = None,
    covariates: Mapping[str, ArrayLike] | None = None,
    offset: ArrayLike | None = None,
    progress: Progress | None = None,
) -> Validation:
    """Score a fitted surface, its challengers and the baselines on test events.

    Parameters
    ----------
    fitted : FittedSurface
        The fit (:meth:`FittedSurface.from_analysis` or :meth:`FittedSurface.from_run`).
    test : TestEvents
        The test events counted on its cells (:meth:`TestEvents.read`).
    challengers : bool
        Also fit and score the risk + exposure model and the random forest (they need
        the candidate layers; without them the report says why they were left out).
    choose : bool
        Run the inner model choice (needs periods on the training events).
    bandwidth : float, optional
        Quartic-kernel radius of the hot-spot baseline (default two blocks).
    covariates, offset : optional
        Adjustment covariates and a log offset for the risk + exposure model.
    progress : callable, optional
        Receives short progress messages.

    Returns
    -------
    Validation
        ``validation["auc"]``, ``validation.table()``, the capture curves.
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
    if challengers and fitted.candidates is not None:
        surfaces = _challengers(fitted, test, h, choose, covariates, offset, extra, bases, say)
    elif challengers:
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
    return compare(
        grid,
        test.counts,
        rtm_scores=fitted.rrs,
        factor_count=fitted.factor_count,
        baselines=bases,
        challengers=surfaces,
        extra=extra,
    )


def _challengers(
    fitted: FittedSurface,
    test: TestEvents,
    bandwidth: float,
    choose: bool,
    covariates: Mapping[str, ArrayLike] | None,
    offset: ArrayLike | None,
    extra: dict[str, Any],
    bases: dict[str, NDArray[np.float64]],
    say: Progress,
) -> dict[str, NDArray[np.float64]]:
    """Fit the challengers (and the inner choice); their surfaces, their report in ``extra``."""
    common: dict[str, Any] = {
        "block_length": fitted.block_length,
        "bandwidth": bandwidth,
        "covariates": covariates,
        "offset": offset,
        "seed": fitted.seed,
    }
    fits = challenger_surfaces(
        fitted, fitted.train_x, fitted.train_y, train_periods=fitted.train_periods, **common
    )
    surfaces = dict(fits.surfaces)
    say(f"validation: challengers fitted ({fits.report['design']['kind']} design)")
    extra["challenger_design"] = fits.report["design"]
    extra["risk_exposure_model"] = fits.report["risk_exposure_model"]
    extra["forest"] = {
        **fits.report["forest"],
        "permutation_importance": ch.permutation_importance_by_group(
            fits.forest_predict,
            fits.forest_design,
            test.counts,
            fits.forest_groups,
            n_repeats=3,
            seed=fitted.seed,
        ),
        "importance_measure": "fall in test-period AUC when the factor's columns are "
        "permuted together (mean of 3 permutations)",
    }
    if choose:
        choice = choose_model(
            fitted, fitted.train_x, fitted.train_y, fitted.train_periods, **common
        )
        extra["model_choice"] = choice
        if choice.get("chosen"):
            surfaces["chosen"] = candidate_surfaces(fits, bases["prior_kde"])[choice["chosen"]]
            say(f"validation: inner validation chose {choice['chosen']}")
    return surfaces


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
        Also score the risk + exposure model and the random forest.
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
        fitted, test, challengers=challengers, bandwidth=bandwidth, progress=progress
    )
    if out is not None:
        target = Path(out)
        validation.write(
            target, plot=target.with_name(target.stem + "_capture.png"), overwrite=overwrite
        )
    return validation
