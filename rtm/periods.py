"""Event periods: a month column (``2022-03``, or numbers 1..12) or dates, as month numbers.

The one place month columns are parsed: :func:`event_periods` (strict, for validation's
windows and lagged designs) and :func:`month_ordinals` (tolerant, for the recent window
of priority places) share :func:`_months`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rtm.errors import InputError, ParameterError

__all__ = ["event_periods", "month_label", "month_ordinals"]


def _months(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each value as a number (numeric columns) or a month index (``year * 12 + month - 1``).

    Returns the numbers (float64, NaN where unreadable) and the mask of readable values.
    """
    if pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        return numbers, ~np.isnan(numbers)
    dates = pd.to_datetime(values.astype("string"), errors="coerce", format="mixed")
    numbers = (dates.dt.year * 12 + dates.dt.month - 1).to_numpy(dtype=float, na_value=np.nan)
    return numbers, ~np.isnan(numbers)


def event_periods(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Integer period of each event: the column itself if numeric, else calendar months.

    Raises
    ------
    ParameterError
        No such column.
    InputError
        A value is neither a whole number nor a date (the message shows it).

    Examples
    --------
    >>> event_periods(pd.DataFrame({"month": ["2022-01", "2022-03"]}), "month").tolist()
    [24264, 24266]
    """
    if column not in frame.columns:
        raise ParameterError(
            f"--period-column {column}: no such column; columns are "
            + ", ".join(str(c) for c in frame.columns if c != "geometry")
        )
    values = frame[column]
    numbers, readable = _months(values)
    if pd.api.types.is_numeric_dtype(values):
        if not readable.all() or np.any(numbers != np.round(numbers)):
            raise InputError(f"period column {column}: needs whole numbers (e.g. months 1-12)")
    elif not readable.all():
        bad = values[~readable].iloc[0]
        raise InputError(f"period column {column}: {bad!r} is neither a whole number nor a date")
    return numbers.astype(np.int64)


def month_ordinals(values: pd.Series, *, tolerance: float = 0.1) -> np.ndarray | None:
    """Months as numbers (``2022-03`` -> 2022*12+2; plain 1..12 kept), or None.

    None when more than ``tolerance`` of the values are unreadable (not a month column).
    """
    numbers, readable = _months(values)
    if len(numbers) == 0 or (~readable).mean() > tolerance:
        return None
    return numbers


def month_label(ordinal: float) -> str:
    """``2022-03`` for a month index, ``month 3`` for a plain month number."""
    value = int(ordinal)
    if value > 1000:  # year * 12 + month - 1
        return f"{value // 12:04d}-{value % 12 + 1:02d}"
    return f"month {value}"
