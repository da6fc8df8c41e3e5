"""Write a SYNTHETIC population layer over a study area, to try ``rtm audit --population``.

The polygons and counts are invented: Voronoi cells of random points (about the size of
census output areas), each with about 300 residents split into four made-up groups whose
shares change smoothly across the area (group_a is more common towards the area's centre,
group_b towards its south-east). It is NOT census data; use real output-area counts for a
real audit.

    python docs/examples/synthetic_population.py AREA.shp OUT.gpkg [--units 3000] [--seed 0]
"""

from __future__ import annotations

import argparse

import geopandas as gpd
import numpy as np
import shapely


def synthetic_population(area: gpd.GeoDataFrame, units: int, seed: int) -> gpd.GeoDataFrame:
    """Voronoi units clipped to ``area`` with four invented group counts."""
    rng = np.random.default_rng(seed)
    boundary = shapely.union_all(np.asarray(area.geometry.values))
    minx, miny, maxx, maxy = boundary.bounds
    points: list[shapely.Point] = []
    while len(points) < units:
        x = rng.uniform(minx, maxx, units)
        y = rng.uniform(miny, maxy, units)
        inside = shapely.contains_xy(boundary, x, y)
        points += list(shapely.points(x[inside], y[inside]))
    cells = shapely.voronoi_polygons(shapely.multipoints(points[:units]), extend_to=boundary)
    polygons = [p.intersection(boundary) for p in shapely.get_parts(cells)]
    polygons = [p for p in polygons if not p.is_empty and p.area > 0]
    centre = np.array(boundary.centroid.coords[0])
    xy = np.array([p.centroid.coords[0] for p in polygons])
    scale = max(maxx - minx, maxy - miny) / 2
    distance = np.hypot(*(xy - centre).T) / scale
    south_east = ((xy[:, 0] - minx) / (maxx - minx) + (maxy - xy[:, 1]) / (maxy - miny)) / 2
    logits = np.column_stack(
        [1.0 - 2.0 * distance, -0.5 + 1.5 * south_east, np.zeros(len(xy)), -0.7 + 0 * distance]
    )
    shares = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    residents = rng.poisson(300, len(polygons))
    counts = np.array([rng.multinomial(n, s) for n, s in zip(residents, shares, strict=True)])
    names = ["group_a", "group_b", "group_c", "group_d"]
    data = {name: counts[:, i] for i, name in enumerate(names)}
    return gpd.GeoDataFrame(data, geometry=polygons, crs=area.crs)


def main() -> None:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("area")
    parser.add_argument("out")
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = synthetic_population(gpd.read_file(args.area), args.units, args.seed)
    frame.to_file(args.out)
    print(f"{len(frame)} synthetic units, {int(frame.iloc[:, :4].sum().sum()):,} residents")


if __name__ == "__main__":
    main()
