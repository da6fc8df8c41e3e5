"""A synthetic city with a planted risk terrain, for the demo, tests and benchmarks.

Everything is drawn from one seeded generator, so the same seed gives the same city.
Features follow simple but realistic patterns (bars and ATMs cluster around town
centres, bus stops line the main roads, parks are polygons, schools are spread out),
and crimes are drawn cell by cell from a negative binomial whose log-mean is a linear
function of planted candidate variables, computed with the same layer definitions the
engine uses. The planted truth is returned (and written next to the data), so tests can
check that the engine recovers it.

The data is SYNTHETIC: no real place, feature or crime is represented.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from rtm.grid import Grid
from rtm.layers import Candidate, binarize_density, kernel_density, nearest_distance

__all__ = ["PlantedEffect", "SyntheticCity", "add_near_repeats", "generate_city", "write_city"]

#: A projected CRS for the synthetic city (UTM 30N); the coordinates are made up.
CITY_CRS = "EPSG:32630"


@dataclass(frozen=True)
class PlantedEffect:
    """One planted candidate variable and its true coefficient."""

    factor: str
    operationalization: str
    spatial_influence: float
    coefficient: float
    protective: bool = False

    @property
    def candidate(self) -> Candidate:
        """The candidate this effect acts through."""
        return Candidate(
            self.factor,
            self.operationalization,
            self.spatial_influence,
            self.protective,
        )


@dataclass(frozen=True, eq=False)
class SyntheticCity:
    """A generated city: area, factors, crimes and the planted truth."""

    area: gpd.GeoDataFrame = field(repr=False)
    factors: dict[str, gpd.GeoDataFrame] = field(repr=False)
    crimes: pd.DataFrame = field(repr=False)
    truth: dict[str, object]
    grid: Grid = field(repr=False)


def _city_outline(
    rng: np.random.Generator, radius: float, centre: tuple[float, float]
) -> shapely.Polygon:
    theta = np.linspace(0, 2 * math.pi, 181)[:-1]
    phase = rng.uniform(0, 2 * math.pi, size=3)
    r = radius * (
        1
        + 0.14 * np.sin(3 * theta + phase[0])
        + 0.08 * np.cos(5 * theta + phase[1])
        + 0.05 * np.sin(7 * theta + phase[2])
    )
    return shapely.Polygon(
        np.column_stack([centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta)])
    )


def _clustered(
    rng: np.random.Generator, centres: np.ndarray, n: int, spread: float, weights: np.ndarray
) -> np.ndarray:
    which = rng.choice(len(centres), size=n, p=weights / weights.sum())
    return centres[which] + rng.normal(scale=spread, size=(n, 2))


def _uniform_in(rng: np.random.Generator, polygon: shapely.Geometry, n: int) -> np.ndarray:
    minx, miny, maxx, maxy = polygon.bounds
    points = np.empty((0, 2))
    while len(points) < n:
        trial = rng.uniform((minx, miny), (maxx, maxy), size=(2 * n, 2))
        inside = shapely.contains_xy(polygon, trial[:, 0], trial[:, 1])
        points = np.vstack([points, trial[inside]])
    return points[:n]


def _roads(
    rng: np.random.Generator, centre: np.ndarray, radius: float, n_roads: int
) -> list[shapely.LineString]:
    roads = []
    for k in range(n_roads):
        angle = math.pi * k / n_roads + rng.uniform(-0.2, 0.2)
        offset = rng.uniform(-0.35, 0.35) * radius
        direction = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        t = np.linspace(-1.3 * radius, 1.3 * radius, 27)
        wiggle = np.cumsum(rng.normal(scale=40.0, size=t.size))
        xy = centre + np.outer(t, direction) + np.outer(offset + wiggle, normal)
        roads.append(shapely.LineString(xy))
    return roads


DEFAULT_TRUTH: dict[str, tuple[PlantedEffect, ...]] = {
    "robbery": (
        PlantedEffect("bars", "proximity", 300.0, 0.9),
        PlantedEffect("bus_stops", "density", 150.0, 0.7),
        PlantedEffect("main_roads", "proximity", 150.0, 0.5),
        PlantedEffect("parks", "proximity", 150.0, 0.7, protective=True),
    ),
    "burglary": (
        PlantedEffect("schools", "proximity", 450.0, 0.6),
        PlantedEffect("main_roads", "proximity", 300.0, 0.5),
    ),
}


def generate_city(
    *,
    seed: int = 2024,
    radius: float = 3000.0,
    block_length: float = 150.0,
    cell_size: float | None = None,
    events: dict[str, int] | None = None,
    truth: dict[str, tuple[PlantedEffect, ...]] | None = None,
    dispersion: float = 0.5,
) -> SyntheticCity:
    """Generate a synthetic city.

    Parameters
    ----------
    seed : int
        Seed of the only random generator used.
    radius : float
        Mean radius of the city, in metres.
    block_length : float
        The city's block length; the planted spatial influences are multiples of it
        in :data:`DEFAULT_TRUTH` (150 m blocks).
    cell_size : float, optional
        Grid cell size for drawing crimes; default half the block length.
    events : dict, optional
        Expected number of crimes per type (default robbery 1800, burglary 1200).
    truth : dict, optional
        Planted effects per crime type (default :data:`DEFAULT_TRUTH`).
    dispersion : float
        Extra-Poisson variation: crimes per cell are negative binomial with
        variance mu + dispersion * mu^2.

    Returns
    -------
    SyntheticCity
    """
    rng = np.random.default_rng(seed)
    truth = truth or DEFAULT_TRUTH
    events = events or {"robbery": 1800, "burglary": 1200}
    centre = np.array([500_000.0, 5_700_000.0])
    outline = _city_outline(rng, radius, (float(centre[0]), float(centre[1])))
    area = gpd.GeoDataFrame({"name": ["Synthetic City"]}, geometry=[outline], crs=CITY_CRS)
    factors = _features(rng, outline, centre, radius)
    size = cell_size or block_length / 2.0
    grid = Grid.from_area(area, size)
    crimes, truth_out = _crimes(rng, grid, outline, factors, truth, events, dispersion)
    meta = {
        "synthetic": True,
        "seed": seed,
        "crs": CITY_CRS,
        "block_length": block_length,
        "cell_size": size,
        "max_blocks": 3,
        "crime_types": truth_out,
    }
    return SyntheticCity(area=area, factors=factors, crimes=crimes, truth=meta, grid=grid)


def _features(
    rng: np.random.Generator, outline: shapely.Geometry, centre: np.ndarray, radius: float
) -> dict[str, gpd.GeoDataFrame]:
    """The city's risk factors: clustered round town centres, along main roads, or scattered."""
    scale = radius / 3000.0
    world = shapely.buffer(outline, 600.0)
    # town centres: one main, several local
    n_centres = max(4, int(round(5 * scale * scale)))
    centres = _uniform_in(rng, shapely.buffer(outline, -radius * 0.15), n_centres)
    weights = np.concatenate([[3.0], rng.uniform(0.6, 1.4, n_centres - 1)])
    roads = _roads(rng, centre, radius, max(3, int(round(4 * scale))))

    def points(xy: np.ndarray) -> gpd.GeoDataFrame:
        xy = np.round(xy, 2)
        keep = shapely.contains_xy(world, xy[:, 0], xy[:, 1])
        xy = xy[keep]
        return gpd.GeoDataFrame(
            {"id": np.arange(1, len(xy) + 1, dtype=np.int32)},
            geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
            crs=CITY_CRS,
        )

    def count(base: float) -> int:
        return max(3, int(round(base * scale * scale)))

    factors: dict[str, gpd.GeoDataFrame] = {}
    factors["bars"] = points(_clustered(rng, centres, count(140), 280.0 * scale, weights))
    factors["atms"] = points(_clustered(rng, centres, count(90), 450.0 * scale, weights))
    stops = []
    for road in roads:
        spacing = rng.uniform(230, 300)
        distances = np.arange(rng.uniform(0, spacing), road.length, spacing)
        along = shapely.line_interpolate_point(road, distances)
        stops.append(
            shapely.get_coordinates(along) + rng.normal(scale=15.0, size=(len(distances), 2))
        )
    stops.append(_uniform_in(rng, world, count(60)))
    factors["bus_stops"] = points(np.vstack(stops))
    factors["schools"] = points(_uniform_in(rng, world, count(28)))
    factors["pharmacies"] = points(_clustered(rng, centres, count(45), 900.0 * scale, weights))
    factors["churches"] = points(_uniform_in(rng, world, count(30)))
    park_centres = _uniform_in(rng, outline, count(9))
    parks = [
        shapely.affinity.rotate(
            shapely.affinity.scale(shapely.Point(p).buffer(1.0, 16), *rng.uniform(90, 260, 2)),
            rng.uniform(0, 180),
        )
        for p in park_centres
    ]
    parks = [shapely.set_precision(p, 0.01) for p in parks]
    factors["parks"] = gpd.GeoDataFrame(
        {"id": np.arange(1, len(parks) + 1, dtype=np.int32)}, geometry=parks, crs=CITY_CRS
    )
    factors["main_roads"] = gpd.GeoDataFrame(
        {"id": np.arange(1, len(roads) + 1, dtype=np.int32)},
        geometry=[shapely.set_precision(r, 0.01) for r in roads],
        crs=CITY_CRS,
    )
    return factors


def _crimes(
    rng: np.random.Generator,
    grid: Grid,
    outline: shapely.Geometry,
    factors: dict[str, gpd.GeoDataFrame],
    truth: dict[str, tuple[PlantedEffect, ...]],
    events: dict[str, int],
    dispersion: float,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Crimes drawn from the planted model, and what was planted per crime type."""
    rows = []
    truth_out: dict[str, object] = {}
    for crime_type, effects in truth.items():
        linear = np.zeros(grid.n_active)
        for effect in effects:
            x = _candidate_values(grid, factors[effect.factor], effect)
            linear += effect.coefficient * x
        mean_events = events.get(crime_type, 1000)
        intercept = math.log(mean_events / np.exp(linear).sum())
        mu = np.exp(intercept + linear)
        # negative binomial as a gamma-Poisson mixture: var = mu + dispersion mu^2
        gamma = rng.gamma(shape=1.0 / dispersion, scale=dispersion, size=mu.size)
        counts = rng.poisson(mu * gamma)
        cell_boxes = grid.cell_polygons()
        for cell in np.flatnonzero(counts):
            inside = shapely.intersection(cell_boxes[cell], outline)
            xy = _uniform_in(rng, inside, int(counts[cell]))
            for x, y in xy:
                rows.append((crime_type, float(x), float(y)))
        truth_out[crime_type] = {
            "intercept": intercept,
            "dispersion_nb2": dispersion,
            "expected_events": mean_events,
            "events": int(counts.sum()),
            "effects": [asdict(e) for e in effects],
        }
    crimes = pd.DataFrame(rows, columns=["type", "x", "y"])
    order = rng.permutation(len(crimes))
    crimes = crimes.iloc[order].reset_index(drop=True)
    crimes.insert(0, "id", np.arange(1, len(crimes) + 1))
    crimes["month"] = rng.integers(1, 13, size=len(crimes))
    crimes["date"] = [
        f"2024-{m:02d}-{d:02d}"
        for m, d in zip(crimes["month"], rng.integers(1, 29, len(crimes)), strict=True)
    ]
    crimes["x"] = crimes["x"].round(2)
    crimes["y"] = crimes["y"].round(2)
    return crimes, truth_out


def _candidate_values(grid: Grid, features: gpd.GeoDataFrame, effect: PlantedEffect) -> np.ndarray:
    if effect.operationalization == "proximity":
        x = (
            nearest_distance(grid, features, effect.spatial_influence) <= effect.spatial_influence
        ).astype(float)
    else:
        density = kernel_density(grid, features, [effect.spatial_influence])[0]
        x = binarize_density(density)[0].astype(float)
    return -x if effect.protective else x


def add_near_repeats(
    crimes: pd.DataFrame,
    area: shapely.Geometry,
    *,
    seed: int,
    triggered: float = 0.5,
    mean_delay_days: float = 10.0,
    sigma: float = 75.0,
    year: int = 2024,
) -> pd.DataFrame:
    """Add planted near repeats: a self-exciting (Hawkes) cascade on top of ``crimes``.

    Every event (the given ones, then each generation of triggered ones) triggers a
    Poisson(``triggered``) number of others, after exponential delays (mean
    ``mean_delay_days``) and at Gaussian offsets (SD ``sigma`` per axis); offspring
    outside ``area`` or after the year are dropped. ``crimes`` needs ``x``, ``y`` and a
    ``date`` (``YYYY-MM-DD``); the result has the same columns plus ``generation``
    (0 for the given events), with ``month`` and ``date`` of the offspring.
    """
    if not 0 <= triggered < 1:
        raise ValueError("triggered must be in [0, 1) for the cascade to end")
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(f"{year}-01-01")
    whole = (pd.to_datetime(crimes["date"]) - start).dt.days.to_numpy(dtype=float)
    day = np.asarray(whole, dtype=np.float64) + rng.random(whole.size)
    parents = np.column_stack([crimes["x"].to_numpy(float), crimes["y"].to_numpy(float), day])
    rows = [crimes.assign(generation=0)]
    generation = 0
    template = crimes.iloc[:1]
    while len(parents):
        generation += 1
        n = rng.poisson(triggered, len(parents))
        source = np.repeat(parents, n, axis=0)
        child = source + np.column_stack(
            [
                rng.normal(0, sigma, (len(source), 2)),
                rng.exponential(mean_delay_days, len(source)),
            ]
        )
        keep = (child[:, 2] < 365.0) & shapely.contains_xy(area, child[:, 0], child[:, 1])
        child = child[keep]
        if len(child):
            dates = start + pd.to_timedelta(np.floor(child[:, 2]), unit="D")
            frame = pd.DataFrame({c: np.repeat(template[c].to_numpy(), len(child)) for c in crimes})
            frame["x"], frame["y"] = np.round(child[:, 0], 2), np.round(child[:, 1], 2)
            frame["date"] = dates.strftime("%Y-%m-%d")
            if "month" in frame:
                frame["month"] = dates.month.to_numpy()
            rows.append(frame.assign(generation=generation))
        parents = child
    out = pd.concat(rows, ignore_index=True)
    if "id" in out:
        out["id"] = np.arange(1, len(out) + 1)
    return out


def write_city(city: SyntheticCity, folder: str | Path) -> Path:
    """Write a city as an analyst would receive it: shapefiles, a GeoPackage area, a CSV."""
    folder = Path(folder)
    (folder / "factors").mkdir(parents=True, exist_ok=True)
    city.area.to_file(folder / "area.gpkg", layer="area", driver="GPKG", engine="pyogrio")
    for name, features in city.factors.items():
        features.to_file(folder / "factors" / f"{name}.shp", engine="pyogrio")
    city.crimes.to_csv(folder / "crimes.csv", index=False)
    (folder / "truth.json").write_text(json.dumps(city.truth, indent=2) + "\n")
    return folder
