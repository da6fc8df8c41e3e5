"""Layers of one very large area, built in row chunks on Dask, equal to a single-machine build.

Each chunk is a band of grid rows. A chunk needs the features within the largest
spatial influence of its band (its *halo*): features farther away cannot reach any of
its cells. The kernels compute cell centres from the whole grid's corner, so every
chunk's distances and densities are bit-for-bit those of the whole-grid build; the
density cut (mean + 2 SD over all active cells) is taken after the chunks are joined.
This is the vector equivalent of ``dask.array.map_overlap`` with a depth of the
largest spatial influence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely

from rtm.errors import ParameterError
from rtm.grid import Grid
from rtm.layers.candidates import CandidateSet, Factor, LayerComputer, build_candidates
from rtm.layers.operationalizations.base import LayerContext, Operationalization

__all__ = ["build_candidates_chunked", "chunked_layers", "halo", "row_chunks"]


def row_chunks(grid: Grid, chunk_rows: int) -> list[tuple[int, int]]:
    """Bands of ``chunk_rows`` grid rows covering the grid, top to bottom."""
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ParameterError(f"chunk_rows must be a positive whole number, got {chunk_rows!r}")
    return [(r, min(r + chunk_rows, grid.n_rows)) for r in range(0, grid.n_rows, chunk_rows)]


def halo(grid: Grid, rows: tuple[int, int], geometries: np.ndarray, reach: float) -> np.ndarray:
    """The features within ``reach`` of the band's cell centres (its halo)."""
    top = grid.y_max - (rows[0] + 0.5) * grid.cell_size
    bottom = grid.y_max - (rows[1] - 0.5) * grid.cell_size
    left = grid.x_min + 0.5 * grid.cell_size
    right = grid.x_min + (grid.n_cols - 0.5) * grid.cell_size
    # one cell of margin on top of the reach: rounding can never drop a feature
    margin = reach + grid.cell_size
    window = shapely.box(left - margin, bottom - margin, right + margin, top + margin)
    return geometries[shapely.intersects(window, geometries)]


def _chunk(
    grid: Grid,
    rows: tuple[int, int],
    op: Operationalization,
    geometries: np.ndarray,
    distances: list[float],
    context: LayerContext,
) -> np.ndarray:
    near = halo(grid, rows, geometries, max(distances))
    return op.raw(grid, near, distances, context, rows=rows)


def chunked_layers(grid: Grid, *, chunk_rows: int = 256, client: Any = None) -> LayerComputer:
    """A ``compute`` hook for :func:`rtm.layers.build_candidates` working in row chunks.

    Every operationalization computes its raw layers band by band (each band with the
    features of its halo); the bands are joined before the binary cut.

    Parameters
    ----------
    grid : Grid
        The grid.
    chunk_rows : int
        Grid rows per chunk.
    client : dask.distributed.Client, optional
        Run the chunks on this cluster; by default Dask's local threaded scheduler.
    """
    import dask

    bands = row_chunks(grid, chunk_rows)

    def compute(
        op: Operationalization, geometries: np.ndarray, distances: list[float], context: Any
    ) -> np.ndarray:
        tasks = [
            dask.delayed(_chunk)(grid, band, op, geometries, list(distances), context)
            for band in bands
        ]
        if client is not None:
            parts = client.gather(client.compute(tasks))
        else:
            parts = dask.compute(*tasks, scheduler="threads")
        # active cells are numbered row by row: joining the bands in order gives
        # the whole grid's active order
        return np.concatenate(parts, axis=1)

    return compute


def build_candidates_chunked(
    grid: Grid,
    factors: Iterable[Factor],
    influences: Sequence[float],
    *,
    chunk_rows: int = 256,
    client: Any = None,
    network: Any = None,
) -> CandidateSet:
    """:func:`rtm.layers.build_candidates`, with the layers computed in row chunks on Dask.

    Every operationalization runs chunked, network proximity (``network``) included.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from rtm.layers import Factor, build_candidates
    >>> area = gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs="EPSG:27700")
    >>> grid = Grid.from_area(area, 50)
    >>> pubs = Factor("pubs", gpd.GeoSeries(shapely.points([[120, 130], [700, 800]]), crs=area.crs))
    >>> whole = build_candidates(grid, [pubs], [100, 200])
    >>> chunks = build_candidates_chunked(grid, [pubs], [100, 200], chunk_rows=3)
    >>> bool((whole.values == chunks.values).all())
    True
    """
    return build_candidates(
        grid,
        factors,
        influences,
        network=network,
        compute=chunked_layers(grid, chunk_rows=chunk_rows, client=client),
    )
