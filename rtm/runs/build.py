"""The run report of a fit: :func:`report_from_fit` assembles it from the fitted model.

The only place that turns an :class:`~rtm.result.RTMResult` (and the study it came
from) into a :class:`~rtm.runs.records.RunReport`; the caveats are chosen here, the
distance caveat by how distances were measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtm._version import __version__
from rtm.runs.records import FactorRecord, GridRecord, InputsRecord, ModelRecord, RunReport
from rtm.selection import get_family

__all__ = ["CAVEATS", "report_from_fit"]

#: The caveats every report carries (the distance one is replaced when distances run along
#: a street network).
CAVEATS = (
    "p-values are computed after a data-driven selection on the same data; they overstate "
    "significance and are not valid inference.",
    "Distances are straight-line (Euclidean) from cell centres, not along streets.",
    "A risk map describes places, not people: it says where the environment is associated "
    "with more crime in this period, not who will offend or be victimised.",
)
_HARM_CAVEAT = (
    "The outcome is harm-weighted: the model describes where harm concentrates, and the "
    "quasi-Poisson p-values assume the harm per event is independent of place given the "
    "factors."
)
_NOT_SIGNIFICANT = (
    "No risk factor was significant: no factor survived culling and stepwise selection "
    "with a positive coefficient at the chosen significance level. No risk map was made."
)


def report_from_fit(
    result: Any, *, study: Any = None, sections: dict[str, Any] | None = None
) -> RunReport:
    """The run report of ``result`` (an RTMResult) and the study it was fitted on.

    Without ``study`` (a fit in memory) the inputs hold what the result knows.
    ``sections`` adds optional sections (``residual_autocorrelation``, ``stability``...).
    """
    candidates = result.candidates
    cull = result.cull_result
    rrs = result.relative_risk_score
    model = _model_record(result)
    caveats = list(CAVEATS)
    if study is not None and study.network is not None:
        caveats[1] = study.network.describe(study.grid.cell_size, study.grid.unit)
    if result.harm_weighted and result.outcome is not None:
        caveats.append(_HARM_CAVEAT)
    all_sections = dict(sections or {})
    provenance = _provenance(study)
    if provenance is not None:
        all_sections["outcome_provenance"] = provenance
    if not result.significant:
        all_sections["message"] = _NOT_SIGNIFICANT
    return RunReport(
        version=__version__,
        seed=int(result.settings["seed"]),
        inputs=_inputs_record(result, study),
        candidates=len(candidates.candidates) + len(candidates.dropped),
        candidate_names=tuple(candidates.names),
        dropped_candidates=tuple(
            {"name": d.candidate.name, "reason": d.reason} for d in candidates.dropped
        ),
        skipped_factors=tuple(candidates.skipped_factors),
        culled=len(cull.survivors),
        culling={
            "method": "Poisson elastic net, coefficients >= 0, penalty chosen by cross-validation",
            "survivors": [candidates.names[i] for i in cull.survivors],
            "l1_ratio": cull.l1_ratio,
            "l1_ratios": list(cull.l1_ratios),
            "lambda": cull.lambda_,
            "rule": "lambda.min" if cull.rule == "min" else "1se",
            "standardize": cull.standardize,
            "n_folds": int(result.settings["n_folds"]),
            "folds": "cells sorted by event count (ties in seeded random order), dealt in turn",
        },
        model=model,
        significant=result.significant,
        rrs={
            "min": None if rrs is None else float(rrs.min()),
            "max": None if rrs is None else float(rrs.max()),
            "mean": None if rrs is None else float(rrs.mean()),
            "definition": "predicted harm / smallest predicted harm over the study area"
            if result.harm_weighted and result.outcome is not None
            else "predicted count / smallest predicted count over the study area",
        },
        caveats=tuple(caveats),
        sections=all_sections,
        spec=None if study is None or study.spec is None else study.spec.to_record(),
    )


def _provenance(study: Any) -> dict[str, Any] | None:
    """The share of police-generated categories in the outcome (warned about when used)."""
    if study is None or study.events is None:
        return None
    from rtm.accountability.provenance import outcome_provenance, warn_provenance

    spec = study.spec
    record = outcome_provenance(
        study.events, () if spec is None else spec.where, (f.name for f in study.factors)
    )
    warn_provenance(record)
    return record


def _inputs_record(result: Any, study: Any) -> InputsRecord:
    grid = result.grid
    spec = None if study is None else study.spec
    counts = None if study is None else study.counts
    influences = sorted({c.spatial_influence for c in result.candidates.candidates})
    harm = None if counts is None or counts.harm is None else float(counts.harm.sum())
    return InputsRecord(
        events=result.n_events,
        events_outside=0 if counts is None else counts.n_outside,
        events_file=None if study is None else study.sources.get("events"),
        where=() if spec is None else spec.where,
        x_column=None if spec is None else spec.x_column,
        y_column=None if spec is None else spec.y_column,
        events_crs=None if spec is None else spec.events_crs,
        area_file=_area_label(study),
        block_length=float(spec.block_length) if spec is not None else float("nan"),
        max_blocks=3 if spec is None else spec.max_blocks,
        increment="whole" if spec is None else spec.increment,
        operationalization="both" if spec is None else spec.operationalization,
        spatial_influences=tuple(influences),
        factors=tuple(f.name for f in study.factors)
        if study is not None
        else tuple(dict.fromkeys(c.factor for c in result.candidates.candidates)),
        factor_files={} if study is None else dict(study.sources["factors"]),
        protective=() if spec is None else tuple(sorted(spec.protective)),
        crs=grid.crs.to_string(),
        cell_size=grid.cell_size,
        cells=grid.n_active,
        grid=GridRecord(grid.x_min, grid.y_max, grid.n_rows, grid.n_cols),
        cells_with_events=int(np.count_nonzero(result.counts)),
        weight_column=None if harm is None or spec is None else spec.weight_column,
        harm_total=harm,
        network=None if spec is None else spec.network,
    )


def _area_label(study: Any) -> str:
    if study is None:
        return ""
    spec = study.spec
    if spec is not None and spec.area_label:
        return str(spec.area_label)
    return str(study.sources.get("area", ""))


def _model_record(result: Any) -> ModelRecord:
    candidates = result.candidates
    family = get_family(result.family)
    negbin = result.selection.negative_binomial
    return ModelRecord(
        distribution=result.distribution,
        nb_form=result.nb_form,
        variance="var = phi * mu  (quasi-Poisson)"
        if result.harm_weighted and result.outcome is not None
        else family.variance_text,
        intercept=result.intercept,
        bic=result.bic,
        loglik=result.loglik,
        dispersion=result.dispersion,
        dispersion_parameter=family.dispersion_name,
        bic_poisson=float(result.selection.poisson.fit.bic),
        bic_negative_binomial=None if negbin is None else float(negbin.fit.bic),
        alpha=float(result.settings["alpha"]),
        factors=tuple(
            FactorRecord(**f.as_dict())
            for f in sorted(result.factors, key=lambda f: -f.relative_risk_value)
        ),
        steps=tuple(
            {
                "action": step.action,
                "candidate": None if step.column is None else candidates.names[step.column],
                "bic": step.bic,
            }
            for step in result.selection.best.history
        ),
        harm=_harm_extras(result),
    )


def _harm_extras(result: Any) -> dict[str, Any]:
    """What a harm-weighted fit adds to the model section."""
    if not result.harm_weighted:
        return {}
    if result.outcome is None:
        return {
            "outcome": "harm-weighted (event-equivalents)",
            "outcome_note": "Every event carries the same harm, so harm in event-equivalents "
            "equals the event counts: the count model (Poisson vs negative binomial) was fitted "
            "as without weights.",
            "dispersion_quasi": None,
        }
    selection = result.selection
    return {
        "outcome": "harm-weighted (event-equivalents)",
        "dispersion_quasi": result.dispersion_quasi,
        "dispersion_quasi_raw": selection.dispersion_raw,
        "dispersion_quasi_basis": selection.dispersion_basis,
        "outcome_note": "The outcome per cell is the total harm of its events divided by the "
        "mean harm per event (event-equivalents; they sum to the number of events). "
        "Coefficients are Poisson pseudo-likelihood estimates (consistent for the mean model). "
        "Because the variance of harm is not Poisson, inference is quasi-Poisson: the Pearson "
        f"dispersion phi (chi2/df) of the Poisson fit of the {selection.dispersion_basis}, "
        "floored at 1, divides the log-likelihood (hence BIC differences) and multiplies the "
        "variances (standard errors by sqrt(phi)) of every model in the stepwise search and "
        "of the model table. The negative binomial was not fitted: its likelihood is not a "
        "valid pseudo-likelihood for non-integer outcomes.",
    }
