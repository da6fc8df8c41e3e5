"""``report.html``: a printable, self-contained report of a run (print it to PDF from a browser).

Four A4 pages: (1) the key numbers, the risk narrative and the map; (2) the model table
with each factor's coverage, the tiers, how concentrated the events are, and the
settings and caveats of the tiers and places; (3) the top patrol places and
highest-risk places in compact tables (location, area, events, top three factors); (4)
the model card (data, method, validation, uses), which the output registry appends
(:mod:`rtm.accountability.model_card`). Every user-supplied string is escaped by
jinja2's autoescaping.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtm._version import __version__
from rtm.export._style import TIER_COLOURS, data_uri
from rtm.export.words import environment, fraction
from rtm.filters import crime_word
from rtm.places import TIE_RULE, PlaceAnalysis
from rtm.places.locate import grid_reference
from rtm.places.patrol import WIDESPREAD
from rtm.runs import RunReport

__all__ = ["TOP_PATROL", "TOP_PLACES", "narrative", "render_report"]

#: Highest-risk places listed in the report (all of them are in places.gpkg and report.json).
TOP_PLACES = 8
#: Patrol places listed in the report.
TOP_PATROL = 15


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
    # getattr: the narrative also serves analyses made before patrol places and harm
    ranked_by = "harm" if getattr(bundle.surface, "harm", None) is not None else crime
    paragraphs.append(
        f"The highest-risk places cover {fraction(top.area_share)} of the area and had "
        f"{fraction(top.event_share)} of the {crime} ({top.events:,} of "
        f"{int(bundle.surface.counts.sum()):,}). They form {len(analysis.places)} separate "
        "places"
        + (
            f"; the first (by expected {ranked_by}) covers "
            f"{analysis.places[0].area / 10_000:.1f} ha "
            f"and had {analysis.places[0].events:,} {crime}."
            if analysis.places
            else "."
        )
    )
    patrol = getattr(analysis, "patrol", None)
    figures = getattr(analysis, "concentration", None)
    if patrol is not None and patrol.places and figures is not None and figures.top_places:
        first = figures.top_places[0]
        paragraphs.append(
            f"Cut into patrol places at most {patrol.size:g} m across, the top "
            f"{first['places']} cover {fraction(first['area_share'])} of the area and had "
            f"{fraction(first['event_share'])} of the {crime}"
            + (f" and {fraction(first['harm_share'])} of the harm" if "harm_share" in first else "")
            + f"; {len(analysis.priority_places)} clusters of high-risk cells also had recent "
            f"{crime} within {analysis.recent_distance:g} m ({analysis.recent.note}). Start "
            "patrols and problem-solving at the top patrol places (page 3, action_plan.html)."
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


def key_numbers(bundle: Any, analysis: PlaceAnalysis) -> list[tuple[str, str]]:
    """The numbers on page 1: (value, what it is)."""
    report = bundle.report
    crime = crime_word(report.where)
    top = analysis.tiers.tiers[0]
    tested = len(report.inputs.factors) or len(bundle.surface.factors)
    keys = [
        (f"{int(bundle.surface.counts.sum()):,}", f"{crime} in the period"),
        (f"{len(bundle.surface.factors)} of {tested}", "risk factors selected"),
        (
            fraction(top.event_share),
            f"of {crime} in the highest-risk places ({fraction(top.area_share)} of the area)",
        ),
    ]
    figures = analysis.concentration
    if figures is not None:
        cells = {round(t["cell_share"], 4): t for t in figures.top_cells}
        if 0.05 in cells:
            keys.append(
                (fraction(cells[0.05]["event_share"]), f"of {crime} in the top 5% of cells")
            )
            if "harm_share" in cells[0.05]:
                keys.append((fraction(cells[0.05]["harm_share"]), "of harm in the top 5% of cells"))
        for item in figures.top_places[:1]:
            keys.append(
                (
                    fraction(item.get("harm_share", item["event_share"])),
                    f"of {'harm' if 'harm_share' in item else crime} in the top {item['places']} "
                    f"patrol places ({fraction(item['area_share'])} of the area)",
                )
            )
        keys.append((f"{figures.gini_events:.2f}", f"Gini of {crime} over cells (0 = even)"))
    if analysis.intervention is not None:
        areas = analysis.intervention
        keys.append(
            (f"{len(areas.areas)}", "intervention areas (highest risk and recent hot spot)")
        )
    return keys[:8]


def _concentration_rows(analysis: PlaceAnalysis) -> list[tuple[str, str, str, str]]:
    figures = analysis.concentration
    if figures is None:
        return []
    rows = [
        (
            f"top {100 * t['cell_share']:g}% of cells",
            fraction(t["cell_share"]),
            fraction(t["event_share"]),
            fraction(t["harm_share"]) if "harm_share" in t else "",
        )
        for t in figures.top_cells
    ]
    rows += [
        (
            f"top {t['places']} patrol places",
            fraction(t["area_share"]),
            fraction(t["event_share"]),
            fraction(t["harm_share"]) if "harm_share" in t else "",
        )
        for t in figures.top_places
    ]
    return rows


def _highest_rows(bundle: Any, analysis: PlaceAnalysis) -> list[tuple[Any, str, str]]:
    places = analysis.places[:TOP_PLACES]
    if not places:
        return []
    grid = bundle.grid
    refs = grid_reference(
        np.array([p.centroid[0] for p in places]),
        np.array([p.centroid[1] for p in places]),
        grid.crs,
    )
    rows = []
    for place, ref in zip(places, refs, strict=True):
        inside = [] if analysis.patrol is None else analysis.patrol.inside(place.rank)
        text = f"{len(inside)}: " + ", ".join(inside[:3]) + (", ..." if len(inside) > 3 else "")
        rows.append((place, ref, text if inside else "none"))
    return rows


def render_report(bundle: Any, analysis: PlaceAnalysis, png: bytes, curve: bytes = b"") -> str:
    """The complete, self-contained report.html.

    ``png`` is the static map, ``curve`` the concentration curve (PNG bytes).
    """
    report = bundle.report
    inputs = report.inputs
    crime = crime_word(inputs.where)
    harm = bundle.surface.harm is not None
    # the data, method and settings of the fit are in the model card (the report's last
    # page); these are the settings of what this report adds: weights, tiers and places
    parameters = [
        ("Harm weights", inputs.harm_table or inputs.weight_column or "none (event counts)"),
        ("Protective factors", ", ".join(inputs.protective) or "none"),
        ("Block length / cell size", f"{inputs.block_length:g} m / {inputs.cell_size:g} m"),
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
    empty = analysis.tiers.empty_note()
    if empty:
        caveats.insert(0, empty[0].upper() + empty[1:] + ".")
    patrol = analysis.patrol
    model = report.model
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            title=f"Risk terrain model: {crime}",
            subtitle=", ".join(
                x for x in (inputs.area_file, ", ".join(c.label for c in inputs.where)) if x
            ),
            version=__version__,
            crime=crime,
            crime_cap=crime[:1].upper() + crime[1:],
            keys=key_numbers(bundle, analysis),
            narrative=narrative(bundle, analysis),
            procedure=procedure(report)[-1:],
            parameters=parameters,
            factors=model.factors,
            model_line=f"{model.distribution}, BIC {model.bic:.1f}, intercept "
            f"{model.intercept:.4f}. RRV: how many times the expected {crime} of a cell "
            "under the factor's influence; coverage: the share of the study area under it.",
            tiers=list(zip(analysis.tiers.tiers, TIER_COLOURS, strict=True)),
            concentration=_concentration_rows(analysis),
            concentration_note=""
            if analysis.concentration is None
            else (
                "Cells ranked by their own observed "
                + ("events and harm" if harm else crime)
                + " in the period; shares at a cut through tied cells are pro rata."
            ),
            curve=data_uri(curve) if curve else "",
            harm=harm,
            patrol=() if patrol is None else patrol.places[:TOP_PATROL],
            n_patrol=0 if patrol is None else len(patrol.places),
            patrol_size=0 if patrol is None else patrol.size,
            expected_word="harm (event-equivalents)" if harm else crime,
            recent_note=analysis.recent.note,
            places=_highest_rows(bundle, analysis),
            n_places=len(analysis.places),
            priority_line=f"{len(analysis.priority_places)} priority places (tier "
            f"{analysis.priority_tier} or higher with recent {crime} within "
            f"{analysis.recent_distance:g} m) are in places.gpkg, layer priority_places.",
            image=data_uri(png),
            caveats=caveats,
            fraction=fraction,
        )
    )
