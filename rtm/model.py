"""The public model: candidates + counts -> culling -> stepwise BIC -> relative risk.

:class:`RiskTerrainModel` follows the scikit-learn contract (keyword-only ``__init__``
that only stores; validation in :meth:`~RiskTerrainModel.fit`; fitted attributes end
in ``_``). Its result, :class:`RTMResult`, is an immutable object with the model table,
the relative risk values (RRV) and the relative risk score (RRS) of every cell.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rtm.checks import check_choice
from rtm.errors import FitError, ParameterError
from rtm.layers import Candidate, CandidateSet
from rtm.result import ModelFactor, RTMResult
from rtm.selection import (
    NB_FORMS,
    RULES,
    CullResult,
    NBForm,
    Rule,
    SelectionResult,
    cull,
    select_model,
)
from rtm.spec import StudySpec

__all__ = [
    "MIN_CELLS",
    "MIN_EVENTS",
    "ModelFactor",
    "RTMResult",
    "RiskTerrainModel",
    "check_grid_size",
]

#: Fewest events rtm fits a model to: below this, selection is noise.
MIN_EVENTS = 10

#: Fewest active cells rtm fits a model to: the cells are the observations, and a few
#: dozen cells cannot separate a factor's effect from chance (a cell size near the
#: study area's width is a mistake, not a model).
MIN_CELLS = 100


def check_grid_size(n_active: int, cell_size: float, unit: str = "m") -> None:
    """Refuse a grid with fewer than :data:`MIN_CELLS` active cells (``FitError``)."""
    if n_active < MIN_CELLS:
        raise FitError(
            f"--cell-size {cell_size:g} {unit} leaves only {n_active} cells in the study area; "
            f"rtm needs at least {MIN_CELLS} cells to fit a model: choose a smaller cell size"
        )


class RiskTerrainModel:
    """Risk Terrain Modeling as RTMDx does it: elastic-net culling, then stepwise BIC.

    Parameters
    ----------
    l1_ratios : sequence of float
        Elastic-net mixings tried in culling (best CV deviance kept).
    n_folds : int
        Cross-validation folds for culling (balanced on the outcome).
    cv_rule : {"min", "1se"}
        lambda.min or the one-standard-error rule.
    standardize : bool
        Penalize standardized candidates in culling (as glmnet's default).
    nb_form : {"nbii", "nb2"}
        Negative-binomial form compared with Poisson: RTMDx's NBII (variance
        ``mu (1 + sigma)``) or NB2 (``mu + mu^2 / theta``).
    alpha : float
        Significance level every selected factor must meet.
    seed : int
        Seed of the fold assignment; the same inputs and seed give the same model.

    Examples
    --------
    The whole pipeline in memory, on a synthetic city with a planted risk terrain:

    >>> import geopandas as gpd
    >>> from rtm.layers import Factor, build_candidates, spatial_influences
    >>> from rtm.synthetic import generate_city
    >>> city = generate_city(seed=1, radius=1500)
    >>> factors = [Factor(name, features, protective=name == "parks")
    ...            for name, features in city.factors.items()]
    >>> candidates = build_candidates(city.grid, factors, spatial_influences(150))
    >>> robberies = city.crimes[city.crimes["type"] == "robbery"]
    >>> events = gpd.GeoDataFrame(
    ...     geometry=gpd.points_from_xy(robberies.x, robberies.y), crs=city.grid.crs)
    >>> counts = city.grid.count_events(events, city.area.union_all()).counts
    >>> result = RiskTerrainModel(seed=0).fit(candidates, counts).result_
    >>> [f.name for f in result.factors]
    ['bars', 'bus_stops', 'parks', 'main_roads']
    >>> round(result.factors[0].relative_risk_value, 2)
    2.41
    >>> print(result.summary().splitlines()[0])
    1,847 events on 1,356 cells of 75 m; 8 factors, 48 candidates, 11 survived culling.
    """

    def __init__(
        self,
        *,
        l1_ratios: Sequence[float] = (0.8, 0.95),
        n_folds: int = 5,
        cv_rule: Rule = "min",
        standardize: bool = True,
        nb_form: NBForm = "nbii",
        alpha: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.l1_ratios = l1_ratios
        self.n_folds = n_folds
        self.cv_rule = cv_rule
        self.standardize = standardize
        self.nb_form = nb_form
        self.alpha = alpha
        self.seed = seed

    @classmethod
    def from_spec(cls, spec: StudySpec) -> RiskTerrainModel:
        """The estimator with a study specification's selection settings."""
        return cls(
            seed=spec.seed,
            nb_form=spec.nb_form,  # type: ignore[arg-type]
            cv_rule=spec.cv_rule,  # type: ignore[arg-type]
            alpha=spec.alpha,
            l1_ratios=spec.l1_ratios,
        )

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        return {
            "l1_ratios": tuple(float(r) for r in self.l1_ratios),
            "n_folds": self.n_folds,
            "cv_rule": self.cv_rule,
            "standardize": self.standardize,
            "nb_form": self.nb_form,
            "alpha": self.alpha,
            "seed": self.seed,
        }

    def _validate(self) -> None:
        check_choice("cv_rule", self.cv_rule, RULES)
        check_choice("nb_form", self.nb_form, NB_FORMS)
        if (
            not isinstance(self.seed, int | np.integer)
            or isinstance(self.seed, bool)
            or not 0 <= int(self.seed) < 2**32
        ):
            raise ParameterError(f"--seed must be a whole number 0..4294967295, got {self.seed!r}")
        if not 0 < float(self.alpha) < 1:
            raise ParameterError(f"alpha must be between 0 and 1, got {self.alpha!r}")

    def fit(
        self,
        candidates: CandidateSet,
        counts: np.ndarray,
        *,
        harm: np.ndarray | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> RiskTerrainModel:
        """Select the model for ``counts`` (events per active cell) from ``candidates``.

        Sets ``result_`` (an :class:`RTMResult`) and returns ``self``.

        With ``harm`` (total harm per active cell, e.g. ``EventCounts.harm``) the outcome
        is harm in event-equivalents, ``harm / mean harm per event`` (its total is the
        number of events), fitted by the Poisson pseudo-likelihood with quasi-Poisson
        inference (:func:`rtm.selection.select_model` with ``quasi=True``: only the
        quasi-Poisson, no negative binomial). When harm is proportional to the counts
        (every event weighs the same) the event-equivalents *are* the counts, and the
        count model is fitted exactly as without ``harm``.

        Raises
        ------
        FitError
            Fewer than :data:`MIN_EVENTS` events, fewer cells with events than folds,
            or fewer than :data:`MIN_CELLS` active cells.
        """
        self._validate()
        check_grid_size(candidates.grid.n_active, candidates.grid.cell_size, candidates.grid.unit)
        say = progress or (lambda message: None)
        y = self._checked_counts(candidates, counts)
        outcome = _event_equivalents(harm, y)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        culled = cull(
            candidates.values,
            y if outcome is None else outcome,
            l1_ratios=self.l1_ratios,
            n_folds=self.n_folds,
            rule=self.cv_rule,
            standardize=self.standardize,
            seed=int(self.seed),
            fractional=outcome is not None,
        )
        timings["culling"] = time.perf_counter() - start
        say(f"culling: {len(culled.survivors)} of {len(candidates.candidates)} candidates survive")
        start = time.perf_counter()
        selection = select_model(
            candidates.values,
            y if outcome is None else outcome,
            candidates.factor_ids,
            nb_form=self.nb_form,
            alpha=float(self.alpha),
            candidates=culled.survivors,
            quasi=outcome is not None,
        )
        timings["stepwise"] = time.perf_counter() - start
        best = selection.best
        if selection.dispersion_quasi is not None:
            phi = selection.dispersion_quasi
            say(f"stepwise: {len(best.selected)} factors, quasi-Poisson (phi {phi:.3g})")
        else:
            say(
                f"stepwise: {len(best.selected)} factors, "
                f"{'Poisson' if selection.winner == 'poisson' else 'negative binomial'} wins"
            )
        self.result_ = self._result(candidates, y, outcome, culled, selection, timings, harm)
        return self

    def _checked_counts(self, candidates: CandidateSet, counts: np.ndarray) -> np.ndarray:
        """The counts as int64, enough of them to fit a model."""
        y = np.asarray(counts, dtype=np.int64)
        if y.shape != (candidates.grid.n_active,):
            raise ParameterError(
                f"counts has shape {y.shape}; the grid has {candidates.grid.n_active} active cells"
            )
        n_events, with_events = int(y.sum()), int(np.count_nonzero(y))
        if n_events < MIN_EVENTS or with_events < self.n_folds:
            raise FitError(
                f"too few events to fit a model: {n_events} events in {with_events} cells; rtm "
                f"needs at least {MIN_EVENTS} events in at least {self.n_folds} cells (one per "
                "cross-validation fold)"
            )
        return y

    def _result(
        self,
        candidates: CandidateSet,
        y: np.ndarray,
        outcome: np.ndarray | None,
        culled: CullResult,
        selection: SelectionResult,
        timings: dict[str, float],
        harm: np.ndarray | None,
    ) -> RTMResult:
        """The fitted result: the selected factors, their scores per cell, the settings."""
        best = selection.best
        factors = tuple(
            _model_factor(
                candidates.candidates[column],
                best.fit,
                position,
                coverage=float(np.count_nonzero(candidates.values[:, column]))
                / max(candidates.grid.n_active, 1),
            )
            for position, column in enumerate(best.selected, start=1)
        )
        intercept = float(best.fit.coef[0])
        linear = np.full(candidates.grid.n_active, intercept)
        for position, column in enumerate(best.selected, start=1):
            linear += float(best.fit.coef[position]) * candidates.values[:, column]
        settings = self.get_params()
        if harm is not None:
            settings["outcome"] = (
                "harm-weighted (event-equivalents)"
                if outcome is not None
                else "harm-weighted (proportional to counts: the counts)"
            )
        return RTMResult(
            grid=candidates.grid,
            candidates=candidates,
            counts=y,
            factors=factors,
            distribution="poisson" if selection.winner == "poisson" else "negative_binomial",
            nb_form=self.nb_form,
            intercept=intercept,
            bic=float(best.fit.bic),
            loglik=float(best.fit.loglik),
            dispersion=None if best.fit.dispersion is None else float(best.fit.dispersion),
            relative_risk_score=np.exp(linear - linear.min()) if factors else None,
            expected=np.exp(linear),
            cull_result=culled,
            selection=selection,
            settings=settings,
            timings=timings,
            outcome=outcome,
            dispersion_quasi=selection.dispersion_quasi,
        )


def _event_equivalents(harm: np.ndarray | None, counts: np.ndarray) -> np.ndarray | None:
    """Harm per cell in event-equivalents; None without harm or when it equals the counts."""
    if harm is None:
        return None
    h = np.asarray(harm, dtype=np.float64)
    if h.shape != counts.shape:
        raise ParameterError(
            f"harm has shape {h.shape}; the grid has {counts.shape[0]} active cells"
        )
    if not np.all(np.isfinite(h)) or (h.size and h.min() < 0):
        raise ParameterError("harm must be finite and non-negative")
    total = float(h.sum())
    if not total > 0:
        raise FitError("the total harm is zero: there is nothing to model")
    y = h * (float(counts.sum()) / total)
    # every event weighs the same: the event-equivalents are the counts themselves
    if np.allclose(y, counts, rtol=1e-9, atol=1e-9):
        return None
    return y


def _model_factor(
    candidate: Candidate, fit: Any, position: int, *, coverage: float = math.nan
) -> ModelFactor:
    coefficient = float(fit.coef[position])
    return ModelFactor(
        name=candidate.factor,
        operationalization=candidate.operationalization,
        spatial_influence=candidate.spatial_influence,
        coefficient=coefficient,
        relative_risk_value=math.exp(coefficient),
        standard_error=float(fit.se[position]),
        p_value=float(fit.pvalues[position]),
        protective=candidate.protective,
        candidate=candidate.name,
        coverage=coverage,
    )
