"""``transparency_record.md``: a draft record in the structure of the UK ATRS.

The Algorithmic Transparency Recording Standard (ATRS, Cabinet Office / DSIT; version 3
of the template) asks public bodies to publish a record of each algorithmic tool: a
Tier 1 overview for the public and five Tier 2 sections (owner and responsibility,
description and rationale, decision-making process, tool specification, risks and
mitigations). rtm fills in what the run knows (the tool, its data, its method, its
validation, its known risks) and marks every field only the organisation can fill with
:data:`TO_FILL`. It is a draft for a person to complete and check, not a record to
publish as it stands.
"""

from __future__ import annotations

from typing import Any

from rtm.accountability.document import Section, Table, to_markdown
from rtm.accountability.model_card import INTENDED_USES, UNSUITABLE_USES
from rtm.filters import crime_word
from rtm.runs import RunReport

__all__ = ["TO_FILL", "transparency_record"]

#: The mark of a field only a person can fill.
TO_FILL = "**[TO BE COMPLETED BY THE ORGANISATION]**"


def _fill(what: str) -> str:
    return f"{TO_FILL} {what}"


def _tier1(report: RunReport, crime: str) -> list[Section]:
    return [
        Section("Tier 1: overview").add(
            Table(
                ("Field", "Entry"),
                (
                    ("Name", _fill("the tool's name as the public will know it")),
                    (
                        "Description",
                        f"A risk terrain model of {crime}: it finds the features of the "
                        "environment (such as transport stops or licensed premises) associated "
                        "with where these crimes were recorded, and maps the places where they "
                        "combine. People use the map to decide where to focus prevention, "
                        "problem-solving and patrols; it makes no decision about any person.",
                    ),
                    ("Website", _fill("where the public can read more")),
                    ("Contact email", _fill("a monitored address")),
                ),
            )
        )
    ]


def _owner() -> Section:
    return Section("Tier 2, section 1: owner and responsibility").add(
        [
            "Organisation: " + _fill("the force or public body"),
            "Team: " + _fill("the team that runs the analysis"),
            "Senior responsible owner: " + _fill("role title"),
            "External supplier: none for the software (rtm is open source); "
            + _fill("any supplier of data or analysis"),
        ]
    )


def _rationale(crime: str) -> Section:
    return Section("Tier 2, section 2: description and rationale").add(
        f"Detailed description: rtm fits a risk terrain model (Caplan & Kennedy) of {crime}: "
        "each risk factor is turned into binary layers (within a distance of the nearest "
        "feature, or high kernel density), the layers worth testing are kept by a "
        "cross-validated elastic net, and a stepwise search by BIC selects at most one "
        "layer per factor in a count regression. The relative risk score of a place is the "
        "product of the relative risk values of the factors present.",
        "Intended uses:",
        list(INTENDED_USES),
        "Scope and unsuitable uses:",
        list(UNSUITABLE_USES),
        "Benefits: " + _fill("what the organisation expects to gain and how it will measure it"),
        "Previous process and alternatives considered: "
        + _fill("e.g. hot-spot maps of past crime (rtm validation compares against them)"),
    )


def _decisions() -> Section:
    return Section("Tier 2, section 3: decision-making process").add(
        [
            "Process integration: the outputs (risk map, places, priority places, report) "
            "inform a human decision on where to work; " + _fill("which meeting decides, and who"),
            "Provided information: report.html, map.html, places.gpkg, the model card "
            "(model_card.md).",
            "Frequency and scale of usage: " + _fill("how often the model is re-fitted and used"),
            "Human decisions and review: every place is reviewed by a person before action; "
            "rtm audit gives the checks and the thresholds that call for review. "
            + _fill("who reviews, and the review thresholds adopted"),
            "Required training: " + _fill("training for analysts and for those who act"),
            "Appeals and review: " + _fill("how the public can question the use of the tool"),
        ]
    )


def _specification(report: RunReport, validation: dict[str, Any] | None) -> Section:
    inputs, model = report.inputs, report.model
    filters = ", ".join(c.label for c in inputs.where) or "none"
    factors = ", ".join(f"{f.name} (RRV {f.rrv:.2f})" for f in model.factors) or "none"
    validated = (
        f"AUC {validation['auc']:.3f} on {int(validation.get('events', 0)):,} test events "
        "(baselines in validation.json and the model card)"
        if validation and "auc" in validation
        else "**not validated** against later events"
    )
    return Section("Tier 2, section 4: tool specification").add(
        [
            f"System architecture: rtm {report.version}, a Python command-line tool run by "
            "an analyst; inputs and outputs are files.",
            "Phase: " + _fill("pre-deployment, beta, production or retired"),
            "Maintenance: " + _fill("who re-fits and re-checks the model, and how often"),
            f"Model: {model.distribution} regression ({model.variance}); selected factors: "
            f"{factors}.",
            f"Model performance: {validated}.",
            f"Development data: recorded events from {inputs.events_file or '(in memory)'} "
            f"(filters: {filters}; {inputs.events:,} events used, "
            f"{inputs.events_outside:,} outside the area dropped); the factor layers "
            f"{', '.join(inputs.factors)} (their files: model_card.md, report.json); the "
            f"study area {inputs.area_file}.",
            "Data collection, sharing, access and storage: "
            + _fill("the legal basis and how the data are held"),
            "Data completeness and representativeness: recorded crime omits unreported crime "
            "and reflects recording practice; open factor layers may be incomplete. "
            + _fill("what is known of the local data"),
            "Personal data: rtm uses event locations and categories only, no names; "
            + _fill("the data protection impact assessment"),
        ]
    )


def _risks(report: RunReport) -> Section:
    provenance = report.section("outcome_provenance") or {}
    items = [
        "Feedback loops: enforcement-generated records can send patrols where they already "
        "were (Lum & Isaac; Ensign et al.). Mitigation: rtm records the share of the "
        "outcome in police-generated categories (report.json outcome_provenance) and rtm "
        "audit monitors selected places whose crime falls.",
        "Unequal exposure: selected places may hold more residents of some groups. "
        "Mitigation: rtm audit --population reports exposure by group, with a parity-"
        "constrained alternative and what it costs.",
        "Uneven accuracy: the map may work better in some areas. Mitigation: rtm audit "
        "--subareas reports capture, PAI and calibration by sub-area.",
        "Drift: the factors and their strength change over time. Mitigation: rtm audit on a "
        "batch folder flags runs for human review.",
    ]
    if provenance.get("flagged"):
        items.append("**This run uses police-generated categories**: " + str(provenance["note"]))
    items += list(report.caveats)
    return Section("Tier 2, section 5: risks, mitigations and impact assessments").add(
        "Impact assessments: "
        + _fill("equality impact assessment, DPIA, and where they are published"),
        items,
    )


def transparency_record(report: RunReport, validation: dict[str, Any] | None = None) -> str:
    """``transparency_record.md`` of a run (``validation``: its validation.json, if any)."""
    crime = crime_word(report.where)
    sections = _tier1(report, crime) + [
        _owner(),
        _rationale(crime),
        _decisions(),
        _specification(report, validation),
        _risks(report),
    ]
    intro = Section("About this draft").add(
        "Pre-filled by rtm in the structure of the UK Algorithmic Transparency Recording "
        f"Standard from one run. Fields marked {TO_FILL} can only be completed by the "
        "organisation using the tool; check every entry before publication."
    )
    return to_markdown(f"Algorithmic transparency record (draft): {crime}", [intro, *sections])
