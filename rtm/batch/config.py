"""Batch configuration files (TOML): areas x crime types x periods, validated with line numbers.

A configuration names everything ``rtm analyze`` takes (``[analysis]`` takes every
option of the study specification, :class:`rtm.spec.StudySpec`, under the same names),
plus the lists a nightly job iterates over::

    [analysis]                      # any rtm analyze option, CLI names with - or _
    events = "crimes.csv.gz"        # paths are relative to this file
    factors_dir = "factors"
    block_length = 200
    cell_size = 100

    [areas]                         # polygons of a boundary layer, selected by a name column
    file = "boroughs.shp"
    name_column = "LAD11NM"
    names = ["Camden", "Hackney"]   # optional: every polygon when omitted

    [[crime_types]]
    name = "robbery"
    where = ["type=robbery"]

    [periods]                       # relative to a reference date
    date_column = "month"           # ISO dates/months (YYYY-MM[-DD]) or month numbers
    reference = "2022-12"           # the last month of data
    test = "last 3 months"          # the test window ends at the reference month
    fit = "last 9 months"           # the fit window ends just before the test window

Instead of ``[periods]``, ``[[periods]]`` entries may give explicit filters:
``name = "h1"``, ``fit_where = ["month=1..6"]``, ``test_where = ["month=7..12"]``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtm.errors import ParameterError

__all__ = ["AreaSpec", "BatchConfig", "CrimeType", "Period", "load_config"]

#: ``[analysis]`` options that name files (relative paths are taken from the config's folder).
_PATH_OPTIONS = {"events", "area", "factors_dir", "network", "test_events", "streets"}
#: Set by the batch itself for each job.
_JOB_OPTIONS = {"area_label"}
_REQUIRED = ("events", "block_length")


def analysis_options() -> tuple[str, ...]:
    """The options ``[analysis]`` takes: every option of ``rtm analyze`` (the spec's fields)."""
    from rtm.spec import spec_fields

    return tuple(name for name in spec_fields() if name not in _JOB_OPTIONS)


@dataclass(frozen=True)
class AreaSpec:
    """Study areas: one file, or each polygon of a boundary layer selected by name."""

    file: str
    name_column: str | None = None
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrimeType:
    """A crime type: a name and the event filters that select it."""

    name: str
    where: tuple[str, ...]


@dataclass(frozen=True)
class Period:
    """A fit window and an optional test window, as event filters."""

    name: str
    fit_where: tuple[str, ...]
    test_where: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchConfig:
    """A validated batch configuration."""

    path: Path
    analysis: dict[str, Any] = field(repr=False)
    areas: AreaSpec
    crime_types: tuple[CrimeType, ...]
    periods: tuple[Period, ...]


class _Lines:
    """Find the line of a key in the TOML text, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def of(self, section: str | None, key: str | None = None) -> int | None:
        header = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$")
        current: str | None = None
        for number, line in enumerate(self.lines, start=1):
            match = header.match(line)
            if match:
                current = match.group(1)
                if key is None and current == section:
                    return number
            elif (
                key is not None
                and current == section
                and re.match(rf"^\s*{re.escape(key)}\s*=", line)
            ):
                return number
        return None


def _error(
    path: Path, lines: _Lines, section: str | None, key: str | None, message: str
) -> ParameterError:
    line = lines.of(section, key)
    where = f"{path}" + (f", line {line}" if line else "")
    name = ".".join(p for p in (section, key) if p)
    return ParameterError(
        f"config {where}: {name}: {message}" if name else f"config {where}: {message}"
    )


def load_config(path: str | Path) -> BatchConfig:
    """Read and validate a batch configuration.

    Raises
    ------
    ParameterError
        With the file, the line and the key: unknown keys, wrong types, missing
        required keys, malformed periods.
    """
    from rtm.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"config {path}: file not found")
    text = path.read_text(encoding="utf-8")
    lines = _Lines(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"config {path}: not valid TOML ({exc})") from exc
    known = {"analysis", "areas", "crime_types", "periods"}
    for key in data:
        if key not in known:
            raise _error(
                path,
                lines,
                None,
                None,
                f"unknown section [{key}]; sections are {', '.join(sorted(known))}",
            )
    base = path.resolve().parent
    analysis = _analysis(data.get("analysis", {}), path, lines, base)
    areas = _areas(data.get("areas"), path, lines, base, analysis)
    crime_types = _crime_types(data.get("crime_types"), path, lines)
    periods = _periods(data.get("periods"), path, lines)
    return BatchConfig(
        path=path, analysis=analysis, areas=areas, crime_types=crime_types, periods=periods
    )


def _analysis(table: Any, path: Path, lines: _Lines, base: Path) -> dict[str, Any]:
    from rtm.spec import check_option

    if not isinstance(table, dict):
        raise _error(path, lines, None, None, "[analysis] must be a table")
    known = analysis_options()
    out: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in known:
            raise _error(
                path,
                lines,
                "analysis",
                raw_key,
                f"unknown option; options are {', '.join(sorted(known))}",
            )
        if key in _PATH_OPTIONS and isinstance(value, str):
            value = str((base / value).resolve()) if not Path(value).is_absolute() else value
        if key == "factors" and isinstance(value, list):
            value = [_resolve_factor(v, base) if isinstance(v, str) else v for v in value]
        try:
            check_option(key, value)  # the same check rtm analyze runs
        except ParameterError as exc:
            raise _error(path, lines, "analysis", raw_key, str(exc)) from None
        out[key] = value
    for key in _REQUIRED:
        if key not in out:
            raise _error(path, lines, "analysis", None, f"missing required option {key!r}")
    if "factors" not in out and "factors_dir" not in out:
        raise _error(path, lines, "analysis", None, 'needs factors = [...] or factors_dir = "..."')
    return out


def _resolve_factor(spec: str, base: Path) -> str:
    name, sep, source = spec.partition("=")
    if sep and name and not source.startswith(("/", "\\")) and "/" not in name:
        return f"{name}={(base / source).resolve()}" if not Path(source).is_absolute() else spec
    return str((base / spec).resolve()) if not Path(spec).is_absolute() else spec


def _areas(table: Any, path: Path, lines: _Lines, base: Path, analysis: dict[str, Any]) -> AreaSpec:
    if table is None:
        if "area" not in analysis:
            raise _error(path, lines, None, None, "needs an [areas] table or analysis.area")
        return AreaSpec(file=analysis["area"])
    if not isinstance(table, dict):
        raise _error(path, lines, None, None, "[areas] must be a table")
    for key in table:
        if key not in {"file", "name_column", "names"}:
            raise _error(
                path, lines, "areas", key, "unknown key; keys are file, name_column, names"
            )
    if not isinstance(table.get("file"), str):
        raise _error(
            path,
            lines,
            "areas",
            "file" if "file" in table else None,
            'needs file = "boundaries.shp"',
        )
    column = table.get("name_column")
    if column is not None and not isinstance(column, str):
        raise _error(path, lines, "areas", "name_column", f"must be a string, got {column!r}")
    names = table.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _error(path, lines, "areas", "names", "must be a list of strings")
    if names and column is None:
        raise _error(path, lines, "areas", "names", "needs name_column to select areas by name")
    file = table["file"]
    file = str((base / file).resolve()) if not Path(file).is_absolute() else file
    return AreaSpec(file=file, name_column=column, names=tuple(names))


def _crime_types(value: Any, path: Path, lines: _Lines) -> tuple[CrimeType, ...]:
    if value is None:
        return (CrimeType("events", ()),)
    if not isinstance(value, list) or not value:
        raise _error(path, lines, "crime_types", None, "must be [[crime_types]] entries")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _error(path, lines, "crime_types", None, 'each entry needs name = "..."')
        where = entry.get("where", [])
        if isinstance(where, str):
            where = [where]
        if not isinstance(where, list) or not all(isinstance(w, str) for w in where):
            raise _error(
                path,
                lines,
                "crime_types",
                "where",
                f"must be a list of COL=VALUE filters in {entry['name']!r}",
            )
        out.append(CrimeType(entry["name"], tuple(where)))
    _unique([c.name for c in out], "crime_types", path, lines)
    return tuple(out)


def _unique(names: list[str], section: str, path: Path, lines: _Lines) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _error(
            path, lines, section, None, f"names must be unique; repeated: {', '.join(repeated)}"
        )


_WINDOW = re.compile(r"^\s*last\s+(\d+)?\s*months?\s*$", re.IGNORECASE)


def _months(text: Any, path: Path, lines: _Lines, key: str) -> int:
    match = _WINDOW.match(str(text)) if isinstance(text, str) else None
    if not match:
        raise _error(
            path,
            lines,
            "periods",
            key,
            f'must read like "last 6 months" or "last month", got {text!r}',
        )
    return int(match.group(1) or 1)


def _periods(value: Any, path: Path, lines: _Lines) -> tuple[Period, ...]:
    if value is None:
        return (Period("all", ()),)
    if isinstance(value, list):
        return _listed_periods(value, path, lines)
    if not isinstance(value, dict):
        raise _error(path, lines, "periods", None, "must be a table or [[periods]] entries")
    return (_rolling_period(value, path, lines),)


def _listed_periods(value: list[Any], path: Path, lines: _Lines) -> tuple[Period, ...]:
    """``[[periods]]`` entries, each a name with its own fit and test filters."""
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _error(path, lines, "periods", None, 'each [[periods]] entry needs name = "..."')
        fit = entry.get("fit_where", [])
        test = entry.get("test_where", [])
        for key, filters in (("fit_where", fit), ("test_where", test)):
            if not isinstance(filters, list) or not all(isinstance(w, str) for w in filters):
                raise _error(path, lines, "periods", key, "must be a list of COL=VALUE filters")
        out.append(Period(entry["name"], tuple(fit), tuple(test)))
    _unique([p.name for p in out], "periods", path, lines)
    return tuple(out)


def _rolling_period(value: dict[str, Any], path: Path, lines: _Lines) -> Period:
    """A ``[periods]`` table: the last N months before a reference month, then a test window."""
    for key in value:
        if key not in {"date_column", "reference", "fit", "test", "name"}:
            raise _error(
                path,
                lines,
                "periods",
                key,
                "unknown key; keys are date_column, reference, fit, test",
            )
    column = value.get("date_column")
    if not isinstance(column, str):
        raise _error(path, lines, "periods", "date_column", 'needs date_column = "..."')
    if "reference" not in value:
        raise _error(
            path, lines, "periods", None, 'needs reference = "YYYY-MM" (or a month number)'
        )
    fit_months = _months(value.get("fit", "last 12 months"), path, lines, "fit")
    test_months = _months(value["test"], path, lines, "test") if "test" in value else 0
    reference = value["reference"]
    if isinstance(reference, int) and not isinstance(reference, bool):
        fit, test = _month_number_windows(reference, column, fit_months, test_months, path, lines)
    else:
        fit, test = _calendar_windows(reference, column, fit_months, test_months, path, lines)
    name = value.get("name") or (
        f"last{fit_months}m" + (f"-test{test_months}m" if test_months else "")
    )
    return Period(str(name), fit, test)


def _month_number_windows(
    reference: int, column: str, fit_months: int, test_months: int, path: Path, lines: _Lines
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Fit and test filters when months are numbers 1..12 (one year)."""
    if not 1 <= reference <= 12:
        raise _error(
            path, lines, "periods", "reference", f"a month number must be 1..12, got {reference}"
        )
    test_start = reference - test_months + 1
    fit_end = test_start - 1
    fit_start = fit_end - fit_months + 1
    if fit_start < 1:
        raise _error(
            path,
            lines,
            "periods",
            "fit",
            "with month numbers the windows must stay within one year (1..12); use YYYY-MM dates",
        )
    fit = (f"{column}={fit_start}..{fit_end}",)
    test = (f"{column}={test_start}..{reference}",) if test_months else ()
    return fit, test


def _calendar_windows(
    reference: Any, column: str, fit_months: int, test_months: int, path: Path, lines: _Lines
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Fit and test filters when the reference is a calendar month "YYYY-MM"."""
    match = re.match(r"^(\d{4})-(\d{2})$", str(reference))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise _error(
            path,
            lines,
            "periods",
            "reference",
            f'must be "YYYY-MM" or a month number, got {reference!r}',
        )
    ref = int(match.group(1)) * 12 + int(match.group(2)) - 1

    def month(index: int) -> str:
        return f"{index // 12:04d}-{index % 12 + 1:02d}"

    test_start = ref - test_months + 1
    fit_end = test_start - 1
    fit = (f"{column}={month(fit_end - fit_months + 1)}..{month(fit_end)}",)
    test = (f"{column}={month(test_start)}..{month(ref)}",) if test_months else ()
    return fit, test
