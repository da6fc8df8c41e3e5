"""File-to-file workflows behind the command line, usable from Python as well."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rtm.errors import ParameterError
from rtm.export.atomic import atomic_file
from rtm.layers import (
    CandidateSet,
    build_candidates,
    resolve_operationalizations,
    spatial_influences,
)
from rtm.study import Study, load_study

if TYPE_CHECKING:  # imported where used: write_layers needs neither the model nor the outputs
    import geopandas as gpd

    from rtm.export.outputs import OutputOptions
    from rtm.model import RiskTerrainModel, RTMResult

__all__ = ["analyze", "build_study_candidates", "write_layers"]


def _candidates_per_factor(
    block_length: float, max_blocks: int, increment: str, operationalization: str
) -> int:
    """Candidate layers per factor; checks the block length first, naming its option."""
    from rtm.study import check_length

    check_length(block_length, "--block-length")
    influences = spatial_influences(block_length, max_blocks, increment)  # type: ignore[arg-type]
    return len(resolve_operationalizations(operationalization)) * len(influences)


def build_study_candidates(
    study: Study,
    *,
    block_length: float,
    max_blocks: int = 3,
    increment: str = "whole",
    operationalization: str = "both",
    progress: Callable[[str], None] | None = None,
) -> CandidateSet:
    """Candidate layers for every factor of ``study``."""
    from dataclasses import replace

    influences = spatial_influences(block_length, max_blocks, increment)  # type: ignore[arg-type]
    factors = [replace(f, operationalization=operationalization) for f in study.factors]
    candidates = build_candidates(
        study.grid, factors, influences, progress=progress, network=study.network
    )
    if progress:
        progress(
            f"layers: {len(candidates.candidates)} candidates, "
            f"{len(candidates.dropped)} constant dropped"
        )
    return candidates


def write_layers(
    *,
    out: Path,
    area: str,
    block_length: float,
    factors: Sequence[str] = (),
    factors_dir: str | None = None,
    protective: Sequence[str] = (),
    cell_size: float | None = None,
    max_blocks: int = 3,
    increment: str = "whole",
    operationalization: str = "both",
    crs: str | None = None,
    network: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build the candidate layers and write them to a GeoTIFF (.tif) or GeoPackage (.gpkg)."""
    suffix = out.suffix.lower()
    if suffix not in {".tif", ".tiff", ".gpkg"}:
        raise ParameterError(f"--out {out}: must end in .tif or .gpkg")
    with atomic_file(out, overwrite=overwrite) as tmp:
        study = load_study(
            area=area,
            block_length=block_length,
            cell_size=cell_size,
            factors=factors,
            factors_dir=factors_dir,
            protective=protective,
            crs=crs,
            network=network,
            candidates_per_factor=_candidates_per_factor(
                block_length, max_blocks, increment, operationalization
            ),
            progress=progress,
        )
        candidates = build_study_candidates(
            study,
            block_length=block_length,
            max_blocks=max_blocks,
            increment=increment,
            operationalization=operationalization,
            progress=progress,
        )
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
    return out


def analyze(
    *,
    events: str | Path,
    area: str | Path | gpd.GeoDataFrame,
    block_length: float,
    out: str | Path | None = None,
    factors: Sequence[str] = (),
    factors_dir: str | Path | None = None,
    protective: Sequence[str] = (),
    cell_size: float | None = None,
    max_blocks: int = 3,
    increment: str = "whole",
    operationalization: str = "both",
    where: Sequence[str] = (),
    crs: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
    events_crs: str | None = None,
    model: RiskTerrainModel | None = None,
    area_label: str | None = None,
    outputs: OutputOptions | None = None,
    test_events: str | Path | None = None,
    test_where: Sequence[str] = (),
    period_column: str | None = None,
    network: str | Path | None = None,
    bootstrap: int = 0,
    bootstrap_scheme: str = "block",
    split_sample: bool = False,
    weight_column: str | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RTMResult:
    """Run a whole analysis from files, and write the run folder when ``out`` is given.

    The run folder holds ``report.json``, ``factors.csv``, ``risk.tif`` (absent when no
    factor is significant) and ``cells.gpkg``. It is written atomically: a failure
    leaves no partial folder, and an existing one is replaced only with ``overwrite``.
    With ``test_events`` (later events, filtered by ``test_where``) it also holds
    ``validation.json`` and ``capture.png``: the model, its challengers and the
    prior-period baselines scored on those events (see :mod:`rtm.validate`).

    The report always holds Moran's I of the residuals (:mod:`rtm.diagnostics`). With
    ``bootstrap`` > 0 it also holds the selection stability over that many resamples
    (``bootstrap_scheme`` "block", the default, or "cells"), and with ``split_sample``
    a selection on half the cells refitted on the other half (:mod:`rtm.stability`).
    ``network`` (a street line layer) measures proximity along streets
    (:mod:`rtm.layers.network`).

    Parameters
    ----------
    events : path
        Outcome events (points): shapefile, GeoPackage ``FILE.gpkg:LAYER``, GeoJSON or CSV.
    area : path or GeoDataFrame
        Study-area polygons, ideally in a projected CRS.
    block_length : float
        Average street-block length, in CRS units: the spatial influences are multiples of
        it, and the default cell size is half of it.
    out : path, optional
        Run folder to write; nothing is written without it.
    factors : sequence of str
        ``FILE`` or ``NAME=FILE`` risk-factor layers.
    factors_dir : path, optional
        A folder whose every vector layer is a factor.
    protective : sequence of str
        Names of factors expected to lower risk (coded 0/-1).
    cell_size : float, optional
        Cell side; default half the block length.
    max_blocks : int
        Largest spatial influence, in blocks (default 3).
    increment : {"whole", "half"}
        Spatial-influence steps of one block or half a block.
    operationalization : {"both", "proximity", "density"}
        Candidate variables built per factor.
    where : sequence of str
        Event filters ``COL=V1,V2`` or ``COL=LO..HI`` (all must hold), see
        :func:`rtm.io.parse_where`.
    crs : str, optional
        Projected CRS to work in (default: the area's own).
    x_column, y_column, events_crs : str, optional
        CSV coordinate columns and their CRS (default: detected).
    model : RiskTerrainModel, optional
        Selection settings (seed, NB form, CV rule, ...); default ``RiskTerrainModel()``.
    area_label : str, optional
        How the report names the area (default: its file name).
    outputs : rtm.export.outputs.OutputOptions, optional
        Tier cuts, priority places and map settings.
    test_events : path, optional
        Later events to validate the model on.
    test_where : sequence of str
        Filters of ``test_events``, as ``where``.
    network : path, optional
        A street line layer: proximity is measured along it.
    bootstrap : int
        Resamples of the selection-stability bootstrap (0: none).
    bootstrap_scheme : {"block", "cells"}
        Resample spatial blocks of cells, or single cells.
    split_sample : bool
        Also select on half the cells and refit on the other half.
    weight_column : str, optional
        A numeric events column (harm, e.g. the Cambridge Crime Harm Index): the outcome
        per cell is then the total harm of its events, in event-equivalents, fitted
        quasi-Poisson (see :meth:`rtm.model.RiskTerrainModel.fit`). Not combinable with
        ``bootstrap`` or ``split_sample`` yet.
    overwrite : bool
        Replace an existing run folder.
    progress : callable, optional
        Receives short progress messages.

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
    import time
    from contextlib import ExitStack

    from rtm.export.atomic import claim

    with ExitStack() as stack:
        # the output is checked and locked before the slow work, and held until it is written
        held = stack.enter_context(claim(out, overwrite=overwrite)) if out is not None else None
        from rtm.checks import check_choice
        from rtm.model import RiskTerrainModel, report_dict
        from rtm.stability import SCHEMES

        check_choice("bootstrap_scheme", bootstrap_scheme, SCHEMES)
        if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
            raise ParameterError(f"--bootstrap must be a whole number >= 0, got {bootstrap!r}")
        if weight_column is not None and (bootstrap or split_sample):
            raise ParameterError(
                "--weight-column cannot be combined with --bootstrap or --split-sample yet "
                "(they resample event counts)"
            )
        model = model or RiskTerrainModel()
        model._validate()  # before the slow work: a bad seed or alpha fails at once
        stamps = {"start": time.perf_counter()}
        study = load_study(
            area=area,
            block_length=block_length,
            cell_size=cell_size,
            events=events,
            factors=factors,
            factors_dir=factors_dir,
            protective=protective,
            where=where,
            crs=crs,
            x_column=x_column,
            y_column=y_column,
            events_crs=events_crs,
            network=network,
            weight_column=weight_column,
            candidates_per_factor=_candidates_per_factor(
                block_length, max_blocks, increment, operationalization
            ),
            progress=progress,
        )
        from rtm.model import check_grid_size

        check_grid_size(study.grid.n_active, study.grid.cell_size, study.grid.unit)
        test_frame = None
        if test_events is not None:
            from rtm.io import read_events

            test_frame = read_events(  # read before the slow fit: a bad file fails fast
                test_events,
                study.grid.crs,
                where=test_where,
                x_column=x_column,
                y_column=y_column,
                csv_crs=events_crs,
                what="test events",
            )
        stamps["read"] = time.perf_counter()
        candidates = build_study_candidates(
            study,
            block_length=block_length,
            max_blocks=max_blocks,
            increment=increment,
            operationalization=operationalization,
            progress=progress,
        )
        stamps["layers"] = time.perf_counter()
        assert study.counts is not None
        prefetch = None
        if out is not None:
            from rtm.export.run import prefetch_output_modules

            prefetch = prefetch_output_modules()  # overlaps the fit (nogil kernels)
        try:
            result = model.fit(
                candidates, study.counts.counts, harm=study.counts.harm, progress=progress
            ).result_
        finally:
            if prefetch is not None:
                # the fit imports nothing; what follows does: no module is imported by two
                # threads at once (concurrent imports of cyclic packages can meet
                # half-built). Joined on failure too (Ctrl-C): a daemon thread still
                # importing while the interpreter shuts down can crash it.
                prefetch.join()
        honest = _honest_inference(
            result,
            candidates,
            study.counts.counts,
            model,
            bootstrap=bootstrap,
            bootstrap_scheme=bootstrap_scheme,
            split_sample=split_sample,
            progress=progress,
        )
        result.timings["read_and_grid"] = stamps["read"] - stamps["start"]
        result.timings["layers"] = stamps["layers"] - stamps["read"]
        if out is not None:
            from rtm.export.run import write_run

            inputs = {
                "events": study.counts.n_used,
                "events_outside": study.counts.n_outside,
                "events_file": str(events),
                "where": list(where),
                "x_column": x_column,
                "y_column": y_column,
                "events_crs": events_crs,
                "area_file": area_label or study.sources["area"],
                "block_length": float(block_length),
                "max_blocks": max_blocks,
                "increment": increment,
                "operationalization": operationalization,
                "spatial_influences": sorted({c.spatial_influence for c in candidates.candidates}),
                "factors": [f.name for f in study.factors],
                "factor_files": study.sources["factors"],
                "protective": sorted(protective),
            }
            if study.counts.harm is not None:
                inputs["weight_column"] = weight_column
                inputs["harm_total"] = float(study.counts.harm.sum())
            report = report_dict(result, inputs)
            report.update(honest)
            if study.network is not None:
                report["inputs"]["network"] = str(network)
                report["caveats"] = [
                    study.network.describe(study.grid.cell_size, study.grid.unit)
                    if c.startswith("Distances are straight")
                    else c
                    for c in report["caveats"]
                ]
            start = time.perf_counter()
            assert held is not None
            with held.staging() as folder:
                write_run(folder, result, report, study=study, options=outputs)
                if test_frame is not None:
                    _write_validation(
                        folder,
                        study,
                        result,
                        test_frame,
                        test_events,
                        test_where,
                        block_length=block_length,
                        seed=int(model.seed),
                        progress=progress,
                        period_column=period_column,
                    )
            result.timings["outputs"] = time.perf_counter() - start
            if progress:
                progress(f"outputs written to {out}")
        return result


def _honest_inference(
    result: RTMResult,
    candidates: CandidateSet,
    counts: object,
    model: RiskTerrainModel,
    *,
    bootstrap: int,
    bootstrap_scheme: str,
    split_sample: bool,
    progress: Callable[[str], None] | None,
) -> dict[str, object]:
    """Moran's I of the residuals (always), bootstrap stability and the split-sample refit."""
    from rtm.diagnostics import residual_autocorrelation
    from rtm.stability import bootstrap_selection
    from rtm.stability import split_sample as split

    fitted = result
    if result.outcome is not None:  # residuals of the harm model are on its outcome
        from dataclasses import replace

        fitted = replace(result, counts=result.outcome)
    report: dict[str, object] = {
        "residual_autocorrelation": residual_autocorrelation(fitted, seed=int(model.seed))
    }
    if bootstrap:
        report["stability"] = bootstrap_selection(
            candidates,
            counts,  # type: ignore[arg-type]
            model=model,
            n_resamples=bootstrap,
            scheme=bootstrap_scheme,  # type: ignore[arg-type]
            seed=int(model.seed),
            progress=progress,
        )
    if split_sample:
        report["split_sample"] = split(candidates, counts, model=model, seed=int(model.seed))  # type: ignore[arg-type]
    return report


def _write_validation(
    folder: Path,
    study: Study,
    result: RTMResult,
    test_frame: gpd.GeoDataFrame,
    test_events: str | Path | None,
    test_where: Sequence[str],
    *,
    block_length: float,
    seed: int,
    progress: Callable[[str], None] | None,
    period_column: str | None = None,
) -> None:
    """Score the fitted model, its challengers and the baselines on the test events.

    With the training events' period (``period_column``, or a ``month`` or ``date``
    column found in them) the challengers use the lagged forecasting design of
    :func:`rtm.validate.evaluate_models`; without one, the same-period design.
    """
    from rtm.errors import RTMError
    from rtm.temporal import event_periods
    from rtm.validate import check_test_events, evaluate_models

    assert study.events is not None
    counted = study.grid.count_events(test_frame, study.area_geometry)
    counted.warn_outside(f"test events {test_events}")
    check_test_events(
        study.sources.get("where", []),  # type: ignore[arg-type]
        test_where,
        study.counts.counts if study.counts is not None else [],
        counted.counts,
        study.events,
        test_frame.loc[counted.inside],
    )
    periods, column, note = None, period_column, None
    if column is None:
        found = [c for c in study.events.columns if str(c).strip().lower() in {"month", "date"}]
        column = found[0] if found else None
    if column is not None:
        try:
            periods = event_periods(study.events, column)
        except RTMError as exc:
            if period_column is not None:  # the user asked for it: a bad column is an error
                raise
            periods, note = None, f"column {column!r} found but not usable as periods ({exc})"
    validation = evaluate_models(
        result,
        study.events.geometry.x.to_numpy(),
        study.events.geometry.y.to_numpy(),
        counted.counts,
        block_length=block_length,
        seed=seed,
        train_periods=periods,
        progress=progress,
    )
    validation.report.update(
        test_file=str(test_events),
        test_where=list(test_where),
        test_events_outside=counted.n_outside,
        period_column=column if periods is not None else None,
    )
    if note:
        validation.report["period_column_note"] = note
    validation.write(folder / "validation.json", plot=folder / "capture.png", overwrite=True)
