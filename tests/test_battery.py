"""The bad-input battery: every way a user can feed rtm something wrong, in one place.

Each case runs through the real command (``rtm analyze`` and/or ``rtm layers``, in a
subprocess) and, where it applies, through the Python API. A failing case must give one
``rtm: error:`` line naming the offending file/option/value, the documented exit code
(:mod:`rtm.errors`), no traceback, and no partial output: the --out target does not
exist afterwards and no temporary file or folder is left beside it. Cases that are not
errors (a warning and a result) say what the result must be.

The CLI cases run two at a time in a module fixture (each is a real process).

Decisions recorded here:

* a factor identical to another (the same features under two names) is a warning, not
  an error; both stay candidates and stepwise never selects both (collinear columns);
* a constant candidate is dropped and reported; if every candidate is constant: exit 4;
* fewer than :data:`rtm.model.MIN_EVENTS` events, or fewer than
  :data:`rtm.model.MIN_CELLS` active cells (cell size too large): exit 6;
* more than :data:`rtm.grid.MAX_CELLS` grid cells (cell size too small): exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from rtm.api import analyze, write_layers
from rtm.errors import RTMError
from rtm.model import MIN_CELLS, MIN_EVENTS
from tests.conftest import SAMPLE, run_rtm, sample_analyze_args

Spec = dict[str, Any]


def _base_spec(city: Path) -> Spec:
    return {
        "events": city / "crimes.csv",
        "area": city / "area.gpkg",
        "factors_dir": city / "factors",
        "factors": [],
        "protective": ["parks"],
        "block_length": 150.0,
        "where": ["type=robbery"],
    }


# --------------------------------------------------------------------------- case setups
# each takes the case's own copy of the sample city and returns changes to the spec


def _garbage(path: Path) -> None:
    path.write_bytes(b"\0garbage" * 50)


def _points_frame(xy: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in xy], crs="EPSG:32630")


def _area_bounds(city: Path) -> np.ndarray:
    return gpd.read_file(city / "area.gpkg").total_bounds


def _empty_factors(city: Path) -> Spec:
    folder = city / "empty_factors"
    folder.mkdir()
    gpd.read_file(city / "factors" / "bars.shp").iloc[:0].to_file(folder / "nothing.gpkg")
    return {"factors_dir": folder, "protective": []}


def _mixed_events(city: Path) -> Spec:
    minx, miny, maxx, maxy = _area_bounds(city)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    frame = gpd.GeoDataFrame(
        geometry=[shapely.Point(cx, cy), shapely.LineString([(cx, cy), (cx + 50, cy + 50)])],
        crs="EPSG:32630",
    )
    frame.to_file(city / "mixed.geojson")
    return {"events": city / "mixed.geojson", "where": []}


def _few_events(city: Path) -> Spec:
    pd.read_csv(city / "crimes.csv").head(MIN_EVENTS - 4).to_csv(city / "few.csv", index=False)
    return {"events": city / "few.csv", "where": []}


def _whole_area_factor(city: Path) -> Spec:
    """A polygon covering the area: every proximity candidate is 1 everywhere (constant)."""
    minx, miny, maxx, maxy = _area_bounds(city)
    frame = gpd.GeoDataFrame(
        geometry=[shapely.box(minx - 10, miny - 10, maxx + 10, maxy + 10)], crs="EPSG:32630"
    )
    frame.to_file(city / "factors" / "everywhere.gpkg")
    return {}


def _mixed_factor(city: Path) -> Spec:
    """Points, a multi-line and a polygon with a hole in one GeoJSON factor."""
    minx, miny, maxx, maxy = _area_bounds(city)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    shell = shapely.box(cx - 400, cy - 400, cx + 400, cy + 400)
    frame = gpd.GeoDataFrame(
        geometry=[
            shapely.Point(cx + 900, cy),
            shapely.MultiLineString(
                [[(cx, cy + 900), (cx + 300, cy + 900)], [(cx, cy - 900), (cx + 10, cy - 900)]]
            ),
            shapely.Polygon(
                shell.exterior.coords,
                [shapely.box(cx - 50, cy - 50, cx + 50, cy + 50).exterior.coords],
            ),
        ],
        crs="EPSG:32630",
    )
    frame.to_file(city / "factors" / "mixed.geojson")
    return {}


def _bowtie_area(city: Path) -> Spec:
    minx, miny, maxx, maxy = _area_bounds(city)
    bowtie = shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
    gpd.GeoDataFrame(geometry=[bowtie], crs="EPSG:32630").to_file(city / "bowtie.gpkg")
    return {"area": city / "bowtie.gpkg"}


def _lonlat_factor(city: Path) -> Spec:
    (city / "factors" / "extra.csv").write_text("x,y\n-0.13,51.5\n-0.12,51.51\n")
    return {}


def _events_outside(city: Path) -> Spec:
    (city / "far.csv").write_text("x,y\n100000,100000\n100010,100020\n")
    return {"events": city / "far.csv", "where": []}


def _crimes(city: Path) -> pd.DataFrame:
    return pd.read_csv(city / "crimes.csv")


def _decimal_commas(city: Path) -> Spec:
    """European Excel: coordinates written with decimal commas (the file is ;-separated)."""
    frame = _crimes(city)
    for column in ("x", "y"):
        frame[column] = frame[column].map(lambda v: f"{v:.2f}".replace(".", ","))
    frame.to_csv(city / "commas.csv", index=False, sep=",", quoting=1)
    return {"events": city / "commas.csv"}


def _repeated_header(city: Path) -> Spec:
    text = (city / "crimes.csv").read_text().splitlines()
    text[0] = text[0].replace("month", "x")  # two columns called x
    (city / "twice.csv").write_text("\n".join(text) + "\n")
    return {"events": city / "twice.csv"}


def _disagreeing_coordinates(city: Path) -> Spec:
    """lon/lat and x/y that point at different places: which is meant is unknowable."""
    import pyproj

    frame = _crimes(city)
    to_degrees = pyproj.Transformer.from_crs("EPSG:32630", "EPSG:4326", always_xy=True)
    lon, lat = to_degrees.transform(frame["x"].to_numpy() + 5000, frame["y"].to_numpy())
    frame["longitude"], frame["latitude"] = lon, lat
    frame.to_csv(city / "both.csv", index=False)
    return {"events": city / "both.csv"}


def _out_parent_is_file(city: Path) -> Spec:
    (city / "afile").write_text("not a folder")
    return {"out": city / "afile" / "run"}


@dataclass(frozen=True)
class Case:
    """One battery case: how to break the inputs, and what rtm must answer."""

    id: str
    commands: tuple[str, ...]  # "analyze", "layers" (CLI) and "api"
    code: int
    message: str  # a fragment of the one error line; {city} is the case's folder
    setup: Callable[[Path], Spec] = lambda city: {}
    args: tuple[str, ...] = ()  # extra CLI arguments (CLI only)
    out_exists: bool = False  # the output existed before and must be left untouched


CASES = [
    Case(
        "missing area file",
        ("layers", "api"),
        4,
        "study area {city}/nope.gpkg: file not found",
        lambda c: {"area": c / "nope.gpkg"},
    ),
    Case(
        "missing events file",
        ("analyze", "api"),
        4,
        "events {city}/nope.csv: file not found",
        lambda c: {"events": c / "nope.csv"},
    ),
    Case(
        "corrupt factor file",
        ("layers", "api"),
        4,
        "factor 'bars' {city}/factors/bars.shp: cannot be read",
        lambda c: _garbage(c / "factors" / "bars.shp") or {},
    ),
    Case(
        "corrupt events file",
        ("analyze",),
        4,
        "events {city}/bad.gpkg: cannot be read",
        lambda c: _garbage(c / "bad.gpkg") or {"events": c / "bad.gpkg", "where": []},
    ),
    Case(
        "empty events file",
        ("analyze", "api"),
        4,
        "events {city}/empty.csv: the layer has no features",
        lambda c: (
            (c / "empty.csv").write_text("x,y\n") and {"events": c / "empty.csv", "where": []}
        ),
    ),
    Case(
        "every factor layer empty", ("analyze",), 4, "no usable candidate variable", _empty_factors
    ),
    Case(
        "factor without CRS",
        ("layers", "api"),
        4,
        "factor 'bars' {city}/factors/bars.shp: the layer has no CRS",
        lambda c: (c / "factors" / "bars.prj").unlink() or {},
    ),
    Case(
        "wrong CRS: metres declared as lon/lat",
        ("analyze",),
        4,
        "the CRS is longitude/latitude",
        args=("--events-crs", "EPSG:4326"),
    ),
    Case(
        "lon/lat declared as metres",
        ("layers",),
        4,
        "look like longitude/latitude degrees",
        _lonlat_factor,
    ),
    Case(
        "every event outside the area",
        ("analyze", "api"),
        4,
        "all 2 events lie outside the study area",
        _events_outside,
    ),
    Case(
        "mixed geometries as events",
        ("analyze",),
        4,
        "events must be points, got LineString, Point",
        _mixed_events,
    ),
    Case(
        "study area not polygons",
        ("layers",),
        4,
        "must be polygons, got Point",
        lambda c: {"area": c / "factors" / "bars.shp"},
    ),
    Case(
        "CSV factor without coordinates",
        ("layers",),
        4,
        "no coordinate columns found",
        lambda c: (c / "factors" / "extra.csv").write_text("a,b\n1,2\n") and {},
    ),
    Case(
        "duplicate factor names",
        ("analyze", "api"),
        2,
        "repeated: bars",
        lambda c: {
            "factors_dir": None,
            "protective": [],
            "factors": [f"bars={c}/factors/bars.shp", f"bars={c}/factors/schools.shp"],
        },
    ),
    Case(
        "unknown protective factor",
        ("layers",),
        2,
        "--protective nope: no such factor",
        lambda c: {"protective": ["nope"]},
    ),
    Case(
        "bad option value",
        ("analyze",),
        2,
        "alpha must be between 0 and 1, got 2.0",
        args=("--alpha", "2"),
    ),
    Case("unknown --where column", ("analyze", "api"), 2, "nope", lambda c: {"where": ["nope=1"]}),
    Case(
        "bad --bootstrap-scheme",
        ("analyze",),
        2,
        "Invalid value for '--bootstrap-scheme'",
        args=("--bootstrap-scheme", "wild"),
    ),
    Case(
        "zero cell size",
        ("layers",),
        2,
        "--cell-size must be a positive, finite number of metres",
        lambda c: {"cell_size": 0.0},
    ),
    Case(
        "cell size too small (> 10^8 cells)",
        ("layers",),
        2,
        "would need about",
        lambda c: {"cell_size": 0.01},
    ),
    Case(
        "cell size too large (too few cells)",
        ("analyze", "api"),
        6,
        f"rtm needs at least {MIN_CELLS} cells",
        lambda c: {"cell_size": 2000.0},
    ),
    Case(
        "too few events to fit", ("analyze", "api"), 6, f"at least {MIN_EVENTS} events", _few_events
    ),
    Case(
        "bad --out suffix",
        ("layers", "api"),
        2,
        "must end in .tif or .gpkg",
        lambda c: {"out": c / "out.txt"},
    ),
    Case(
        "output exists (not rtm's) without --overwrite",
        ("analyze", "layers", "api"),
        5,
        "rtm never replaces",
        out_exists=True,
    ),
    Case(
        "zero block length",
        ("layers", "api"),
        2,
        "--block-length must be a positive, finite number of metres, got 0",
        lambda c: {"block_length": 0.0},
    ),
    Case(
        "negative block length",
        ("layers",),
        2,
        "--block-length must be a positive, finite number of metres, got -5",
        lambda c: {"block_length": -5.0},
    ),
    Case(
        "block length nan",
        ("layers", "api"),
        2,
        "--block-length must be a positive, finite number of metres, got nan",
        lambda c: {"block_length": float("nan")},
    ),
    Case(
        "block length inf",
        ("layers",),
        2,
        "--block-length must be a positive, finite number of metres, got inf",
        lambda c: {"block_length": float("inf")},
    ),
    Case(
        "block length larger than the area",
        ("layers", "api"),
        2,
        "--block-length 1e+09 m is larger than the study area",
        lambda c: {"block_length": 1e9},
    ),
    Case(
        "negative seed",
        ("analyze",),
        2,
        "--seed must be a whole number 0..4294967295, got -1",
        args=("--seed", "-1"),
    ),
    Case(
        "empty factor name",
        ("layers", "api"),
        2,
        "the name before '=' is empty",
        lambda c: {"factors_dir": None, "protective": [], "factors": [f"={c}/factors/bars.shp"]},
    ),
    Case(
        "reversed --where range",
        ("analyze", "api"),
        2,
        "the range's low end '12' is above its high end '1'",
        lambda c: {"where": ["month=12..1"]},
    ),
    Case(
        "decimal commas in the coordinates",
        ("analyze", "api"),
        4,
        "use decimal commas",
        _decimal_commas,
    ),
    Case(
        "a repeated CSV header",
        ("analyze", "api"),
        4,
        "the header repeats the column name(s) 'x'",
        _repeated_header,
    ),
    Case(
        "lon/lat and x/y that disagree",
        ("analyze", "api"),
        4,
        "two sets of coordinate columns (longitude/latitude and x/y) and they disagree by 5,000 m",
        _disagreeing_coordinates,
    ),
    Case(
        "--recent-days 0",
        ("analyze",),
        2,
        "--recent-days must be more than 0 days, got 0",
        args=("--recent-days", "0"),
    ),
    Case(
        "output folder cannot be created",
        ("analyze", "api"),
        5,
        "cannot create folder",
        _out_parent_is_file,
    ),
]


def _cli_args(command: str, spec: Spec, out: Path, extra: tuple[str, ...]) -> list[str]:
    args = [command]
    if command == "analyze":
        args.append(str(spec["events"]))
        for clause in spec["where"]:
            args += ["--where", clause]
    args += ["--area", str(spec["area"]), "--block-length", str(spec["block_length"])]
    if spec["factors_dir"] is not None:
        args += ["--factors-dir", str(spec["factors_dir"])]
    for factor in spec["factors"]:
        args += ["--factor", factor]
    for name in spec["protective"]:
        args += ["--protective", name]
    if spec.get("cell_size") is not None:
        args += ["--cell-size", str(spec["cell_size"])]
    return [*args, "--out", str(out), *extra]


def _run_api(command: str, spec: Spec, out: Path) -> None:
    kwargs = {k: v for k, v in spec.items() if k not in {"out"}}
    if command == "layers" or str(out).endswith((".tif", ".txt")):
        for key in ("events", "where"):
            kwargs.pop(key)
        write_layers(out=out, **kwargs)
    else:
        analyze(out=out, **kwargs)


@dataclass
class Outcome:
    case: Case
    command: str
    city: Path
    out: Path
    code: int
    stderr: str
    before: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _prepare(case: Case, command: str, root: Path) -> tuple[Spec, Path, Path]:
    folder = root / f"{case.id.replace(' ', '_').replace('/', '_')}-{command}"
    city = folder / "city"
    shutil.copytree(SAMPLE, city)
    spec = _base_spec(city)
    spec.update(case.setup(city))
    suffix = ".tif" if command == "layers" else ""
    out = Path(spec.pop("out", folder / f"out{suffix}"))
    if case.out_exists:
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix:
            out.write_text("previous")
        else:
            out.mkdir()
            (out / "report.json").write_text("previous")
    return spec, city, out


def _snapshot(out: Path) -> bytes | None:
    if out.is_file():
        return out.read_bytes()
    if out.is_dir() and (out / "report.json").exists():
        return (out / "report.json").read_bytes()
    return None


@pytest.fixture(scope="module")
def cli_outcomes(tmp_path_factory) -> dict[tuple[str, str], Outcome]:
    root = tmp_path_factory.mktemp("battery")
    jobs = []
    for case in CASES:
        for command in case.commands:
            if command == "api":
                continue
            spec, city, out = _prepare(case, command, root)
            jobs.append((case, command, city, out, _cli_args(command, spec, out, case.args)))

    def run(job: tuple) -> Outcome:
        case, command, city, out, args = job
        before = _snapshot(out)
        result = run_rtm(*args)
        outcome = Outcome(case, command, city, out, result.returncode, result.stderr, before)
        outcome.extra["after"] = _snapshot(out)
        return outcome

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, jobs))
    return {(o.case.id, o.command): o for o in outcomes}


def _assert_no_partial_output(
    out: Path, case: Case, before: bytes | None, after: bytes | None
) -> None:
    if case.out_exists:
        assert before is not None and after == before  # the previous output is untouched
    else:
        assert not out.exists(), f"partial output left: {out}"
    if out.parent.is_dir():
        leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
        assert not leftovers, f"temporaries left: {leftovers}"


CLI_PARAMS = [
    pytest.param(case, command, id=f"{case.id} [{command}]")
    for case in CASES
    for command in case.commands
    if command != "api"
]
API_PARAMS = [pytest.param(case, id=case.id) for case in CASES if "api" in case.commands]


@pytest.mark.parametrize("case,command", CLI_PARAMS)
def test_cli_case(cli_outcomes, case: Case, command: str) -> None:
    outcome = cli_outcomes[(case.id, command)]
    assert outcome.code == case.code, outcome.stderr
    assert "Traceback" not in outcome.stderr
    errors = [
        line for line in outcome.stderr.splitlines() if line.startswith(("rtm: error:", "Error:"))
    ]
    assert len(errors) == 1, outcome.stderr
    assert case.message.format(city=outcome.city) in outcome.stderr
    _assert_no_partial_output(outcome.out, case, outcome.before, outcome.extra["after"])


@pytest.mark.parametrize("case", API_PARAMS)
def test_api_case(case: Case, tmp_path: Path) -> None:
    command = (
        "layers"
        if set(case.commands) & {"layers"} and "analyze" not in case.commands
        else "analyze"
    )
    spec, city, out = _prepare(case, command, tmp_path)
    if case.id == "bad --out suffix":
        command = "layers"
    before = _snapshot(out)
    with pytest.raises(RTMError) as caught:
        _run_api(command, spec, out)
    assert caught.value.exit_code == case.code
    assert case.message.format(city=city) in str(caught.value)
    assert "\n" not in str(caught.value).strip()
    _assert_no_partial_output(out, case, before, _snapshot(out))


# --------------------------------------------------------------------------- warnings, not errors


def _city(tmp_path: Path) -> Path:
    city = tmp_path / "city"
    shutil.copytree(SAMPLE, city)
    return city


@pytest.mark.parametrize(
    "setup,warning,check",
    [
        pytest.param(
            lambda c: (
                gpd.read_file(c / "factors" / "bars.shp")
                .iloc[:0]
                .to_file(c / "factors" / "empty.gpkg")
                or {}
            ),
            "factor 'empty' has no features: skipped",
            lambda cols: not any(c.startswith("empty:") for c in cols),
            id="an empty factor layer is skipped",
        ),
        pytest.param(
            _bowtie_area,
            "invalid geometries were repaired",
            lambda cols: len(cols) > 10,
            id="an invalid (self-intersecting) area is repaired",
        ),
        pytest.param(
            _mixed_factor,
            None,
            lambda cols: {"mixed:proximity:150", "mixed:density:450"} <= set(cols),
            id="a factor mixing points, multi-lines and polygons with holes",
        ),
    ],
)
def test_layers_cases_that_are_not_errors(tmp_path: Path, setup, warning, check) -> None:
    city = _city(tmp_path)
    spec = _base_spec(city)
    spec.update(setup(city))
    out = tmp_path / "out.gpkg"
    result = run_rtm(*_cli_args("layers", spec, out, ()))
    assert result.returncode == 0, result.stderr
    if warning:
        assert "rtm: warning: " in result.stderr and warning in result.stderr
    assert check(list(gpd.read_file(out).columns))


def test_constant_candidates_are_dropped_and_reported(tmp_path: Path) -> None:
    from rtm.study import build_study_candidates, load_study

    city = _city(tmp_path)
    _whole_area_factor(city)
    study = load_study(area=city / "area.gpkg", block_length=150, factors_dir=city / "factors")
    candidates = build_study_candidates(study)
    dropped = {d.candidate.name: d.reason for d in candidates.dropped}
    assert dropped["everywhere:proximity:150"] == "constant: every cell is 1"
    assert not any(name.startswith("everywhere:proximity") for name in candidates.names)
    assert len(candidates.names) == len(set(candidates.names)) > 40


def test_identical_factor_warns_and_stepwise_keeps_one(tmp_path: Path) -> None:
    city = _city(tmp_path)
    spec = _base_spec(city)
    spec.update(
        factors_dir=None,
        protective=[],
        factors=[
            f"bars={city}/factors/bars.shp",
            f"pubs={city}/factors/bars.shp",
            f"bus_stops={city}/factors/bus_stops.shp",
            f"main_roads={city}/factors/main_roads.shp",
        ],
    )
    out = tmp_path / "run"
    result = run_rtm(*_cli_args("analyze", spec, out, ("-q",)))
    assert result.returncode == 0, result.stderr
    assert "factor 'pubs' gives the same candidate layers as 'bars'" in result.stderr
    selected = [
        f["name"] for f in json.loads((out / "report.json").read_text())["model"]["factors"]
    ]
    assert len({"bars", "pubs"} & set(selected)) == 1, selected
    assert {"bus_stops", "main_roads"} <= set(selected)


def test_no_significant_factor_exits_3_with_a_report(tmp_path: Path) -> None:
    # events spread uniformly over the area carry no environmental signal
    area = gpd.read_file(SAMPLE / "area.gpkg")
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = area.total_bounds
    xy = rng.uniform((minx, miny), (maxx, maxy), size=(3000, 2))
    inside = area.union_all().contains(gpd.points_from_xy(xy[:, 0], xy[:, 1]))
    pd.DataFrame({"x": xy[inside, 0][:400], "y": xy[inside, 1][:400]}).to_csv(
        tmp_path / "random.csv", index=False
    )
    out = tmp_path / "run"
    result = run_rtm(
        "analyze",
        tmp_path / "random.csv",
        "--area",
        SAMPLE / "area.gpkg",
        "--factors-dir",
        SAMPLE / "factors",
        "--block-length",
        "150",
        "--out",
        out,
    )
    assert result.returncode == 3, result.stderr
    assert "rtm: error: no risk factor is significant" in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["significant"] is False and report["model"]["factors"] == []
    assert report["rrs"]["max"] is None
    assert not (out / "risk.tif").exists()


# --------------------------------------------------------------------------- disk full, Ctrl-C

ENOSPC_SHIM = """
import errno, os
_replace = os.replace
def _full(src, dst, *args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
os.replace = _full
"""


def test_disk_full_leaves_nothing(tmp_path: Path) -> None:
    """Simulated ENOSPC when the finished run folder is moved into place (exit 5)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(textwrap.dedent(ENOSPC_SHIM))
    out = tmp_path / "runs" / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "rtm_cli.main", *sample_analyze_args(out, "-q")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    assert f"rtm: error: --out {out}: cannot be written (No space left on device)" in result.stderr
    assert list((tmp_path / "runs").iterdir()) == []  # neither the run nor its temporary


def test_ctrl_c_during_the_fit(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "rtm_cli.main", *sample_analyze_args(out, "-v")],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines = []
    for line in process.stderr:  # wait until the layers are built: the fit starts next
        lines.append(line)
        if line.startswith("rtm: layers:"):
            break
    time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    code = process.wait(timeout=120)
    stderr = "".join(lines) + rest
    assert code == 130, stderr
    assert "rtm: interrupted; no output was written" in stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- reproducibility


def test_same_inputs_and_seed_give_the_same_bytes_across_processes(tmp_path: Path) -> None:
    """Two separate processes, same inputs and seed: byte-identical report.json and risk.tif."""
    outs = [tmp_path / "first", tmp_path / "second"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "rtm_cli.main", *sample_analyze_args(out, "-q", "--seed", "3")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # different hash seeds: nothing may depend on set/dict-of-str ordering
            env={**os.environ, "PYTHONHASHSEED": str(k)},
        )
        for k, out in enumerate(outs)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    for name in ("report.json", "risk.tif", "factors.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    report = json.loads((outs[0] / "report.json").read_text())
    assert report["seed"] == 3 and "residual_autocorrelation" in report


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("analyze", "--block-length"),
        ("analyze", "--area"),
        ("layers", "--block-length"),
        ("validate-temporal", "--block-length"),
    ],
)
def test_a_missing_required_option_is_a_usage_error(command: str, missing: str) -> None:
    """Options generated from the study specification that the command requires: leaving
    one out is a one-line usage error (exit 2), never a traceback from its absent default."""
    given = {"--area": str(SAMPLE / "area.gpkg"), "--block-length": "150"}
    args = [command, str(SAMPLE / "crimes.csv")]
    for flag, value in given.items():
        if flag != missing:
            args += [flag, value]
    if command in ("layers", "validate-temporal"):
        args += ["--out", "unused"]
    result = run_rtm(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"rtm: error: Missing option '{missing}'. (see 'rtm {command} --help')"
    ]


def test_test_options_without_test_events_are_named_as_ignored(tmp_path: Path) -> None:
    """--test-where or --importance without --test-crimes (forgotten?) would do nothing
    silently: the analysis runs and a warning names each ignored option."""
    from rtm.spec import StudySpec

    def idle(**options: Any) -> list[str]:
        return StudySpec(area="a.gpkg", block_length=100, **options).idle_options()

    assert idle() == []
    assert idle(test_events="t.csv", test_where=["type=x"], importance=True) == []
    assert idle(importance=True) == ["--importance acts only with --test-crimes: ignored"]
    assert idle(forecast=True, challengers=False, bandwidth=300.0) == []
    assert idle(challengers=False, period_column="month") == [
        "--period-column and --no-challengers act only with --test-crimes or --forecast: ignored"
    ]
    assert idle(outputs="capture.png,risk.tif,forecast.tif", forecast=True) == [
        "--outputs capture.png: not made without --test-crimes"
    ]
    assert idle(outputs="capture.png,forecast.json", test_events="t.csv") == []
    spec = _base_spec(_city(tmp_path))
    out = tmp_path / "run"
    extra = ("-q", "--test-where", "type=robbery", "--importance")
    result = run_rtm(*_cli_args("analyze", spec, out, extra))
    assert result.returncode == 0, result.stderr
    assert (
        "rtm: warning: --test-where and --importance act only with --test-crimes: ignored"
        in result.stderr
    )
    assert (out / "report.json").exists() and not (out / "validation.json").exists()
