"""File-to-file workflows behind the command line, usable from Python as well."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rtm.errors import ParameterError
from rtm.export.atomic import atomic_file
from rtm.layers import CandidateSet, build_candidates, spatial_influences
from rtm.study import Study, load_study

__all__ = ["build_study_candidates", "write_layers"]


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
