"""Colours shared by the web map, the report and the static map, and PNG overlays.

The risk ramp is ColorBrewer's YlOrRd (9 classes) interpolated to 254 steps on a log
scale of the RRS: RRS is a product of RRVs, so equal ratios get equal colour steps.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rtm.grid import Grid

__all__ = [
    "RAMP",
    "RAMP_STEPS",
    "TIER_COLOURS",
    "legend_ticks",
    "overlay_png",
    "overlay_pngs",
    "ramp_index",
    "ramp_rgb",
]

RAMP = (
    "#ffffcc",
    "#ffeda0",
    "#fed976",
    "#feb24c",
    "#fd8d3c",
    "#fc4e2a",
    "#e31a1c",
    "#bd0026",
    "#800026",
)
#: Highest, moderately high, above average.
TIER_COLOURS = ("#b2182b", "#ef8a62", "#fddbc7")
PLACE_COLOUR = "#2b0a3d"
PRIORITY_COLOUR = "#1f78b4"
#: Largest side, in pixels, of an overlay image (larger rasters are thinned by max-pooling).
MAX_OVERLAY_PIXELS = 4096


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


#: Colours of the risk ramp: palette indices 1..RAMP_STEPS (0 is transparent).
RAMP_STEPS = 254


def ramp_rgb(steps: int = RAMP_STEPS) -> np.ndarray:
    """``(steps, 3)`` uint8 colours of the risk ramp."""
    anchors = np.array([_hex(c) for c in RAMP], dtype=float)
    position = np.linspace(0, len(RAMP) - 1, steps)
    out = np.empty((steps, 3))
    for channel in range(3):
        out[:, channel] = np.interp(position, np.arange(len(RAMP)), anchors[:, channel])
    return np.round(out).astype(np.uint8)


def ramp_index(rrs: np.ndarray, rrs_max: float) -> np.ndarray:
    """Palette index 1..:data:`RAMP_STEPS` of each RRS (log scale from 1 to ``rrs_max``).

    Index ``k`` is colour ``ramp_rgb()[k - 1]``.
    """
    top = math.log(max(rrs_max, 1.0 + 1e-9))
    scaled = np.log(np.maximum(np.asarray(rrs, dtype=float), 1.0)) / top
    return (1 + np.round(np.clip(scaled, 0, 1) * (RAMP_STEPS - 1))).astype(np.uint8)


def legend_ticks(rrs_max: float, count: int = 5) -> list[tuple[float, float]]:
    """``(position 0..1, RRS value)`` pairs for a log-scale legend."""
    top = math.log(max(rrs_max, 1.0 + 1e-9))
    return [(k / (count - 1), math.exp(top * k / (count - 1))) for k in range(count)]


def _pool(index: np.ndarray, factor: int) -> np.ndarray:
    """Max-pool a palette-index raster so small hot spots survive thinning."""
    rows = -(-index.shape[0] // factor) * factor
    cols = -(-index.shape[1] // factor) * factor
    padded = np.zeros((rows, cols), index.dtype)
    padded[: index.shape[0], : index.shape[1]] = index
    return padded.reshape(rows // factor, factor, cols // factor, factor).max(axis=(1, 3))


def overlay_png(
    grid: Grid, index: np.ndarray, palette: np.ndarray
) -> tuple[bytes, tuple[float, float, float, float]]:
    """Warp a palette-index raster to Web Mercator and encode it as a PNG.

    Parameters
    ----------
    grid : Grid
        The grid ``index`` lies on.
    index : numpy.ndarray
        ``(n_rows, n_cols)`` uint8; 0 is transparent.
    palette : numpy.ndarray
        ``(n, 3)`` uint8 colours of indices 1..n.

    Returns
    -------
    png : bytes
    bounds : (south, west, north, east)
        In degrees (EPSG:4326), as Leaflet's ``imageOverlay`` takes them.
    """
    (png,), bounds = overlay_pngs(grid, [(index, palette)])
    return png, bounds


def overlay_pngs(
    grid: Grid, layers: Sequence[tuple[np.ndarray, np.ndarray]]
) -> tuple[list[bytes], tuple[float, float, float, float]]:
    """:func:`overlay_png` of several ``(index, palette)`` rasters of one grid at once.

    The warp is the same for every layer, so it is computed once: unless the rasters are
    thinned, the grid's cell numbers (1..n) are warped with nearest-neighbour resampling
    and each layer is read through them, which gives each layer's own warp exactly (a
    destination pixel takes the value of the source cell its centre falls in, 0 if none).
    """
    from affine import Affine

    crs = grid.crs
    factor = max(1, math.ceil(max(grid.shape) * 1.7 / MAX_OVERLAY_PIXELS))
    height, width = -(-grid.n_rows // factor), -(-grid.n_cols // factor)
    size = grid.cell_size * factor
    src_transform = Affine(size, 0.0, grid.x_min, 0.0, -size, grid.y_max)
    left, top = grid.x_min, grid.y_max
    right, bottom = left + width * size, top - height * size
    transform, dst_width, dst_height = mercator_transform(
        crs, width, height, (left, bottom, right, top)
    )

    def warp(source: np.ndarray) -> np.ndarray:
        warped = np.zeros((dst_height, dst_width), source.dtype)
        # GDAL splits a warp into chunks above a memory limit (64 MB); cell numbers take 4
        # bytes a pixel, so 4 times the limit keeps them in one chunk wherever one byte
        # indices were (the approximate transform is interpolated per chunk)
        limit = 64 * source.dtype.itemsize
        _warp_nearest(source, warped, src_transform, crs, transform, limit)
        return warped

    if factor > 1:
        warped = [warp(_pool(index, factor)) for index, _ in layers]
    else:
        cells = np.arange(1, grid.n_rows * grid.n_cols + 1, dtype=np.uint32)
        where = warp(cells.reshape(grid.shape))
        warped = []
        for index, _ in layers:
            lookup = np.zeros(grid.n_rows * grid.n_cols + 1, np.uint8)
            lookup[1:] = index.ravel()
            warped.append(lookup[where])
    pngs = [_png(values, palette) for values, (_, palette) in zip(warped, layers, strict=True)]
    return pngs, _degrees(transform, dst_width, dst_height)


def mercator_transform(
    crs: Any, width: int, height: int, bounds: tuple[float, float, float, float]
) -> tuple[Any, int, int]:
    """The Web Mercator grid a ``width x height`` raster over ``bounds`` warps onto.

    GDAL's suggested warp output (what ``rasterio.warp.calculate_default_transform``
    returns): the extent of the raster's edges in EPSG:3857, in square pixels as many
    along the raster's diagonal (corner to corner) as the source has. Computed here
    because rasterio builds its answer with the ``*`` operator the ``affine`` package
    now deprecates (a PendingDeprecationWarning on every map).
    """
    from affine import Affine

    from rtm.io.crs import transformer

    left, bottom, right, top = bounds
    to_mercator = transformer(crs, "EPSG:3857")
    steps = 21
    xs, ys = np.linspace(left, right, steps), np.linspace(bottom, top, steps)
    edge_x = np.concatenate([xs, xs, np.full(steps, left), np.full(steps, right)])
    edge_y = np.concatenate([np.full(steps, bottom), np.full(steps, top), ys, ys])
    mx, my = to_mercator.transform(edge_x, edge_y)
    min_x, max_x, min_y, max_y = np.min(mx), np.max(mx), np.min(my), np.max(my)
    (x0, x1), (y0, y1) = to_mercator.transform([left, right], [top, bottom])
    pixel = math.hypot(x1 - x0, y1 - y0) / math.hypot(width, height)  # corner to corner
    columns = max(1, int((max_x - min_x) / pixel + 0.5))
    rows = max(1, int((max_y - min_y) / pixel + 0.5))
    return Affine(pixel, 0.0, float(min_x), 0.0, -pixel, float(max_y)), columns, rows


def _warp_nearest(
    source: np.ndarray,
    out: np.ndarray,
    src_transform: Any,
    crs: Any,
    transform: Any,
    memory_limit: int,
) -> None:
    from rasterio.warp import Resampling, reproject

    reproject(
        source,
        out,
        src_transform=src_transform,
        src_crs=crs,
        dst_transform=transform,
        dst_crs="EPSG:3857",
        resampling=Resampling.nearest,
        src_nodata=0,
        dst_nodata=0,
        warp_mem_limit=memory_limit,
    )


def _png(warped: np.ndarray, palette: np.ndarray) -> bytes:
    from PIL import Image

    image = Image.fromarray(warped, mode="P")
    full = np.zeros((256, 3), np.uint8)
    full[1 : 1 + len(palette)] = palette
    image.putpalette(full.ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0, optimize=False, compress_level=6)
    return buffer.getvalue()


def _degrees(transform: Any, width: int, height: int) -> tuple[float, float, float, float]:
    from rtm.io.crs import transformer

    to_degrees = transformer("EPSG:3857", "EPSG:4326")
    west, north = to_degrees.transform(transform.c, transform.f)
    east, south = to_degrees.transform(
        transform.c + transform.a * width, transform.f + transform.e * height
    )
    return south, west, north, east


def data_uri(png: bytes) -> str:
    """A ``data:`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
