"""The model card of a run: ``model_card.md`` and its section of report.html.

Everything it states is read from the run's records (report.json, and validation.json
when the run was validated): the data and what was dropped, the method and its
settings, the validation against baselines (or **not validated**), the
selection-inference caveat, known limitations, and intended and unsuitable uses. A
number that is not in those records is not in the card (tests check each against
report.json), so the card never disagrees with the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtm.accountability.document import Section, Table, to_html, to_markdown
from rtm.filters import crime_word
from rtm.runs import RunReport

__all__ = [
    "INTENDED_USES",
    "UNSUITABLE_USES",
    "add_model_card",
    "model_card_html",
    "model_card_markdown",
    "model_card_sections",
    "read_validation",
]

#: What a risk terrain model is for.
INTENDED_USES = [
    "Finding places whose environment is associated with more of this crime, to plan "
    "problem-solving, place management and prevention with partners (licensing, lighting, "
    "design, guardianship).",
    "Choosing where to send patrols and problem-oriented work, as one input to a human "
    "decision, reviewed against local knowledge and later outcomes.",
    "Explaining why places are risky (which factors, how strongly), for briefings and "
    "community engagement.",
]
#: What it must not be used for.
UNSUITABLE_USES = [
    "Any decision about a person: who to stop, search, arrest, suspect or watch. The model "
    "describes places, not people.",
    "Justifying enforcement on its own, or measuring an area's residents by its risk score.",
    "Periods, places or crime types other than those it was fitted on, without re-fitting "
    "and validating.",
    "Ranking or comparing communities, or allocating resources without a check of who lives "
    "in the selected places (rtm audit --population).",
    "Outcomes that mostly record police activity (drug and weapon possession offences), "
    "unless the map is read as a map of police activity.",
]
_LIMITATIONS = [
    "The model is correlational: a factor's RRV says how much more crime is seen near it, "
    "not that it causes crime or that removing it would prevent any.",
    "Recorded crime is not all crime: under-reporting and police recording practice vary "
    "by place and crime type, and the map inherits them.",
    "Risk changes: the map describes the fit period and should be re-fitted and re-checked "
    "(rtm audit on a batch folder tracks drift and feedback).",
    "The factor layers (open data) may be incomplete or out of date; a missing feature "
    "lowers the risk of its surroundings.",
]


def read_validation(folder: str | Path) -> dict[str, Any] | None:
    """A run folder's validation.json, or None (absent or unreadable)."""
    path = Path(folder) / "validation.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _count(value: Any) -> str:
    return f"{int(value):,}"


def _data(report: RunReport, compact: bool) -> Section:
    inputs = report.inputs
    filters = ", ".join(c.label for c in inputs.where) or "none (every event in the file)"
    items = [
        f"Events: {inputs.events_file or '(in memory)'}; filters: {filters}. The filters "
        "define the outcome and its period.",
        f"Events used: {_count(inputs.events)}; outside the study area, dropped: "
        f"{_count(inputs.events_outside)}.",
        f"Study area: {inputs.area_file or '(in memory)'} ({inputs.crs}); "
        f"{_count(inputs.cells)} cells of {inputs.cell_size:g} m, "
        f"{_count(inputs.cells_with_events)} with at least one event.",
    ]
    if inputs.weight_column is not None and inputs.harm_total is not None:
        items.append(
            f"Harm-weighted: column {inputs.weight_column}, total harm {inputs.harm_total:g}."
        )
    if report.skipped_factors:
        items.append(
            "Factors skipped (no feature within reach of the study area): "
            + ", ".join(report.skipped_factors)
            + "."
        )
    if report.dropped_candidates:
        reasons = sorted({str(d.get("reason", "")) for d in report.dropped_candidates})
        dropped = _count(len(report.dropped_candidates))
        items.append(
            f"Candidate variables dropped before selection: {dropped} ({'; '.join(reasons)})."
        )
    items.append(_provenance_text(report.section("outcome_provenance")))
    if compact:  # report.html: the names (the files are in model_card.md and report.json)
        protective = set(inputs.protective)
        names = [f"{n} (protective)" if n in protective else n for n in inputs.factors]
        return Section("Data").add(items + ["Risk factors tested: " + ", ".join(names) + "."])
    rows = tuple(
        (
            name,
            inputs.factor_files.get(name, ""),
            "protective (lowers risk)" if name in inputs.protective else "risk factor",
        )
        for name in inputs.factors
    )
    return Section("Data").add(items, Table(("Risk factor tested", "Source", "Role"), rows))


def _provenance_text(record: dict[str, Any] | None) -> str:
    if not record or record.get("column") is None and not record.get("factors"):
        return (
            "Outcome provenance: not checked (the events have no crime-category column, or "
            "the run was written before rtm recorded it)."
        )
    parts = []
    if record.get("share") is not None:
        parts.append(
            f"Outcome provenance: {_count(record['police_generated_events'])} of "
            f"{_count(record['events'])} events (share {record['share']:.3f}) are in "
            "categories that mostly record police activity"
        )
    if record.get("outcome_categories"):
        parts.append(
            "**the outcome is police-generated** (" + ", ".join(record["outcome_categories"]) + ")"
        )
    if record.get("factors"):
        parts.append("police-generated risk factors: " + ", ".join(record["factors"]))
    text = "; ".join(parts) + "."
    return text + (" " + str(record["note"]) if record.get("flagged") else "")


def _method(report: RunReport, compact: bool) -> Section:
    inputs, culling, model = report.inputs, report.culling, report.model
    influences = ", ".join(f"{d:g}" for d in inputs.spatial_influences)
    items = [
        f"Grid: block length {inputs.block_length:g} m, cells of {inputs.cell_size:g} m.",
        f"Candidates: {inputs.operationalization} at spatial influences of {influences} m "
        f"({inputs.max_blocks} blocks, {inputs.increment} increments); "
        f"{_count(report.candidates)} candidate variables.",
        f"Culling: {culling.get('method', '')}, {culling.get('n_folds', '')}-fold "
        f"cross-validation, rule {culling.get('rule', '')}, elastic-net mixing "
        f"{culling.get('l1_ratio', '')}; {_count(report.culled)} survived.",
        f"Selection: stepwise BIC, at most one variable per factor, significance level "
        f"{model.alpha:g}; distribution {model.distribution} ({model.variance}), "
        f"BIC {model.bic:.1f}.",
        f"Seed: {report.seed}; rtm {report.version}.",
    ]
    if not report.significant:
        items.append(f"**No risk factor was significant**: {report.section('message') or ''}")
    if compact:  # report.html prints the model table itself
        items.append("The model table: factors.csv, and model_card.md in the run folder.")
        return Section("Method and settings").add(items)
    rows = tuple(
        (
            f.name,
            f.operationalization,
            f"{f.spatial_influence:g}",
            f"{f.rrv:.2f}",
            "" if f.p_value != f.p_value else f"{f.p_value:.3g}",
            "" if f.coverage is None else f"{f.coverage:.3f}",
        )
        for f in report.model.factors
    )
    table = Table(("Factor", "Operationalization", "Influence (m)", "RRV", "p", "Coverage"), rows)
    return Section("Method and settings").add(items, table)


def _validation(validation: dict[str, Any] | None, compact: bool) -> Section:
    section = Section("Validation")
    if not validation or "auc" not in validation:
        return section.add(
            "**Not validated.** This run was not scored against later events: its accuracy "
            "is unknown. Validate it before use (rtm analyze --test-crimes, rtm validate, "
            "rtm validate-temporal)."
        )
    test_where = ", ".join(validation.get("test_where") or []) or "no filter"
    section.add(
        f"Scored on {_count(validation.get('events', 0))} test events from "
        f"{validation.get('test_file', '')} ({test_where}), against the baselines on the "
        "same cells."
    )
    shares = list((validation.get("capture") or {}).keys())
    rows = [("rtm", validation)]
    rows += [(name, scores) for name, scores in (validation.get("baselines") or {}).items()]
    rows += [(name, scores) for name, scores in (validation.get("challengers") or {}).items()]
    label = "Capture {}%" if compact else "Capture at {}% of the area"
    header = ("Surface", "AUC") + tuple(label.format(s) for s in shares)
    table_rows = []
    for name, scores in rows:
        if not isinstance(scores, dict) or "auc" not in scores:
            continue
        captures = scores.get("capture") or {}
        table_rows.append(
            (name, f"{scores['auc']:.3f}")
            + tuple(f"{captures[s]:.3f}" if s in captures else "" for s in shares)
        )
    return section.add(Table(header, tuple(table_rows)))


def _inference(report: RunReport) -> Section:
    items = [report.caveats[0]] if report.caveats else []
    stability = report.section("stability")
    if stability:
        items.append(
            f"Bootstrap selection stability: {_count(stability.get('resamples', 0))} "
            "resamples; see report.json stability for how often each factor was selected."
        )
    split = report.section("split_sample")
    if split:
        items.append("A split-sample refit (select on one half, test on the other) was run.")
    if not stability and not split:
        items.append(
            "No bootstrap or split-sample check was run (--bootstrap, --split-sample): the "
            "selection's stability is unknown."
        )
    moran = report.section("residual_autocorrelation")
    if moran and moran.get("morans_i") is not None:
        items.append(
            f"Moran's I of the residuals: {moran['morans_i']:.3g} "
            f"(p = {moran.get('p_value', float('nan')):.3g})."
        )
    return Section("Selection-inference caveat").add(items)


def model_card_sections(
    report: RunReport, validation: dict[str, Any] | None, *, compact: bool = False
) -> list[Section]:
    """The card's sections, from the report and the validation (None: not validated).

    ``compact`` (report.html, which prints the model table itself) lists the factors tested
    by name instead of a table of files, and leaves the model table out.
    """
    crime = crime_word(report.where)
    # report.html prints the run's caveats itself
    limitations = ([] if compact else list(report.caveats[1:])) + _LIMITATIONS
    return [
        Section("Model").add(
            f"A risk terrain model of {crime}: which features of the environment are "
            "associated with where they happened, and the relative risk of each place."
        ),
        _data(report, compact),
        _method(report, compact),
        _validation(validation, compact),
        _inference(report),
        Section("Known limitations").add(limitations),
        Section("Intended uses").add(INTENDED_USES),
        Section("Unsuitable uses").add(UNSUITABLE_USES),
    ]


def _title(report: RunReport) -> str:
    return f"Model card: {crime_word(report.where)}"


def model_card_markdown(report: RunReport, validation: dict[str, Any] | None = None) -> str:
    """``model_card.md``."""
    return to_markdown(_title(report), model_card_sections(report, validation))


def model_card_html(report: RunReport, validation: dict[str, Any] | None = None) -> str:
    """The card as an HTML fragment (``<section class="model-card">``)."""
    sections = model_card_sections(report, validation, compact=True)
    return to_html(_title(report), sections, css_class="model-card")


def add_model_card(page: str, report: RunReport, validation: dict[str, Any] | None = None) -> str:
    """report.html with the model card as its last section (before ``</body>``)."""
    fragment = model_card_html(report, validation)
    style = (
        "<style>.model-card{break-before:page;font-size:0.72em;column-count:2;column-gap:2em}"
        ".model-card h2{column-span:all}.model-card table{border-collapse:collapse;width:100%;"
        "table-layout:fixed;overflow-wrap:anywhere;"
        "break-inside:avoid}.model-card h3{break-after:avoid;margin:0.6em 0 0.2em}"
        ".model-card p,.model-card ul{margin:0.2em 0}"
        ".model-card td,.model-card th{border:1px solid #ccc;padding:2px 6px}</style>"
    )
    marker = page.rfind("</body>")
    if marker < 0:
        return page + style + fragment
    return page[:marker] + style + fragment + "\n" + page[marker:]
