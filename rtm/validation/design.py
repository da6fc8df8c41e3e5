"""The challengers' design: how the risk + exposure model and the forest are fitted.

Both challengers are fitted on the fit period only (no test-period input is involved).
With a period per training event (e.g. month) spanning at least 2 periods, the *lagged*
forecasting design is used (:func:`~rtm.validation.baselines.lag_split`): features of
the first half of the fit period explain the events of the second half, and the
surfaces are predicted from the same features of the most recent window of the same
length. Without periods, the exposure is the smoothed fit-period events with each cell's
own events left out, and the models are fitted to the fit-period counts.

:func:`choose_model` picks among the challengers, the prior KDE and forest/KDE blends by
an inner validation inside the fit period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm.errors import FitError, ParameterError
from rtm.validation import baselines as bl
from rtm.validation import metrics as ev
from rtm.validation import models as ch

__all__ = [
    "BLEND_WEIGHTS",
    "MODEL_CHOICE_RULE",
    "ChallengerFits",
    "blend",
    "candidate_surfaces",
    "challenger_surfaces",
    "choose_model",
]

#: Blend weights of the forest (vs the prior KDE) tried by the inner model choice.
BLEND_WEIGHTS: tuple[float, ...] = (0.25, 0.5, 0.75)


MODEL_CHOICE_RULE = (
    "inner temporal validation inside the fit period only: the last third of the fit "
    "period's span is held out, the same lagged design is fitted on the rest (first half "
    "-> second half), and each candidate surface is scored on the held-out periods; the "
    "candidate with the highest AUC is chosen (ties: the simpler candidate, in the listed "
    "order). Test-period events are never used."
)


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
) -> ChallengerFits:
    """Fit the risk + exposure model and the forest on the fit period only.

    With ``train_periods`` (an integer period per training event, e.g. month) spanning
    at least 2 periods, the *lagged* design is used: the fit period's span is split by
    :func:`~rtm.validation.baselines.lag_split` (first half -> second half); features of the first
    half (:func:`~rtm.validation.baselines.lag_features`: own-cell events and events smoothed at 1
    and 2 block lengths, per period) explain the second half's events; the surfaces are
    predicted from the same features of the last half (the most recent window of the
    same length). Without periods, the exposure is the smoothed fit-period events with
    each cell's own events left out, and the models are fitted to the fit-period counts.
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
        fits, design_report, exposure_text = _lagged(context, x, y, periods, split, block_length)
    else:
        reason = (
            "the training events carry no period (date/month) information"
            if train_periods is None
            else "the fit period spans fewer than 2 periods"
        )
        fits, design_report, exposure_text = _same_period(context, x, y, counts, bandwidth, reason)
    fit, risk_exposure, forest, forest_design, groups = fits
    report = {
        "design": design_report,
        "risk_exposure_model": {
            "form": "Poisson log-linear: selected RTM factors + exposure"
            + (" + adjustment covariates" if covariates else "")
            + (" + offset" if offset is not None else ""),
            "exposure": exposure_text,
            "standard_errors": "robust (sandwich)",
            "table": fit.table(),
        },
        "forest": {
            "features": "every candidate layer + "
            + ("the lagged features" if design_report["kind"] == "lagged" else "exposure"),
            "settings": forest.settings,
        },
    }
    return ChallengerFits(
        surfaces={"risk_exposure": risk_exposure, "forest": forest.predict(forest_design)},
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


_Fits = tuple[Any, NDArray[np.float64], Any, NDArray[np.float64], list[str]]


def _lagged(
    context: _Context,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    periods: NDArray[np.int64],
    split: bl.LagSplit,
    block_length: float,
) -> tuple[_Fits, dict[str, Any], str]:
    """The lagged design: earlier features explain later events; recent features predict."""
    grid, candidates = context.grid, context.candidates
    env, env_names = context.environment

    def window(span: tuple[int, ...]) -> dict[str, NDArray[np.float64]]:
        keep = np.isin(periods, span)
        return bl.lag_features(
            grid, x[keep], y[keep], n_periods=len(span), block_length=block_length
        )

    fit_features, predict_features = window(split.earlier), window(split.recent)
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
    fit = ch.fit_exposure_model(
        env, env_names, outcome, log_fit, covariates=context.covariates, offset=context.offset
    )
    risk_exposure = fit.predict(
        np.column_stack([env, *log_pred.values(), *context.static]), context.offset
    )
    forest_fit_design = np.column_stack([candidates.values, *fit_features.values()])
    forest_design = np.column_stack([candidates.values, *predict_features.values()])
    groups = [c.factor for c in candidates.candidates] + feature_names
    forest = ch.fit_forest(
        forest_fit_design,
        outcome,
        feature_names=list(candidates.names) + feature_names,
        groups=groups,
        seed=context.seed,
    )
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
    return (fit, risk_exposure, forest, forest_design, groups), design_report, exposure_text


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
    fit = ch.fit_exposure_model(
        env, env_names, counts, exposure, covariates=context.covariates, offset=context.offset
    )
    risk_exposure = fit.predict(np.column_stack([env, exposure, *context.static]), context.offset)
    forest_design = np.column_stack([candidates.values, exposure])
    groups = [c.factor for c in candidates.candidates] + ["exposure"]
    forest = ch.fit_forest(
        forest_design,
        counts,
        feature_names=list(candidates.names) + ["exposure"],
        groups=groups,
        seed=context.seed,
    )
    design_report = {
        "kind": "same-period",
        "rule": "fallback: " + reason + "; the exposure is built from the same events the "
        "models are fitted to, each cell's own events left out",
    }
    exposure_text = (
        "log(1 + training events kernel-smoothed around the cell (same kernel and radius "
        "as the KDE baseline), each cell's own events left out)"
    )
    return (fit, risk_exposure, forest, forest_design, groups), design_report, exposure_text


def _share(values: ArrayLike) -> NDArray[np.float64]:
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, None)
    total = v.sum()
    return v / total if total > 0 else np.full(v.shape, 1.0 / max(v.size, 1))


def blend(forest: ArrayLike, kde: ArrayLike, weight: float) -> NDArray[np.float64]:
    """``weight x forest share + (1 - weight) x KDE share`` (each surface scaled to sum 1)."""
    return float(weight) * _share(forest) + (1.0 - float(weight)) * _share(kde)


def candidate_surfaces(
    fits: ChallengerFits, kde: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    """The surfaces the inner choice compares: challengers, prior KDE and forest/KDE blends."""
    out = {
        "risk_exposure": fits.surfaces["risk_exposure"],
        "forest": fits.surfaces["forest"],
        "prior_kde": kde,
    }
    for w in BLEND_WEIGHTS:
        out[f"forest+kde w={w:g}"] = blend(fits.surfaces["forest"], kde, w)
    return out


def choose_model(
    fitted: Any,
    train_x: ArrayLike,
    train_y: ArrayLike,
    train_periods: ArrayLike | None,
    *,
    block_length: float,
    bandwidth: float,
    covariates: Mapping[str, ArrayLike] | None = None,
    offset: ArrayLike | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Pick the best challenger (or forest/KDE blend) by inner temporal validation.

    Only fit-period events are used (see :data:`MODEL_CHOICE_RULE`). Returns the
    ``model_choice`` report: ``chosen`` (None when the fit period has no periods or is
    shorter than 3), ``candidates`` (inner AUC and capture@10% of each) and the rule.
    """
    rule = {"rule": MODEL_CHOICE_RULE, "criterion": "inner AUC"}
    if train_periods is None:
        return {**rule, "chosen": None, "reason": "the training events carry no period"}
    periods = np.asarray(train_periods, dtype=np.int64).ravel()
    outer = bl.lag_split(periods, parts=3)
    if outer is None:
        return {**rule, "chosen": None, "reason": "the fit period spans fewer than 3 periods"}
    holdout = outer.recent  # the last n // 3 periods
    x = np.asarray(train_x, dtype=np.float64).ravel()
    y = np.asarray(train_y, dtype=np.float64).ravel()
    inner = periods < holdout[0]
    scored = np.isin(periods, holdout)
    held, _ = bl.counts_in_cells(fitted.grid, x[scored], y[scored])
    if held.sum() <= 0 or not inner.any():
        return {**rule, "chosen": None, "reason": "no event in the inner fit or held-out periods"}
    fits = challenger_surfaces(
        fitted,
        x[inner],
        y[inner],
        block_length=block_length,
        bandwidth=bandwidth,
        train_periods=periods[inner],
        covariates=covariates,
        offset=offset,
        seed=seed,
    )
    kde = bl.quartic_density(fitted.grid, x[inner], y[inner], bandwidth)
    scores = {}
    for name, surface in candidate_surfaces(fits, kde).items():
        scores[name] = {
            "auc": ev.auc(surface, held),
            "capture@10%": float(ev.capture(surface, held, [0.1])[0]),
        }
    chosen = max(scores, key=lambda k: scores[k]["auc"])  # first maximum = simpler
    return {
        **rule,
        "inner_fit_periods": sorted({int(p) for p in periods[inner]}),
        "inner_design": fits.report["design"].get("rule"),
        "held_out_periods": list(holdout),
        "held_out_events": int(held.sum()),
        "candidates": scores,
        "chosen": chosen,
        "note": "the risk + exposure candidate uses the factors RTM selected on the whole "
        "fit period (held-out periods included), which can only favour it",
    }
