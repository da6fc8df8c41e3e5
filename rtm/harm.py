"""Harm tables (``--harm TABLE``): a weight per crime category, applied to every event.

A table maps the values of the events' crime-type column to weights. It is a CSV file
with a ``category`` and a ``weight`` column (optionally ``aliases``, other spellings of
the category separated by ``;``, and ``source``, ``status``, ``derivation`` describing
where the weight comes from), or the name of a table shipped with rtm:

* ``police-uk``: the 14 categories of police.uk street-level crime, weighted on the
  basis of the ONS Crime Severity Score (see ``docs/harm.md`` for every weight's source,
  derivation and status).

Categories are matched case-insensitively, ignoring punctuation (``Criminal damage and
arson`` = ``criminal-damage-arson`` if listed as an alias). An event category missing
from the table is an error listing every missing one: a harm map never silently drops
or zero-weights a crime type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rtm.errors import InputError, ParameterError

__all__ = [
    "CATEGORY_COLUMNS",
    "HarmTable",
    "category_column",
    "harm_weights",
    "read_harm_table",
    "shipped_tables",
]

#: Crime-type columns looked for, in order (names compared without case or punctuation).
CATEGORY_COLUMNS = ("crime type", "crime_type", "type", "category", "offence", "offense", "crime")


def _key(text: Any) -> str:
    """A category as compared: lower case, ``&`` as ``and``, punctuation as spaces."""
    words = re.sub(r"[^0-9a-z]+", " ", str(text).lower().replace("&", " and "))
    return " ".join(words.split())


@dataclass(frozen=True)
class HarmTable:
    """Weights per crime category, with where they come from.

    Attributes
    ----------
    name : str
        The shipped table's name, or the file given.
    weights : dict
        Weight per category as written in the table.
    aliases : dict
        Every accepted spelling (compared form) -> its category.
    notes : dict
        Per category: ``source``, ``status`` and ``derivation`` (empty for user tables
        without those columns).
    """

    name: str
    weights: dict[str, float]
    aliases: dict[str, str]
    notes: dict[str, dict[str, str]]

    @property
    def unverified(self) -> tuple[str, ...]:
        """Categories whose weight the table itself marks as not verified."""
        return tuple(c for c, n in self.notes.items() if n.get("status") == "unverified")

    def category_of(self, value: Any) -> str | None:
        """The table's category for an event value (None when it has none)."""
        return self.aliases.get(_key(value))

    def as_dict(self) -> dict[str, Any]:
        """The report's representation (weights and their status)."""
        return {
            "table": self.name,
            "weights": dict(self.weights),
            "unverified": list(self.unverified),
        }


def shipped_tables() -> tuple[str, ...]:
    """Names of the harm tables shipped with rtm."""
    folder = resources.files("rtm") / "data" / "harm"
    return tuple(sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".csv")))


def read_harm_table(table: str | Path) -> HarmTable:
    """Read a harm table: a shipped table's name or a CSV file.

    Raises
    ------
    ParameterError
        Neither a shipped table nor a file (the message lists the shipped ones).
    InputError
        The file has no category/weight columns, or a weight is not a number >= 0.
    """
    text = str(table)
    shipped = shipped_tables()
    if text in shipped:
        source = resources.files("rtm") / "data" / "harm" / f"{text}.csv"
        with resources.as_file(source) as path:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    elif Path(text).is_file():
        try:
            frame = pd.read_csv(text, dtype=str, keep_default_na=False)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"--harm {text}: cannot read it as CSV ({exc})") from None
    else:
        raise ParameterError(
            f"--harm {text}: no such file and no shipped table of that name "
            f"(shipped: {', '.join(shipped)})"
        )
    return _table(text, frame)


def _table(name: str, frame: pd.DataFrame) -> HarmTable:
    columns = {_key(c): c for c in frame.columns}
    if "category" not in columns or "weight" not in columns:
        raise InputError(
            f"--harm {name}: a harm table needs a 'category' and a 'weight' column; "
            f"it has {', '.join(map(str, frame.columns))}"
        )
    weights: dict[str, float] = {}
    aliases: dict[str, str] = {}
    notes: dict[str, dict[str, str]] = {}
    for _, row in frame.iterrows():
        category = str(row[columns["category"]]).strip()
        if not category:
            continue
        try:
            weight = float(row[columns["weight"]])
        except ValueError:
            weight = float("nan")
        if not np.isfinite(weight) or weight < 0:
            raise InputError(
                f"--harm {name}: the weight of {category!r} is "
                f"{row[columns['weight']]!r}; weights must be numbers >= 0"
            )
        weights[category] = weight
        spellings = [category]
        if "aliases" in columns:
            spellings += [a for a in str(row[columns["aliases"]]).split(";") if a.strip()]
        for spelling in spellings:
            aliases[_key(spelling)] = category
        notes[category] = {
            key: str(row[columns[key]])
            for key in ("source", "status", "derivation")
            if key in columns
        }
    if not weights:
        raise InputError(f"--harm {name}: the table lists no category")
    return HarmTable(name, weights, aliases, notes)


def category_column(frame: pd.DataFrame, table: str = "") -> str:
    """The events' crime-type column (``Crime type``, ``type``, ``category``...).

    Raises
    ------
    InputError
        No such column (the message lists the columns).
    """
    columns = {_key(c): c for c in frame.columns if c != "geometry"}
    for name in CATEGORY_COLUMNS:
        if _key(name) in columns:
            return str(columns[_key(name)])
    raise InputError(
        f"--harm {table}: the events have no crime-type column (looked for "
        f"{', '.join(CATEGORY_COLUMNS)}); columns are {', '.join(map(str, columns.values()))}"
    )


def harm_weights(frame: pd.DataFrame, table: HarmTable, *, what: str = "events") -> np.ndarray:
    """The weight of every event of ``frame`` from its crime type.

    Raises
    ------
    InputError
        Some categories are not in the table: one line listing all of them.

    Examples
    --------
    >>> table = _table("t", pd.DataFrame({"category": ["Robbery", "Drugs"], "weight": ["4", "1"]}))
    >>> harm_weights(pd.DataFrame({"type": ["robbery", "DRUGS", "Robbery"]}), table).tolist()
    [4.0, 1.0, 4.0]
    """
    column = category_column(frame, table.name)
    values = frame[column].astype(str)
    distinct = pd.unique(values)
    lookup = {v: table.category_of(v) for v in distinct}
    missing = sorted(v for v, c in lookup.items() if c is None)
    if missing:
        raise InputError(
            f"{what}: --harm {table.name} has no weight for {len(missing)} categor"
            f"{'y' if len(missing) == 1 else 'ies'} of column {column!r}: "
            + ", ".join(repr(m) for m in missing)
        )
    weight_of = {v: table.weights[str(c)] for v, c in lookup.items()}
    return values.map(weight_of).to_numpy(dtype=np.float64)
