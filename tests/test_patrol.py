"""Patrol places, intervention areas, concentration, locations and the task table
(rtm/places/patrol.py, intervention.py, concentration.py, locate.py, tasks.py) and the
patrol-place validation against KDE spots (rtm/validation/patrol.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pytest
import shapely

from rtm.errors import InputError, ParameterError
from rtm.grid import Grid
from rtm.places.concentration import concentration, gini, top_share
from rtm.places.intervention import intervention_areas
from rtm.places.locate import grid_reference, nearest_street_names
from rtm.places.patrol import choose_windows, patrol_places
from rtm.places.surface import FactorLayer
from rtm.places.tasks import read_tasks
from rtm.validation.patrol import score_patrol_places


def _grid(rows: int = 30, cols: int = 40, size: float = 50.0, crs: str = "EPSG:27700") -> Grid:
    area = gpd.GeoDataFrame(
        geometry=[shapely.box(500_000, 180_000, 500_000 + cols * size, 180_000 + rows * size)],
        crs=crs,
    )
    return Grid.from_area(area, size)


def _naive_windows(score, eligible, k):
    """Every k x k window scored by brute force, taken greedily at least k cells apart."""
    rows, cols = score.shape
    found = []
    for r in range(rows - k + 1):
        for c in range(cols - k + 1):
            s = score[r : r + k, c : c + k].sum()
            if eligible[r : r + k, c : c + k].any() and s > 0:
                found.append((-round(s, 9), r, c))
    chosen = []
    for _, r, c in sorted(found):
        if all(max(abs(r - a), abs(c - b)) >= 2 * k for a, b in chosen):
            chosen.append((r, c))
    return chosen


@pytest.mark.parametrize("seed", range(6))
def test_choose_windows_matches_a_brute_force_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    score = rng.gamma(0.3, 1.0, (17, 23)) * (rng.random((17, 23)) < 0.6)
    eligible = rng.random((17, 23)) < 0.1
    for k in (1, 2, 3):
        assert choose_windows(score, eligible, k) == _naive_windows(score, eligible, k)


def _factor(name: str, values: np.ndarray, rrv: float) -> FactorLayer:
    return FactorLayer(name, "proximity", 100.0, rrv, False, values.astype(np.int8))


def test_patrol_places_are_small_apart_ranked_and_located() -> None:
    grid = _grid()
    rng = np.random.default_rng(1)
    expected = rng.gamma(0.5, 0.2, grid.n_active)
    x, y = grid.cell_centres()
    hot = (np.abs(x - 500_900) < 30) & (np.abs(y - 180_700) < 30)  # a planted 2 x 2 hot spot
    expected[hot] += 50.0
    eligible = expected > np.quantile(expected, 0.9)
    near = (np.abs(x - 500_900) < 300).astype(int)
    factors = [
        _factor("bars", near, 2.5),
        _factor("shops", np.ones(grid.n_active), 1.3),  # everywhere: never a reason
        _factor("atms", near, 1.8),
    ]
    streets = gpd.GeoDataFrame(
        {"Road_Name": ["Planted Street", "Far Road"]},
        geometry=[
            shapely.LineString([(500_900, 180_000), (500_900, 181_500)]),
            shapely.LineString([(501_900, 180_000), (501_900, 181_500)]),
        ],
        crs=grid.crs,
    )
    result = patrol_places(
        grid,
        expected,
        eligible,
        size=110.0,  # two cells of 50 m
        counts=rng.poisson(expected),
        factors=factors,
        streets=streets,
    )
    places = result.places
    assert result.window_cells == 2 and len(places) > 5
    first = places[0]
    assert set(np.flatnonzero(hot)) == set(first.cell_positions)
    assert first.grid_ref == "TQ 0090 8070" and first.id == "TQ00908070"
    assert first.street == "Planted Street"
    assert [f.name for f in first.factors] == ["bars", "atms"]
    lon, lat = first.lon_lat
    assert -1.6 < lon < -0.4 and 51.4 < lat < 51.6
    assert [p.expected for p in places] == sorted((p.expected for p in places), reverse=True)
    xs, ys = grid.cell_centres()
    for p in places:
        assert p.across <= 110.0 and p.cells <= 4
        assert eligible[p.cell_positions].any()
    for a in places:
        for b in places:
            if a is b:
                continue
            gap_x = abs(xs[a.cell_positions].mean() - xs[b.cell_positions].mean())
            gap_y = abs(ys[a.cell_positions].mean() - ys[b.cell_positions].mean())
            assert max(gap_x, gap_y) >= 2 * 2 * grid.cell_size - 1e-6  # a spot of gap
    with pytest.raises(ParameterError, match="--patrol-size must be at least one cell"):
        patrol_places(grid, expected, eligible, size=20.0, counts=expected)


def test_grid_reference_outside_british_national_grid_is_x_y() -> None:
    assert grid_reference(np.array([500_853.4]), np.array([5_702_144.6]), "EPSG:32630") == [
        "500853 5702145"
    ]
    with pytest.raises(InputError, match="no street-name column"):
        nearest_street_names(
            np.array([0.0]),
            np.array([0.0]),
            gpd.GeoDataFrame({"kind": ["a"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])]),
        )


def test_concentration_against_independent_formulas() -> None:
    rng = np.random.default_rng(3)
    counts = rng.negative_binomial(0.3, 0.2, 997).astype(float)
    differences = np.abs(counts[:, None] - counts[None, :]).sum()
    assert gini(counts) == pytest.approx(differences / (2 * counts.size**2 * counts.mean()))
    ranked = np.sort(counts)[::-1]
    for share in (0.01, 0.05, 0.10):
        whole = share * counts.size
        n = int(np.floor(whole))
        expected = (ranked[:n].sum() + (whole - n) * ranked[n]) / counts.sum()  # pro rata
        assert top_share(counts, share) == pytest.approx(expected)
    harm = counts * rng.uniform(1, 50, counts.size)
    figures = concentration(counts, harm, places=[(3, np.array([0, 1, 2, 2]))])
    assert figures.top_places[0]["cells"] == 3
    assert figures.top_places[0]["harm_share"] == pytest.approx(harm[:3].sum() / harm.sum())
    assert figures.as_dict()["gini_harm"] == pytest.approx(gini(harm))


def test_intervention_areas_are_top_tier_hot_spots_within_the_cap() -> None:
    grid = _grid()
    x, y = grid.cell_centres()
    top = np.zeros(grid.n_active, bool)
    top[(x < 500_500) & (y < 180_500)] = True  # a top-tier block in the south-west
    rng = np.random.default_rng(4)
    points = np.column_stack([rng.normal(500_300, 60, 80), rng.normal(180_300, 60, 80)])
    points = np.vstack([points, [[501_800, 181_300]] * 30])  # a hot spot outside the top tier
    recent = np.zeros(grid.n_active)
    areas = intervention_areas(
        grid, top, points, recent, distance=100.0, counts=recent, expected=recent, max_share=0.05
    )
    assert areas.areas and sum(a["area_share"] for a in areas.areas) <= 0.05
    for cells in areas.cells:
        assert top[cells].all()
        assert (np.hypot(x[cells] - 500_300, y[cells] - 180_300) < 400).all()
    frame = areas.frame(grid)
    assert len(frame) == len(areas.areas) and frame.crs == grid.crs


def test_task_table_default_override_and_errors(tmp_path: Path) -> None:
    shipped = read_tasks()
    assert "Licensing visit" in shipped.task_for("nightclubs")
    assert "Lighting" in shipped.task_for("ATMs")
    assert "peak hours" in shipped.task_for("bus_stops")
    assert "council" in shipped.task_for("vacant_buildings")
    assert shipped.task_for("lamp_posts") == shipped.default
    mine = tmp_path / "tasks.toml"
    mine.write_text('[default]\ntask = "Ask."\n[[task]]\nmatch = ["lamp"]\ntask = "Fix lamps."\n')
    assert read_tasks(mine).task_for("Lamp_Posts") == "Fix lamps."
    mine.write_text("[[task]]\nmatch = 3\n")
    with pytest.raises(InputError, match="--tasks"):
        read_tasks(mine)


def test_validation_scores_patrol_places_and_kde_spots_with_harm(tmp_path: Path) -> None:
    grid = _grid(20, 20, 50.0)
    x, y = grid.cell_centres()
    rrs = 1.0 + 9.0 * ((np.abs(x - 500_200) < 30) & (np.abs(y - 180_800) < 30))
    kde = 1.0 + 5.0 * ((np.abs(x - 500_700) < 30) & (np.abs(y - 180_200) < 30))
    cells_rtm = np.flatnonzero(rrs > 1)
    cells_kde = np.flatnonzero(kde > 1)
    test_points = [(x[c], y[c], "robbery") for c in cells_rtm] * 3
    test_points += [(x[c], y[c], "drugs") for c in cells_kde] * 5
    frame = gpd.GeoDataFrame(
        {"type": [t for *_, t in test_points]},
        geometry=shapely.points([(a, b) for a, b, _ in test_points]),
        crs=grid.crs,
    )
    counts = grid.count_events(frame, shapely.box(*grid.bounds)).counts.astype(float)
    fitted = SimpleNamespace(grid=grid, rrs=rrs, train_counts=np.zeros(grid.n_active), extra={})
    test = SimpleNamespace(counts=counts, frame=frame)
    table = tmp_path / "harm.csv"
    table.write_text("category,weight\nrobbery,10\ndrugs,1\n")
    scored = score_patrol_places(fitted, test, kde, size=100.0, harm_table=str(table))
    ten = {item["places"]: item for item in scored["top"]}[10]
    assert "rtm" not in ten and "prior_kde" in ten  # one RTM patrol place only: not scored
    one = score_patrol_places(
        fitted, test, kde, size=100.0, harm_table=str(table), top_counts=(1,)
    )["top"][0]
    assert one["rtm"]["events"] == 12 and one["prior_kde"]["events"] == 20
    assert one["rtm"]["hectares"] == pytest.approx(1.0)
    assert one["rtm"]["harm"] == 120 and one["prior_kde"]["harm"] == 20
    assert one["rtm"]["harm_per_ha"] == pytest.approx(120.0)
    assert one["prior_kde"]["event_share"] == pytest.approx(20 / 32)


def test_no_patrol_place_still_gives_the_layer_columns() -> None:
    """A run whose surface has no highest-risk cell (seen on a borough's burglaries): the
    patrol layer and the ACTION gpkg get an empty table with their columns, not a crash."""
    from rtm.places.patrol import PatrolPlaces, patrol_frame

    area = gpd.GeoSeries([shapely.box(0, 0, 500, 500)], crs="EPSG:27700")
    grid = Grid.from_area(area, 100)
    empty = PatrolPlaces((), 150.0, 1, "expected events", "highest-risk cell")
    frame = patrol_frame(grid, empty)
    assert len(frame) == 0
    assert {"id", "rank", "grid_ref", "street", "factor1", "rrv1"} <= set(frame.columns)
