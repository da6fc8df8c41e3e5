"""`rtm layers` end to end, and the foundation's bad-input cases through the real command."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from rtm.errors import InputError
from rtm.study import load_study
from tests.conftest import run_rtm


def _layers_args(sample: Path, out: Path, *extra: str) -> list[str]:
    return [
        "layers",
        "--area",
        str(sample / "area.gpkg"),
        "--factors-dir",
        str(sample / "factors"),
        "--block-length",
        "150",
        "--out",
        str(out),
        *extra,
    ]


def test_layers_geotiff(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "layers.tif"
    result = run_rtm(*_layers_args(sample_dir, out))
    assert result.returncode == 0, result.stderr
    with rasterio.open(out) as src:
        assert src.count == len(src.descriptions) >= 40
        assert "bars:proximity:300" in src.descriptions
        assert src.crs.to_epsg() == 32630
        assert src.res == (75.0, 75.0)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        band = src.read(src.descriptions.index("parks:proximity:150") + 1)
        nodata = src.nodata
    values = set(np.unique(band[band != nodata]).tolist())
    assert values == {0, 1}
    # the same candidate, recomputed through the API, matches the raster
    from rtm.layers import nearest_distance

    study = load_study(
        area=sample_dir / "area.gpkg",
        block_length=150,
        factors=[str(sample_dir / "factors" / "parks.shp")],
    )
    near = nearest_distance(study.grid, study.factors[0].features, 150) <= 150
    np.testing.assert_array_equal(band.ravel()[study.grid.active_index], near.astype(np.int8))


def test_layers_geopackage_and_protective(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cells.gpkg"
    result = run_rtm(
        *_layers_args(sample_dir, out, "--protective", "parks", "--operationalization", "proximity")
    )
    assert result.returncode == 0, result.stderr
    cells = gpd.read_file(out)
    assert "parks:proximity:150" in cells.columns and "bars:density:150" not in cells.columns
    assert set(cells["parks:proximity:150"].unique()) == {0, -1}
    assert cells.geom_type.eq("Polygon").all()


def test_existing_output_needs_overwrite(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "layers.tif"
    out.write_text("previous")
    result = run_rtm(*_layers_args(sample_dir, out))
    assert result.returncode == 5
    assert "already exists (use --overwrite" in result.stderr
    assert out.read_text() == "previous"


def _copy_sample(sample: Path, tmp_path: Path) -> Path:
    target = tmp_path / "city"
    shutil.copytree(sample, target)
    return target


def _no_traceback(result) -> None:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("rtm: error:")]
    assert len(lines) == 1, result.stderr


@pytest.mark.parametrize(
    "case,code,message",
    [
        ("missing area", 4, "study area {city}/nope.gpkg: file not found"),
        ("corrupt factor", 4, "factor 'bars' {city}/factors/bars.shp: cannot be read"),
        ("no crs", 4, "the layer has no CRS"),
        ("lonlat as metres", 4, "look like longitude/latitude degrees"),
        ("area not polygon", 4, "must be polygons, got Point"),
        ("zero cell size", 2, "cell size must be a positive number"),
        ("absurd cell size", 2, "more than 100,000,000"),
        ("csv factor without coordinates", 4, "no coordinate columns found"),
        ("unknown protective", 2, "--protective nope: no such factor"),
        ("bad out suffix", 2, "must end in .tif or .gpkg"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(
    sample_dir: Path, tmp_path: Path, case: str, code: int, message: str
) -> None:
    city = _copy_sample(sample_dir, tmp_path)
    out = tmp_path / "out.tif"
    args = _layers_args(city, out)

    def set_opt(option: str, value: str) -> None:
        args[args.index(option) + 1] = value

    if case == "missing area":
        set_opt("--area", str(city / "nope.gpkg"))
    elif case == "corrupt factor":
        (city / "factors" / "bars.shp").write_bytes(b"\0garbage" * 50)
    elif case == "no crs":
        (city / "factors" / "bars.prj").unlink()
    elif case == "lonlat as metres":
        (city / "factors" / "extra.csv").write_text("x,y\n-0.13,51.5\n-0.12,51.51\n")
    elif case == "area not polygon":
        set_opt("--area", str(city / "factors" / "bars.shp"))
    elif case == "zero cell size":
        args += ["--cell-size", "0"]
    elif case == "absurd cell size":
        args += ["--cell-size", "0.01"]
    elif case == "csv factor without coordinates":
        (city / "factors" / "extra.csv").write_text("a,b\n1,2\n")
    elif case == "unknown protective":
        args += ["--protective", "nope"]
    elif case == "bad out suffix":
        set_opt("--out", str(tmp_path / "out.txt"))
    result = run_rtm(*args)
    assert result.returncode == code, result.stderr
    _no_traceback(result)
    assert message.format(city=city) in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no temporary left behind


def test_empty_factor_is_skipped_with_a_warning(sample_dir: Path, tmp_path: Path) -> None:
    city = _copy_sample(sample_dir, tmp_path)
    empty = gpd.read_file(city / "factors" / "bars.shp").iloc[:0]
    empty.to_file(city / "factors" / "empty.gpkg", layer="empty")
    out = tmp_path / "out.gpkg"
    result = run_rtm(*_layers_args(city, out))
    assert result.returncode == 0, result.stderr
    assert "rtm: warning: factor 'empty' has no features: skipped" in result.stderr
    assert not any(c.startswith("empty:") for c in gpd.read_file(out).columns)


def test_all_events_outside_the_area(sample_dir: Path, tmp_path: Path) -> None:
    events = tmp_path / "far.csv"
    events.write_text("x,y\n100000,100000\n100010,100020\n")
    with pytest.raises(InputError, match="all 2 events lie outside the study area"):
        load_study(
            area=sample_dir / "area.gpkg",
            block_length=150,
            events=events,
            factors_dir=sample_dir / "factors",
        )


def test_invalid_area_geometry_is_repaired_not_fatal(sample_dir: Path, tmp_path: Path) -> None:
    city = _copy_sample(sample_dir, tmp_path)
    area = gpd.read_file(city / "area.gpkg")
    minx, miny, maxx, maxy = area.total_bounds
    bowtie = shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
    gpd.GeoDataFrame(geometry=[bowtie], crs=area.crs).to_file(city / "bowtie.gpkg")
    out = tmp_path / "out.tif"
    args = _layers_args(city, out)
    args[args.index("--area") + 1] = str(city / "bowtie.gpkg")
    result = run_rtm(*args)
    assert result.returncode == 0, result.stderr
    assert "invalid geometries were repaired" in result.stderr


@pytest.mark.london
def test_london_layers(london_dir: Path) -> None:
    from rtm.api import build_study_candidates

    study = load_study(
        area=london_dir / "study_area.shp",
        block_length=200,
        cell_size=100,
        factors_dir=london_dir / "factors",
    )
    assert len(study.factors) == 19
    candidates = build_study_candidates(study, block_length=200)
    assert study.grid.n_active == 16444
    assert len(candidates.candidates) + len(candidates.dropped) == 114
    # proximity is monotone in distance; density layers are the top tail
    for factor in study.factors:
        names = [f"{factor.name}:proximity:{d}" for d in (200, 400, 600)]
        cols = [candidates.column(n) for n in names if n in candidates.names]
        for near, far in zip(cols, cols[1:]):
            assert np.all(near <= far)
