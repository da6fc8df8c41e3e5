"""``audit.md``: the tables of ``audit.json`` for people."""

from __future__ import annotations

from typing import Any

from rtm.accountability.document import Section, Table, to_markdown

__all__ = ["audit_markdown"]


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _exposure(result: dict[str, Any]) -> list[Section]:
    rows = result.get("exposure_disparity") or []
    if not rows:
        return [Section("Exposure disparity").add(result.get("exposure_note", "not computed"))]
    table = Table(
        ("Selection", "Cells", "Group", "Share in selected", "Share in area", "Ratio", "Interval"),
        tuple(
            (
                r["selection"],
                str(r["cells"]),
                r["group"],
                _f(r["share_in_selected"]),
                _f(r["share_in_area"]),
                _f(r["ratio"], 2),
                "-" if not r["ratio_ci"] else f"{r['ratio_ci'][0]:.2f} to {r['ratio_ci'][1]:.2f}",
            )
            for r in rows
        ),
    )
    population = result.get("population", {})
    sections = [
        Section("Exposure disparity").add(
            f"Population layer: {population.get('source')} ({population.get('units')} units). "
            "Ratio = the group's share of the residents of the selected cells over its share "
            "of the area's residents; intervals: percentile bootstrap over population units.",
            table,
        )
    ]
    parity = result.get("exposure_parity") or []
    if parity:
        sections.append(
            Section("Parity-constrained alternative").add(
                "The same number of cells, chosen for the highest total score with every "
                "group's ratio within 1 +- the tolerance; capture on the audit's events.",
                Table(
                    (
                        "Selection",
                        "Cells",
                        "Feasible",
                        "Capture",
                        "Capture (parity)",
                        "Cost",
                        "Ratios (parity)",
                    ),
                    tuple(
                        (
                            p["selection"],
                            str(p["cells"]),
                            "yes" if p["feasible"] else "no",
                            _f(p["capture"]),
                            _f(p["capture_parity"]),
                            _f(p["capture_cost"]),
                            ", ".join(f"{g} {_f(v, 2)}" for g, v in p["ratios"].items()),
                        )
                        for p in parity
                    ),
                ),
            )
        )
    return sections


def _accuracy(result: dict[str, Any]) -> list[Section]:
    parity = result.get("accuracy_parity")
    if not parity:
        return []
    events = parity.get("events", {})
    note = "in sample (the run's own events)" if events.get("in_sample") else events.get("source")
    rows = []
    for sub in parity["subareas"]:
        local = sub["local"] or {}
        chosen = sub["selection"].get("10", {})
        rows.append(
            (
                sub["name"],
                str(sub["cells"]),
                _f(sub["events"], 0),
                _f(local.get("auc")),
                _f((local.get("capture") or {}).get("10")),
                _f(chosen.get("selected_share")),
                _f(chosen.get("capture_of_selection")),
                _f(sub["calibration"], 2),
            )
        )
    overall = parity.get("overall") or {}
    rows.append(
        (
            "overall",
            "",
            "",
            _f(overall.get("auc")),
            _f((overall.get("capture") or {}).get("10")),
            "0.100",
            _f((overall.get("capture") or {}).get("10")),
            "1.00",
        )
    )
    return [
        Section("Accuracy parity").add(
            f"Surface {parity['surface']}, events: {note}. Local = ranked within the "
            "sub-area; area-wide = the top 10% of the whole area as deployed.",
            Table(
                (
                    "Sub-area",
                    "Cells",
                    "Events",
                    "AUC (local)",
                    "Capture@10% (local)",
                    "Share selected (area-wide 10%)",
                    "Capture (area-wide 10%)",
                    "Calibration",
                ),
                tuple(rows),
            ),
        )
    ]


def _series(result: dict[str, Any]) -> list[Section]:
    sections = []
    for name, monitor in (result.get("feedback") or {}).items():
        rows = tuple(
            (
                f"{p['from']} -> {p['to']}",
                _f(p.get("selection_persistence")),
                _f(p.get("crime_persistence")),
                _f(p.get("relative_change_selected"), 2),
                "WARNING" if p.get("warning") else "",
            )
            for p in monitor["pairs"]
        )
        sections.append(
            Section(f"Feedback monitor: {name}").add(
                Table(
                    (
                        "Runs",
                        "Selection persistence",
                        "Crime persistence",
                        "Events in places selected twice, relative change",
                        "Flag",
                    ),
                    rows,
                ),
                monitor["warnings"] or ["no warning"],
            )
        )
    for name, table in (result.get("drift") or {}).items():
        factors = sorted({f for r in table["runs"] for f in r["factors"]})
        drift_rows: tuple[tuple[str, ...], ...] = tuple(
            (r["run"], str(r["events"]))
            + tuple(_f(r["factors"].get(f), 2) if f in r["factors"] else "" for f in factors)
            + ("REVIEW: " + "; ".join(r["reasons"]) if r["review"] else "",)
            for r in table["runs"]
        )
        sections.append(
            Section(f"Drift: {name}").add(
                "RRV of each selected factor, run by run.",
                Table(("Run", "Events", *factors, "Review"), drift_rows),
            )
        )
    return sections


def _provenance(result: dict[str, Any]) -> list[Section]:
    record = result.get("outcome_provenance")
    if "outcome_provenance" not in result:
        return []
    if not record:
        return [Section("Outcome provenance").add("Not recorded for this run.")]
    share = record.get("share")
    text = (
        f"{record['police_generated_events']} of {record['events']} events "
        f"(share {_f(share)}) are in police-generated categories "
        f"({', '.join(f'{k}: {v}' for k, v in record['by_category'].items()) or 'none'})."
    )
    if record.get("flagged"):
        text += " " + str(record["note"])
    return [Section("Outcome provenance").add(text)]


def audit_markdown(result: dict[str, Any]) -> str:
    """The audit as Markdown."""
    sections = _exposure(result) + _accuracy(result) + _series(result) + _provenance(result)
    return to_markdown(f"Audit of {result.get('run')}", sections)
