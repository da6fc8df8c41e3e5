"""``trial_dosage``: GPS pings to patrol minutes and visits per place per day.

Pings (time, lon/lat or x/y, unit id) are read in chunks, projected, and located in the
places' geofences (the place polygons, optionally widened by ``buffer`` metres): pings
sorted by x are cut to each geofence's box by binary search and tested exactly with
``shapely.intersects_xy``. Only three small columns per ping are kept (unit code, time,
place), so a million pings take seconds and tens of megabytes (``python -m
benchmarks.trial_dosage``).

Time at a place: each ping of a unit inside a geofence is credited with the time to that
unit's next ping, capped at ``max_gap`` minutes (a device that stops reporting does not
patrol for hours). A visit starts at a ping inside a geofence whose previous ping (of the
same unit) was elsewhere or more than ``max_gap`` earlier.
"""

from __future__ import annotations

import io
import time as clock
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from rtm.errors import InputError, ParameterError
from rtm.export.atomic import atomic_dir
from rtm.runs.folder import write_json
from rtm.trial.design import TrialDesign, read_design

__all__ = ["locate_pings", "ping_dosage", "trial_dosage"]


def locate_pings(geofences: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The index of the geofence holding each point (boundary included), or -1.

    The points are sorted by x once; each geofence takes the points within its x range by
    binary search, keeps those within its y range, and tests them exactly with
    ``shapely.intersects_xy`` (no point objects are made). The first geofence wins where
    geofences overlap.
    """
    place = np.full(len(x), -1, dtype=np.int32)
    if len(x) == 0 or len(geofences) == 0:
        return place
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    bounds = shapely.bounds(geofences)
    shapely.prepare(geofences)
    for index in range(len(geofences) - 1, -1, -1):  # reversed: the first fence is set last
        x_min, y_min, x_max, y_max = bounds[index]
        low = np.searchsorted(sorted_x, x_min, side="left")
        high = np.searchsorted(sorted_x, x_max, side="right")
        candidates = order[low:high]
        candidates = candidates[(y[candidates] >= y_min) & (y[candidates] <= y_max)]
        if len(candidates):
            inside = shapely.intersects_xy(geofences[index], x[candidates], y[candidates])
            place[candidates[inside]] = index
    return place


def _seconds(values: pd.Series, column: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(np.float64).astype(np.int64)
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise InputError(f"--pings: column {column!r} has a value that is not a time ({bad!r})")
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.to_numpy("datetime64[s]").astype(np.int64)


def _day_labels(seconds: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD`` of each time (seconds since 1970), formatting each distinct day once."""
    days, inverse = np.unique(seconds // 86400, return_inverse=True)
    labels = days.astype("datetime64[D]").astype(str)
    return labels[inverse]


def ping_dosage(
    unit: np.ndarray, seconds: np.ndarray, place: np.ndarray, *, max_gap: float = 300.0
) -> pd.DataFrame:
    """Minutes, visits and pings per (place index, day) from located pings.

    Examples
    --------
    >>> unit = np.array([0, 0, 0, 0]); t = np.array([0, 60, 120, 1000]); p = np.array([2, 2, -1, 2])
    >>> ping_dosage(unit, t, p).to_dict("records")
    [{'place': 2, 'date': '1970-01-01', 'minutes': 2.0, 'visits': 2, 'pings': 3}]
    """
    order = np.lexsort((seconds, unit))
    unit, seconds, place = unit[order], seconds[order], place[order]
    same_next = np.append(unit[1:] == unit[:-1], False)
    gap = np.where(same_next, np.diff(seconds, append=seconds[-1] if len(seconds) else 0), 0)
    credit = np.minimum(gap, max_gap)
    same_prev = np.insert(unit[1:] == unit[:-1], 0, False)
    previous_place = np.insert(place[:-1], 0, -1)
    previous_gap = np.insert(np.diff(seconds), 0, 0) if len(seconds) else np.zeros(0)
    starts = (~same_prev) | (previous_place != place) | (previous_gap > max_gap)
    inside = place >= 0
    frame = pd.DataFrame(
        {
            "place": place[inside],
            "date": _day_labels(seconds[inside]),
            "minutes": credit[inside] / 60.0,
            "visits": starts[inside].astype(np.int64),
            "pings": 1,
        }
    )
    return (
        frame.groupby(["place", "date"], as_index=False)
        .sum()
        .sort_values(["place", "date"], ignore_index=True)
    )


def _read_pings(
    path: Path,
    geofences: np.ndarray,
    transformer: pyproj.Transformer,
    columns: dict[str, str],
    chunksize: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Stream the pings: unit codes, seconds and geofence index of every ping."""
    units: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    total = 0
    try:
        reader = pd.read_csv(
            path, usecols=list(columns.values()), chunksize=chunksize, dtype={columns["unit"]: str}
        )
        for chunk in reader:
            total += len(chunk)
            x, y = transformer.transform(
                chunk[columns["x"]].to_numpy(np.float64), chunk[columns["y"]].to_numpy(np.float64)
            )
            place = locate_pings(geofences, np.asarray(x), np.asarray(y))
            codes, names = pd.factorize(chunk[columns["unit"]], use_na_sentinel=False)
            mapping = np.array(
                [units.setdefault(str(name), len(units)) for name in names], dtype=np.int32
            )
            parts.append((mapping[codes], _seconds(chunk[columns["time"]], columns["time"]), place))
    except ValueError as exc:
        raise InputError(f"--pings {path}: cannot be read ({exc})") from exc
    if not parts:
        raise InputError(f"--pings {path}: no pings")
    unit, seconds, place = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return unit, seconds, place, total


def trial_dosage(
    design_dir: str | Path,
    pings: str | Path,
    out: str | Path,
    *,
    time_column: str = "time",
    x_column: str = "lon",
    y_column: str = "lat",
    unit_column: str = "unit",
    pings_crs: str = "EPSG:4326",
    max_gap: float = 5.0,
    buffer: float = 0.0,
    chunksize: int = 500_000,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Patrol dosage per place and day from GPS pings; compliance per arm; a plot.

    Writes ``dosage.csv`` (``place_id, date, minutes, visits, pings``), ``dosage.json``
    (compliance per arm) and ``dosage.png`` into ``out``. ``max_gap`` is in minutes.
    """
    if max_gap <= 0:
        raise ParameterError(f"--max-gap {max_gap}: must be positive (minutes)")
    if buffer < 0:
        raise ParameterError(f"--buffer {buffer}: must not be negative")
    path = Path(pings)
    if not path.is_file():
        raise InputError(f"--pings {path}: file not found")
    design = read_design(design_dir)
    columns = {"time": time_column, "x": x_column, "y": y_column, "unit": unit_column}
    header = pd.read_csv(path, nrows=0).columns
    missing = [name for name in columns.values() if name not in header]
    if missing:
        raise InputError(
            f"--pings {path}: no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(header)})"
        )
    try:
        transformer = pyproj.Transformer.from_crs(
            pyproj.CRS.from_user_input(pings_crs),
            pyproj.CRS.from_user_input(design.crs),
            always_xy=True,
        )
    except pyproj.exceptions.CRSError as exc:
        raise ParameterError(f"--pings-crs {pings_crs!r}: not a CRS ({exc})") from exc
    geofences = np.asarray(design.places.geometry.values, dtype=object)
    if buffer > 0:
        geofences = shapely.buffer(geofences, buffer)
    with atomic_dir(out, overwrite=overwrite, kind="trial-dosage") as folder:
        started = clock.perf_counter()
        unit, seconds, place, total = _read_pings(path, geofences, transformer, columns, chunksize)
        table = ping_dosage(unit, seconds, place, max_gap=max_gap * 60.0)
        ids = design.allocation["place_id"].astype(str).to_numpy()
        table.insert(0, "place_id", ids[table.pop("place").to_numpy()])
        days = sorted(set(_day_labels(np.unique(seconds // 86400) * 86400)))
        compliance = _compliance(design, table, days)
        record = {
            "schema": "rtm-trial-dosage/1",
            "pings": int(total),
            "pings_in_geofences": int((place >= 0).sum()),
            "units": int(unit.max() + 1) if len(unit) else 0,
            "days": len(days),
            "max_gap_minutes": max_gap,
            "buffer": buffer,
            "compliance": compliance,
            "seconds": round(clock.perf_counter() - started, 3),
        }
        table.to_csv(Path(folder) / "dosage.csv", index=False, lineterminator="\n")
        write_json(Path(folder) / "dosage.json", record)
        (Path(folder) / "dosage.png").write_bytes(_figure(design, table, len(days)))
    return record


def _compliance(design: TrialDesign, table: pd.DataFrame, days: list[str]) -> dict[str, Any]:
    """Per arm: place-days, minutes and visits per place-day, share of place-days visited."""
    if design.schedule is not None:
        grid = design.schedule[design.schedule["date"].isin(days)][
            ["place_id", "date", "arm"]
        ].astype(str)
    else:
        alloc = design.allocation[["place_id", "arm"]].astype(str)
        grid = alloc.merge(pd.DataFrame({"date": days}), how="cross")
    merged = grid.merge(table, on=["place_id", "date"], how="left").fillna(
        {"minutes": 0.0, "visits": 0, "pings": 0}
    )
    out = {}
    for arm, group in merged.groupby("arm"):
        out[str(arm)] = {
            "place_days": int(len(group)),
            "minutes_per_place_day": float(group["minutes"].mean()) if len(group) else 0.0,
            "visits_per_place_day": float(group["visits"].mean()) if len(group) else 0.0,
            "share_of_place_days_visited": float((group["visits"] > 0).mean())
            if len(group)
            else 0.0,
        }
    return out


def _figure(design: TrialDesign, table: pd.DataFrame, days: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_place = table.groupby("place_id")["minutes"].sum() / max(days, 1)
    alloc = design.allocation.assign(place_id=design.allocation["place_id"].astype(str))
    alloc["minutes"] = alloc["place_id"].map(per_place).fillna(0.0)
    alloc = alloc.sort_values(["arm", "minutes"], ascending=[False, False])
    colours = np.where(alloc["arm"] == "treatment", "#c0392b", "#2c3e50")
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.bar(range(len(alloc)), alloc["minutes"], color=colours)
    ax.set_xticks(range(len(alloc)), alloc["place_id"], rotation=90, fontsize=6)
    ax.set_ylabel("patrol minutes per day")
    ax.set_title("Dosage by place (red: treatment, dark: control)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
