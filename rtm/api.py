"""File-to-file workflows behind the command line, usable from Python as well.

Each takes a :class:`~rtm.spec.StudySpec` (or the same options as keywords) and writes
its output safely (:mod:`rtm.export.atomic`): :func:`analyze` a run folder,
:func:`write_layers` the candidate layers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtm.errors import ParameterError, api_warnings
from rtm.export.atomic import atomic_file, claim
from rtm.spec import StudySpec
from rtm.spec_values import DRAWN_FILES

if TYPE_CHECKING:
    from rtm.layers import CandidateSet
    from rtm.result import RTMResult
    from rtm.study import Study, build_study_candidates

__all__ = ["analyze", "build_study_candidates", "write_layers"]

Progress = Callable[[str], None]


def __getattr__(name: str) -> Any:
    # re-exported lazily: importing the workflows must not load geopandas (start-up time)
    if name == "build_study_candidates":
        from rtm.study import build_study_candidates

        return build_study_candidates
    raise AttributeError(f"module 'rtm.api' has no attribute {name!r}")


def _spec(spec: StudySpec | None, options: dict[str, Any]) -> StudySpec:
    if spec is None:
        return StudySpec(**options)
    return spec.replace(**options) if options else spec


def write_layers(
    spec: StudySpec | None = None,
    /,
    *,
    out: str | Path,
    overwrite: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> Path:
    """Build the candidate layers and write them to a GeoTIFF (.tif) or GeoPackage (.gpkg).

    Parameters
    ----------
    spec : StudySpec, optional
        The study (its events are not read); or give its options as keywords.
    out : path
        ``.tif`` (one band per candidate) or ``.gpkg`` (one polygon per cell).
    overwrite : bool
        Replace an earlier output of rtm.
    progress : callable, optional
        Receives short progress messages.
    """
    target = Path(out)
    suffix = target.suffix.lower()
    if suffix not in {".tif", ".tiff", ".gpkg"}:
        raise ParameterError(f"--out {target}: must end in .tif or .gpkg")
    from rtm.study import build_study_candidates, load_study

    spec = _spec(spec, options)
    with api_warnings(), atomic_file(target, overwrite=overwrite) as tmp:
        study = load_study(spec, with_events=False, progress=progress)
        candidates = build_study_candidates(study, progress=progress)
        if suffix == ".gpkg":
            from rtm.export.vector import write_cells

            write_cells(
                tmp, study.grid, dict(zip(candidates.names, candidates.values.T, strict=True))
            )
        else:
            from rtm.export.raster import write_geotiff

            write_geotiff(
                tmp,
                study.grid,
                candidates.values,
                names=candidates.names,
                nodata=-128,
                dtype="int8",
            )
    return target


def analyze(
    spec: StudySpec | None = None,
    /,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> RTMResult:
    """Run a whole analysis, and write the run folder when ``out`` is given.

    The run folder holds ``report.json``, ``factors.csv``, ``risk.tif`` (absent when no
    factor is significant), ``cells.gpkg`` and, with a risk surface, the map, the report,
    the places and ``features.gpkg``. It is written atomically: a failure leaves no
    partial folder, and an existing one is replaced only with ``overwrite`` and only if
    rtm wrote it. With ``test_events`` it also holds ``validation.json`` and
    ``capture.png`` (:func:`rtm.validation.validate`).

    The report always holds Moran's I of the residuals (:mod:`rtm.diagnostics`). With
    ``bootstrap`` > 0 it also holds the selection stability, and with ``split_sample`` a
    selection on half the cells refitted on the other half (:mod:`rtm.stability`).

    Parameters
    ----------
    spec : StudySpec, optional
        Every option of the study (:class:`rtm.spec.StudySpec`: events, area, factors,
        block length, filters, model, inference, validation and output settings).
    out : path, optional
        Run folder to write; nothing is written without it.
    overwrite : bool
        Replace an existing run folder (only one rtm wrote).
    progress : callable, optional
        Receives short progress messages.
    **options
        The options of :class:`~rtm.spec.StudySpec` as keywords, instead of (or on top
        of) ``spec``: ``events``, ``area``, ``block_length``, ``factors_dir``, ``where``...

    Returns
    -------
    RTMResult
        Check ``result.significant``: when False there is no risk surface.

    Examples
    --------
    A synthetic city written as an analyst would receive it (shapefiles, a GeoPackage area,
    a CSV of crimes), then the whole analysis, as ``rtm analyze`` runs it:

    >>> import tempfile
    >>> from rtm.synthetic import generate_city, write_city
    >>> folder = write_city(generate_city(seed=1, radius=1500), tempfile.mkdtemp())
    >>> result = analyze(
    ...     events=folder / "crimes.csv", area=folder / "area.gpkg",
    ...     factors_dir=folder / "factors", protective=["parks"],
    ...     where=["type=robbery"], block_length=150, out=folder / "run",
    ... )
    >>> result.significant, result.distribution
    (True, 'negative_binomial')
    >>> result.model_table()["Risk Factor"].tolist()
    ['bars', 'parks', 'bus_stops', 'main_roads', 'Intercept']
    >>> (folder / "run" / "factors.csv").exists()
    True
    """
    spec = _spec(spec, options)
    if spec.events is None:
        raise ParameterError("events: an analysis needs the outcome events (CRIMES)")
    _warn_idle(spec)
    # each stage imports what it needs when it starts (start-up time: benchmarks/startup.py)
    from rtm.study import build_study_candidates, load_study

    with ExitStack() as stack:
        stack.enter_context(api_warnings())
        # the output is checked and locked before the slow work, and held until it is written
        held = stack.enter_context(claim(out, overwrite=overwrite)) if out is not None else None
        start = time.perf_counter()
        study = load_study(spec, progress=progress)
        from rtm.model import check_grid_size

        check_grid_size(study.grid.n_active, study.grid.cell_size, study.grid.unit)
        test_frame = _read_test_events(spec, study)  # a bad file fails before the slow fit
        read = time.perf_counter()
        candidates = build_study_candidates(study, progress=progress)
        layers = time.perf_counter()
        forecasting = out is not None and (test_frame is not None or spec.forecast)
        drawing = out is not None and (
            spec.outputs is None or bool(DRAWN_FILES & set(spec.outputs))
        )
        stages = (("outputs", drawing), ("forecast", forecasting))
        prefetch = tuple(stage for stage, wanted in stages if wanted)
        result = _fit(spec, study, candidates, prefetch=prefetch, progress=progress)
        object.__setattr__(result, "study", study)  # what explore(), places(), validate() need
        result.timings["read_and_grid"] = read - start
        result.timings["layers"] = layers - read
        honest = _honest_inference(result, candidates, spec, progress)
        if held is not None:
            written = _write(held, result, study, honest, test_frame, progress)
            object.__setattr__(result, "outputs", tuple(written))
            if progress:
                progress(f"outputs written to {out}")
        return result


def _warn_idle(spec: StudySpec) -> None:
    """Warn about options this analysis ignores (a test option without test events)."""
    import warnings

    from rtm.errors import RTMWarning

    for message in spec.idle_options():
        warnings.warn(message, RTMWarning, stacklevel=3)


def _read_test_events(spec: StudySpec, study: Study) -> Any:
    if spec.test_events is None:
        return None
    from rtm.io import read_events

    return read_events(
        spec.test_events,
        study.grid.crs,
        where=spec.test_where,
        x_column=spec.x_column,
        y_column=spec.y_column,
        csv_crs=spec.events_crs,
        what="test events",
        csv_options=spec.csv_options,
    )


def _fit(
    spec: StudySpec,
    study: Study,
    candidates: CandidateSet,
    *,
    prefetch: tuple[str, ...],
    progress: Progress | None,
) -> RTMResult:
    """Select the model; the later stages' modules are imported beside it.

    ``prefetch`` names those stages (keys of :data:`rtm.export.run.PREFETCH`).
    """
    from rtm.model import RiskTerrainModel

    assert study.counts is not None
    thread = None
    if prefetch:
        from rtm.export.run import prefetch_modules

        thread = prefetch_modules(*prefetch)  # overlaps the fit (nogil kernels)
    try:
        return (
            RiskTerrainModel.from_spec(spec)
            .fit(candidates, study.counts.counts, harm=study.counts.harm, progress=progress)
            .result_
        )
    finally:
        if thread is not None:
            # the fit imports nothing; what follows does: no module is imported by two
            # threads at once (concurrent imports of cyclic packages can meet half-built).
            # Joined on failure too (Ctrl-C): a daemon thread still importing while the
            # interpreter shuts down can crash it.
            thread.join()


def _honest_inference(
    result: RTMResult, candidates: CandidateSet, spec: StudySpec, progress: Progress | None
) -> dict[str, Any]:
    """Moran's I of the residuals (always), bootstrap stability and the split-sample refit."""
    from dataclasses import replace

    from rtm.diagnostics import residual_autocorrelation
    from rtm.model import RiskTerrainModel
    from rtm.stability import bootstrap_selection, split_sample

    fitted = result
    if result.outcome is not None:  # residuals of the harm model are on its outcome
        fitted = replace(result, counts=result.outcome)
    sections: dict[str, Any] = {
        "residual_autocorrelation": residual_autocorrelation(fitted, seed=spec.seed)
    }
    model = RiskTerrainModel.from_spec(spec)
    if spec.bootstrap:
        sections["stability"] = bootstrap_selection(
            candidates,
            result.counts,
            model=model,
            n_resamples=spec.bootstrap,
            scheme=spec.bootstrap_scheme,  # type: ignore[arg-type]
            seed=spec.seed,
            progress=progress,
        )
    if spec.split_sample:
        sections["split_sample"] = split_sample(
            candidates, result.counts, model=model, seed=spec.seed
        )
    return sections


def _write(
    held: Any,
    result: RTMResult,
    study: Study,
    sections: dict[str, Any],
    test_frame: Any,
    progress: Progress | None,
) -> list[str]:
    """Write the run folder (and the validation, with test events), whole or not at all.

    Returns the names of the files written; ``result.timings`` gets ``outputs`` and
    ``validation`` (seconds).
    """
    from rtm.export.options import OutputOptions
    from rtm.export.run import write_run
    from rtm.runs import report_from_fit

    spec = study.spec
    assert spec is not None
    report = report_from_fit(result, study=study, sections=sections)
    fitted: Any = None
    forecast: Any = None
    if test_frame is not None or spec.forecast:
        from rtm.validation import FittedSurface, forecast_for

        start = time.perf_counter()
        fitted = FittedSurface.from_analysis(result, study, run=str(held.path))
        forecast = forecast_for(
            fitted, challengers=spec.challengers, bandwidth=spec.bandwidth, progress=progress
        )
        result.timings["forecast"] = time.perf_counter() - start
        object.__setattr__(result, "forecast", forecast)  # explore() draws what the folder has
    written: list[Path] = []
    with held.staging() as folder:
        if test_frame is not None and fitted is not None:  # first: the model card reports it
            start = time.perf_counter()
            written += _validate_into(folder, fitted, study, test_frame, forecast, progress)
            result.timings["validation"] = time.perf_counter() - start
        start = time.perf_counter()
        written = [
            *write_run(
                folder,
                result,
                report,
                study=study,
                options=OutputOptions.from_spec(spec),
                forecast=forecast,
                progress=progress,
            ),
            *written,
        ]
        result.timings["outputs"] = time.perf_counter() - start
    return [path.name for path in written]


def _validate_into(
    folder: Path,
    fitted: Any,
    study: Study,
    test_frame: Any,
    forecast: Any,
    progress: Progress | None,
) -> list[Path]:
    """Score the fit on the test events; write validation.json and its capture plot."""
    from rtm.export.plots import capture_plot
    from rtm.validation import TestEvents, validate

    spec = study.spec
    assert spec is not None
    if progress:
        progress(
            f"validation: {len(test_frame):,} test events; scoring the risk surface, "
            + ("the challengers, " if spec.challengers else "")
            + "the forecast and the baselines"
        )
    label = spec.test_events if isinstance(spec.test_events, str) else "(in memory)"
    test = TestEvents.count(fitted, test_frame, source=label, where=spec.test_where)
    validation = validate(
        fitted,
        test,
        challengers=spec.challengers,
        bandwidth=spec.bandwidth,
        forecast=forecast,
        importance=spec.importance,
        progress=progress,
    )
    wanted = spec.outputs is None or "capture.png" in spec.outputs
    plot = capture_plot(folder / "validation.json") if wanted else None
    return validation.write(folder / "validation.json", plot=plot, overwrite=True)
