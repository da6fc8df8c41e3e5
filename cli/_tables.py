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
