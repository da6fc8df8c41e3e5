"""The words of a trial: the pre-registration (markdown) and the evaluation report (HTML).

Both are plain text built from the design and evaluation records; the HTML report is one
self-contained, printable page (CSS for print, the figure embedded as a data URI).
"""

from __future__ import annotations

import base64
import html
from typing import Any

import pandas as pd

__all__ = ["evaluation_html", "preregistration"]


def preregistration(record: dict[str, Any], table: pd.DataFrame) -> str:
    """The pre-registration summary of a design (markdown)."""
    settings = record["settings"]
    consort = record["consort"]
    events = record["events"]
    crossover = settings["scheme"] == "crossover"
    where = ", ".join(events["where"]) or "all events"
    harm = (
        f"the sum of `{events['harm_column']}`"
        if events["harm_column"]
        else "not recorded (no harm column)"
    )
    rings = ", ".join(f"{r:g} m" for r in settings["rings"])
    spacing = settings["min_spacing"]
    spacing = 2 * max(settings["rings"]) if spacing is None else spacing
    lines = [
        "# Trial pre-registration",
        "",
        "Written by `rtm trial design` before the trial starts. The allocation can be checked",
        "against the digests below: `allocation` hashes the inputs, the seed and the allocation.",
        "",
        "## Design",
        "",
        f"- Places: {consort['randomised']} ({consort['treatment']} treatment, "
        f"{consort['control']} control), "
        f"from {record['places_source']}; {consort['candidate_places']} candidates, "
        f"{consort['without_baseline_events']} without baseline events, "
        f"{consort['too_close']} skipped as closer "
        f"than {spacing:g} m to a place already chosen.",
        f"- Blocks of {settings['block_size']} places ranked by baseline {settings['block_by']}"
        + (f" within `{settings['stratify_column']}`" if settings["stratify_column"] else "")
        + "; half of each block treated (a coin for an odd place).",
        (
            f"- Scheme: daily crossover over {settings['crossover_days']} days from "
            f"{settings['start_date']}: "
            "each day every block is randomised afresh (schedule.csv)."
            if crossover
            else "- Scheme: parallel (each place keeps its arm for the whole trial)."
        ),
        f"- Seed: {settings['seed']}.",
        f"- Baseline: {events['file']} ({where}), {settings['baseline_days']:.0f} days.",
        f"- Catchments for displacement: rings of {rings} around each place.",
        "",
        "## Outcomes",
        "",
        f"- Primary: crimes ({where}) inside each place during the trial.",
        f"- Secondary: crime harm, {harm}; crimes in the catchment rings (displacement "
        "or diffusion of benefits).",
        "- Dosage: minutes and visits inside each place's geofence per day from GPS "
        "pings (`rtm trial dosage`).",
        "",
        "## Analysis",
        "",
        (
            "- Intention to treat: place-days in their scheduled arm; a Poisson model "
            "with place fixed "
            "effects (conditional on each place's total), standard errors clustered by place."
            if crossover
            else "- Intention to treat: every randomised place analysed in its "
            "allocated arm; a negative "
            "binomial (NB2) model of the trial count with block fixed effects and "
            "log(1 + baseline) as covariate."
        ),
        "- Effect: the incidence-rate ratio (IRR) of treatment with its 95% Wald "
        "interval and p-value.",
        "- Randomisation inference: the same statistic under re-drawn allocations of "
        "the same scheme "
        "(seeds spawned from the design seed); its p-value is reported beside the model's.",
        "- Displacement: the weighted displacement quotient (Bowers & Johnson 2003) "
        "and the weighted "
        "displacement difference test (Wheeler & Ratcliffe 2018) per ring.",
        "- Two-sided tests at alpha = 0.05.",
        "",
        "## Stopping rules",
        "",
        "- The trial runs its planned duration; no interim test of the outcome.",
        "- It stops early only for safety or operational reasons, which are reported; places lost",
        "  stay in their arm (intention to treat).",
        "",
        "## Digests (SHA-256)",
        "",
        f"- inputs: `{record['sha256']['inputs']}`",
        f"- inputs + seed + allocation: `{record['sha256']['allocation']}`",
        "",
        "## Allocation",
        "",
        "| place | block | arm | baseline |",
        "| --- | --- | --- | --- |",
    ]
    for row in table.itertuples(index=False):
        lines.append(f"| {row.place_id} | {row.block} | {row.arm} | {row.baseline} |")
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #bbb; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.flow { display: grid; grid-template-columns: 1fr 1fr; gap: .5rem; max-width: 40rem; }
.box { border: 2px solid #446; padding: .5rem; text-align: center; }
.wide { grid-column: 1 / 3; }
img { max-width: 100%; }
@media print { body { margin: 0; max-width: none; } .box { break-inside: avoid; } }
"""


def _table(rows: list[list[Any]], head: list[str]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
    return "".join(out) + "</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def evaluation_html(
    evaluation: dict[str, Any], consort: dict[str, int], figure_png: bytes | None
) -> str:
    """The evaluation report: CONSORT flow, effects, displacement, the figure."""
    effect = evaluation["effect"]
    flow = [
        f'<div class="box wide">Candidate places: {consort["candidate_places"]}</div>',
        f'<div class="box wide">Excluded: {consort["without_baseline_events"]} '
        "without baseline events, "
        f"{consort['too_close']} too close to another, {consort['not_needed']} not needed</div>",
        f'<div class="box wide">Randomised: {consort["randomised"]}</div>',
        f'<div class="box">Treatment: {consort["treatment"]}</div>',
        f'<div class="box">Control: {consort["control"]}</div>',
        f'<div class="box">Analysed: {evaluation["analysed"]["treatment"]}</div>',
        f'<div class="box">Analysed: {evaluation["analysed"]["control"]}</div>',
    ]
    outcomes = [
        [
            "crimes (count)",
            effect["irr"],
            f"{effect['ci'][0]:.3f} - {effect['ci'][1]:.3f}",
            effect["p_value"],
            effect["p_randomization"],
        ]
    ]
    harm = evaluation.get("harm")
    if harm:
        outcomes.append(
            [
                "harm",
                harm["irr"],
                f"{harm['ci'][0]:.3f} - {harm['ci'][1]:.3f}",
                harm["p_value"],
                harm["p_randomization"],
            ]
        )
    displacement = [
        [f"{d['inner']:g}-{d['outer']:g} m", d["wdq"], d["wdd"], d["wdd_se"], d["wdd_p_value"]]
        for d in evaluation["displacement"]["rings"]
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Trial evaluation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Trial evaluation</h1>",
        f"<p>{html.escape(evaluation['summary'])}</p>",
        "<h2>Flow of places (CONSORT)</h2>",
        '<div class="flow">' + "".join(flow) + "</div>",
        "<h2>Effect (intention to treat)</h2>",
        _table(outcomes, ["outcome", "IRR", "95% CI", "p (model)", "p (randomisation)"]),
        f"<p>Model: {html.escape(evaluation['model']['description'])}</p>",
        "<h2>Displacement and diffusion</h2>",
        _table(displacement, ["ring", "WDQ", "WDD", "WDD s.e.", "p"]),
        "<p>WDQ above 0 suggests diffusion of benefits, below 0 displacement (Bowers "
        "&amp; Johnson 2003); "
        "WDD is the change in crimes attributable to treatment counting the rings "
        "(Wheeler &amp; Ratcliffe 2018), negative meaning fewer crimes overall.</p>",
    ]
    dose = evaluation.get("dose_response")
    if dose:
        parts.append("<h2>Dose-response</h2>")
        parts.append(
            f"<p>{html.escape(dose['description'])}: IRR {dose['irr']:.3f} "
            f"(95% CI {dose['ci'][0]:.3f} - {dose['ci'][1]:.3f}). Observational: "
            "dosage was not randomised.</p>"
        )
    if figure_png:
        data = base64.b64encode(figure_png).decode()
        parts.append(
            f"<h2>Counts by arm</h2><img alt='counts by arm' src='data:image/png;base64,{data}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
