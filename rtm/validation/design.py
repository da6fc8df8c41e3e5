"""The challengers' design: how the risk + exposure model and the forest are fitted.

Both challengers are fitted on the fit period only (no test-period input is involved).
With a period per training event (e.g. month) spanning at least 2 periods, the *lagged*
forecasting design is used (:func:`~rtm.validation.baselines.lag_split`): features of
the first half of the fit period explain the events of the second half, and the
surfaces are predicted from the same features of the most recent window of the same
length. Without periods, the exposure is the smoothed fit-period events with each cell's
own events left out, and the models are fitted to the fit-period counts.

:mod:`rtm.validation.forecast` picks among the baselines, the challengers and their
blends by an inner validation inside the fit period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm.errors import FitError, ParameterError
from rtm.validation import baselines as bl
from rtm.validation import boost as gb
from rtm.validation import models as ch

__all__ = ["ChallengerFits", "challenger_surfaces", "start_challengers"]


@dataclass(frozen=True, eq=False)
class ChallengerFits:
    """The challengers' surfaces (no test-period input is involved in making them).

    Attributes
    ----------
    surfaces : dict
        ``{name: predicted score per cell}`` for ``risk_exposure`` and ``forest``.
    report : dict
        JSON-ready description: ``design``, ``risk_exposure_model``, ``forest``.
    forest_predict : callable
        The fitted forest's predict function (for permutation importance).
    forest_design : numpy.ndarray
        The design the forest's surface was predicted from.
    forest_groups : list of str
        Factor (or exposure feature) of each forest column.
    """

    surfaces: dict[str, NDArray[np.float64]]
    report: dict[str, Any] = field(repr=False)
    forest_predict: Callable[[Any], NDArray[np.float64]] = field(repr=False)
    forest_design: NDArray[np.float64] = field(repr=False)
    forest_groups: list[str] = field(repr=False)


def _parts(fitted: Any) -> tuple[Any, Any, NDArray[np.float64], dict[str, NDArray]]:
    """Grid, candidates, fit-period counts and selected layers of a fit or a run surface."""
    counts = getattr(fitted, "train_counts", None)
    if counts is None:
        counts = fitted.counts
    selected = getattr(fitted, "selected", None)
    if selected is None:
        selected = fitted.selected_values()
    if fitted.candidates is None:
        raise ParameterError("the challengers need the candidate layers of the fit")
    return fitted.grid, fitted.candidates, np.asarray(counts), dict(selected)


def _environment(
    selected: dict[str, NDArray], n_cells: int
) -> tuple[NDArray[np.float64], list[str]]:
    if not selected:
        return np.zeros((n_cells, 0)), []
    return np.column_stack([v.astype(np.float64) for v in selected.values()]), list(selected)


def _static_columns(covariates: Mapping[str, ArrayLike] | None) -> list[NDArray[np.float64]]:
    return [np.asarray(v, dtype=float).reshape(-1, 1) for v in (covariates or {}).values()]


def challenger_surfaces(
    fitted: Any, train_x: ArrayLike, train_y: ArrayLike, **options: Any
) -> ChallengerFits:
    """Fit the risk + exposure model, the forest and the boosted trees on the fit period only.

    :func:`start_challengers` without a lane, waited for (``options`` are its keywords).
    """
    return start_challengers(fitted, train_x, train_y, **options)()


def start_challengers(
    fitted: Any,
    train_x: ArrayLike,
    train_y: ArrayLike,
    *,
    block_length: float,
    bandwidth: float,
    train_periods: ArrayLike | None = None,
    covariates: Mapping[str, ArrayLike] | None = None,
    offset: ArrayLike | None = None,
    seed: int = 0,
    continuous: tuple[NDArray[np.float64], list[str]] | None = None,
    lane: Executor | None = None,
) -> Callable[[], ChallengerFits]:
    """Start the challengers on the fit period only; a function that waits for their fits.

    With ``train_periods`` (an integer period per training event, e.g. month) spanning
    at least 2 periods, the *lagged* design is used: the fit period's span is split by
    :func:`~rtm.validation.baselines.lag_split` (first half -> second half); features of the first
    half (:func:`~rtm.validation.baselines.lag_features`: own-cell events and events smoothed at 1
    and 2 block lengths, per period) explain the second half's events; the surfaces are
    predicted from the same features of the last half (the most recent window of the
    same length). Without periods, the exposure is the smoothed fit-period events with
    each cell's own events left out, and the models are fitted to the fit-period counts.

    The risk + exposure model and the boosted trees are fitted in the calling thread
    while ``lane`` (a one-thread executor) grows the forest on one core; the returned
    function waits for the forest and gives the fits. Without a lane the forest is grown
    here, on every core. The forest is the same either way (each tree has its own seed).
    """
    grid, candidates, counts, selected = _parts(fitted)
    x = np.asarray(train_x, dtype=np.float64).ravel()
    y = np.asarray(train_y, dtype=np.float64).ravel()
    context = _Context(
        grid=grid,
        candidates=candidates,
        environment=_environment(selected, grid.n_active),
        static=_static_columns(covariates),
        covariates=covariates,
        offset=offset,
        seed=seed,
        continuous=continuous if continuous is not None else (np.zeros((grid.n_active, 0)), []),
        block_length=float(block_length),
        lane=lane,
    )
    split = periods = None
    if train_periods is not None:
        periods = np.asarray(train_periods, dtype=np.int64).ravel()
        if periods.shape != x.shape:
            raise ParameterError(
                f"train_periods has {periods.size} values; there are {x.size} training events"
            )
        split = bl.lag_split(periods)
    if split is not None and periods is not None:
        fits, design_report, exposure_text = _lagged(context, x, y, periods, split)
    else:
        reason = (
            "the training events carry no period (date/month) information"
            if train_periods is None
            else "the fit period spans fewer than 2 periods"
        )
        fits, design_report, exposure_text = _same_period(context, x, y, counts, bandwidth, reason)
    fit, risk_exposure, grow, forest_design, groups, boosted = fits
    return lambda: _assemble(
        fit,
        risk_exposure,
        grow(),
        forest_design,
        groups,
        boosted,
        design_report,
        exposure_text,
        bool(covariates),
        offset is not None,
    )


def _assemble(
    fit: Any,
    risk_exposure: NDArray[np.float64] | None,
    forest: ch.ForestFit,
    forest_design: NDArray[np.float64],
    groups: list[str],
    boosted: tuple[NDArray[np.float64], dict[str, Any]],
    design_report: dict[str, Any],
    exposure_text: str,
    covariates: bool,
    offset: bool,
) -> ChallengerFits:
    report = {
        "design": design_report,
        "risk_exposure_model": {
            "form": "Poisson log-linear: selected RTM factors + exposure"
            + (" + adjustment covariates" if covariates else "")
            + (" + offset" if offset else ""),
            "exposure": exposure_text,
            "standard_errors": "robust (sandwich)",
            **(
                {"table": fit.table()}
                if risk_exposure is not None
                else {"not_fitted": fit + "; the forecast chooses among the others"}
            ),
        },
        "forest": {
            "features": "every candidate layer + "
            + ("the lagged features" if design_report["kind"] == "lagged" else "exposure"),
            "settings": forest.settings,
        },
        "gbm": {
            "features": "continuous factor layers (distance to the nearest feature capped at "
            "the KDE ladder's top, kernel density at each ladder radius) + every candidate "
            "layer that is not a threshold of one of them (a binary proximity or density "
            "layer is: the trees can split the continuous layer at the same cut) + exposure "
            "features ("
            + (
                "lagged own-cell counts, rings, KDE at the ladder radii, periods since the "
                "last event within one block"
                if design_report["kind"] == "lagged"
                else "the leave-own-cell-out exposure"
            )
            + ")",
            "settings": boosted[1],
            "caution": "part of its accuracy can be location memory (fine layers singling out "
            "the places where crime has always been), not an environmental effect",
        },
    }
    return ChallengerFits(
        surfaces={
            **({"risk_exposure": risk_exposure} if risk_exposure is not None else {}),
            "forest": forest.predict(forest_design),
            "gbm": boosted[0],
        },
        report=report,
        forest_predict=forest.predict,
        forest_design=forest_design,
        forest_groups=groups,
    )


@dataclass(frozen=True, eq=False)
class _Context:
    """What both designs share: the grid, the layers, the adjustments."""

    grid: Any
    candidates: Any
    environment: tuple[NDArray[np.float64], list[str]]
    static: list[NDArray[np.float64]]
    covariates: Mapping[str, ArrayLike] | None
    offset: ArrayLike | None
    seed: int
    continuous: tuple[NDArray[np.float64], list[str]]
    block_length: float
    lane: Executor | None = None

    def forest(
        self,
        design: NDArray[np.float64],
        outcome: NDArray[Any],
        names: list[str],
        groups: list[str],
    ) -> Callable[[], ch.ForestFit]:
        """Grow the forest, on the lane when there is one; a function giving the fit."""
        settings = {"feature_names": names, "groups": groups, "seed": self.seed}
        if self.lane is not None:
            return self.lane.submit(ch.fit_forest, design, outcome, n_jobs=1, **settings).result
        fit = ch.fit_forest(design, outcome, **settings)
        return lambda: fit

    def boosted(
        self,
        fit_features: dict[str, NDArray[np.float64]],
        outcome: NDArray[np.float64],
        predict_features: dict[str, NDArray[np.float64]],
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """Fit the boosted trees; their surface and settings."""
        values, names = self.continuous
        keep = ~gb.thresholds_of(self.candidates.candidates, names, self.block_length)
        static = [self.candidates.values[:, keep], values]
        model = gb.fit_boost(
            np.column_stack([*static, *fit_features.values()]),
            outcome,
            feature_names=[*np.asarray(self.candidates.names)[keep], *names, *fit_features],
            seed=self.seed,
        )
        surface = model.predict(np.column_stack([*static, *predict_features.values()]))
        return surface, model.settings


def _exposure_fit(
    context: _Context, outcome: NDArray[Any], exposure: Any, predict_design: NDArray[np.float64]
) -> tuple[Any, NDArray[np.float64] | None]:
    """The risk + exposure fit and its surface; ``(reason, None)`` when it cannot be fitted.

    E.g. a window whose counts separate a layer perfectly: the other challengers go on.
    """
    env, env_names = context.environment
    try:
        fit = ch.fit_exposure_model(
            env, env_names, outcome, exposure, covariates=context.covariates, offset=context.offset
        )
    except FitError as exc:
        return str(exc), None
    return fit, fit.predict(predict_design, context.offset)


_Fits = tuple[
    Any, NDArray[np.float64] | None, Any, NDArray[np.float64], list[str], tuple[NDArray, dict]
]


def _lagged(
    context: _Context,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    periods: NDArray[np.int64],
    split: bl.LagSplit,
) -> tuple[_Fits, dict[str, Any], str]:
    """The lagged design: earlier features explain later events; recent features predict."""
    grid, candidates = context.grid, context.candidates
    env, env_names = context.environment
    block_length = context.block_length

    def window(span: tuple[int, ...]) -> dict[str, NDArray[np.float64]]:
        keep = np.isin(periods, span)
        return gb.exposure_features(
            grid,
            x[keep],
            y[keep],
            n_periods=len(span),
            block_length=block_length,
            periods=periods[keep],
            last_period=span[-1],
        )

    boost_fit, boost_predict = window(split.earlier), window(split.recent)
    lagged = ["own_cell", *(k for k in boost_fit if k.startswith("ring_"))]
    fit_features = {k: boost_fit[k] for k in lagged}
    predict_features = {k: boost_predict[k] for k in lagged}
    later = np.isin(periods, split.later)
    outcome = bl.counts_in_cells(grid, x[later], y[later])[0].astype(np.float64)
    if outcome.sum() <= 0:
        raise FitError(
            f"no event in the later part of the fit period ({split.describe()}): "
            "cannot fit the lagged challengers"
        )
    feature_names = list(fit_features)
    log_fit = {f"log1p_{k}": np.log1p(v) for k, v in fit_features.items()}
    log_pred = {f"log1p_{k}": np.log1p(v) for k, v in predict_features.items()}
    forest_fit_design = np.column_stack([candidates.values, *fit_features.values()])
    forest_design = np.column_stack([candidates.values, *predict_features.values()])
    groups = [c.factor for c in candidates.candidates] + feature_names
    forest = context.forest(
        forest_fit_design, outcome, list(candidates.names) + feature_names, groups
    )
    fit, risk_exposure = _exposure_fit(
        context, outcome, log_fit, np.column_stack([env, *log_pred.values(), *context.static])
    )
    boosted = context.boosted(boost_fit, outcome, boost_predict)
    design_report: dict[str, Any] = {
        "kind": "lagged",
        "periods": {
            "earlier": list(split.earlier),
            "later": list(split.later),
            "recent": list(split.recent),
        },
        "rule": "the fit period's span (first..last period, gaps included) is split at "
        "n // 2: features of the first n // 2 periods explain the events of the rest; "
        "the test period is predicted from the same features of the last n // 2 "
        "periods (the most recent window of the same length). " + split.describe(),
        "features": {
            "own_cell": "the window's events in the cell itself, per period",
            **{
                name: f"the window's events kernel-smoothed around the cell (quartic, "
                f"radius {name.split('_', 1)[1]}; = "
                f"{float(name.split('_', 1)[1]) / block_length:g} block lengths), the "
                "cell's own events left out, per period"
                for name in feature_names
                if name.startswith("ring_")
            },
        },
        "scaling": "events per period, so fitting and prediction windows of the same "
        "length share one scale",
        "outcome_events": int(outcome.sum()),
    }
    exposure_text = "log(1 + feature) for each lagged feature (see design)"
    fits = (fit, risk_exposure, forest, forest_design, groups, boosted)
    return fits, design_report, exposure_text


def _same_period(
    context: _Context,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    counts: NDArray[Any],
    bandwidth: float,
    reason: str,
) -> tuple[_Fits, dict[str, Any], str]:
    """Fallback without periods: leave-own-cell-out exposure, fitted on the same counts."""
    grid, candidates = context.grid, context.candidates
    env, env_names = context.environment
    exposure = bl.exposure_covariate(
        bl.smoothed_counts(grid, x, y, bandwidth, exclude_own_cell=True)
    )
    forest_design = np.column_stack([candidates.values, exposure])
    groups = [c.factor for c in candidates.candidates] + ["exposure"]
    forest = context.forest(forest_design, counts, list(candidates.names) + ["exposure"], groups)
    fit, risk_exposure = _exposure_fit(
        context, counts, exposure, np.column_stack([env, exposure, *context.static])
    )
    boosted = context.boosted({"exposure": exposure}, counts, {"exposure": exposure})
    design_report = {
        "kind": "same-period",
        "rule": "fallback: " + reason + "; the exposure is built from the same events the "
        "models are fitted to, each cell's own events left out",
    }
    exposure_text = (
        "log(1 + training events kernel-smoothed around the cell (same kernel and radius "
        "as the KDE baseline), each cell's own events left out)"
    )
    fits = (fit, risk_exposure, forest, forest_design, groups, boosted)
    return fits, design_report, exposure_text
