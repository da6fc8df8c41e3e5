"""The values of the study specification's options: defaults, and one check per option.

Each check takes ``(value, flag)`` and returns the value normalised (tuples, floats,
parsed filters) or raises a :class:`~rtm.errors.ParameterError` that names the flag and
the value received. :class:`rtm.spec.StudySpec` runs them all; a batch configuration
runs them one option at a time (:func:`rtm.spec.check_option`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtm.checks import check_choice
from rtm.errors import ParameterError

if TYPE_CHECKING:
    from rtm.filters import WhereClause

__all__ = [
    "CONNECTIVITY",
    "DEFAULT_PATROL_SIZE",
    "DEFAULT_RECENT_DAYS",
    "DEFAULT_TIER_CUTS",
    "MAX_BLOCKS",
    "VALIDATORS",
    "check_tier_cuts",
    "spatial_influences",
]

#: Default tier cuts (SDs above the mean RRS) and the recent window of priority places.
DEFAULT_TIER_CUTS = (2.0, 1.0, 0.0)
DEFAULT_RECENT_DAYS = 90.0
#: Largest extent of a patrol place (UK hot-spot trials patrol spots of about 150 m).
DEFAULT_PATROL_SIZE = 150.0
#: Cells touching at an edge or a corner belong to the same place (8-connectivity).
CONNECTIVITY = 8
#: The largest ``max_blocks`` accepted (RTMDx allows 4; larger ladders get slow and vague).
MAX_BLOCKS = 20


def _positive_length(value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{flag} must be a positive number of metres, got {value!r}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ParameterError(f"{flag} must be a positive, finite number of metres, got {value!r}")
    return float(value)


def _optional_length(value: Any, flag: str) -> float | None:
    return None if value is None else _positive_length(value, flag)


def _whole(value: Any, flag: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise ParameterError(f"{flag} must be a whole number, got {value!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ParameterError(f"{flag} must be a whole number {bound}, got {value!r}")
    return int(value)


def _text(value: Any, flag: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ParameterError(f"{flag} must be a non-empty text, got {value!r}")
    return value


def _existing_file(value: Any, flag: str) -> str | None:
    """A path that must name a file now (checked before any slow work)."""
    text = _text(value, flag)
    if text is not None and not Path(text).is_file():
        raise ParameterError(f"{flag} {text}: no such file")
    return text


def _texts(value: Any, flag: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str | Path) else list(value)
    out = []
    for item in items:
        text = _text(item, flag)
        assert text is not None
        out.append(text)
    return tuple(out)


#: The files of a run folder ``--outputs`` chooses among (the registry's,
#: :data:`rtm.export.formats.OUTPUTS`, and the validation's plot; a test keeps them equal).
OUTPUT_FILES: tuple[str, ...] = (
    "factors.csv",
    "risk.tif",
    "forecast.tif",
    "forecast.json",
    "features.gpkg",
    "places.gpkg",
    "risk.png",
    "map.html",
    "report.html",
    "model_card.md",
    "transparency_record.md",
    "concentration.png",
    "action_plan.html",
    "action_plan.csv",
    "action_plan.gpkg",
    "capture.png",
)

#: Always written: the run's record, what ``rtm map``, ``validate`` and ``audit`` read.
RECORD_FILES: tuple[str, ...] = ("report.json", "cells.gpkg", "validation.json")

#: The outputs drawn with matplotlib or rendered to HTML: without any of them chosen,
#: ``rtm analyze`` does not import their modules beside the fit.
DRAWN_FILES = frozenset(
    {"risk.png", "map.html", "report.html", "concentration.png", "action_plan.html", "capture.png"}
)


#: The outputs that show the risk factors' own features (thinned, with their attributes):
#: without either chosen, the features are not gathered for the run's outputs.
FEATURE_FILES = frozenset({"map.html", "features.gpkg"})


def _outputs(value: Any, flag: str) -> tuple[str, ...] | None:
    """None (every output), or the chosen files (``none``: the record alone)."""
    if value is None:
        return None
    if not isinstance(value, str | list | tuple):
        raise ParameterError(f"{flag}: give file names (comma-separated or a list), got {value!r}")
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(item).strip() for item in items if str(item).strip()]
    if not names and not isinstance(value, str):
        return ()  # none (a spec validated again)
    if not names:
        raise ParameterError(f"{flag}: name the files to write (comma-separated), all or none")
    if names == ["all"]:
        return None
    if names == ["none"]:
        return ()
    for name in names:
        if name not in OUTPUT_FILES and name not in RECORD_FILES:
            import difflib

            near = difflib.get_close_matches(name, OUTPUT_FILES, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ParameterError(
                f"{flag}: {name!r} is not a file of a run folder{hint}; choose from "
                f"{', '.join(OUTPUT_FILES)}, or all, or none ({', '.join(RECORD_FILES[:2])} "
                "are always written)"
            )
    return tuple(name for name in OUTPUT_FILES if name in names)


def _is_data(value: Any) -> bool:
    """A table in memory (a pandas DataFrame or GeoDataFrame, a GeoSeries)."""
    return hasattr(value, "columns") or hasattr(value, "geometry")


def _factor_files(value: Any, flag: str) -> tuple[Any, ...]:
    """``--factor`` values: [NAME=]FILE texts, or a mapping of names to files or data.

    A factor in memory (a GeoDataFrame) stays a ``(name, data)`` pair.
    """
    if isinstance(value, Mapping):
        items: list[Any] = []
        for name, source in value.items():
            label = _text(name, flag)
            if _is_data(source):
                items.append((label, source))
            elif isinstance(source, str | Path):
                items.append(f"{label}={source}")
            else:
                raise ParameterError(
                    f"{flag} {name}: give a file path or a GeoDataFrame, got "
                    f"{type(source).__name__}"
                )
        return tuple(items)
    if isinstance(value, tuple) and len(value) == 2 and _is_data(value[1]):
        value = [value]
    items = []
    for item in [value] if isinstance(value, str | Path) else list(value or ()):
        if isinstance(item, tuple) and len(item) == 2 and _is_data(item[1]):
            items.append((_text(item[0], flag), item[1]))
        else:
            items.append(_text(item, flag))
    return tuple(items)


def _separator(value: Any, flag: str) -> str | None:
    if value is None:
        return None
    names = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    text = names.get(str(value).lower(), value) if isinstance(value, str) else value
    if not isinstance(text, str) or len(text) != 1 or text in '"\n\r' or text.isalnum():
        raise ParameterError(
            f"{flag} must be one character (',', ';', '|', or 'tab'), got {value!r}"
        )
    return text


def _decimal(value: Any, flag: str) -> str | None:
    if value is None:
        return None
    if value not in (".", ","):
        raise ParameterError(f"{flag} must be '.' or ',', got {value!r}")
    return str(value)


def _encoding(value: Any, flag: str) -> str | None:
    import codecs

    text = _text(value, flag)
    if text is None:
        return None
    try:
        codecs.lookup(text)
    except LookupError:
        raise ParameterError(
            f"{flag} {value!r}: unknown text encoding (e.g. utf-8, cp1252, latin-1)"
        ) from None
    return text


def _source(value: Any, flag: str) -> Any:
    """A file path (str/Path) or data in memory, passed on as is."""
    if value is None or isinstance(value, str | Path):
        return None if value is None else (str(value) if isinstance(value, Path) else value)
    return value


def _flag(value: Any, flag: str) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(f"{flag} must be true or false, got {value!r}")
    return value


def _fraction(value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ParameterError(f"{flag} must be between 0 and 1, got {value!r}")
    return float(value)


def _l1_ratios(value: Any, flag: str) -> tuple[float, ...]:
    values = (value,) if isinstance(value, int | float) else tuple(value or ())
    if not values:
        return (0.8, 0.95)
    for ratio in values:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise ParameterError(f"{flag} must be in (0, 1], got {ratio!r}")
    return tuple(float(r) for r in values)


def _tier_cuts(value: Any, flag: str) -> tuple[float, float, float]:
    if isinstance(value, str):
        try:
            value = tuple(float(v) for v in value.split(","))
        except ValueError:
            raise ParameterError(f"{flag} {value!r}: give three numbers, e.g. 2,1,0") from None
    values = tuple(value) if value is not None else DEFAULT_TIER_CUTS
    if len(values) != 3 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ParameterError(f"{flag} needs three numbers of SDs above the mean, got {value!r}")
    cuts = tuple(float(v) for v in values)
    if not cuts[0] > cuts[1] > cuts[2]:
        raise ParameterError(f"{flag} cut points must be strictly descending, got {value!r}")
    return cuts  # type: ignore[return-value]


def _recent_days(value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"{flag} must be a number of days, got {value!r}")
    if not value > 0:
        raise ParameterError(
            f"{flag} must be more than 0 days, got {value:g} (the window of recent events "
            "counts back from the latest event)"
        )
    return float(value)


def _recent_distance(value: Any, flag: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{flag} must be 0 or more metres, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ParameterError(f"{flag} must be 0 or more metres, got {value!r}")
    return float(value)


def _operationalization(value: Any, flag: str) -> str:
    from rtm.layers.registry import resolve_operationalizations

    text = ",".join(value) if isinstance(value, list | tuple) else value
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(f"{flag} must name operationalizations, got {value!r}")
    resolve_operationalizations(text)  # unknown names: an error listing the valid ones
    return text


def _where(value: Any, flag: str) -> tuple[WhereClause, ...]:
    # imported here: the command line reads the options without loading pandas
    from rtm.filters import WhereClause, as_clauses

    if value is None:
        return ()
    items = [value] if isinstance(value, str | WhereClause) else list(value)
    for item in items:
        if not isinstance(item, str | WhereClause):
            raise ParameterError(f"{flag} filters are texts like type=robbery, got {item!r}")
    return as_clauses(items)


def _choice(choices: Sequence[str]) -> Callable[[Any, str], str]:
    def check(value: Any, flag: str) -> str:
        return check_choice(flag, value, tuple(choices))

    return check


#: Each field's check: (value, flag) -> the normalised value, or a ParameterError.
VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "events": _source,
    "area": _source,
    "factors": _factor_files,
    "factors_dir": _text,
    "area_where": _where,
    "streets": _source,
    "csv_sep": _separator,
    "decimal": _decimal,
    "encoding": _encoding,
    "protective": _texts,
    "network": _text,
    "crs": _text,
    "where": _where,
    "x_column": _text,
    "y_column": _text,
    "events_crs": _text,
    "weight_column": _text,
    "harm": _text,
    "block_length": _positive_length,
    "cell_size": _optional_length,
    "max_blocks": lambda v, f: _whole(v, f, 1, MAX_BLOCKS),
    "increment": _choice(("whole", "half")),
    "operationalization": _operationalization,
    "seed": lambda v, f: _whole(v, f, 0, 2**32 - 1),
    "nb_form": _choice(("nbii", "nb2")),
    "cv_rule": _choice(("min", "1se")),
    "l1_ratios": _l1_ratios,
    "alpha": _fraction,
    "bootstrap": lambda v, f: _whole(v, f, 0),
    "bootstrap_scheme": _choice(("block", "cells")),
    "split_sample": _flag,
    "test_events": _source,
    "test_where": _where,
    "period_column": _text,
    "challengers": _flag,
    "forecast": _flag,
    "importance": _flag,
    "bandwidth": _optional_length,
    "tier_cuts": _tier_cuts,
    "priority_tier": lambda v, f: _whole(v, f, 1, 3),
    "recent_days": _recent_days,
    "recent_distance": _recent_distance,
    "date_column": _text,
    "patrol_size": _positive_length,
    "tasks": _existing_file,
    "outputs": _outputs,
    "area_label": _text,
}


# --------------------------------------------------------------------------- the ladder


def spatial_influences(
    block_length: float, max_blocks: int = 3, increment: str = "whole"
) -> tuple[float, ...]:
    """The spatial-influence ladder: ``k x block_length``.

    Parameters
    ----------
    block_length : float
        Average street-block length, in CRS units.
    max_blocks : int
        Largest multiple of the block length (default 3).
    increment : {"whole", "half"}
        Steps of one block (1, 2, 3) or half a block (0.5, 1, 1.5, ...).

    Examples
    --------
    >>> spatial_influences(200)
    (200.0, 400.0, 600.0)
    >>> spatial_influences(100, max_blocks=2, increment="half")
    (50.0, 100.0, 150.0, 200.0)
    """
    length = _positive_length(block_length, "--block-length")
    blocks = _whole(max_blocks, "--max-blocks", 1, MAX_BLOCKS)
    step = 1.0 if _choice(("whole", "half"))(increment, "--increment") == "whole" else 0.5
    count = int(round(blocks / step))
    return tuple(length * step * k for k in range(1, count + 1))


def check_tier_cuts(cuts: Sequence[float]) -> tuple[float, float, float]:
    """Validate three cut points (SDs above the mean), strictly descending."""
    return VALIDATORS["tier_cuts"](cuts, "--tiers")
