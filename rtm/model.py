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
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from rtm.checks import check_choice
from rtm.errors import FitError, ParameterError
from rtm.grid import Grid
from rtm.layers import Candidate, CandidateSet
from rtm.selection import (
    NB_FORMS,
    RULES,
    CullResult,
    NBForm,
    Rule,
    SelectionResult,
    cull,
    get_family,
    select_model,
)

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


@dataclass(frozen=True)
class ModelFactor:
    """One selected risk factor in the model table."""

    name: str
    operationalization: str
    spatial_influence: float
    coefficient: float
    relative_risk_value: float
    standard_error: float
    p_value: float
    protective: bool
    candidate: str
    coverage: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "name": self.name,
            "operationalization": self.operationalization,
            "spatial_influence": self.spatial_influence,
            "coefficient": self.coefficient,
            "rrv": self.relative_risk_value,
            "standard_error": self.standard_error,
            "p_value": self.p_value,
            "protective": self.protective,
            "coverage": self.coverage,
        }


@dataclass(frozen=True, eq=False)
class RTMResult:
    """A fitted risk terrain model.

    Attributes
    ----------
    grid : Grid
        The analysis grid.
    candidates : CandidateSet
        The candidate layers the model chose from.
    counts : numpy.ndarray
        Events per active cell.
    factors : tuple of ModelFactor
        The selected factors (empty when none is significant).
    distribution : {"poisson", "negative_binomial"}
        The distribution of the winning model.
    nb_form : {"nbii", "nb2"}
        The negative-binomial variance form that was compared with Poisson.
    intercept, bic, loglik : float
        Of the winning model.
    dispersion : float or None
        NBII's sigma or NB2's theta; None for Poisson.
    relative_risk_score : numpy.ndarray or None
        RRS per active cell: predicted count / smallest predicted count (so >= 1).
    expected : numpy.ndarray
        Predicted events per active cell.
    cull_result, selection : CullResult, SelectionResult
        The full culling and stepwise outcomes.
    settings : dict
        Every parameter that shaped the model.
    timings : dict
        Seconds per stage (not part of the reproducible report).
    outcome : numpy.ndarray or None
        Harm-weighted fits only: the outcome modelled per cell, harm in event-equivalents
        (harm / mean harm per event, summing to the number of events); ``expected`` is on
        this scale. ``None`` for a count model (the outcome is ``counts``).
    dispersion_quasi : float or None
        The quasi-Poisson dispersion ``phi`` of a harm-weighted fit (None otherwise).

    See Also
    --------
    RiskTerrainModel.fit : Produces it, as ``model.result_``.
    rtm.api.analyze : Produces it from files, and writes the run folder.

    Notes
    -----
    In a notebook the result shows its summary and model table (``_repr_html_``);
    :meth:`plot` draws the risk map and :meth:`explore` opens the interactive one.
    """

    grid: Grid = field(repr=False)
    candidates: CandidateSet = field(repr=False)
    counts: np.ndarray = field(repr=False)
    factors: tuple[ModelFactor, ...]
    distribution: Literal["poisson", "negative_binomial"]
    nb_form: NBForm
    intercept: float
    bic: float
    loglik: float
    dispersion: float | None
    relative_risk_score: np.ndarray | None = field(repr=False)
    expected: np.ndarray = field(repr=False)
    cull_result: CullResult = field(repr=False)
    selection: SelectionResult = field(repr=False)
    settings: dict[str, Any] = field(repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)
    outcome: np.ndarray | None = field(default=None, repr=False)
    dispersion_quasi: float | None = None

    # ------------------------------------------------------------------ views
    @property
    def family(self) -> str:
        """The winning model's family: ``poisson`` or the negative binomial's form."""
        return "poisson" if self.distribution == "poisson" else self.nb_form

    @property
    def significant(self) -> bool:
        """Whether any factor was selected."""
        return bool(self.factors)

    @property
    def n_events(self) -> int:
        """Events used."""
        return int(self.counts.sum())

    @property
    def harm_weighted(self) -> bool:
        """Whether the outcome was harm (``fit(..., harm=...)``) rather than counts."""
        return "harm" in self.settings.get("outcome", "counts")

    def model_table(self) -> pd.DataFrame:
        """The model table as RTMDx prints it (factors, then the intercept).

        A protective factor is coded 0/-1, so its RRV (> 1) is the factor by which risk
        *falls* in cells where it is present.
        """
        rows = [
            {
                "Risk Factor": f.name,
                "Type": "protective" if f.protective else "aggravating",
                "Operationalization": f.operationalization.capitalize(),
                "Spatial Influence": f.spatial_influence,
                "Coefficient": f.coefficient,
                "Relative Risk Value": f.relative_risk_value,
                "Standard Error": f.standard_error,
                "p-value": f.p_value,
                "Coverage": f.coverage,
            }
            for f in sorted(self.factors, key=lambda f: -f.relative_risk_value)
        ]
        rows.append(
            {
                "Risk Factor": "Intercept",
                "Type": "",
                "Operationalization": "",
                "Spatial Influence": math.nan,
                "Coefficient": self.intercept,
                "Relative Risk Value": math.nan,
                "Standard Error": float(self.selection.best.fit.se[0]),
                "p-value": float(self.selection.best.fit.pvalues[0]),
                "Coverage": math.nan,
            }
        )
        return pd.DataFrame(rows)

    def selected_values(self) -> dict[str, np.ndarray]:
        """The selected candidates' 0/1 (or 0/-1) values per active cell, by candidate name."""
        names = self.candidates.names
        return {
            f.candidate: self.candidates.values[:, names.index(f.candidate)] for f in self.factors
        }

    def rrs_raster(self, nodata: float = np.nan) -> np.ndarray:
        """The RRS as a ``(n_rows, n_cols)`` array, ``nodata`` outside the study area."""
        if self.relative_risk_score is None:
            raise FitError("no significant factor: there is no relative risk score")
        return self.grid.to_raster(self.relative_risk_score, nodata=nodata)

    def summary(self) -> str:
        """A few lines for a terminal or a notebook."""
        tested = len(self.candidates.candidates) + len(self.candidates.dropped)
        factor_count = len({c.factor for c in self.candidates.candidates})
        lines = [
            f"{self.n_events:,} events on {self.grid.n_active:,} cells of "
            f"{self.grid.cell_size:g} {self.grid.unit}; "
            f"{factor_count} factors, {tested} candidates, "
            f"{len(self.cull_result.survivors)} survived culling.",
        ]
        if not self.factors:
            lines.append("No risk factor is significant: no risk map.")
            return "\n".join(lines)
        dist = get_family(self.family).label
        if self.dispersion_quasi is not None:
            dist = f"quasi-Poisson on harm (event-equivalents), phi {self.dispersion_quasi:.3g}"
        elif self.harm_weighted:
            dist += " on harm (proportional to counts)"
        lines.append(f"Model: {dist}, BIC {self.bic:.1f}; {len(self.factors)} factors selected:")
        for f in sorted(self.factors, key=lambda f: -f.relative_risk_value):
            kind = " (protective)" if f.protective else ""
            lines.append(
                f"  {f.name:<24} {f.operationalization:<9} {f.spatial_influence:>7g}  "
                f"RRV {f.relative_risk_value:6.2f}  p {f.p_value:<7.2g} "
                f"in {f.coverage:.0%} of cells{kind}"
            )
        assert self.relative_risk_score is not None
        lines.append(f"Relative risk score: 1 to {float(self.relative_risk_score.max()):.2f}.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        factors = ", ".join(f.candidate for f in self.factors) or "none significant"
        return (
            f"RTMResult({self.distribution}, {self.n_events} events on {self.grid.n_active} cells; "
            f"factors: {factors})"
        )

    # ------------------------------------------------------------------ notebook views
    def _repr_html_(self) -> str:
        """The summary and the model table, for Jupyter."""
        import html

        summary = "<br>".join(html.escape(line) for line in self.summary().splitlines())
        table = self.model_table().to_html(index=False, float_format="{:.4g}".format, na_rep="")
        return f"<div><p>{summary}</p>{table if self.factors else ''}</div>"

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Draw the relative risk score on a matplotlib Axes (a new figure by default).

        Extra keyword arguments go to :func:`rtm.export.figure.draw_risk`
        (``area``, ``places``, ``title``, ``colorbar``). Needs matplotlib.
        """
        from rtm.export.figure import draw_risk

        if self.relative_risk_score is None:
            raise FitError("no significant factor: there is no risk surface to plot")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(7, 7))
        return draw_risk(ax, self.grid, self.relative_risk_score, **kwargs)

    def explore(self, study: Any = None, **options: Any) -> Any:
        """The interactive risk map (tiers, places, factor layers), shown inline in Jupyter.

        Parameters
        ----------
        study : rtm.study.Study, optional
            Adds the study area, the factor features and the events (for priority places).
        **options
            :class:`rtm.export.outputs.OutputOptions` fields (``tier_cuts``, ...).

        Returns
        -------
        rtm.export.webmap.MapView
            Displays itself in a notebook; ``.save(path)`` writes the self-contained HTML.
        """
        from rtm.export.outputs import OutputOptions, bundle_from_result, run_places
        from rtm.export.webmap import MapView, render_map

        if self.relative_risk_score is None:
            raise FitError("no significant factor: there is no risk map")
        from rtm.runs import report_from_fit

        settings = OutputOptions(**options)
        report = report_from_fit(self, study=study)
        bundle = bundle_from_result(self, report, study=study, max_features=settings.max_features)
        return MapView(render_map(bundle, run_places(bundle, settings)))


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
        expected = np.exp(linear)
        rrs = np.exp(linear - linear.min()) if factors else None
        self.result_ = RTMResult(
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
            relative_risk_score=rrs,
            expected=expected,
            cull_result=culled,
            selection=selection,
            settings=self.get_params()
            if harm is None
            else {
                **self.get_params(),
                "outcome": "harm-weighted (event-equivalents)"
                if outcome is not None
                else "harm-weighted (proportional to counts: the counts)",
            },
            timings=timings,
            outcome=outcome,
            dispersion_quasi=selection.dispersion_quasi,
        )
        return self


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
