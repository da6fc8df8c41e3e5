"""The analyst's inputs as they come: data in memory, one polygon of a boundary file,
European Excel CSVs, every readable factor file; and the notebook views of a result
(explore, places, validate) matching what the run folder holds."""

from __future__ import annotations

import csv
import json
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from tests.conftest import SAMPLE, fresh_python, run_rtm

ROBBERY = {
    "area": str(SAMPLE / "area.gpkg"),
    "factors_dir": str(SAMPLE / "factors"),
    "protective": ["parks"],
    "where": ["type=robbery"],
    "block_length": 150,
    "challengers": False,
}


def _map_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="rtm-data">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    """One analysis of the sample city's robberies through the Python API, with its folder."""
    from rtm.api import analyze

    out = tmp_path_factory.mktemp("api") / "run"
    test = SAMPLE / "crimes.csv"
    result = analyze(
        events=str(SAMPLE / "crimes.csv"),
        test_events=str(test),
        test_where=["type=robbery"],
        out=out,
        **ROBBERY,
    )
    return result, out


# --------------------------------------------------------------------------- item 5


def test_explore_shows_what_the_run_folders_map_shows(fitted) -> None:
    result, out = fitted
    in_folder = _map_data((out / "map.html").read_text(encoding="utf-8"))
    explored = _map_data(result.explore().html)
    assert explored == in_folder
    # and that is the whole study, not the bare fit
    assert explored["title"] == "Risk terrain: robberies"
    assert explored["lines"][0].startswith(f"{len(result.factors)} of 8 risk factors selected")
    assert explored["area"] is not None
    assert len(explored["factors"]) == 8
    priority = gpd.read_file(out / "places.gpkg", layer="priority_places")
    assert len(priority) > 0
    assert explored["priority"]["label"].endswith(f"({len(priority):,})")


def test_places_table_is_the_places_of_the_run(fitted) -> None:
    result, out = fitted
    table = result.places()
    assert isinstance(table, pd.DataFrame)
    highest = table[table["kind"] == "highest-risk"]
    priority = table[table["kind"] == "priority"]
    on_disk = gpd.read_file(out / "places.gpkg", layer="places")
    assert len(priority) == len(gpd.read_file(out / "places.gpkg", layer="priority_places"))
    assert len(highest) == len(on_disk) > 0
    np.testing.assert_allclose(highest["mean_rrs"].to_numpy(), on_disk["mean_rrs"].to_numpy())


def test_validate_scores_later_events_as_analyze_does(fitted) -> None:
    result, out = fitted
    frame = pd.read_csv(SAMPLE / "crimes.csv")  # in memory: a DataFrame with x/y columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the test events are the training events)
        validation = result.validate(frame, where=["type=robbery"])
    on_disk = json.loads((out / "validation.json").read_text())
    assert validation["auc"] == pytest.approx(on_disk["auc"], abs=1e-12)
    assert validation["capture"] == pytest.approx(on_disk["capture"])


# --------------------------------------------------------------------------- item 4


def test_the_api_takes_data_in_memory(fitted) -> None:
    from rtm.api import analyze

    result, _ = fitted
    area = gpd.read_file(SAMPLE / "area.gpkg")
    events = pd.read_csv(SAMPLE / "crimes.csv")
    points = gpd.GeoDataFrame(
        events, geometry=gpd.points_from_xy(events.x, events.y), crs=area.crs
    ).drop(columns=["x", "y"])
    factors = {p.stem: gpd.read_file(p) for p in sorted((SAMPLE / "factors").glob("*.shp"))}
    options = {**ROBBERY, "area": area}
    del options["factors_dir"]
    for given in (points, events):  # a GeoDataFrame, and a DataFrame of coordinates
        again = analyze(events=given, factors=factors, **options)
        assert [f.candidate for f in again.factors] == [f.candidate for f in result.factors]
        np.testing.assert_allclose(again.relative_risk_score, result.relative_risk_score)
    assert again.study.sources["events"] == "(in memory)"
    assert set(again.study.sources["factors"].values()) == {"(in memory)"}


def test_api_warnings_name_keywords_and_show_no_source_line(tmp_path: Path) -> None:
    """A warning in a notebook reads as Python: ``crs``, not ``--crs``; no rtm source line."""
    stderr = fresh_python(
        "import sys, geopandas as gpd",
        "sys.stderr = sys.stdout",
        "from rtm.api import write_layers",
        f"area = gpd.read_file({str(SAMPLE / 'area.gpkg')!r}).to_crs('EPSG:4326')",
        f"bars = gpd.read_file({str(SAMPLE / 'factors' / 'bars.shp')!r})",
        f"write_layers(area=area, factors={{'bars': bars}}, block_length=150,"
        f" out={str(tmp_path / 'layers.tif')!r})",
    )
    assert "CRS is longitude/latitude" in stderr
    assert "name another with crs" in stderr
    assert "--" not in stderr
    assert "warnings.warn" not in stderr and "stacklevel" not in stderr
    # the command line still says its flags
    gpd.read_file(SAMPLE / "area.gpkg").to_crs("EPSG:4326").to_file(tmp_path / "area.geojson")
    proc = run_rtm(
        "layers", "--area", str(tmp_path / "area.geojson"), "--factor",
        str(SAMPLE / "factors" / "bars.shp"), "--block-length", "150", "--out",
        str(tmp_path / "cli.tif"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "name another with --crs" in proc.stderr


# --------------------------------------------------------------------------- item 1


def _boroughs(tmp_path: Path) -> Path:
    """The sample area cut in two named halves, as a boundary file."""
    area = gpd.read_file(SAMPLE / "area.gpkg")
    geometry = area.geometry.iloc[0]
    minx, miny, maxx, maxy = geometry.bounds
    middle = (minx + maxx) / 2
    west = shapely.intersection(geometry, shapely.box(minx, miny, middle, maxy))
    east = shapely.intersection(geometry, shapely.box(middle, miny, maxx, maxy))
    path = tmp_path / "boroughs.gpkg"
    gpd.GeoDataFrame({"NAME": ["West", "East"]}, geometry=[west, east], crs=area.crs).to_file(path)
    return path


def test_area_where_uses_the_chosen_polygons_and_says_so(tmp_path: Path) -> None:
    from rtm.errors import ParameterError
    from rtm.study import load_study

    boroughs = _boroughs(tmp_path)
    common = {"area": str(boroughs), "factors_dir": str(SAMPLE / "factors"), "block_length": 150}
    whole = load_study(**common, with_events=False)
    west = load_study(**common, area_where=["name=west"], with_events=False)
    middle = gpd.read_file(boroughs).total_bounds.take([0, 2]).mean()
    assert west.area.total_bounds[2] == pytest.approx(middle)
    assert 0.4 < west.grid.n_active / whole.grid.n_active < 0.6
    assert west.sources["area"] == f"{boroughs} (name=west: 1 of 2 polygons)"
    with pytest.raises(ParameterError, match=r"'North' matches no polygon; values are East, West"):
        load_study(**common, area_where=["NAME=North"], with_events=False)
    # the command line says which polygons it used (and, item 6: prints the validation
    # table of every surface validation.json holds, and lists every file it wrote)
    args = _cli_args(tmp_path / "run", "--area-where", "NAME=East", "-v")
    args = [a if a != str(SAMPLE / "area.gpkg") else str(boroughs) for a in args]
    proc = run_rtm(
        *args, "--test-crimes", str(SAMPLE / "crimes.csv"), "--test-where", "type=robbery"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Study area: " in proc.stdout and "NAME=East: 1 of 2 polygons" in proc.stdout
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    assert report["inputs"]["area_file"].endswith("(NAME=East: 1 of 2 polygons)")
    written = sorted(p.name for p in run.iterdir() if not p.name.startswith("."))
    listed = re.search(r"Outputs in .*?/: (.*)$", proc.stdout, re.M)
    assert listed is not None and sorted(listed.group(1).split(", ")) == written
    assert {"validation.json", "capture.png", "features.gpkg"} <= set(written)
    validation = json.loads((run / "validation.json").read_text())
    forecast = ["forecast"] if validation.get("forecast") else []
    surfaces = ["rtm", *forecast, *validation.get("challengers", {}), *validation["baselines"]]
    table = proc.stdout.split("Validation on", 1)[1].splitlines()[1:]
    assert table[0].split() == ["surface", "auc", "cap@5%", "cap@10%", "cap@20%"]
    for line, name in zip(table[1:], surfaces, strict=False):
        assert line.split()[0] == name
    auc = float(table[1].split()[1])
    assert auc == pytest.approx(validation["auc"], abs=5e-4)
    assert re.search(r"validation [\d.]+ s, outputs [\d.]+ s", proc.stderr)


def _cli_args(out: Path, *extra: str) -> list[str]:
    from tests.conftest import sample_analyze_args

    return sample_analyze_args(out, "--no-challengers", *extra)


def test_batch_selects_areas_with_the_same_code(tmp_path: Path) -> None:
    from rtm.batch import load_config
    from rtm.batch.jobs import _areas

    boroughs = _boroughs(tmp_path)
    config = tmp_path / "batch.toml"
    config.write_text(
        f'[analysis]\nevents = "{SAMPLE / "crimes.csv"}"\nblock_length = 150\n'
        f'factors_dir = "{SAMPLE / "factors"}"\n'
        f'[areas]\nfile = "{boroughs}"\nname_column = "NAME"\nnames = ["East"]\n'
    )
    ((name, geometry, _),) = _areas(load_config(config))
    assert name == "East"
    east = gpd.read_file(boroughs).geometry.iloc[1]
    assert shapely.equals(shapely.normalize(geometry), shapely.normalize(east)) or (
        abs(geometry.area - east.area) < 1e-6 * east.area
    )


# --------------------------------------------------------------------------- item 2


def _excel_csv(tmp_path: Path, *, sep: str = ";", encoding: str = "cp1252") -> Path:
    """The sample crimes as European Excel saves them: ';', decimal commas, cp1252 text."""
    frame = pd.read_csv(SAMPLE / "crimes.csv").head(400)
    frame["street"] = ["Rue de l'Église", "Calle Peñas", "Straße"] * 133 + ["Café"]
    path = tmp_path / "crimes_excel.csv"
    frame.to_csv(path, sep=sep, decimal=",", index=False, encoding=encoding)
    return path


def test_european_excel_csv_reads_as_the_original(tmp_path: Path) -> None:
    from rtm.io import CsvOptions, read_events

    crs = gpd.read_file(SAMPLE / "area.gpkg").crs
    original = read_events(SAMPLE / "crimes.csv", crs)
    path = _excel_csv(tmp_path)
    assert ";" in path.read_bytes().decode("cp1252").splitlines()[1]
    events = read_events(path, crs, csv_options=CsvOptions(encoding="cp1252"))
    np.testing.assert_allclose(events.geometry.x, original.geometry.x[:400])
    np.testing.assert_allclose(events.geometry.y, original.geometry.y[:400])
    assert events["street"].iloc[0] == "Rue de l'Église"
    # a tab-separated file is detected too; a separator given wins
    tabbed = _excel_csv(tmp_path / "..", sep="\t", encoding="utf-8")
    frame = read_events(tabbed, crs, csv_options=CsvOptions(decimal=","))
    assert len(frame) == 400


def test_a_file_that_is_not_utf8_fails_with_a_hint(tmp_path: Path) -> None:
    from rtm.errors import InputError
    from rtm.io import read_events

    crs = gpd.read_file(SAMPLE / "area.gpkg").crs
    path = _excel_csv(tmp_path)
    hint = r"text is not UTF-8 \(byte 0x.. at .*try --encoding cp1252"
    with pytest.raises(InputError, match=hint):
        read_events(path, crs)
    args = [a if a != str(SAMPLE / "crimes.csv") else str(path) for a in _cli_args(tmp_path / "r")]
    proc = run_rtm(*args)
    assert proc.returncode == 4 and "try --encoding cp1252" in proc.stderr
    bad = run_rtm(*args, "--csv-sep", "nonsense")
    assert bad.returncode == 2 and "--csv-sep must be one character" in bad.stderr


# --------------------------------------------------------------------------- item 3


def test_factors_dir_reads_every_readable_file_and_names_the_skipped(tmp_path: Path) -> None:
    from rtm.errors import RTMWarning
    from rtm.io import READABLE_SUFFIXES, factor_sources, read_factor

    folder = tmp_path / "factors"
    folder.mkdir()
    bars = gpd.read_file(SAMPLE / "factors" / "bars.shp")
    bars.to_file(folder / "bars.gml", driver="GML")
    bars.to_crs("EPSG:4326").to_file(folder / "pubs.kml", driver="KML")
    with zipfile.ZipFile(folder / "atms.zip", "w") as archive:
        for part in (SAMPLE / "factors").glob("atms.*"):
            archive.write(part, part.name)
    shutil.copy(SAMPLE / "factors" / "parks.shp", folder / "parks.shp")
    for sidecar in ("dbf", "shx", "prj", "cpg"):
        shutil.copy(SAMPLE / "factors" / f"parks.{sidecar}", folder / f"parks.{sidecar}")
    (folder / "notes.xlsx").write_bytes(b"PK")
    (folder / "README.txt").write_text("where these came from")
    for suffix in (".gml", ".kml", ".zip"):
        assert suffix in READABLE_SUFFIXES
    with pytest.warns(
        RTMWarning, match=r"skipped 1 file\(s\) that are not vector layers: notes.xlsx$"
    ):
        pairs = factor_sources((), folder)
    assert [name for name, _ in pairs] == ["atms", "bars", "parks", "pubs"]
    for name, source in pairs:
        assert len(read_factor(source, bars.crs, name=name)) > 0


def test_a_long_stage_is_not_silent(capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from rtm_cli._options import Progress

    progress = Progress(verbose=True)
    with progress.heartbeat(every=0.3):
        progress("validation: scoring")
        time.sleep(1.2)
    err = capsys.readouterr().err
    assert "rtm: validation: scoring" in err
    assert "rtm: still working (after validation: scoring)" in err
    quiet = Progress(quiet=True)
    with quiet.heartbeat(every=0.1):
        time.sleep(0.4)
    assert capsys.readouterr().err == ""


def test_one_naming_rule_for_the_capture_plot() -> None:
    from rtm.export.plots import capture_plot

    assert capture_plot(Path("run/validation.json")) == Path("run/capture.png")
    assert capture_plot(Path("out/h2.json")) == Path("out/h2_capture.png")


# --------------------------------------------------------------------------- item 7


def test_batch_prints_a_line_per_job_and_a_table(tmp_path: Path) -> None:
    from tests.test_batch import _config

    config = _config(
        tmp_path,
        SAMPLE,
        crimes='[[crime_types]]\nname = "robbery"\nwhere = ["type=robbery"]\n'
        '[[crime_types]]\nname = "arson"\nwhere = ["type=arson"]\n',
        extra="challengers = false",
    )
    proc = run_rtm("batch", config, "--out", tmp_path / "out")
    assert proc.returncode == 7, proc.stderr  # (arson: no such events)
    lines = proc.stdout.splitlines()
    assert re.match(
        r"\[[12]/2\] area / robbery / .+: ok in [\d.]+ s \([\d,]+ events",
        "\n".join(ln for ln in lines if "robbery" in ln and ln.startswith("[")),
    )
    assert any(re.match(r"\[[12]/2\] area / arson / .+: failed in", ln) for ln in lines)
    header = next(
        i for i, ln in enumerate(lines) if ln.split()[:4] == ["area", "crime", "period", "status"]
    )
    assert len(lines[header + 1 :]) >= 2 and "ok" in lines[header + 1]
    rows = list(csv.DictReader(open(tmp_path / "out" / "batch.csv")))
    full = json.loads((tmp_path / "out" / "batch.json").read_text())["outcomes"][0]
    assert rows[0]["auc"] == f"{full['auc']:.3f}" and len(rows[0]["auc"]) == 5
    assert rows[0]["duration"] == f"{full['duration']:.1f}"
