"""Validation workflow: score risk surfaces against later events, with baselines and challengers.

Three entry points:

* :func:`evaluate_models` (in memory): an :class:`~rtm.model.RTMResult` fitted on a
  training period, the training events and the test-period counts -> a
  :class:`Validation` comparing RTM, the prior-period baselines (counts, kernel density)
  and the challengers (risk + exposure, random forest) on the same cells and events.
* :func:`validate_run` (files): a run folder written by ``rtm analyze`` and a file of
  later events -> the same comparison for the run's risk surface and the baselines.
* :mod:`rtm.temporal` repeats :func:`evaluate_models` over rolling time windows.

Metrics are those of :mod:`rtm.evaluate` (ties shared pro rata).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm import baselines as bl
from rtm import evaluate as ev
from rtm._version import __version__
from rtm.errors import FitError, InputError, ParameterError
from rtm.grid import Grid

__all__ = [
    "BLEND_WEIGHTS",
    "CURVE_SHARES",
    "ChallengerFits",
    "Validation",
    "blend",
    "challenger_surfaces",
    "choose_model",
    "evaluate_models",
    "load_run",
    "score_surface",
    "validate_run",
]

#: Area shares at which capture curves are drawn.
CURVE_SHARES = np.linspace(0.0, 1.0, 401)


def _key(share: float) -> str:
    return f"{100 * share:g}"


def score_surface(
    scores: ArrayLike, events: ArrayLike, *, proportional: bool = True
) -> dict[str, Any]:
    """Every area metric and the AUC of one surface.

    Parameters
    ----------
    scores : array_like
        Score per cell (higher = riskier).
    events : array_like
        Test events per cell.
    proportional : bool
        Whether scores are proportional to predicted counts (then RRI is reported).
    """
    shares = ev.AREA_SHARES
    out: dict[str, Any] = {
        "auc": ev.auc(scores, events),
        "capture": dict(
            zip(map(_key, shares), ev.capture(scores, events, shares).tolist(), strict=True)
        ),
        "pai": dict(zip(map(_key, shares), ev.pai(scores, events, shares).tolist(), strict=True)),
        "pei": dict(zip(map(_key, shares), ev.pei(scores, events, shares).tolist(), strict=True)),
    }
    if proportional:
        out["rri"] = dict(
            zip(map(_key, shares), ev.rri(scores, events, shares).tolist(), strict=True)
        )
    out["distinct_scores"] = int(np.unique(np.asarray(scores)).size)
    return out


@dataclass(frozen=True, eq=False)
class Validation:
    """A validation: the JSON-ready report and the capture curves.

    Attributes
    ----------
    report : dict
        What ``validation.json`` holds: ``events``, ``auc``, ``capture``, ``pai``, ``pei``,
        ``rri`` (of the RTM surface), ``logistic``, ``baselines``, ``challengers``, ``rules``.
    curves : dict
        ``{label: (area_shares, capture_rates)}`` for the plot.
    """

    report: dict[str, Any]
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        """A key of :attr:`report` (``validation["auc"]``)."""
        return self.report[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A key of :attr:`report`, or ``default``."""
        return self.report.get(key, default)

    def table(self) -> list[dict[str, Any]]:
        """One row per surface: AUC and capture/PAI at each area share."""
        rows = [{"model": "rtm", **_flat(self.report)}]
        for group in ("challengers", "baselines"):
            for name, metrics in self.report.get(group, {}).items():
                rows.append({"model": name, **_flat(metrics)})
        return rows

    def write(
        self, path: str | Path, *, plot: str | Path | None = None, overwrite: bool = False
    ) -> list[Path]:
        """Write ``validation.json`` (and the capture-curve PNG), atomically."""
        from rtm.export.atomic import atomic_file, check_writable
        from rtm.export.plots import plot_capture_curves
        from rtm.export.run import write_json

        targets = [Path(path)] + ([Path(plot)] if plot is not None else [])
        for target in targets:
            check_writable(target, overwrite=overwrite)
        with atomic_file(path, overwrite=overwrite) as tmp:
            write_json(tmp, {"written_by": f"rtm {__version__}", **self.report})
            if plot is not None:
                with atomic_file(plot, overwrite=overwrite) as png:
                    plot_capture_curves(png, self.curves)
        return targets


def _flat(metrics: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"auc": metrics["auc"]}
    for share, value in metrics["capture"].items():
        row[f"capture@{share}%"] = value
    for share, value in metrics["pai"].items():
        row[f"pai@{share}%"] = value
    return row


def _curve(scores: ArrayLike, events: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    return CURVE_SHARES, ev.capture(scores, events, CURVE_SHARES)


def baseline_surfaces(
    grid: Grid,
    train_counts: ArrayLike,
    train_x: ArrayLike,
    train_y: ArrayLike,
    *,
    bandwidth: float,
) -> dict[str, NDArray[np.float64]]:
    """The prior-period baselines: counts per cell and the quartic kernel density."""
    return {
        "prior_counts": np.asarray(train_counts, dtype=np.float64),
        "prior_kde": bl.quartic_density(grid, train_x, train_y, bandwidth),
    }


def compare(
    grid: Grid,
    test_counts: ArrayLike,
    *,
    rtm_scores: ArrayLike | None,
    factor_count: ArrayLike | None,
    baselines: Mapping[str, ArrayLike],
    challengers: Mapping[str, ArrayLike] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Validation:
    """Score the RTM surface, the baselines and the challengers on the same test counts."""
    events = np.asarray(test_counts, dtype=np.float64)
    if events.shape != (grid.n_active,):
        raise ParameterError(
            f"test counts have shape {events.shape}; the grid has {grid.n_active} cells"
        )
    if events.sum() <= 0:
        raise InputError("no test event falls in the study area: nothing to validate against")
    significant = rtm_scores is not None
    scores = np.ones(grid.n_active) if rtm_scores is None else np.asarray(rtm_scores, dtype=float)
    report: dict[str, Any] = {
        "events": int(events.sum()),
        "cells": grid.n_active,
        "cells_with_events": int(np.count_nonzero(events)),
        "significant": significant,
        **score_surface(scores, events),
    }
    curves = {"RTM": _curve(scores, events)}
    report["logistic"] = None
    if factor_count is not None:
        try:
            report["logistic"] = {
                "covariate": "number of selected risk factors present in the cell "
                "(a protective factor present counts -1)",
                **ev.logistic_odds_ratio(factor_count, events).as_dict(),
            }
        except FitError as exc:
            report["logistic"] = {"error": str(exc)}
    report["challengers"] = {}
    for name, values in (challengers or {}).items():
        report["challengers"][name] = score_surface(values, events)
        curves[name] = _curve(values, events)
    report["baselines"] = {}
    for name, values in baselines.items():
        report["baselines"][name] = score_surface(values, events)
        curves[name] = _curve(values, events)
    curves["best possible"] = _curve(events, events)
    report["rules"] = {
        "ties": ev.TIE_RULE,
        "area": "each active cell counts as one unit of area",
        "auc": "cell has at least one test event; Mann-Whitney with tied pairs counted one half",
        "pei": "capture / the best capture any ranking reaches at the same area",
        "rri": "share of predicted risk / share of test events, in the same top cells",
    }
    report.update(extra or {})
    return Validation(report=report, curves=curves)


def factor_count_of(result: Any) -> NDArray[np.float64] | None:
    """Number of selected factors present per cell (protective factors count -1)."""
    values = result.selected_values()
    if not values:
        return None
    return np.sum([v.astype(np.float64) for v in values.values()], axis=0)


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


def _environment(result: Any) -> tuple[NDArray[np.float64], list[str]]:
    selected = result.selected_values()
    n = result.grid.n_active
    if not selected:
        return np.zeros((n, 0)), []
    return np.column_stack([v.astype(np.float64) for v in selected.values()]), list(selected)


def _static_columns(covariates: Mapping[str, ArrayLike] | None) -> list[NDArray[np.float64]]:
    return [np.asarray(v, dtype=float).reshape(-1, 1) for v in (covariates or {}).values()]


def challenger_surfaces(
    result: Any,
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
    :func:`rtm.baselines.lag_split` (first half -> second half); features of the first
    half (:func:`rtm.baselines.lag_features`: own-cell events and events smoothed at 1
    and 2 block lengths, per period) explain the second half's events; the surfaces are
    predicted from the same features of the last half (the most recent window of the
    same length). Without periods, the exposure is the smoothed fit-period events with
    each cell's own events left out, and the models are fitted to the fit-period counts.
    """
    from rtm import challengers as ch

    grid = result.grid
    x = np.asarray(train_x, dtype=np.float64).ravel()
    y = np.asarray(train_y, dtype=np.float64).ravel()
    env, env_names = _environment(result)
    static = _static_columns(covariates)
    cand_names = list(result.candidates.names)
    cand_groups = [c.factor for c in result.candidates.candidates]
    split = None
    periods = None
    if train_periods is not None:
        periods = np.asarray(train_periods, dtype=np.int64).ravel()
        if periods.shape != x.shape:
            raise ParameterError(
                f"train_periods has {periods.size} values; there are {x.size} training events"
            )
        split = bl.lag_split(periods)
    if split is not None and periods is not None:

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
            env, env_names, outcome, log_fit, covariates=covariates, offset=offset
        )
        risk_exposure = fit.predict(np.column_stack([env, *log_pred.values(), *static]), offset)
        forest_fit_design = np.column_stack([result.candidates.values, *fit_features.values()])
        forest_design = np.column_stack([result.candidates.values, *predict_features.values()])
        groups = cand_groups + feature_names
        forest = ch.fit_forest(
            forest_fit_design,
            outcome,
            feature_names=cand_names + feature_names,
            groups=groups,
            seed=seed,
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
    else:
        exposure = bl.exposure_covariate(
            bl.smoothed_counts(grid, x, y, bandwidth, exclude_own_cell=True)
        )
        fit = ch.fit_exposure_model(
            env, env_names, result.counts, exposure, covariates=covariates, offset=offset
        )
        risk_exposure = fit.predict(np.column_stack([env, exposure, *static]), offset)
        forest_design = np.column_stack([result.candidates.values, exposure])
        groups = cand_groups + ["exposure"]
        forest = ch.fit_forest(
            forest_design,
            result.counts,
            feature_names=cand_names + ["exposure"],
            groups=groups,
            seed=seed,
        )
        reason = (
            "the training events carry no period (date/month) information"
            if train_periods is None
            else "the fit period spans fewer than 2 periods"
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


def _share(values: ArrayLike) -> NDArray[np.float64]:
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, None)
    total = v.sum()
    return v / total if total > 0 else np.full(v.shape, 1.0 / max(v.size, 1))


def blend(forest: ArrayLike, kde: ArrayLike, weight: float) -> NDArray[np.float64]:
    """``weight x forest share + (1 - weight) x KDE share`` (each surface scaled to sum 1)."""
    return float(weight) * _share(forest) + (1.0 - float(weight)) * _share(kde)


def _candidate_surfaces(
    fits: ChallengerFits, kde: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    out = {
        "risk_exposure": fits.surfaces["risk_exposure"],
        "forest": fits.surfaces["forest"],
        "prior_kde": kde,
    }
    for w in BLEND_WEIGHTS:
        out[f"forest+kde w={w:g}"] = blend(fits.surfaces["forest"], kde, w)
    return out


def choose_model(
    result: Any,
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
    held, _ = bl.counts_in_cells(result.grid, x[scored], y[scored])
    if held.sum() <= 0 or not inner.any():
        return {**rule, "chosen": None, "reason": "no event in the inner fit or held-out periods"}
    fits = challenger_surfaces(
        result,
        x[inner],
        y[inner],
        block_length=block_length,
        bandwidth=bandwidth,
        train_periods=periods[inner],
        covariates=covariates,
        offset=offset,
        seed=seed,
    )
    kde = bl.quartic_density(result.grid, x[inner], y[inner], bandwidth)
    scores = {}
    for name, surface in _candidate_surfaces(fits, kde).items():
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


def evaluate_models(
    result: Any,
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_counts: ArrayLike,
    *,
    block_length: float,
    bandwidth: float | None = None,
    challengers: bool = True,
    train_periods: ArrayLike | None = None,
    choose: bool = True,
    covariates: Mapping[str, ArrayLike] | None = None,
    offset: ArrayLike | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Validation:
    """Compare a fitted RTM with the baselines and the challengers on test-period counts.

    Parameters
    ----------
    result : RTMResult
        The model fitted on the training period (its counts are the prior counts).
    train_x, train_y : array_like
        Coordinates of the training events (for the kernel density and the exposure).
    test_counts : array_like
        Test-period events per active cell.
    block_length : float
        The study's block length (sets the default bandwidth).
    bandwidth : float, optional
        Quartic-kernel radius; default :func:`rtm.baselines.default_bandwidth`.
    challengers : bool
        Also fit and score the risk + exposure model and the random forest.
    train_periods : array_like of int, optional
        Period (e.g. month) of each training event: enables the lagged design of the
        challengers (:func:`challenger_surfaces`) and the inner model choice
        (:func:`choose_model`). Without it, the same-period design is used.
    choose : bool
        Run the inner model choice (needs ``train_periods``); the chosen surface is
        scored as challenger ``chosen``.
    covariates, offset : optional
        Adjustment covariates and a log offset for the risk + exposure model.
    seed : int
        Seed of the forest and of the permutations.
    progress : callable, optional
        Receives short progress messages.
    """
    from rtm import challengers as ch

    say = progress or (lambda message: None)
    grid = result.grid
    h = bl.default_bandwidth(block_length) if bandwidth is None else float(bandwidth)
    test = np.asarray(test_counts, dtype=np.float64)
    surfaces: dict[str, NDArray[np.float64]] = {}
    extra: dict[str, Any] = {
        "bandwidth": {"value": h, "rule": bl.bandwidth_rule(block_length, h, grid.unit)},
        "training_events": int(result.counts.sum()),
    }
    bases = baseline_surfaces(grid, result.counts, train_x, train_y, bandwidth=h)
    if challengers:
        fits = challenger_surfaces(
            result,
            train_x,
            train_y,
            block_length=block_length,
            bandwidth=h,
            train_periods=train_periods,
            covariates=covariates,
            offset=offset,
            seed=seed,
        )
        surfaces.update(fits.surfaces)
        say(f"validation: challengers fitted ({fits.report['design']['kind']} design)")
        extra["challenger_design"] = fits.report["design"]
        extra["risk_exposure_model"] = fits.report["risk_exposure_model"]
        extra["forest"] = {
            **fits.report["forest"],
            "permutation_importance": ch.permutation_importance_by_group(
                fits.forest_predict,
                fits.forest_design,
                test,
                fits.forest_groups,
                n_repeats=3,
                seed=seed,
            ),
            "importance_measure": "fall in test-period AUC when the factor's columns are "
            "permuted together (mean of 3 permutations)",
        }
        if choose:
            choice = choose_model(
                result,
                train_x,
                train_y,
                train_periods,
                block_length=block_length,
                bandwidth=h,
                covariates=covariates,
                offset=offset,
                seed=seed,
            )
            extra["model_choice"] = choice
            if choice.get("chosen"):
                options = _candidate_surfaces(fits, bases["prior_kde"])
                surfaces["chosen"] = options[choice["chosen"]]
                say(f"validation: inner validation chose {choice['chosen']}")
    return compare(
        grid,
        test,
        rtm_scores=result.relative_risk_score,
        factor_count=factor_count_of(result),
        baselines=bases,
        challengers=surfaces,
        extra=extra,
    )


# --------------------------------------------------------------------------- run folders


@dataclass(frozen=True, eq=False)
class RunSurface:
    """What validation needs from a run folder."""

    grid: Grid
    report: dict[str, Any] = field(repr=False)
    rrs: NDArray[np.float64] | None = field(repr=False)
    train_counts: NDArray[np.float64] = field(repr=False)
    factor_count: NDArray[np.float64] | None = field(repr=False)


def load_run(run_dir: str | Path) -> RunSurface:
    """Rebuild the grid and the risk surface of a run folder (report.json + cells.gpkg)."""
    import pyogrio

    folder = Path(run_dir)
    report_path, cells_path = folder / "report.json", folder / "cells.gpkg"
    for path in (report_path, cells_path):
        if not path.is_file():
            raise InputError(
                f"run folder {folder}: {path.name} is missing (is it an rtm analyze output?)"
            )
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        inputs = report["inputs"]
        spec = inputs["grid"]
        import pyproj

        crs_wkt = pyproj.CRS.from_user_input(inputs["crs"]).to_wkt()
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"run folder {folder}: report.json is not an rtm report ({exc})") from exc
    cells = pyogrio.read_dataframe(cells_path, read_geometry=False)
    n_rows, n_cols = int(spec["n_rows"]), int(spec["n_cols"])
    mask = np.zeros(n_rows * n_cols, dtype=bool)
    flat = cells["row"].to_numpy(np.int64) * n_cols + cells["col"].to_numpy(np.int64)
    mask[flat] = True
    grid = Grid(
        x_min=float(spec["x_min"]),
        y_max=float(spec["y_max"]),
        cell_size=float(inputs["cell_size"]),
        n_rows=n_rows,
        n_cols=n_cols,
        crs_wkt=crs_wkt,
        mask=mask.reshape(n_rows, n_cols),
    )
    order = np.argsort(flat)
    cells = cells.iloc[order].reset_index(drop=True)
    rrs = cells["rrs"].to_numpy(np.float64) if "rrs" in cells.columns else None
    selected = [f["candidate"] for f in report["model"]["factors"] if f.get("candidate")] or [
        c for c in cells.columns if c.count(":") == 2
    ]
    count = (
        np.sum([cells[c].to_numpy(np.float64) for c in selected if c in cells.columns], axis=0)
        if selected
        else None
    )
    return RunSurface(
        grid=grid,
        report=report,
        rrs=rrs,
        train_counts=cells["events"].to_numpy(np.float64),
        factor_count=None if count is None or np.ndim(count) == 0 else count,
    )


def validate_run(
    run_dir: str | Path,
    test_events: str | Path,
    *,
    where: Sequence[str] = (),
    x_column: str | None = None,
    y_column: str | None = None,
    events_crs: str | None = None,
    bandwidth: float | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Validation:
    """Score a run folder's risk surface, and the baselines, against later events.

    With ``out``, also writes the JSON there and the capture-curve PNG beside it
    (``NAME_capture.png``), atomically.

    The test events are read like the training events (same CRS handling) and counted
    on the run's active cells; events outside them are dropped and counted. The kernel
    density baseline needs the training events: they are re-read from the file and
    filters the report names; when that file is gone, the training events are placed
    at their cell centres (and the output says so).

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
    out : path, optional
        Where to write the JSON (and the capture-curve PNG beside it).
    overwrite : bool
        Replace existing outputs.
    progress : callable, optional
        Receives short progress messages.

    Returns
    -------
    Validation
        ``validation["auc"]``, ``validation.table()`` (one row per surface), and the
        capture curves.
    """
    from rtm.io import read_events

    say = progress or (lambda message: None)
    run = load_run(run_dir)
    grid = run.grid
    if run.rrs is None:
        raise InputError(
            f"run folder {run_dir}: the model found no significant factor, so there is no "
            "risk surface to validate"
        )
    frame = read_events(
        test_events,
        grid.crs,
        where=where,
        x_column=x_column,
        y_column=y_column,
        csv_crs=events_crs,
        what="test events",
    )
    # The run's own copy of its area and events (features.gpkg): the same geometry and
    # points `analyze --test-crimes` used, so both paths count and smooth alike.
    area, train_frame = _run_features(run_dir)
    counted = grid.count_events(frame, area)
    counted.warn_outside(f"test events {test_events}")
    test_counts, outside = counted.counts, counted.n_outside
    say(f"test events: {int(test_counts.sum()):,} in the study area, {outside:,} outside dropped")
    inputs = run.report["inputs"]
    check_test_events(
        inputs.get("where", []), where, run.train_counts, test_counts, train_frame, frame
    )
    block_length = float(inputs["block_length"])
    h = bl.default_bandwidth(block_length) if bandwidth is None else float(bandwidth)
    if train_frame is not None and len(train_frame) == int(run.train_counts.sum()):
        train_x = train_frame.geometry.x.to_numpy()
        train_y = train_frame.geometry.y.to_numpy()
        source = "the run's training events (features.gpkg)"
    else:
        train_x, train_y, source = _training_points(run, grid, area)
    bases = baseline_surfaces(grid, run.train_counts, train_x, train_y, bandwidth=h)
    validation = compare(
        grid,
        test_counts,
        rtm_scores=run.rrs,
        factor_count=run.factor_count,
        baselines=bases,
        extra={
            "test_events_outside": outside,
            "test_file": str(test_events),
            "test_where": list(where),
            "run": str(run_dir),
            "bandwidth": {"value": h, "rule": bl.bandwidth_rule(block_length, h, grid.unit)},
            "training_events": int(run.train_counts.sum()),
            "kde_points": source,
        },
    )
    if out is not None:
        target = Path(out)
        validation.write(
            target, plot=target.with_name(target.stem + "_capture.png"), overwrite=overwrite
        )
    return validation


def _run_features(run_dir: str | Path) -> tuple[Any, Any]:
    """The study area (one geometry) and the training events of a run, from features.gpkg."""
    import shapely

    from rtm.export.outputs import read_features

    area, _, events = read_features(Path(run_dir))
    geometry = shapely.union_all(np.asarray(area.geometry.values))
    return geometry, events


def _count(grid: Grid, frame: Any, area: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Counts per cell, the kept points' mask and the number dropped (area, else cells)."""
    x, y = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    if area is not None:
        counted = grid.count_events(frame, area)
        return counted.counts, counted.inside, counted.n_outside
    keep = bl._active_cell(grid, x, y) >= 0
    counts, outside = bl.counts_in_cells(grid, x, y)
    return counts, keep, outside


def _training_points(run: RunSurface, grid: Grid, area: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """Training events: re-read from the report's source, else at their cell centres."""
    from rtm.io import read_events, split_layer

    inputs = run.report["inputs"]
    source = inputs.get("events_file")
    if source and split_layer(source)[0].exists():
        try:
            frame = read_events(
                source,
                grid.crs,
                where=inputs.get("where", []),
                x_column=inputs.get("x_column"),
                y_column=inputs.get("y_column"),
                csv_crs=inputs.get("events_crs"),
            )
            counts, keep, _ = _count(grid, frame, area)
            if np.array_equal(counts, run.train_counts):
                x, y = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
                return x[keep], y[keep], f"training events re-read from {source}"
        except InputError:
            pass
    cx, cy = grid.cell_centres()
    repeat = run.train_counts.astype(np.int64)
    return (
        np.repeat(cx, repeat),
        np.repeat(cy, repeat),
        "training events at their cell centres (the training file could not be re-read "
        "to the same counts)",
    )


# --------------------------------------------------------------------------- misuse


def check_test_events(
    train_where: Sequence[str],
    test_where: Sequence[str],
    train_counts: ArrayLike,
    test_counts: ArrayLike,
    train_events: Any = None,
    test_events: Any = None,
) -> list[str]:
    """Warn (and return the warnings) when a validation is set up to flatter the model.

    * the run filtered its events (``--where type=robbery``) by a column the test
      events are not filtered by: a burglary map scored against every crime;
    * the test events are the training events, or mostly the same ones (validating on
      the training period): identical counts per cell, or at least half of the test
      events identical to training events in place and every shared attribute.
    """
    import warnings

    from rtm.errors import RTMWarning
    from rtm.io import parse_where

    notes = []
    trained = {parse_where(w).column.strip().casefold(): w for w in train_where}
    tested = {parse_where(w).column.strip().casefold() for w in test_where}
    unfiltered = [text for column, text in trained.items() if column not in tested]
    if unfiltered:
        values = [text for text in unfiltered if ".." not in text]
        advice = (
            f"give the test events the same filter (--where {values[0]})"
            if values
            else "filter the test events to a later period"
        )
        notes.append(
            f"the run's events were filtered by {', '.join(unfiltered)} but the test events are "
            "not filtered on the same column(s), so the map is scored against other events than "
            f"it models: {advice}"
        )
    train = np.asarray(train_counts, dtype=np.float64)
    test = np.asarray(test_counts, dtype=np.float64)
    same = train.shape == test.shape and test.sum() > 0 and np.array_equal(train, test)
    shared = None if same else _shared_share(train_events, test_events)
    if same:
        notes.append(
            "the test events fall in exactly the same cells as the training events: they look "
            "like the training events themselves, and scoring the model on them overstates "
            "its accuracy (test on a later period)"
        )
    elif shared is not None and shared >= 0.5:
        notes.append(
            f"{shared:.0%} of the test events are identical to training events (same place and "
            "attributes): validating on the training period overstates accuracy (test on a "
            "later period)"
        )
    for note in notes:
        warnings.warn(f"validation: {note}", RTMWarning, stacklevel=2)
    return notes


def _shared_share(train: Any, test: Any) -> float | None:
    """Share of test events matched one-to-one by identical training events (None: unknown)."""
    import pandas as pd

    if train is None or test is None or len(test) == 0:
        return None
    geometry = {getattr(train, "_geometry_column_name", "geometry"), "geometry"}
    common = [
        c
        for c in train.columns
        if c in test.columns and c not in geometry and str(c).lower() != "geometry"
    ]
    if not common:
        return None  # places alone repeat (police.uk's snap points): not evidence

    def keys(frame: Any) -> pd.Series:
        table = pd.DataFrame(
            {
                "x": np.round(frame.geometry.x.to_numpy(), 1),
                "y": np.round(frame.geometry.y.to_numpy(), 1),
                **{str(c): frame[c].astype("string").str.strip().to_numpy() for c in common},
            }
        )
        return pd.util.hash_pandas_object(table, index=False).value_counts()

    a, b = keys(train), keys(test)
    matched = int(np.minimum(a.reindex(b.index, fill_value=0), b).sum())
    return matched / len(test)
