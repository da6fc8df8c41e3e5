"""A fitted risk terrain model: the model table, the relative risk values and scores.

:class:`RTMResult` is what :meth:`rtm.model.RiskTerrainModel.fit` produces: an immutable
object with the selected factors (:class:`ModelFactor`), the relative risk value (RRV)
of each and the relative risk score (RRS) of every cell, and views for people (the
model table, a summary, a plot, the interactive map).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from rtm.errors import FitError
from rtm.grid import Grid
from rtm.layers import CandidateSet
from rtm.selection import CullResult, NBForm, SelectionResult, get_family

__all__ = ["ModelFactor", "RTMResult"]


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
    study : rtm.study.Study or None
        The study the model was fitted on, when :func:`rtm.api.analyze` fitted it: the
        area, events and factor features that :meth:`explore`, :meth:`places` and
        :meth:`validate` need.
    outputs : tuple of str
        The files :func:`rtm.api.analyze` wrote into the run folder, in the order written
        (their names; empty when nothing was written).

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
    study: Any = field(default=None, repr=False)
    outputs: tuple[str, ...] = ()
    #: The deployment forecast made with the run (``--forecast`` or test events), if any:
    #: its surface draws the priority places and the map's forecast layer, as in the folder.
    forecast: Any = field(default=None, repr=False)

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

    def _presented(self, study: Any, options: dict[str, Any]) -> tuple[Any, Any]:
        """The bundle and places the run folder's outputs are drawn from (same code)."""
        from dataclasses import replace

        from rtm.export.outputs import OutputOptions, present
        from rtm.runs import report_from_fit

        if self.relative_risk_score is None:
            raise FitError("no significant factor: there is no risk map and no places")
        study = self.study if study is None else study
        spec = getattr(study, "spec", None)
        settings = OutputOptions.from_spec(spec) if spec is not None else OutputOptions()
        settings = replace(settings, **options) if options else settings
        report = report_from_fit(self, study=study)
        surface = None if self.forecast is None else self.forecast.surface
        return present(self, report, study=study, options=settings, forecast=surface)

    def explore(self, study: Any = None, **options: Any) -> Any:
        """The interactive risk map, as the run folder's ``map.html``, shown inline in Jupyter.

        Parameters
        ----------
        study : rtm.study.Study, optional
            Adds the study area, the factor features and the events (for priority
            places); by default the study the result was fitted on (``result.study``).
        **options
            :class:`rtm.export.outputs.OutputOptions` fields (``tier_cuts``, ...); by
            default the study's settings.

        Returns
        -------
        rtm.export.webmap.MapView
            Displays itself in a notebook; ``.save(path)`` writes the self-contained HTML.
        """
        from rtm.export.webmap import MapView, render_map

        bundle, analysis = self._presented(study, options)
        surface = None if self.forecast is None else self.forecast.surface
        return MapView(render_map(bundle, analysis, forecast=surface))

    def places(self, **options: Any) -> Any:
        """The highest-risk and priority places as one table (a GeoDataFrame, grid CRS).

        One row per place: ``kind`` (``highest-risk`` or ``priority``), ``rank``,
        ``cells``, ``area`` (square metres), ``events``, ``expected``, ``mean_rrs``,
        ``max_rrs``, ``factors`` (why it is risky), ``recent_events`` (priority places)
        and the place's polygon. ``options`` as for :meth:`explore`.
        """
        import geopandas as gpd

        from rtm.export.outputs import place_polygons

        _, analysis = self._presented(None, options)
        frames = []
        for kind, frame in zip(
            ("highest-risk", "priority"), place_polygons(self.grid, analysis), strict=True
        ):
            frames.append(frame.assign(kind=kind)[["kind", *frame.columns]])
        table = pd.concat(frames, ignore_index=True)
        return gpd.GeoDataFrame(table, geometry="geometry", crs=self.grid.crs)

    def validate(
        self,
        events: Any,
        *,
        where: Any = (),
        challengers: bool | None = None,
        bandwidth: float | None = None,
        progress: Any = None,
    ) -> Any:
        """Score the risk surface on later events (as ``analyze --test-crimes`` does).

        Parameters
        ----------
        events : path, GeoDataFrame or DataFrame
            The later events (points, or a table with coordinate columns).
        where : sequence of str
            Filters of the later events (``["type=robbery"]``).
        challengers, bandwidth : optional
            As the study's ``challengers`` and ``bandwidth`` (its values by default).
        progress : callable, optional
            Receives short progress messages.

        Returns
        -------
        rtm.validation.Validation
            ``.table()``, ``["auc"]``, the capture curves; ``.write(path)`` saves it.
        """
        from rtm.errors import ParameterError, api_warnings
        from rtm.io import read_events
        from rtm.validation import FittedSurface, TestEvents
        from rtm.validation import validate as score

        study = self.study
        if study is None or study.events is None or self.relative_risk_score is None:
            raise ParameterError(
                "validate: the result needs its study and a risk surface; fit it with "
                "rtm.api.analyze"
            )
        spec = study.spec
        frame = read_events(
            events,
            self.grid.crs,
            where=where,
            x_column=spec.x_column,
            y_column=spec.y_column,
            csv_crs=spec.events_crs,
            what="test events",
            csv_options=spec.csv_options,
        )
        with api_warnings():
            fitted = FittedSurface.from_analysis(self, study)
            label = events if isinstance(events, str) else "(in memory)"
            test = TestEvents.count(fitted, frame, source=str(label), where=where)
            return score(
                fitted,
                test,
                challengers=spec.challengers if challengers is None else challengers,
                bandwidth=spec.bandwidth if bandwidth is None else bandwidth,
                progress=progress,
            )
