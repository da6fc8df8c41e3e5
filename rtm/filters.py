"""Event filters: ``--where COL=V1,V2`` (any of the values) or ``COL=LO..HI`` (inclusive).

Parsed once into :class:`WhereClause` objects, which keep their display label (the text
the user wrote) and are stored parsed in run reports; nothing is evaluated as code.
Values match case-insensitively; ranges compare numbers as numbers and ISO dates
(``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``) on the bound's own precision, so ``..2022-06``
includes all of June.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rtm.errors import ParameterError, RTMWarning
from rtm.shared import remember

__all__ = [
    "TYPE_COLUMNS",
    "WhereClause",
    "apply_where",
    "as_clauses",
    "crime_word",
    "find_column",
    "holds_for_every_row",
    "parse_where",
]


def find_column(columns: Sequence[str], wanted: str) -> str | None:
    """The column named ``wanted``: exactly, else ignoring case and surrounding spaces."""
    for column in columns:
        if column == wanted:
            return column
    lowered = wanted.lower()
    for column in columns:
        if column.strip().lower() == lowered:
            return column
    return None


@dataclass(frozen=True)
class WhereClause:
    """One attribute filter: ``column`` is one of ``values``, or within ``low..high``."""

    column: str
    values: tuple[str, ...] | None = None
    low: str | None = None
    high: str | None = None
    text: str = ""

    @property
    def label(self) -> str:
        """How the filter reads (``type=robbery``, ``month=1..6``)."""
        if self.text:
            return self.text
        if self.values is not None:
            return f"{self.column}={','.join(self.values)}"
        return f"{self.column}={self.low or ''}..{self.high or ''}"

    def as_dict(self) -> dict[str, Any]:
        """The filter as stored in a run report: parsed, with its label."""
        out: dict[str, Any] = {"column": self.column, "label": self.label}
        if self.values is not None:
            out["values"] = list(self.values)
        else:
            out["low"], out["high"] = self.low, self.high
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WhereClause:
        """The filter :meth:`as_dict` stored."""
        values = data.get("values")
        return cls(
            str(data["column"]),
            values=None if values is None else tuple(str(v) for v in values),
            low=data.get("low"),
            high=data.get("high"),
            text=str(data.get("label", "")),
        )

    def __str__(self) -> str:
        return self.label


def parse_where(text: str) -> WhereClause:
    """Parse ``COL=V1,V2`` (any of the values) or ``COL=LO..HI`` (inclusive range).

    Either end of a range may be omitted (``month=..6``). Values are matched
    case-insensitively; nothing is evaluated as code.

    Examples
    --------
    >>> parse_where("type=robbery,burglary").values
    ('robbery', 'burglary')
    >>> clause = parse_where("month=1..6")
    >>> clause.low, clause.high
    ('1', '6')
    """
    if "=" not in text:
        raise ParameterError(f"--where {text!r}: expected COL=VALUE[,VALUE...] or COL=LO..HI")
    column, _, value = text.partition("=")
    column, value = column.strip(), value.strip()
    if not column or not value:
        raise ParameterError(f"--where {text!r}: expected COL=VALUE[,VALUE...] or COL=LO..HI")
    if ".." in value:
        low, _, high = value.partition("..")
        low, high = low.strip(), high.strip()
        if not low and not high:
            raise ParameterError(f"--where {text!r}: a range needs at least one end")
        if low and high:
            low_n, high_n = _as_number(low), _as_number(high)
            reversed_range = (
                low_n > high_n if low_n is not None and high_n is not None else low > high
            )
            if reversed_range:
                raise ParameterError(
                    f"--where {text!r}: the range's low end {low!r} is above its high end "
                    f"{high!r}; write LO..HI"
                )
        return WhereClause(column, low=low or None, high=high or None, text=text)
    values = tuple(v.strip() for v in value.split(",") if v.strip())
    return WhereClause(column, values=values, text=text)


def as_clauses(where: Iterable[str | WhereClause]) -> tuple[WhereClause, ...]:
    """Filters given as text or parsed, all parsed."""
    return tuple(w if isinstance(w, WhereClause) else parse_where(w) for w in where)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def apply_where(
    frame: pd.DataFrame,
    clauses: Sequence[WhereClause],
    *,
    what: str = "events",
    table_key: Hashable | None = None,
) -> pd.DataFrame:
    """Keep the rows for which every clause holds.

    ``table_key`` is the key under which ``frame`` itself, as read, is kept for the jobs
    of a batch (:mod:`rtm.shared`): the distinct values of the columns the clauses name
    are then kept with it, so the next job's filters on the same file do not sort the
    file's 280,000 rows again. The rows kept are the same either way.
    """
    keep = np.ones(len(frame), dtype=bool)
    columns = _attribute_columns(frame)
    for clause in clauses:
        column = find_column(columns, clause.column)
        if column is None:
            raise ParameterError(
                f"--where {clause.text!r}: {what} has no column {clause.column!r}; "
                f"columns are {', '.join(columns)}"
            )
        series = frame[column]
        coded = None
        if table_key is not None:
            coded = remember(
                "derived", (table_key, "distinct", column), lambda s=series: _distinct(s)
            )
        hit = _matches(series, clause, coded)
        if clause.values is not None:
            _warn_unmatched(series, clause, what, coded)
        elif len(frame) and not hit.any():
            warnings.warn(
                f"--where {clause.text!r}: no row of {what} has {column} in that range",
                RTMWarning,
                stacklevel=3,
            )
        keep &= hit
    return frame.loc[keep]


def holds_for_every_row(frame: pd.DataFrame, clause: WhereClause) -> bool:
    """Whether every row of ``frame`` already satisfies ``clause`` (False without the column).

    E.g. test events that are all robberies satisfy the run's ``type=robbery`` without
    being filtered by it.
    """
    column = find_column(_attribute_columns(frame), clause.column)
    if column is None or not len(frame):
        return False
    return bool(_matches(frame[column], clause).all())


def _attribute_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a clause may name: every one but the geometry."""
    geometry = getattr(frame, "_geometry_column_name", None)
    return [str(c) for c in frame.columns if c != geometry]


#: a column's rows as codes into its distinct values (:func:`_distinct`)
Coded = tuple[np.ndarray, pd.Series]


def _matches(series: pd.Series, clause: WhereClause, coded: Coded | None = None) -> np.ndarray:
    """Whether each row satisfies ``clause`` (its values, or its range)."""
    if clause.values is not None:
        return _match_values(series, clause, coded)
    return _match_range(series, clause, coded)


def _warn_unmatched(
    series: pd.Series, clause: WhereClause, what: str, coded: Coded | None = None
) -> None:
    """Warn about each value of a ``COL=V1,V2`` filter that no row has (a typo, most often)."""
    import difflib

    assert clause.values is not None
    distinct = coded[1] if coded is not None else pd.unique(series.dropna())
    present = {str(v).strip() for v in distinct}
    folded = {v.casefold() for v in present}
    numbers = {n for n in (_as_number(v) for v in present) if n is not None}
    missing = [
        v
        for v in clause.values
        if v.casefold() not in folded and (_as_number(v) is None or _as_number(v) not in numbers)
    ]
    if not missing or not present:
        return
    hints = []
    for value in missing:
        close = difflib.get_close_matches(value, sorted(present), n=1, cutoff=0.5)
        hints.append(f"{value!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    shown = ", ".join(sorted(present)[:8]) + (", ..." if len(present) > 8 else "")
    warnings.warn(
        f"--where {clause.text!r}: no row of {what} has {clause.column} = "
        f"{', '.join(hints)}; its values are {shown}",
        RTMWarning,
        stacklevel=3,
    )


def _distinct(series: pd.Series) -> Coded | None:
    """The rows of ``series`` as codes into its distinct values (None: not safely codable).

    A missing value gets code -1. Only dtypes where values that compare equal also print
    the same are coded (text, integers, booleans, datetimes, and object columns holding
    nothing but strings); an object column could hold 1, 1.0 and True, which are one
    distinct value but three different texts.
    """
    dtype = series.dtype
    if not (
        isinstance(dtype, pd.StringDtype)
        or pd.api.types.is_integer_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or (pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(series) == "string")
    ):
        return None
    codes, distinct = pd.factorize(series)
    return codes, pd.Series(distinct)


def _per_distinct_value(
    series: pd.Series, test: Callable[[pd.Series], np.ndarray], coded: Coded | None = None
) -> np.ndarray:
    """``test(series)`` (a bool per row, False for missing values), on distinct values only.

    Text methods (``str.strip``, ``str.casefold``) cost a Python call per row: 0.2 s on the
    280,000 rows of a year of London crimes, whose ``type`` column has 13 distinct values.
    So the test runs on the distinct values and its answers are mapped back to the rows
    through their codes (``coded``, or coded here when the dtype allows: :func:`_distinct`).
    """
    if coded is None:
        coded = _distinct(series)
        if coded is None:
            return test(series)
    codes, distinct = coded
    answers = np.append(test(distinct), False)  # a missing value's code -1 picks this False
    return answers[codes]


def _match_values(series: pd.Series, clause: WhereClause, coded: Coded | None) -> np.ndarray:
    assert clause.values is not None
    wanted_text = {v.casefold() for v in clause.values}

    def matches_text(values: pd.Series) -> np.ndarray:
        as_text = values.astype("string").str.strip().str.casefold()
        return as_text.isin(wanted_text).fillna(False).to_numpy(bool, copy=True)

    hit = _per_distinct_value(series, matches_text, coded)
    if pd.api.types.is_numeric_dtype(series):
        numbers = [n for n in (_as_number(v) for v in clause.values) if n is not None]
        if numbers:
            hit |= series.isin(numbers).to_numpy(bool)
    return hit


def _match_range(series: pd.Series, clause: WhereClause, coded: Coded | None) -> np.ndarray:
    low_n = _as_number(clause.low) if clause.low else None
    high_n = _as_number(clause.high) if clause.high else None
    numeric_bounds = (clause.low is None or low_n is not None) and (
        clause.high is None or high_n is not None
    )
    if pd.api.types.is_numeric_dtype(series) and numeric_bounds:
        values = series.to_numpy(float)
        hit = np.isfinite(values).copy()
        if low_n is not None:
            hit &= values >= low_n
        if high_n is not None:
            hit &= values <= high_n
        return hit
    for bound in (clause.low, clause.high):
        if bound is not None and not re.match(r"^\d{4}(-\d{2}(-\d{2}([T ][\d:]+)?)?)?$", bound):
            raise ParameterError(
                f"--where {clause.text!r}: {bound!r} is neither a number nor an ISO date "
                "(YYYY, YYYY-MM or YYYY-MM-DD)"
            )

    def within(values: pd.Series) -> np.ndarray:
        if pd.api.types.is_datetime64_any_dtype(values):
            text = values.dt.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            text = values.astype("string").str.strip()
        # ISO dates sort as text; comparing on the bound's own precision makes the upper
        # end inclusive of the whole period it names (2022-06 includes 2022-06-30).
        hit = text.notna().to_numpy(bool, copy=True)
        filled = text.fillna("")
        if clause.low is not None:
            hit &= (filled.str.slice(0, len(clause.low)) >= clause.low).to_numpy(bool)
        if clause.high is not None:
            hit &= (filled.str.slice(0, len(clause.high)) <= clause.high).to_numpy(bool)
        return hit

    return _per_distinct_value(series, within, coded)


#: Columns whose values name the kind of event (``--where type=robbery``).
TYPE_COLUMNS = ("type", "crime_type", "crime type", "category", "offence", "offense", "crime")


def crime_word(where: Sequence[WhereClause | str]) -> str:
    """The events' name from a ``type=...`` filter (``robberies``), else ``events``.

    Examples
    --------
    >>> crime_word(["type=robbery", "month=1..6"])
    'robberies'
    >>> crime_word(["type=burglary,robbery"])
    'burglary and robbery events'
    """
    for clause in as_clauses(where):
        if clause.column.strip().lower() not in TYPE_COLUMNS or not clause.values:
            continue
        values = list(clause.values)
        if len(values) == 1 and re.fullmatch(r"[A-Za-z-]+", values[0]):
            return _plural(values[0].lower())
        return " and ".join(values) + " events"
    return "events"


def _plural(word: str) -> str:
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"
