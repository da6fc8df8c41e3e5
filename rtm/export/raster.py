"""GeoTIFF output: Cloud-Optimized GeoTIFFs of per-cell values on the grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rtm.grid import Grid

__all__ = ["write_geotiff"]


def write_geotiff(
    path: str | Path,
    grid: Grid,
    bands: np.ndarray,
    *,
    names: Sequence[str] = (),
    nodata: float | int = -9999,
    dtype: str = "float32",
) -> None:
    """Write per-active-cell values as a (multi-band) Cloud-Optimized GeoTIFF.

    Parameters
    ----------
    path : path
        Output file.
    grid : Grid
        The grid the values belong to.
    bands : numpy.ndarray
        ``(n_active,)`` or ``(n_active, n_bands)`` values; inactive cells get ``nodata``.
    names : sequence of str
        Band descriptions.
    nodata : number
        The nodata value.
    dtype : str
        Raster data type.
    """
    import rasterio

    values = np.asarray(bands)
    if values.ndim == 1:
        values = values[:, None]
    n_bands = values.shape[1]
    stack = np.full((n_bands, grid.n_rows * grid.n_cols), nodata, dtype=dtype)
    stack[:, grid.active_index] = values.T.astype(dtype)
    stack = stack.reshape(n_bands, grid.n_rows, grid.n_cols)  # type: ignore[assignment]
    profile = {
        "driver": "COG",
        "width": grid.n_cols,
        "height": grid.n_rows,
        "count": n_bands,
        "dtype": dtype,
        "crs": grid.crs_wkt,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "deflate",
        "BLOCKSIZE": 256,
        "OVERVIEWS": "NONE" if max(grid.shape) <= 512 else "AUTO",
    }
    with rasterio.Env(GDAL_NUM_THREADS="1"):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(stack)
            for band, name in enumerate(names, start=1):
                dst.set_band_description(band, name)
