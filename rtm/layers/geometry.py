"""Feature geometry as the layer kernels take it: segments, polygon parts, weighted points.

Shared by every operationalization (and by the street network) so that none of them
reaches into another's private helpers.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely

from rtm.grid import Grid

__all__ = [
    "as_geometries",
    "polygon_parts",
    "rasterized_polygons",
    "segments",
    "weighted_points",
    "within_reach",
]


def as_geometries(features: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray) -> np.ndarray:
    """The features as a numpy array of shapely geometries."""
    if isinstance(features, gpd.GeoDataFrame | gpd.GeoSeries):
        return np.asarray(features.geometry.values)
    return np.asarray(features)


def segments(geometries: np.ndarray) -> tuple[np.ndarray, ...]:
    """Endpoints of every segment of lines and polygon rings; points as zero-length segments."""
    parts = shapely.get_parts(geometries)
    kind = shapely.get_type_id(parts)
    points = parts[kind == 0]
    px, py = shapely.get_x(points), shapely.get_y(points)
    lines = parts[(kind == 1) | (kind == 2)]
    polygons = parts[kind == 3]
    if polygons.size:
        rings = shapely.get_parts(shapely.boundary(polygons))
        lines = np.concatenate([lines, rings])
    ax, ay, bx, by = [px], [py], [px], [py]
    if lines.size:
        coords, index = shapely.get_coordinates(lines, return_index=True)
        same = index[1:] == index[:-1]
        ax.append(coords[:-1, 0][same])
        ay.append(coords[:-1, 1][same])
        bx.append(coords[1:, 0][same])
        by.append(coords[1:, 1][same])
        single = np.bincount(index, minlength=lines.size) == 1  # degenerate one-point lines
        if single.any():
            lone = coords[np.isin(index, np.flatnonzero(single))]
            for target, values in (
                (ax, lone[:, 0]),
                (ay, lone[:, 1]),
                (bx, lone[:, 0]),
                (by, lone[:, 1]),
            ):
                target.append(values)
    return tuple(
        np.ascontiguousarray(np.concatenate(v), dtype=np.float64) for v in (ax, ay, bx, by)
    )


def polygon_parts(geometries: np.ndarray) -> np.ndarray:
    """The polygons among the features' parts (multi-polygons split)."""
    parts = shapely.get_parts(geometries)
    return parts[shapely.get_type_id(parts) == 3]


def weighted_points(
    geometries: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points standing for the features in a density.

    Points weigh 1; lines and polygons are sampled every ``spacing`` and weigh the length
    or area each sample stands for.
    """
    parts = shapely.get_parts(geometries)
    kind = shapely.get_type_id(parts)
    xs = [shapely.get_x(parts[kind == 0])]
    ys = [shapely.get_y(parts[kind == 0])]
    ws = [np.ones(int((kind == 0).sum()))]
    lines = parts[(kind == 1) | (kind == 2)]
    if lines.size:
        dense = shapely.segmentize(lines, spacing)
        coords, index = shapely.get_coordinates(dense, return_index=True)
        same = index[1:] == index[:-1]
        a, b = coords[:-1][same], coords[1:][same]
        xs.append((a[:, 0] + b[:, 0]) / 2)
        ys.append((a[:, 1] + b[:, 1]) / 2)
        ws.append(np.hypot(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]))
    for polygon in parts[kind == 3]:
        minx, miny, maxx, maxy = polygon.bounds
        gx = np.arange(minx + spacing / 2, maxx, spacing)
        gy = np.arange(miny + spacing / 2, maxy, spacing)
        mx, my = np.meshgrid(gx, gy)
        inside = shapely.contains_xy(polygon, mx.ravel(), my.ravel())
        if inside.any():
            xs.append(mx.ravel()[inside])
            ys.append(my.ravel()[inside])
            ws.append(np.full(int(inside.sum()), polygon.area / inside.sum()))
        else:  # smaller than the sampling step
            point = polygon.representative_point()
            xs.append(np.array([point.x]))
            ys.append(np.array([point.y]))
            ws.append(np.array([polygon.area]))
    return tuple(np.ascontiguousarray(np.concatenate(v), dtype=np.float64) for v in (xs, ys, ws))  # type: ignore[return-value]


def within_reach(grid: Grid, geometries: np.ndarray, reach: float) -> np.ndarray:
    """The features within ``reach`` of the grid's bounds (the others touch no cell)."""
    minx, miny, maxx, maxy = grid.bounds
    window = shapely.box(minx - reach, miny - reach, maxx + reach, maxy + reach)
    return geometries[shapely.intersects(window, geometries)]


def rasterized_polygons(
    grid: Grid, polygons: Sequence[object] | np.ndarray, rows: tuple[int, int] | None = None
) -> np.ndarray:
    """``(rows, n_cols)`` bool: cells whose centre lies inside a polygon (rasterio's rule)."""
    from affine import Affine
    from rasterio import features as rio_features

    row0, row1 = rows if rows is not None else (0, grid.n_rows)
    return rio_features.rasterize(
        [(p, 1) for p in polygons],
        out_shape=(row1 - row0, grid.n_cols),
        transform=grid.transform @ Affine.translation(0, row0),
        fill=0,
        dtype="uint8",
    ).astype(bool)
