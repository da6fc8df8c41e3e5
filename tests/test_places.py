"""Tiers, highest-risk places and priority places on small hand-made grids."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from rtm.errors import ParameterError
from rtm.filters import crime_word
from rtm.grid import Grid
from rtm.places import (
    FactorLayer,
    RiskSurface,
    analyze_places,
    assign_tiers,
    select_recent,
)


def _grid(n_rows: int, n_cols: int) -> Grid:
    import pyproj

    wkt = pyproj.CRS("EPSG:27700").to_wkt()
    return Grid(0.0, n_rows * 10.0, 10.0, n_rows, n_cols, wkt, np.ones((n_rows, n_cols), bool))


def _surface(raster: np.ndarray, counts: np.ndarray | None = None) -> RiskSurface:
    grid = _grid(*raster.shape)
    rrs = raster.ravel().astype(float)
    factor = FactorLayer(
        "bars", "proximity", 20.0, float(rrs.max()), False, (rrs > 1).astype(np.int8)
    )
    counts = np.zeros(rrs.size, np.int64) if counts is None else counts.ravel()
    return RiskSurface(grid, rrs, counts, rrs * 0.1, (factor,))


def test_tiers_follow_mean_plus_sd_and_never_split_ties() -> None:
    rrs = np.array([1.0] * 90 + [4.0] * 6 + [20.0] * 4)
    counts = np.array([0] * 90 + [1] * 6 + [5] * 4)
    tiers = assign_tiers(rrs, counts, cell_area=100.0)
    mean, sd = rrs.mean(), rrs.std()
    assert tiers.mean == pytest.approx(mean) and tiers.sd == pytest.approx(sd)
    assert tiers.tiers[0].rrs_min == pytest.approx(mean + 2 * sd)
    # every cell sharing a score is in the same tier
    for value in np.unique(rrs):
        assert np.unique(tiers.cell_rank[rrs == value]).size == 1
    highest = tiers.tiers[0]
    assert highest.cells == 4 and highest.events == 20
    assert highest.area_share == pytest.approx(0.04) and highest.event_share == pytest.approx(
        20 / 26
    )
    assert highest.area == pytest.approx(400.0)
    assert tiers.distinct_scores == 3


def test_a_score_exactly_at_a_cut_goes_to_the_higher_tier() -> None:
    # mean of [0, 2] is 1, SD 1: with cuts (1, 0, -1) the score 2 sits exactly on mean + 1 SD
    tiers = assign_tiers(np.array([0.0, 2.0]), np.zeros(2), 1.0, cuts=(1.0, 0.0, -1.0))
    assert tiers.tiers[0].rrs_min == pytest.approx(2.0)
    assert list(tiers.cell_rank) == [3, 1]


@pytest.mark.parametrize(
    "cuts", [(1.0, 2.0, 3.0), (2.0, 1.0), (2.0, 2.0, 1.0), (2.0, float("nan"), 0.0)]
)
def test_bad_tier_cuts_are_refused(cuts) -> None:
    with pytest.raises(ParameterError, match="--tiers"):
        assign_tiers(np.ones(4), np.zeros(4), 1.0, cuts=cuts)


def test_diagonal_cells_join_with_8_connectivity_only() -> None:
    raster = np.ones((12, 12))
    raster[2, 2] = raster[3, 3] = 50.0  # diagonal neighbours
    raster[9, 9] = 50.0  # isolated
    counts = np.zeros((12, 12), np.int64)
    counts[9, 9] = 7
    eight = analyze_places(_surface(raster, counts), connectivity=8)
    four = analyze_places(_surface(raster, counts), connectivity=4)
    assert sorted(p.cells for p in eight.places) == [1, 2]
    assert sorted(p.cells for p in four.places) == [1, 1, 1]
    # ranked by expected events: the two-cell place first
    assert eight.places[0].cells == 2 and eight.places[0].rank == 1
    assert eight.places[1].events == 7
    assert eight.places[0].max_rrs == 50.0
    factor = eight.places[0].factors[0]
    assert factor.name == "bars" and factor.cell_share == 1.0


def _events(points: list[tuple[float, float]], **columns) -> gpd.GeoDataFrame:
    geometry = shapely.points(np.array(points, dtype=float))
    return gpd.GeoDataFrame(columns, geometry=geometry, crs="EPSG:27700")


def test_priority_places_need_recent_events_nearby() -> None:
    raster = np.ones((12, 12))
    raster[2, 2] = raster[9, 9] = 50.0
    # cell (2, 2) has its centre at (25, 95); cell (9, 9) at (95, 25)
    events = _events(
        [(27, 93), (30, 90), (95, 25)],
        date=["2024-06-20", "2024-06-28", "2024-01-05"],
    )
    analysis = analyze_places(_surface(raster), events, recent_days=30, recent_distance=15)
    assert analysis.recent.resolution == "day" and analysis.recent.events == 2
    assert analysis.recent.start == "2024-05-29" and analysis.recent.end == "2024-06-28"
    assert len(analysis.priority_places) == 1
    place = analysis.priority_places[0]
    assert place.centroid == (25.0, 95.0) and place.recent_events == 2
    report = analysis.report()
    assert report["priority_places"]["places"][0]["recent_events"] == 2
    # with a long window the old event makes the other high-risk cell a priority place too
    longer = analyze_places(_surface(raster), events, recent_days=400, recent_distance=15)
    assert len(longer.priority_places) == 2


def test_recent_window_uses_months_or_says_there_are_no_dates() -> None:
    events = _events([(0, 0)] * 4, month=[1, 4, 5, 6])
    months = select_recent(events, 90)
    assert months.resolution == "month" and months.events == 3 and "3 month" in months.note
    police = select_recent(_events([(0, 0)] * 3, Month=["2022-01", "2022-05", "2022-06"]), 31)
    assert police.resolution == "month" and police.events == 1 and police.end == "2022-06"
    undated = select_recent(_events([(0, 0)] * 3, type=["a", "b", "c"]), 90)
    assert undated.resolution is None and undated.events == 3 and "no date" in undated.note
    with pytest.raises(ParameterError, match="--date-column when"):
        select_recent(events, 90, date_column="when")


def test_crime_word_comes_from_the_type_filter() -> None:
    assert crime_word(["type=robbery", "month=1..6"]) == "robberies"
    assert crime_word(["Crime type=burglary"]) == "burglaries"
    assert crime_word(["type=theft"]) == "thefts"
    assert crime_word(["type=robbery,burglary"]) == "robbery and burglary events"
    assert crime_word(["month=1..6"]) == "events"


def test_place_frame_dissolves_cells() -> None:
    from rtm.places import place_frame

    raster = np.ones((6, 6))
    raster[1:3, 1:4] = 30.0
    analysis = analyze_places(_surface(raster))
    frame = place_frame(_grid(6, 6), analysis.places)
    assert len(frame) == 1 and frame.geometry.iloc[0].area == pytest.approx(6 * 100.0)
    assert frame["cells"].iloc[0] == 6
    assert isinstance(frame, pd.DataFrame)


def test_no_cell_in_the_highest_tier_is_explained() -> None:
    """Half the cells at a high score: mean + 2 SD lies above every score. The analyst is
    told why there are no places, not handed an empty pack."""
    from rtm.places.tiers import assign_tiers

    rrs = np.array([1.0] * 5 + [10.0] * 5)
    tiers = assign_tiers(rrs, np.ones(10), 1.0)
    assert tiers.tiers[0].cells == 0
    note = tiers.empty_note()
    assert note is not None and "no cell reaches the highest tier" in note
    assert "'moderately high'" in note and "--tiers" in note
    assert assign_tiers(np.array([1.0] * 9 + [50.0]), np.ones(10), 1.0).empty_note() is None
