"""Recent events, for priority places: the last days (or months) of the events.

A date column (``date``, ``datetime``, ... or the one named) gives day resolution; a
``month`` column (``2022-03`` or month numbers) gives month resolution. Without either,
every event counts as recent, and the note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rtm.errors import ParameterError
from rtm.periods import month_label, month_ordinals
from rtm.spec_values import DEFAULT_RECENT_DAYS

__all__ = ["DEFAULT_RECENT_DAYS", "RecentWindow", "select_recent"]

_DATE_COLUMNS = ("date", "datetime", "date_time", "occurred", "occurred_at", "timestamp")
_DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True, eq=False)
class RecentWindow:
    """Which events count as recent, and why."""

    column: str | None
    resolution: str | None
    window_days: float
    start: str | None
    end: str | None
    events: int
    note: str
    mask: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "column": self.column,
            "resolution": self.resolution,
            "window_days": self.window_days,
            "from": self.start,
            "to": self.end,
            "events": self.events,
            "note": self.note,
        }


def select_recent(
    events: pd.DataFrame | None,
    window_days: float = DEFAULT_RECENT_DAYS,
    date_column: str | None = None,
) -> RecentWindow:
    """Mark the events of the last ``window_days`` (counted back from the latest event).

    A date column (``date``, ``datetime``, ... or ``date_column``) gives day resolution; a
    ``month`` column (``2022-03`` or month numbers) gives month resolution (the window is
    rounded to whole months, at least one). Without either, every event counts as recent
    and the note says so.
    """
    if not window_days > 0:
        raise ParameterError(f"--recent-days must be positive, got {window_days!r}")
    if events is None or len(events) == 0:
        return RecentWindow(None, None, window_days, None, None, 0, "no event points available")
    columns = {str(c).lower(): c for c in events.columns if c != "geometry"}
    if date_column is not None and date_column not in events.columns:
        raise ParameterError(
            f"--date-column {date_column}: no such column; events have "
            f"{', '.join(map(str, columns.values()))}"
        )
    candidates = (
        [date_column] if date_column else [columns[c] for c in _DATE_COLUMNS if c in columns]
    )
    for column in candidates:
        dates = pd.to_datetime(events[column], errors="coerce", format="mixed")
        if dates.notna().mean() >= 0.9:
            end = dates.max()
            start = end - pd.Timedelta(days=window_days)
            mask = ((dates > start) & (dates <= end)).to_numpy()
            return RecentWindow(
                str(column),
                "day",
                window_days,
                start.date().isoformat(),
                end.date().isoformat(),
                int(mask.sum()),
                f"events of the {window_days:g} days up to the latest event ({end.date()})",
                mask,
            )
    month_column = date_column or columns.get("month")
    if month_column is not None:
        months = month_ordinals(events[month_column])
        if months is not None:
            n_months = max(1, round(window_days / _DAYS_PER_MONTH))
            latest = np.nanmax(months)
            mask = months > latest - n_months
            return RecentWindow(
                str(month_column),
                "month",
                window_days,
                month_label(latest - n_months + 1),
                month_label(latest),
                int(mask.sum()),
                f"month resolution: the last {n_months} month(s) of data",
                mask,
            )
    return RecentWindow(
        None,
        None,
        window_days,
        None,
        None,
        len(events),
        "the events have no date or month column: all events count as recent",
        np.ones(len(events), bool),
    )
