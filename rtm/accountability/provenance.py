"""Outcome provenance: how much of a run's outcome records police activity, not victims.

Some police.uk categories (drug offences, possession of weapons) are recorded mostly when
officers find them, so their counts follow where officers look. A risk map of them sends
more patrols where patrols already were, and the next map records more there: the
feedback loop of predictive policing (Lum & Isaac 2016; Ensign et al. 2018). The list is
shipped in ``police_generated.toml`` beside this module, each entry with its reason.

:func:`outcome_provenance` measures the share of a run's events in those categories and
notes where they are used (the outcome filter, a risk factor's name); :func:`warn_provenance`
warns when they are. ``rtm analyze`` stores the result as ``outcome_provenance`` in
report.json; ``rtm audit`` reports it.
"""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rtm.errors import RTMWarning
from rtm.filters import WhereClause, find_column

__all__ = [
    "FEEDBACK_NOTE",
    "TYPE_COLUMNS",
    "WARN_SHARE",
    "Category",
    "category_of",
    "outcome_provenance",
    "police_generated",
    "warn_provenance",
]

#: Where the list lives (shipped with rtm).
TABLE = Path(__file__).with_name("police_generated.toml")

#: Column names that hold the crime category, tried in order when no filter names one.
TYPE_COLUMNS = ("type", "crime type", "crime_type", "category", "offence", "offence type")

#: Warn when at least this share of an unfiltered outcome is police-generated.
WARN_SHARE = 0.05

FEEDBACK_NOTE = (
    "These categories are recorded mostly when officers find them, so their counts follow "
    "where police already patrol and search. A map of them, used to direct patrols, can "
    "send officers back where they were and record more there: a feedback loop "
    "(Lum & Isaac 2016; Ensign et al. 2018). Prefer victim-reported outcomes, or read the "
    "map as a map of police activity."
)


@dataclass(frozen=True)
class Category:
    """A police.uk category that mostly records police activity."""

    name: str
    aliases: tuple[str, ...]
    reason: str

    def matches(self, value: str) -> bool:
        """Whether a category value (any case, ``-`` or ``_`` for spaces) is this one."""
        key = _normal(value)
        return key == _normal(self.name) or key in {_normal(a) for a in self.aliases}


def _normal(value: Any) -> str:
    return " ".join(str(value).strip().lower().replace("-", " ").replace("_", " ").split())


@cache
def police_generated() -> tuple[Category, ...]:
    """The shipped list of police-generated categories."""
    data = tomllib.loads(TABLE.read_text(encoding="utf-8"))
    return tuple(
        Category(str(c["name"]), tuple(c.get("aliases", ())), " ".join(str(c["reason"]).split()))
        for c in data["category"]
    )


def category_of(value: Any) -> Category | None:
    """The police-generated category ``value`` names, or None."""
    return next((c for c in police_generated() if c.matches(str(value))), None)


def _type_column(columns: Sequence[str], where: Sequence[WhereClause]) -> str | None:
    """The crime-category column: one a value filter uses on a listed category, else by name."""
    for clause in where:
        if clause.values is not None and any(category_of(v) for v in clause.values):
            found = find_column(columns, clause.column)
            if found is not None:
                return found
    for name in TYPE_COLUMNS:
        found = find_column(columns, name)
        if found is not None:
            return found
    return None


def outcome_provenance(
    events: Any, where: Sequence[WhereClause], factors: Iterable[str] = ()
) -> dict[str, Any] | None:
    """The share of ``events`` in police-generated categories, and where they are used.

    Parameters
    ----------
    events : DataFrame
        The events a run used (after its filters).
    where : sequence of WhereClause
        The run's event filters (a value filter naming a listed category is flagged).
    factors : iterable of str
        The risk factors' names (a factor named for a listed category is flagged: it is
        built from police records of that kind).

    Returns
    -------
    dict or None
        ``column``, ``events``, ``police_generated_events``, ``share``, ``by_category``,
        ``outcome_categories``, ``factors``, ``flagged``, ``note``, ``categories`` (the
        list with reasons); None when the events have no category column and nothing else
        is flagged.
    """
    columns = [str(c) for c in getattr(events, "columns", ())]
    column = _type_column(columns, where)
    flagged_factors = sorted({f for f in factors if category_of(f) is not None})
    outcome = sorted(
        {
            category.name
            for clause in where
            if clause.values is not None
            and (column is None or clause.column.strip().lower() == column.strip().lower())
            for value in clause.values
            if (category := category_of(value)) is not None
        }
    )
    if column is None and not flagged_factors and not outcome:
        return None
    total = int(len(events))
    by_category: dict[str, int] = {}
    if column is not None and total:
        for value, count in events[column].astype(str).value_counts(sort=False).items():
            category = category_of(value)
            if category is not None:
                by_category[category.name] = by_category.get(category.name, 0) + int(count)
    generated = sum(by_category.values())
    return {
        "column": column,
        "events": total,
        "police_generated_events": generated,
        "share": generated / total if total and column is not None else None,
        "by_category": dict(sorted(by_category.items())),
        "outcome_categories": outcome,
        "factors": flagged_factors,
        "flagged": bool(outcome or flagged_factors or generated),
        "note": FEEDBACK_NOTE,
        "categories": [{"name": c.name, "reason": c.reason} for c in police_generated()],
    }


def warn_provenance(record: dict[str, Any] | None) -> None:
    """Warn (RTMWarning) when police-generated categories are the outcome or a factor."""
    if not record:
        return
    used = []
    if record["outcome_categories"]:
        used.append(f"the outcome ({', '.join(record['outcome_categories'])})")
    elif (record["share"] or 0.0) >= WARN_SHARE:
        used.append(f"{record['share']:.0%} of the outcome")
    if record["factors"]:
        used.append(f"the risk factor(s) {', '.join(record['factors'])}")
    if used:
        warnings.warn(
            f"police-generated categories are {' and '.join(used)}: they mostly record "
            "police activity, not victimisation, and risk a feedback loop "
            "(report.json outcome_provenance)",
            RTMWarning,
            stacklevel=2,
        )
