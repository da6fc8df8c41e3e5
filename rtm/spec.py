"""The study specification: every option of an analysis, declared once, validated once.

:class:`StudySpec` is a frozen value object. Each field is one option of
``rtm analyze``; its metadata (the CLI flag, help text, metavar, group) is where the
option is declared, and everything else derives from it:

* the command line builds its click options from the fields (``cli/_options.py``);
* ``rtm batch`` configurations take the same names in ``[analysis]``
  (:mod:`rtm.batch.config`) and check each value with the same validator;
* the Python API takes a spec, or the same keywords (:func:`rtm.api.analyze`);
* temporal validation takes a spec (:func:`rtm.validation.temporal.temporal_validation`);
* run reports store the spec (:meth:`StudySpec.to_record`), filters parsed, so a run
  folder can be validated or re-rendered with exactly its settings.

Every value is checked in ``__post_init__``; an error names the user's option (the CLI
flag) and the value received.

Examples
--------
>>> spec = StudySpec(area="area.gpkg", block_length=150, where=["type=robbery"])
>>> spec.cell_size_or_default, spec.spatial_influences
(75.0, (150.0, 300.0, 450.0))
>>> spec.where[0].label
'type=robbery'
>>> StudySpec(area="area.gpkg", block_length=-5)
Traceback (most recent call last):
...
rtm.errors.ParameterError: --block-length must be a positive, finite number of metres, got -5
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtm.errors import FLAG_KEYWORDS, ParameterError
from rtm.spec_values import (
    DEFAULT_PATROL_SIZE,
    DEFAULT_RECENT_DAYS,
    DEFAULT_TIER_CUTS,
    MAX_BLOCKS,
    VALIDATORS,
    spatial_influences,
)

if TYPE_CHECKING:
    from rtm.filters import WhereClause
    from rtm.io.csv_points import CsvOptions

__all__ = [
    "DEFAULT_RECENT_DAYS",
    "DEFAULT_TIER_CUTS",
    "GROUPS",
    "MAX_BLOCKS",
    "Option",
    "StudySpec",
    "check_option",
    "options",
    "spatial_influences",
    "spec_fields",
]

#: The option groups, in the order the help shows them.
GROUPS = ("inputs", "events", "grid", "model", "inference", "validation", "outputs")


@dataclass(frozen=True)
class Option:
    """How one field of :class:`StudySpec` appears to users.

    Attributes
    ----------
    name : str
        The field (and API keyword, and batch key).
    flag : str or None
        The CLI flag (``--block-length``); None for the events, which are an argument.
    help : str
        One line of help.
    group : str
        One of :data:`GROUPS`.
    kind : str
        ``text``, ``float``, ``int``, ``flag`` (on/off), ``switch`` (``--x/--no-x``),
        ``choice`` or ``list`` (repeatable).
    metavar : str or None
        The value's placeholder in the help.
    choices : tuple of str
        For ``choice``.
    item : str
        For ``list``: the kind of each value (``text`` or ``float``).
    """

    name: str
    flag: str | None
    help: str
    group: str
    kind: str = "text"
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    item: str = "text"


def _option(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    if default is dataclasses.MISSING:
        return field(metadata={"option": meta})
    if isinstance(default, list | dict | set):  # pragma: no cover - a programming error
        raise TypeError("use an immutable default")
    return field(default=default, metadata={"option": meta})


def _act(flags: list[str]) -> str:
    return "act" if len(flags) > 1 else "acts"


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True, kw_only=True, eq=False)
class StudySpec:
    """Every option of an analysis: inputs, grid, model, inference, validation, outputs.

    Only ``area`` and ``block_length`` are required (``events`` too, to fit a model).
    Paths stay as given (text); data in memory (a GeoDataFrame area) is passed on as is.
    See each field's help: ``rtm analyze --help`` prints the same text.
    """

    # inputs
    events: Any = _option(
        None, flag=None, group="inputs", help="Outcome events (points): a file, or data."
    )
    area: Any = _option(
        flag="--area",
        group="inputs",
        metavar="FILE",
        help="Study-area polygons (shapefile, GeoPackage FILE.gpkg:LAYER, GeoJSON).",
    )
    factors: tuple[Any, ...] = _option(
        (),
        flag="--factor",
        group="inputs",
        kind="list",
        metavar="[NAME=]FILE",
        help="A risk-factor layer; repeat for each factor. NAME defaults to the file name.",
    )
    factors_dir: str | None = _option(
        None,
        flag="--factors-dir",
        group="inputs",
        metavar="DIR",
        help="Use every vector layer in DIR as a factor.",
    )
    protective: tuple[str, ...] = _option(
        (),
        flag="--protective",
        group="inputs",
        kind="list",
        metavar="NAME",
        help="A factor that lowers risk (coded 0/-1); repeatable.",
    )
    area_where: tuple[WhereClause, ...] = _option(
        (),
        flag="--area-where",
        group="inputs",
        kind="list",
        metavar="COL=V1,V2",
        help="Use only the study-area polygons whose COL is one of the values (e.g. one "
        "borough of a boundary file; the --where syntax); repeatable.",
    )
    streets: Any = _option(
        None,
        flag="--streets",
        group="inputs",
        metavar="FILE",
        help="Street lines for context: drawn light on map.html and risk.png (names in "
        "popups when the layer has a name column); not a risk factor.",
    )
    csv_sep: str | None = _option(
        None,
        flag="--csv-sep",
        group="inputs",
        metavar="CHAR",
        help="Separator of CSV inputs (default: detected among , ; tab |).",
    )
    decimal: str | None = _option(
        None,
        flag="--decimal",
        group="inputs",
        metavar=".|,",
        help="Decimal mark of CSV inputs (default: ',' in ';'-separated files, else '.').",
    )
    encoding: str | None = _option(
        None,
        flag="--encoding",
        group="inputs",
        metavar="NAME",
        help="Text encoding of CSV inputs (default UTF-8; Excel on Windows: cp1252).",
    )
    network: str | None = _option(
        None,
        flag="--network",
        group="inputs",
        metavar="FILE",
        help="Street lines: measure proximity along this network instead of straight lines "
        "(cells and features snap to the nearest node; density stays Euclidean).",
    )
    crs: str | None = _option(
        None,
        flag="--crs",
        group="inputs",
        metavar="CRS",
        help="Projected CRS to work in (default: the study area's own).",
    )
    # events
    where: tuple[WhereClause, ...] = _option(
        (),
        flag="--where",
        group="events",
        kind="list",
        metavar="COL=V1,V2|COL=LO..HI",
        help="Keep events whose COL is one of the values, or within the inclusive range; "
        "repeat to combine (all must hold).",
    )
    x_column: str | None = _option(
        None,
        flag="--x-column",
        group="events",
        metavar="NAME",
        help="CSV column of x/longitude (default: detected).",
    )
    y_column: str | None = _option(
        None,
        flag="--y-column",
        group="events",
        metavar="NAME",
        help="CSV column of y/latitude (default: detected).",
    )
    events_crs: str | None = _option(
        None,
        flag="--events-crs",
        group="events",
        metavar="CRS",
        help="CRS of CSV coordinates (default: lon/lat columns EPSG:4326, x/y the area's CRS).",
    )
    weight_column: str | None = _option(
        None,
        flag="--weight-column",
        group="events",
        metavar="COL",
        help="Weight each event by this numeric column (harm, e.g. a crime harm index): the "
        "outcome per cell is its total harm in event-equivalents, fitted quasi-Poisson "
        "(report.json: model.outcome, model.dispersion_quasi).",
    )
    harm: str | None = _option(
        None,
        flag="--harm",
        group="events",
        metavar="TABLE",
        help="Weight each event by the harm of its crime type: a CSV of category,weight or "
        "the name of a table shipped with rtm (police-uk: ONS Crime Severity Score basis). "
        "Fitted quasi-Poisson, as --weight-column.",
    )
    # grid and ladder
    block_length: float = _option(
        flag="--block-length",
        group="grid",
        kind="float",
        metavar="M",
        help="Average street-block length, in the CRS's units (metres).",
    )
    cell_size: float | None = _option(
        None,
        flag="--cell-size",
        group="grid",
        kind="float",
        metavar="M",
        help="Cell side; default half the block length.",
    )
    max_blocks: int = _option(
        3,
        flag="--max-blocks",
        group="grid",
        kind="int",
        help="Largest spatial influence, in blocks.",
    )
    increment: str = _option(
        "whole",
        flag="--increment",
        group="grid",
        kind="choice",
        choices=("whole", "half"),
        help="Spatial-influence steps of whole or half blocks.",
    )
    operationalization: str = _option(
        "both",
        flag="--operationalization",
        group="grid",
        metavar="NAMES",
        help="How factors become candidate variables: both (proximity and density), or "
        "operationalizations by name, comma-separated (proximity, density).",
    )
    # model
    seed: int = _option(
        0,
        flag="--seed",
        group="model",
        kind="int",
        help="Seed of the cross-validation folds, the forest and the permutations "
        "(same inputs + seed = same outputs).",
    )
    nb_form: str = _option(
        "nbii",
        flag="--nb-form",
        group="model",
        kind="choice",
        choices=("nbii", "nb2"),
        help="Negative binomial compared with Poisson: RTMDx's NBII (var = mu(1+sigma)) or "
        "NB2 (var = mu + mu^2/theta).",
    )
    cv_rule: str = _option(
        "min",
        flag="--cv-rule",
        group="model",
        kind="choice",
        choices=("min", "1se"),
        help="Culling penalty: lambda.min or the one-standard-error rule.",
    )
    l1_ratios: tuple[float, ...] = _option(
        (0.8, 0.95),
        flag="--l1-ratio",
        group="model",
        kind="list",
        item="float",
        metavar="R",
        help="Elastic-net mixing tried in culling (repeatable; default 0.8 and 0.95).",
    )
    alpha: float = _option(
        0.05,
        flag="--alpha",
        group="model",
        kind="float",
        help="Significance level of selected factors.",
    )
    # honest inference
    bootstrap: int = _option(
        0,
        flag="--bootstrap",
        group="inference",
        kind="int",
        metavar="B",
        help="Rerun the selection on B bootstrap resamples: how often each factor is chosen, "
        "bagged RRVs with intervals (report.json: stability).",
    )
    bootstrap_scheme: str = _option(
        "block",
        flag="--bootstrap-scheme",
        group="inference",
        kind="choice",
        choices=("block", "cells"),
        help="Resample square blocks of cells (spatial block bootstrap) or single cells.",
    )
    split_sample: bool = _option(
        False,
        flag="--split-sample",
        group="inference",
        kind="flag",
        help="Also select on half the cells (spatial blocks) and refit on the other half: "
        "valid p-values (report.json: split_sample).",
    )
    # validation
    test_events: Any = _option(
        None,
        flag="--test-crimes",
        group="validation",
        metavar="FILE",
        help="Later events to validate on: writes validation.json and capture.png (RTM, "
        "risk + exposure, random forest, prior-period baselines).",
    )
    test_where: tuple[WhereClause, ...] = _option(
        (),
        flag="--test-where",
        group="validation",
        kind="list",
        metavar="COL=V1,V2|COL=LO..HI",
        help="Filter the --test-crimes events (as --where); repeatable.",
    )
    period_column: str | None = _option(
        None,
        flag="--period-column",
        group="validation",
        metavar="COL",
        help="Column of the events' month or date, for the challengers' lagged design (default: "
        "a 'month' or 'date' column if there is one).",
    )
    challengers: bool = _option(
        True,
        flag="--challengers",
        group="validation",
        kind="switch",
        help="Also score the challengers (risk + exposure, random forest) in validations.",
    )
    forecast: bool = _option(
        False,
        flag="--forecast",
        group="validation",
        kind="flag",
        help="Also make the deployment forecast from the fit-period events (the recipe chosen "
        "by inner validation): forecast.tif and a map layer. Always made with --test-crimes.",
    )
    importance: bool = _option(
        False,
        flag="--importance",
        group="validation",
        kind="flag",
        help="Also measure the random forest's permutation importance per factor on the test "
        "events (3 permutations per factor: about as long as the rest of the validation).",
    )
    bandwidth: float | None = _option(
        None,
        flag="--bandwidth",
        group="validation",
        kind="float",
        metavar="M",
        help="Radius of the hot-spot baseline's quartic kernel (default 2 x block length).",
    )
    # outputs
    tier_cuts: tuple[float, float, float] = _option(
        DEFAULT_TIER_CUTS,
        flag="--tiers",
        group="outputs",
        metavar="K1,K2,K3",
        help="Tier cuts in SDs above the mean RRS: highest, moderately high, above average "
        "(default 2,1,0).",
    )
    priority_tier: int = _option(
        1,
        flag="--priority-tier",
        group="outputs",
        kind="int",
        help="Cells in this tier or higher can be priority places (1 = highest only).",
    )
    recent_days: float = _option(
        DEFAULT_RECENT_DAYS,
        flag="--recent-days",
        group="outputs",
        kind="float",
        help="Recent window for priority places, counted back from the latest event.",
    )
    recent_distance: float | None = _option(
        None,
        flag="--recent-distance",
        group="outputs",
        kind="float",
        metavar="M",
        help="How near a recent event must be to a cell centre (default: the block length).",
    )
    date_column: str | None = _option(
        None,
        flag="--date-column",
        group="outputs",
        metavar="NAME",
        help="Event date or month column (default: detected; none = all events are recent).",
    )
    patrol_size: float = _option(
        DEFAULT_PATROL_SIZE,
        flag="--patrol-size",
        group="outputs",
        kind="float",
        metavar="M",
        help="Largest extent of a patrol place (places.gpkg layer patrol_places), in metres.",
    )
    tasks: str | None = _option(
        None,
        flag="--tasks",
        group="outputs",
        metavar="FILE",
        help="Suggested tasks per factor for the ACTION pack (TOML; default: rtm's table).",
    )
    outputs: tuple[str, ...] | None = _option(
        None,
        flag="--outputs",
        group="outputs",
        metavar="FILES",
        help="Files to write, comma-separated (default all; none: the record alone), e.g. "
        "risk.tif,forecast.tif for a nightly refit; report.json and cells.gpkg (and "
        "validation.json) are always written.",
    )
    # how outputs name the area (rtm batch: the area's name); not a command-line option
    area_label: str | None = _option(None, flag=None, group="outputs", help="", cli=False)

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = VALIDATORS[item.name](getattr(self, item.name), _flag_of(item.name))
            object.__setattr__(self, item.name, value)
        if self.area is None:
            raise ParameterError("--area: a study area is required")
        if self.weight_column is not None and self.harm is not None:
            raise ParameterError(
                "--harm and --weight-column both weight the events: give one of them"
            )
        weighting = "--weight-column" if self.weight_column is not None else "--harm"
        if (self.weight_column or self.harm) is not None and (self.bootstrap or self.split_sample):
            raise ParameterError(
                f"{weighting} cannot be combined with --bootstrap or --split-sample yet "
                "(they resample event counts)"
            )

    # ------------------------------------------------------------------ derived
    def idle_options(self) -> list[str]:
        """What an analysis of this spec would ignore, one sentence each (for warnings).

        The validation options act only with test events (``--test-where``,
        ``--importance``) or with test events or ``--forecast`` (the forecast's options);
        ``--outputs`` may name a file this run will not make (``capture.png`` needs test
        events, ``forecast.*`` a forecast).
        """
        out = []
        given = [
            flag
            for flag, value in (
                ("--test-where", self.test_where),
                ("--importance", self.importance),
            )
            if value
        ]
        if self.test_events is None and given:
            out.append(f"{' and '.join(given)} {_act(given)} only with --test-crimes: ignored")
        forecast_only = [
            flag
            for flag, value in (
                ("--period-column", self.period_column is not None),
                ("--no-challengers", not self.challengers),
                ("--bandwidth", self.bandwidth is not None),
            )
            if value
        ]
        if self.test_events is None and not self.forecast and forecast_only:
            out.append(
                f"{' and '.join(forecast_only)} {_act(forecast_only)} only with --test-crimes "
                "or --forecast: ignored"
            )
        testing, forecasting = self.test_events is not None, self.forecast
        needs = {
            "capture.png": ("--test-crimes", testing),
            "forecast.tif": ("--test-crimes or --forecast", testing or forecasting),
            "forecast.json": ("--test-crimes or --forecast", testing or forecasting),
        }
        for name in self.outputs or ():
            if name in needs and not needs[name][1]:
                out.append(f"--outputs {name}: not made without {needs[name][0]}")
        return out

    @property
    def spatial_influences(self) -> tuple[float, ...]:
        """The spatial-influence ladder: ``k x block length`` (whole or half blocks)."""
        return spatial_influences(self.block_length, self.max_blocks, self.increment)

    @property
    def csv_options(self) -> CsvOptions:
        """How to read the study's CSV inputs (:class:`rtm.io.CsvOptions`)."""
        from rtm.io.csv_points import CsvOptions

        return CsvOptions(sep=self.csv_sep, decimal=self.decimal, encoding=self.encoding)

    @property
    def cell_size_or_default(self) -> float:
        """The cell size: as given, else half the block length."""
        return self.cell_size if self.cell_size is not None else self.block_length / 2.0

    @property
    def candidates_per_factor(self) -> int:
        """Candidate layers each factor gives (operationalizations x distances)."""
        from rtm.layers.registry import resolve_operationalizations

        return len(resolve_operationalizations(self.operationalization)) * len(
            self.spatial_influences
        )

    def replace(self, **changes: Any) -> StudySpec:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ records
    def to_record(self) -> dict[str, Any]:
        """The spec as JSON-ready data.

        Filters are stored parsed, with their labels; data in memory is recorded as
        ``"(in memory)"``.
        """
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name in ("where", "test_where", "area_where"):
                value = [clause.as_dict() for clause in value]
            elif item.name == "factors":
                value = [v if isinstance(v, str) else f"{v[0]}=(in memory)" for v in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif value is not None and not isinstance(value, str | int | float | bool):
                value = "(in memory)"
            out[item.name] = value
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StudySpec:
        """The spec :meth:`to_record` stored (unknown keys, from newer versions, ignored)."""
        from rtm.filters import WhereClause

        known = {item.name for item in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        for key in ("where", "test_where", "area_where"):
            values[key] = [
                WhereClause.from_dict(dict(c)) if isinstance(c, Mapping) else c
                for c in values.get(key, [])
            ]
        for key in ("factors", "protective", "l1_ratios", "tier_cuts"):
            if key in values and values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values)


# --------------------------------------------------------------------------- options


def options(groups: Iterable[str] | None = None) -> tuple[Option, ...]:
    """The command-line options of the spec's fields (of ``groups``), in declaration order."""
    wanted = set(GROUPS if groups is None else groups)
    out = []
    for item in dataclasses.fields(StudySpec):
        meta = dict(item.metadata["option"])
        if not meta.pop("cli", True) or meta["group"] not in wanted:
            continue
        out.append(Option(name=item.name, **meta))
    return tuple(out)


def _flag_of(name: str) -> str:
    return StudySpec.__dataclass_fields__[name].metadata["option"]["flag"] or name


def check_option(name: str, value: Any) -> Any:
    """Check one option by itself (as a batch configuration gives it); returns it normalised.

    Raises
    ------
    KeyError
        ``name`` is no option.
    ParameterError
        The value is not valid for it.
    """
    return VALIDATORS[name](value, _flag_of(name))


def spec_fields() -> tuple[str, ...]:
    """Every field of :class:`StudySpec`, in declaration order."""
    return tuple(field.name for field in dataclasses.fields(StudySpec))


FLAG_KEYWORDS.update(
    {
        item.metadata["option"]["flag"]: item.name
        for item in dataclasses.fields(StudySpec)
        if item.metadata["option"].get("flag")
    }
)
