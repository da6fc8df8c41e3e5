"""``report.html``: a printable, self-contained report of a run (print it to PDF from a browser).

Inputs, parameters, the statistical procedure in words, the model table, the static map
(inline), the tiers, the top places, a plain-English risk narrative and the caveats.
Every user-supplied string is escaped by jinja2's autoescaping.
"""

from __future__ import annotations

from typing import Any

from rtm._version import __version__
from rtm.export._style import TIER_COLOURS, data_uri
from rtm.export.words import environment, fraction
from rtm.filters import crime_word
from rtm.places import TIE_RULE, PlaceAnalysis
from rtm.runs import RunReport

__all__ = ["TOP_PLACES", "narrative", "render_report"]

#: Places listed in the report (all of them are in places.gpkg and report.json).
TOP_PLACES = 10
#: A factor present in more than this share of the cells never leads the narrative.
WIDESPREAD = 0.9


def narrative(bundle: Any, analysis: PlaceAnalysis) -> list[str]:
    """The risk narrative for briefings, one paragraph per item."""
    report = bundle.report
    crime = crime_word(report.where)
    factors = bundle.surface.factors
    tested = len(report.inputs.factors) or len(factors)
    top = analysis.tiers.tiers[0]
    paragraphs = []
    text = (
        f"{tested} risk factors were tested ({report.candidates} candidate variables); "
        f"{len(factors)} {'was' if len(factors) == 1 else 'were'} selected."
    )
    # A factor present almost everywhere is the contrast "everywhere but a few cells":
    # its RRV measures what those few cells lack, and nobody can act on "everywhere".
    widespread = [f for f in factors if f.coverage > WIDESPREAD]
    aggravating = [f for f in factors if not f.protective and f.coverage <= WIDESPREAD]
    if aggravating:
        best = max(aggravating, key=lambda f: f.relative_risk_value)
        text += (
            f" The most attractive was {best.name} ({best.describe()}), RRV "
            f"{best.relative_risk_value:.2f}: a cell under its influence is expected to see "
            f"{best.relative_risk_value:.1f} times as many {crime} as an otherwise similar cell."
        )
    if widespread:
        names = ", ".join(
            f"{f.name} ({f.describe()}, {fraction(f.coverage)} of the area)" for f in widespread
        )
        text += (
            f" {names} {'covers' if len(widespread) == 1 else 'cover'} almost the whole area: "
            f"{'its' if len(widespread) == 1 else 'their'} RRV compares the few cells outside "
            f"{'it' if len(widespread) == 1 else 'them'} (open land, parks, water) with "
            "everywhere else, so it says where risk is low rather than which places to act on."
        )
    protective = [f for f in factors if f.protective]
    if protective:
        text += (
            " Protective: "
            + "; ".join(
                f"{f.name} ({f.describe()}, risk divided by {f.relative_risk_value:.2f})"
                for f in protective
            )
            + "."
        )
    paragraphs.append(text)
    paragraphs.append(
        f"The highest-risk places cover {fraction(top.area_share)} of the area and had "
        f"{fraction(top.event_share)} of the {crime} ({top.events:,} of "
        f"{int(bundle.surface.counts.sum()):,}). They form {len(analysis.places)} separate "
        "places"
        + (
            f"; the first (by expected {crime}) covers {analysis.places[0].area / 10_000:.1f} ha "
            f"and had {analysis.places[0].events} {crime}."
            if analysis.places
            else "."
        )
    )
    recent = analysis.recent
    paragraphs.append(
        f"{len(analysis.priority_places)} priority places combine high risk with recent {crime} "
        f"within {analysis.recent_distance:g} m ({recent.note}): start patrols and "
        "problem-solving there."
    )
    return paragraphs


def procedure(report: RunReport) -> list[str]:
    """The statistical procedure in words, from the report's settings."""
    inputs, culling, model = report.inputs, report.culling, report.model
    influences = ", ".join(f"{d:g}" for d in inputs.spatial_influences)
    distribution = (
        "Poisson" if model.distribution == "poisson" else f"negative binomial ({model.variance})"
    )
    return [
        f"The study area was divided into {inputs.cells:,} cells of {inputs.cell_size:g} m; "
        f"{inputs.events:,} {crime_word(inputs.where)} were counted per cell "
        f"({inputs.events_outside:,} outside the area were dropped).",
        "Each factor became binary candidate variables "
        f"({inputs.operationalization}: proximity = within the distance of the "
        "nearest feature; density = Epanechnikov kernel "
        f"density at least mean + 2 SD) at spatial influences of {influences} m.",
        f"Culling: {culling['method']} ({culling['n_folds']}-fold cross-validation, "
        f"{culling['rule']}, elastic-net mixing {culling['l1_ratio']}); {report.culled} of "
        f"{report.candidates} candidates survived.",
        "Selection: bidirectional stepwise search lowering the BIC, at most one variable per "
        f"factor, every coefficient positive and significant at {model.alpha:g}; run with "
        "Poisson and negative binomial distributions, the lower BIC won: "
        f"{distribution}, BIC {model.bic:.1f}.",
        "Relative risk value (RRV) = exp(coefficient); relative risk score (RRS) of a cell = "
        "product of the RRVs of the factors present, so the lowest-risk cell scores 1.",
    ]


def render_report(bundle: Any, analysis: PlaceAnalysis, png: bytes) -> str:
    """The complete, self-contained report.html (``png`` is the static map)."""
    report = bundle.report
    inputs = report.inputs
    crime = crime_word(inputs.where)
    parameters = [
        ("Events file", inputs.events_file or ""),
        ("Event filters", ", ".join(c.label for c in inputs.where) or "none"),
        ("Events used / outside the area", f"{inputs.events:,} / {inputs.events_outside:,}"),
        ("Study area", inputs.area_file),
        ("CRS", inputs.crs),
        ("Risk factors tested", ", ".join(inputs.factors)),
        ("Protective factors", ", ".join(inputs.protective) or "none"),
        ("Block length / cell size", f"{inputs.block_length:g} m / {inputs.cell_size:g} m"),
        ("Cells (with events)", f"{inputs.cells:,} ({inputs.cells_with_events:,})"),
        ("Spatial influences", f"{inputs.max_blocks} blocks, {inputs.increment} increments"),
        ("Seed", str(report.seed)),
        ("Tier cuts (SD above mean RRS)", ", ".join(f"{t.sd_cut:g}" for t in analysis.tiers.tiers)),
        (
            "Priority places",
            f"tier {analysis.priority_tier} or higher, recent {crime} within "
            f"{analysis.recent_distance:g} m; {analysis.recent.note}",
        ),
    ]
    caveats = list(report.caveats) + [
        f"Tiers: {TIE_RULE}; the RRS took {analysis.tiers.distinct_scores} distinct values here.",
        "Highest-risk places are clusters of top-tier cells touching at an edge or a corner "
        "(8-connectivity).",
    ]
    if analysis.recent.resolution is None:
        caveats.append(f"Priority places: {analysis.recent.note}.")
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            title=f"Risk terrain model: {crime}",
            version=__version__,
            crime=crime,
            narrative=narrative(bundle, analysis),
            procedure=procedure(report),
            parameters=parameters,
            factors=report.model.factors,
            intercept=report.model.intercept,
            tiers=list(zip(analysis.tiers.tiers, TIER_COLOURS, strict=True)),
            places=analysis.places[:TOP_PLACES],
            n_places=len(analysis.places),
            priority=analysis.priority_places[:TOP_PLACES],
            n_priority=len(analysis.priority_places),
            image=data_uri(png),
            caveats=caveats,
            fraction=fraction,
        )
    )
