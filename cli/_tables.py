"""Tables the commands print: the validation table, the batch summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Columns of the printed validation table: the AUC and capture at these area shares.
VALIDATION_COLUMNS = ("auc", "capture@5%", "capture@10%", "capture@20%")


def _cell(value: Any, width: int) -> str:
    if isinstance(value, bool) or value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float | int):
        return f"{value:>{width}.3f}"
    return f"{str(value):>{width}}"


def validation_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The validation table as lines: one row per surface (whatever surfaces it holds).

    ``rows`` is :meth:`rtm.validation.Validation.table`: the RTM surface, then every
    challenger, baseline or other surface the validation scored, each with its metrics.
    The columns are those of :data:`VALIDATION_COLUMNS` that some row has.
    """
    keys = [k for row in rows for k in row if k != "model"]
    columns = [c for c in VALIDATION_COLUMNS if c in keys]
    name_width = max([len("surface"), *(len(str(r.get("model", ""))) for r in rows)]) + 2
    widths = [max(8, len(c) + 2) for c in columns]
    header = f"{'surface':<{name_width}}" + "".join(
        f"{c.replace('capture', 'cap'):>{w}}" for c, w in zip(columns, widths, strict=True)
    )
    lines = [header]
    for row in rows:
        cells = "".join(_cell(row.get(c), w) for c, w in zip(columns, widths, strict=True))
        lines.append(f"{str(row.get('model', '')):<{name_width}}{cells}")
    return lines


def _job_metrics(outcome: Any) -> str:
    parts = []
    if outcome.events is not None:
        parts.append(f"{outcome.events:,} events")
    if outcome.factors:
        parts.append(f"{len(outcome.factors)} factors")
    if outcome.auc is not None:
        parts.append(f"AUC {outcome.auc:.3f}")
    return ", ".join(parts)


def job_line(outcome: Any, done: int, total: int) -> str:
    """One line as a batch job ends: area, crime, period, status, time (and the error)."""
    width = len(str(total))
    status = outcome.status.replace("_", " ")
    detail = outcome.error if outcome.status == "failed" else _job_metrics(outcome)
    return (
        f"[{done:>{width}}/{total}] {outcome.area} / {outcome.crime} / {outcome.period}: "
        f"{status} in {outcome.duration:.1f} s" + (f" ({detail})" if detail else "")
    )


def batch_lines(outcomes: Sequence[Any]) -> list[str]:
    """The summary table of a batch: one row per job, numbers rounded for reading."""
    header = ("area", "crime", "period", "status", "events", "factors", "auc", "cap@10%", "s")
    rows = [
        (
            str(o.area),
            str(o.crime),
            str(o.period),
            o.status.replace("_", " "),
            "" if o.events is None else f"{o.events:,}",
            str(len(o.factors)) if o.factors else "",
            "" if o.auc is None else f"{o.auc:.3f}",
            "" if o.capture_10 is None else f"{o.capture_10:.3f}",
            f"{o.duration:.1f}",
        )
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = 4  # the text columns are left-aligned, the numbers right-aligned
    return [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]
