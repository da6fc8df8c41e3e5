"""What a validation takes: a fitted surface with its training data, and test events.

:class:`FittedSurface` is built from an analysis in memory
(:meth:`FittedSurface.from_analysis`: ``analyze --test-crimes``, batch, temporal windows)
or from a run folder (:meth:`FittedSurface.from_run`: ``rtm validate``), so every path
scores the same things: the run's own study area and training events, and (for the
challengers) every candidate layer, rebuilt from the run's specification when read
from a folder. :class:`TestEvents` counts test events inside that same area, and
:func:`check_test_events` warns about validations set up to flatter the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from rtm.errors import RTMError, RTMWarning
from rtm.filters import WhereClause, as_clauses
from rtm.grid import Grid
from rtm.periods import event_periods

__all__ = ["FittedSurface", "TestEvents", "check_test_events"]


def _periods(
    events: Any, column: str | None
) -> tuple[NDArray[np.int64] | None, str | None, str | None]:
    """The training events' periods, the column used and a note when one found is unusable.

    With ``column`` (the user asked for it) a bad column is an error; without, a ``month``
    or ``date`` column is used when there is one.
    """
    if events is None:
        return None, None, None
    asked = column
    if column is None:
        found = [c for c in events.columns if str(c).strip().lower() in {"month", "date"}]
        column = found[0] if found else None
    if column is None:
        return None, None, None
    try:
        return event_periods(events, column), column, None
    except RTMError as exc:
        if asked is not None:
            raise
        return None, None, f"column {column!r} found but not usable as periods ({exc})"


@dataclass(frozen=True, eq=False)
class FittedSurface:
    """A fitted risk surface and everything validation compares it with.

    Attributes
    ----------
    grid : Grid
    rrs : numpy.ndarray or None
        The relative risk score per active cell (None: no significant factor).
    train_counts : numpy.ndarray
        Fit-period events per active cell (the prior-counts baseline).
    selected : dict
        The selected candidates' values per active cell, by candidate name.
    candidates : CandidateSet or None
        Every candidate layer (the challengers use them); None when they could not be
        rebuilt (``challengers_note`` says why).
    train_x, train_y : numpy.ndarray
        The fit-period events' coordinates (the KDE baseline and the exposure features).
    train_periods : numpy.ndarray or None
        Their periods (the lagged design and the inner model choice).
    area : shapely geometry
        The study area: test events outside it are dropped and counted.
    block_length : float
    where : tuple of WhereClause
        The run's event filters (a test without them is warned about).
    train_events : GeoDataFrame or None
        The fit-period events with their attributes (for the overlap warning).
    seed : int
    extra : dict
        What the validation report records of the fit: ``period_column``, ``kde_points``,
        ``run``, notes.
    factors : tuple of Factor
        The study's factors (the boosted trees' continuous layers); empty when unknown.
    """

    grid: Grid
    rrs: NDArray[np.float64] | None = field(repr=False)
    train_counts: NDArray[Any] = field(repr=False)
    selected: dict[str, NDArray[Any]] = field(repr=False)
    candidates: Any = field(repr=False)
    train_x: NDArray[np.float64] = field(repr=False)
    train_y: NDArray[np.float64] = field(repr=False)
    train_periods: NDArray[np.int64] | None = field(repr=False)
    area: Any = field(repr=False)
    block_length: float
    where: tuple[WhereClause, ...] = ()
    train_events: Any = field(default=None, repr=False)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    factors: tuple[Any, ...] = field(default=(), repr=False)

    @classmethod
    def from_analysis(
        cls,
        result: Any,
        study: Any,
        *,
        period_column: str | None = None,
        events: NDArray[np.bool_] | None = None,
        run: str | None = None,
    ) -> FittedSurface:
        """A fit in memory (an RTMResult and the Study it was fitted on).

        ``events`` (a mask of the study's events) restricts the training events, e.g. to
        the periods of one window of a temporal validation; ``run`` names the run folder
        being written, for the report.
        """
        frame = study.events if events is None else study.events.loc[events]
        periods, column, note = _periods(frame, period_column or study.spec.period_column)
        extra: dict[str, Any] = {"period_column": column, "kde_points": "the training events"}
        if study.spec.harm is not None:
            extra["harm_table"] = study.spec.harm
        extra["patrol_size"] = study.spec.patrol_size
        if study.spec.area_where:
            extra["area_where"] = [clause.label for clause in study.spec.area_where]
        if run is not None:
            extra["run"] = run
        if note:
            extra["period_column_note"] = note
        return cls(
            grid=result.grid,
            rrs=result.relative_risk_score,
            train_counts=result.counts,
            selected=result.selected_values(),
            candidates=result.candidates,
            train_x=frame.geometry.x.to_numpy(),
            train_y=frame.geometry.y.to_numpy(),
            train_periods=periods,
            area=study.area_geometry,
            block_length=float(study.spec.block_length),
            where=study.spec.where,
            train_events=frame,
            seed=study.spec.seed,
            extra=extra,
            factors=tuple(study.factors),
        )

    @classmethod
    def from_run(
        cls,
        folder: str | Path,
        *,
        challengers: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> FittedSurface:
        """A run folder: its report, cells, study area and training events (features.gpkg).

        With ``challengers``, the candidate layers are rebuilt from the run's
        specification (the factor files must still be there); otherwise, or when they
        cannot be, the challengers are left out and ``extra["challengers_note"]`` says why.
        """
        from rtm.runs import load_run, read_features

        run = load_run(folder, what="run folder")
        area, _, events = read_features(run.folder)
        geometry = shapely.union_all(np.asarray(area.geometry.values))
        train = run.column("events", np.int64)
        extra: dict[str, Any] = {"run": str(folder)}
        if run.report.inputs.harm_table is not None:
            extra["harm_table"] = run.report.inputs.harm_table
        patrol_size = (run.report.section("output_settings") or {}).get("patrol_size")
        if patrol_size is not None:
            extra["patrol_size"] = patrol_size
        if events is not None and len(events) == int(train.sum()):
            x, y = events.geometry.x.to_numpy(), events.geometry.y.to_numpy()
            extra["kde_points"] = "the run's training events (features.gpkg)"
        else:  # pragma: no cover - features.gpkg of an earlier rtm without its events
            cx, cy = run.grid.cell_centres()
            x, y = np.repeat(cx, train), np.repeat(cy, train)
            extra["kde_points"] = "training events at their cell centres"
        spec = run.report.spec
        periods, column, note = _periods(
            events, None if spec is None else spec.get("period_column")
        )
        extra["period_column"] = column
        if note:
            extra["period_column_note"] = note
        if spec is not None and spec.get("area_where"):
            extra["area_where"] = list(spec["area_where"])
        candidates, factors = None, ()
        if challengers:
            candidates, factors, why = _rebuild_candidates(run, progress)
            if why:
                extra["challengers_note"] = why
        return cls(
            grid=run.grid,
            rrs=run.rrs,
            train_counts=train,
            selected=run.selected,
            candidates=candidates,
            train_x=x,
            train_y=y,
            train_periods=periods,
            area=geometry,
            block_length=float(run.report.inputs.block_length),
            where=run.report.where,
            train_events=events,
            seed=run.report.seed,
            extra=extra,
            factors=factors,
        )

    @property
    def factor_count(self) -> NDArray[np.float64] | None:
        """Selected factors present per cell (a protective factor present counts -1)."""
        if not self.selected:
            return None
        return np.sum([np.asarray(v, dtype=np.float64) for v in self.selected.values()], axis=0)


def _rebuild_candidates(
    run: Any, progress: Callable[[str], None] | None
) -> tuple[Any, tuple[Any, ...], str | None]:
    """The run's candidate layers and factors, rebuilt from its specification, or why not."""
    from rtm.spec import StudySpec
    from rtm.study import build_study_candidates, load_study

    if run.report.spec is None:
        return None, (), "the run records no specification (written by an earlier rtm)"
    try:
        spec = StudySpec.from_record(run.report.spec)
        study = load_study(spec, with_events=False)
        if study.grid != run.grid:
            return None, (), "the study area no longer gives the run's grid"
        return build_study_candidates(study, progress=progress), tuple(study.factors), None
    except RTMError as exc:
        return None, (), f"the candidate layers could not be rebuilt ({exc})"


@dataclass(frozen=True, eq=False)
class TestEvents:
    """Test-period events counted on a fitted surface's cells.

    Attributes
    ----------
    counts : numpy.ndarray
        Test events per active cell.
    outside : int
        Test events outside the study area (dropped).
    source : str
        Where they came from (a file, or a label such as ``periods 7-9``).
    where : tuple of WhereClause
        Their filters.
    frame : GeoDataFrame or None
        The test events inside the area, with their attributes.
    """

    __test__ = False  # not a pytest test class, despite its name

    counts: NDArray[np.float64] = field(repr=False)
    outside: int = 0
    source: str = ""
    where: tuple[WhereClause, ...] = ()
    frame: Any = field(default=None, repr=False)

    @classmethod
    def from_counts(cls, counts: ArrayLike, *, source: str) -> TestEvents:
        """Test events given as counts per cell (a window of a temporal validation)."""
        return cls(counts=np.asarray(counts, dtype=np.float64), source=source)

    @classmethod
    def read(
        cls,
        fitted: FittedSurface,
        source: Any,
        *,
        where: Sequence[str | WhereClause] = (),
        x_column: str | None = None,
        y_column: str | None = None,
        events_crs: str | None = None,
    ) -> TestEvents:
        """Read test events and count them inside the fitted surface's study area."""
        from rtm.io import read_events

        clauses = as_clauses(where)
        frame = read_events(
            source,
            fitted.grid.crs,
            where=clauses,
            x_column=x_column,
            y_column=y_column,
            csv_crs=events_crs,
            what="test events",
        )
        return cls.count(fitted, frame, source=str(source), where=clauses)

    @classmethod
    def count(
        cls,
        fitted: FittedSurface,
        frame: Any,
        *,
        source: str,
        where: Sequence[str | WhereClause] = (),
    ) -> TestEvents:
        """Count events already read (in the grid's CRS) inside the study area."""
        counted = fitted.grid.count_events(frame, fitted.area)
        if not fitted.extra.get("area_where"):  # a part of an area file: most lie outside
            counted.warn_outside(f"test events {source}")
        return cls(
            counts=counted.counts.astype(np.float64),
            outside=counted.n_outside,
            source=source,
            where=as_clauses(where),
            frame=frame.loc[counted.inside],
        )


def check_test_events(fitted: FittedSurface, test: TestEvents) -> list[str]:
    """Warn (and return the warnings) when a validation is set up to flatter the model.

    * the run filtered its events (``--where type=robbery``) by a column the test
      events are not filtered by: a burglary map scored against every crime;
    * the test events are the training events, or mostly the same ones (validating on
      the training period): identical counts per cell, or at least half of the test
      events identical to training events in place and every shared attribute.
    """
    notes = []
    from rtm.filters import holds_for_every_row

    tested = {clause.column.strip().casefold() for clause in test.where}
    unfiltered = [
        clause.label
        for clause in fitted.where
        if clause.column.strip().casefold() not in tested
        # test events that already satisfy it (a file of robberies only) need no filter
        and not (test.frame is not None and holds_for_every_row(test.frame, clause))
    ]
    if unfiltered and test.frame is not None:
        values = [text for text in unfiltered if ".." not in text]
        advice = (
            f"give the test events the same filter (--where {values[0]})"
            if values
            else "filter the test events to a later period"
        )
        notes.append(
            f"the run's events were filtered by {', '.join(unfiltered)} but the test events are "
            "not filtered on the same column(s), so the map is scored against other events than "
            f"it models: {advice}"
        )
    train = np.asarray(fitted.train_counts, dtype=np.float64)
    counts = np.asarray(test.counts, dtype=np.float64)
    same = train.shape == counts.shape and counts.sum() > 0 and np.array_equal(train, counts)
    shared = None if same else _shared_share(fitted.train_events, test.frame)
    if same:
        notes.append(
            "the test events fall in exactly the same cells as the training events: they look "
            "like the training events themselves, and scoring the model on them overstates "
            "its accuracy (test on a later period)"
        )
    elif shared is not None and shared >= 0.5:
        notes.append(
            f"{shared:.0%} of the test events are identical to training events (same place and "
            "attributes): validating on the training period overstates accuracy (test on a "
            "later period)"
        )
    for note in notes:
        warnings.warn(f"validation: {note}", RTMWarning, stacklevel=2)
    return notes


def _shared_share(train: Any, test: Any) -> float | None:
    """Share of test events matched one-to-one by identical training events (None: unknown)."""
    import pandas as pd

    if train is None or test is None or len(test) == 0:
        return None
    geometry = {getattr(train, "_geometry_column_name", "geometry"), "geometry"}
    common = [
        c
        for c in train.columns
        if c in test.columns and c not in geometry and str(c).lower() != "geometry"
    ]
    if not common:
        return None  # places alone repeat (police.uk's snap points): not evidence

    def keys(frame: Any) -> pd.Series:
        table = pd.DataFrame(
            {
                "x": np.round(frame.geometry.x.to_numpy(), 1),
                "y": np.round(frame.geometry.y.to_numpy(), 1),
                **{str(c): frame[c].astype("string").str.strip().to_numpy() for c in common},
            }
        )
        return pd.util.hash_pandas_object(table, index=False).value_counts()

    a, b = keys(train), keys(test)
    matched = int(np.minimum(a.reindex(b.index, fill_value=0), b).sum())
    return matched / len(test)
