"""File-to-file workflows behind the command line, usable from Python as well."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import geopandas as gpd

from rtm.errors import ParameterError
from rtm.model import RiskTerrainModel, RTMResult, report_dict
from rtm.export.atomic import atomic_dir, atomic_file
from rtm.export.outputs import OutputOptions
from rtm.layers import CandidateSet, build_candidates, spatial_influences
from rtm.study import Study, load_study

__all__ = ["analyze", "build_study_candidates", "write_layers"]


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
    factors = [replace(f, operationalization=operationalization) for f in study.factors]  # type: ignore[arg-type]
    candidates = build_candidates(study.grid, factors, influences, progress=progress)
    if progress:
        progress(
            f"layers: {len(candidates.candidates)} candidates, {len(candidates.dropped)} constant dropped"
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

    Returns
    -------
    RTMResult
        Check ``result.significant``: when False there is no risk surface.
    """
    import time

    from rtm.export.atomic import check_writable

    if out is not None:
        check_writable(out, overwrite=overwrite)  # fail before the slow work
    model = model or RiskTerrainModel()
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
        progress=progress,
    )
    test_frame = None
    if test_events is not None:
        from rtm.io import read_events

        test_frame = read_events(  # read before the slow fit: a bad file fails fast
            test_events, study.grid.crs, where=test_where, x_column=x_column,
            y_column=y_column, csv_crs=events_crs, what="test events",
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
    result = model.fit(candidates, study.counts.counts, progress=progress).result_
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
        report = report_dict(result, inputs)
        start = time.perf_counter()
        with atomic_dir(out, overwrite=overwrite) as folder:
            write_run(folder, result, report, study=study, options=outputs)
            if test_frame is not None:
                _write_validation(folder, study, result, test_frame, test_events, test_where,
                                  block_length=block_length, seed=int(model.seed), progress=progress)
        result.timings["outputs"] = time.perf_counter() - start
        if progress:
            progress(f"outputs written to {out}")
    return result


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
) -> None:
    """Score the fitted model, its challengers and the baselines on the test events."""
    from rtm.validate import evaluate_models

    assert study.events is not None
    counted = study.grid.count_events(test_frame, study.area_geometry)
    validation = evaluate_models(
        result,
        study.events.geometry.x.to_numpy(),
        study.events.geometry.y.to_numpy(),
        counted.counts,
        block_length=block_length,
        seed=seed,
        progress=progress,
    )
    validation.report.update(
        test_file=str(test_events), test_where=list(test_where), test_events_outside=counted.n_outside
    )
    validation.write(folder / "validation.json", plot=folder / "capture.png", overwrite=True)
