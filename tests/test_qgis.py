"""The QGIS plugin (``qgis/rtm_qgis``): its Processing provider, run headless.

The plugin is built as users install it (``make qgis-plugin``'s zip), unpacked into a
throw-away QGIS profile, enabled with ``qgis_process plugins enable`` and run with
``qgis_process run`` (``QT_QPA_PLATFORM=offscreen``). Its algorithms run the ``rtm`` of
this environment as a subprocess, found through ``RTM_EXECUTABLE``.

Needs Debian's ``qgis`` (``qgis_process.bin``) and ``python3-qgis``: the QGIS tests skip
with a message when they are absent, and fail under CI (``CI=true``), which installs them
(``.ci/run``). The tests of the runner, the colours and the zip need no QGIS.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "qgis" / "rtm_qgis"
SAMPLE = ROOT / "sample_data"
QGIS_PROCESS = shutil.which("qgis_process.bin")
QGIS_PYTHON = os.environ.get("RTM_QGIS_PYTHON", "/usr/bin/python3")
RTM = Path(sys.executable).with_name("rtm")
# A small analysis of the sample city (150 m cells, 4 factors): the same model both ways.
FACTORS = ("bars", "bus_stops", "main_roads")


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(PLUGIN.parent))  # rtm_qgis's QGIS-free modules, importable here
from rtm_qgis import colours, run_layers, runner  # noqa: E402

sys.path.remove(str(PLUGIN.parent))
build = _module("rtm_qgis_build", ROOT / "qgis" / "build.py")


def _missing_qgis() -> str | None:
    if QGIS_PROCESS is None:
        return "qgis_process.bin not found (apt-get install qgis python3-qgis)"
    probe = subprocess.run(
        [QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        return f"{QGIS_PYTHON} cannot import qgis.core (apt-get install python3-qgis)"
    return None


@pytest.fixture(scope="module")
def qgis_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throw-away QGIS profile with the plugin zip installed and enabled."""
    missing = _missing_qgis()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"QGIS is required under CI: {missing}")
        pytest.skip(f"QGIS absent: {missing}")
    base = tmp_path_factory.mktemp("qgis")
    plugins = base / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(build.build(base / "dist")) as archive:
        archive.extractall(plugins)
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(runtime),
        "QGIS_CUSTOM_CONFIG_PATH": str(base),
        runner.ENV_VAR: str(RTM if RTM.is_file() else shutil.which("rtm")),
    }
    enabled = _qgis_process(env, "plugins", "enable", "rtm_qgis")
    assert enabled.returncode == 0, enabled.stderr[-2000:]
    assert "* rtm_qgis" in enabled.stdout  # loaded, with a Processing provider
    return env


def _qgis_process(env: dict[str, str], *args: str, timeout: float = 300) -> Any:
    return subprocess.run(
        [str(QGIS_PROCESS), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _analyze_inputs(folder: Path) -> tuple[Path, list[str]]:
    """The sample city's robbery events as a GeoPackage, and the factor files."""
    import geopandas as gpd
    import pandas as pd

    crimes = pd.read_csv(SAMPLE / "crimes.csv")
    events = folder / "crimes.gpkg"
    gpd.GeoDataFrame(
        crimes, geometry=gpd.points_from_xy(crimes.x, crimes.y), crs="EPSG:32630"
    ).to_file(events, layer="crimes")
    return events, [str(SAMPLE / "factors" / f"{name}.shp") for name in FACTORS]


def _qgis_analyze_args(events: Path, factors: list[str], out: Path) -> list[str]:
    return [
        "run", "rtm:analyze", "--", f"EVENTS={events}", f"AREA={SAMPLE / 'area.gpkg'}",
        *(f"FACTORS={f}" for f in factors), f"PROTECTIVE={SAMPLE / 'factors' / 'parks.shp'}",
        "BLOCK_LENGTH=300", "WHERE=type=robbery", f"OUTPUT={out}",
    ]  # fmt: skip


def test_qgis_process_lists_the_rtm_algorithms(qgis_env: dict[str, str]) -> None:
    listed = _qgis_process(qgis_env, "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "Risk Terrain Modeling" in listed.stdout
    for algorithm in ("analyze", "validate", "layers", "audit", "trial_design"):
        algorithm = f"rtm:{algorithm}"
        assert algorithm in listed.stdout


@pytest.fixture(scope="module")
def analyzed(qgis_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Analyze run by qgis_process and the same analysis by rtm analyze, side by side."""
    folder = tmp_path_factory.mktemp("analyze")
    events, factors = _analyze_inputs(folder)
    plain_args = [
        "analyze", str(events), "--area", str(SAMPLE / "area.gpkg"),
        *(a for f in factors for a in ("--factor", f)),
        "--factor", str(SAMPLE / "factors" / "parks.shp"), "--protective", "parks",
        "--block-length", "300", "--where", "type=robbery", "--out", str(folder / "plain"),
    ]  # fmt: skip
    # both at once: the machine's two cores, half the wall time
    plain = subprocess.Popen(
        [sys.executable, "-m", "rtm_cli.main", *plain_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    qgis = _qgis_process(qgis_env, *_qgis_analyze_args(events, factors, folder / "qgis"))
    _, plain_err = plain.communicate(timeout=300)
    assert plain.returncode == 0, plain_err
    assert qgis.returncode == 0, qgis.stdout[-3000:] + qgis.stderr[-3000:]
    return folder, qgis.stdout, events


def test_analyze_in_qgis_gives_the_model_of_rtm_analyze(analyzed: Any) -> None:
    folder, log, _ = analyzed
    ours, theirs = folder / "qgis", folder / "plain"
    assert (ours / "factors.csv").read_bytes() == (theirs / "factors.csv").read_bytes()
    assert (ours / "risk.tif").read_bytes() == (theirs / "risk.tif").read_bytes()
    # rtm's progress reached QGIS's feedback, and the styled layers are the outputs
    assert "culling:" in log and "100 - done" in log
    for key in ("RISK", "TIERS", "PLACES", "PRIORITY_PLACES", "MODEL_TABLE", "REPORT"):
        assert f"\n{key}:\t" in log
    layers = {layer.key: layer for layer in run_layers.run_layers(ours)}
    assert layers["TIERS"].sublayer == "cells" and layers["RISK"].source.endswith("risk.tif")


# What QGIS does with an algorithm's layers when it ends (processing's
# handleAlgorithmResults, less its optional styles): load each, then its post-processor.
LOAD_AND_STYLE = """
import json, sys
from qgis.core import (QgsApplication, QgsProcessingContext, QgsProcessingFeedback,
                       QgsProcessingUtils, QgsProject)
app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, sys.argv[1])
from rtm_qgis.algorithms.analyze import AnalyzeAlgorithm
project = QgsProject.instance()
context = QgsProcessingContext()
context.setProject(project)
results = {}
AnalyzeAlgorithm()._load(sys.argv[2], results, context)
for uri, details in context.layersToLoadOnCompletion().items():
    layer = QgsProcessingUtils.mapLayerFromString(uri, context, typeHint=details.layerTypeHint)
    details.setOutputLayerName(layer)
    project.addMapLayer(context.temporaryLayerStore().takeMapLayer(layer))
    details.postProcessor().postProcessLayer(layer, context, QgsProcessingFeedback())
(group,) = project.layerTreeRoot().children()
out = {"group": group.name(), "layers": []}
for node in group.children():
    layer, renderer = node.layer(), node.layer().renderer()
    entry = {"name": layer.name(), "checked": node.itemVisibilityChecked(),
             "renderer": renderer.type(), "subset": getattr(layer, "subsetString", str)()}
    if renderer.type() == "singlebandpseudocolor":
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        entry["stops"] = [(i.value, i.color.name()) for i in items]
    elif renderer.type() == "categorizedSymbol":
        entry["classes"] = [(c.value(), c.symbol().color().name()) for c in renderer.categories()]
        entry["count"] = layer.featureCount()
    else:
        entry["outline"] = renderer.symbol().symbolLayer(0).strokeColor().name()
    out["layers"].append(entry)
print(json.dumps(out))
app.exitQgis()
"""


def test_the_run_layers_load_in_rtms_colours(analyzed: Any, qgis_env: dict[str, str]) -> None:
    import json

    import geopandas as gpd

    folder, _, _ = analyzed
    plugins = Path(qgis_env["QGIS_CUSTOM_CONFIG_PATH"]) / "profiles/default/python/plugins"
    loaded = subprocess.run(
        [QGIS_PYTHON, "-c", LOAD_AND_STYLE, str(plugins), str(folder / "qgis")],
        env=qgis_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    shown = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert shown["group"] == "rtm run: qgis"
    layers = shown["layers"]  # top first
    names = [layer["name"] for layer in layers]
    # places above the surfaces; patrol places and intervention areas in runs that have them
    assert names[-2:] == ["Risk tiers", "Relative risk score"], names
    assert {"Priority places", "Highest-risk places"} <= set(names[:-2]), names
    by_name = {layer["name"]: layer for layer in layers}
    assert [by_name[n]["checked"] for n in names[-2:]] == [False, True]
    priority, places = by_name["Priority places"], by_name["Highest-risk places"]
    tiers, risk = by_name["Risk tiers"], by_name["Relative risk score"]
    assert priority["checked"] and places["checked"]
    assert priority["outline"] == colours.PRIORITY_COLOUR
    assert places["outline"] == colours.PLACE_COLOUR
    pairs = zip(colours.TIER_NAMES, colours.TIER_COLOURS, strict=True)
    assert tiers["classes"] == [list(pair) for pair in pairs]
    cells = gpd.read_file(folder / "qgis" / "cells.gpkg")
    assert tiers["count"] == int((cells["tier"].fillna("") != "").sum())  # the tier filter
    report = json.loads((folder / "qgis" / "report.json").read_text())
    stops = colours.ramp_stops(report["rrs"]["max"])
    assert [c for _, c in risk["stops"]] == [c for _, c in stops]
    assert risk["stops"][0][0] == pytest.approx(1.0)
    assert risk["stops"][-1][0] == pytest.approx(report["rrs"]["max"])


def _audit_layers(folder: Path) -> tuple[Path, Path]:
    """A synthetic population (two groups) and two sub-areas over the sample city."""
    import geopandas as gpd
    from shapely.geometry import box

    x0, y0, x1, y1 = gpd.read_file(SAMPLE / "area.gpkg").total_bounds
    step = (x1 - x0) / 6
    squares = [box(x, y, x + step, y + step) for x in x0 + step * np.arange(6) for y in
               np.arange(y0, y1, step)]  # fmt: skip
    rng = np.random.default_rng(3)
    population = gpd.GeoDataFrame(
        {
            "group_a": rng.integers(50, 500, len(squares)),
            "group_b": rng.integers(50, 500, len(squares)),
        },
        geometry=squares,
        crs="EPSG:32630",
    )
    middle = (x0 + x1) / 2
    halves = gpd.GeoDataFrame(
        {"name": ["west", "east"]},
        geometry=[box(x0, y0, middle, y1), box(middle, y0, x1, y1)],
        crs="EPSG:32630",
    )
    population.to_file(folder / "population.gpkg", layer="population")
    halves.to_file(folder / "halves.gpkg", layer="halves")
    return folder / "population.gpkg", folder / "halves.gpkg"


def test_validate_layers_audit_and_trial_run_in_qgis(
    analyzed: Any, qgis_env: dict[str, str], tmp_path: Path
) -> None:
    import json

    import geopandas as gpd
    import rasterio

    folder, _, events = analyzed
    validation, layers = tmp_path / "validation.json", tmp_path / "layers.tif"
    population, halves = _audit_layers(tmp_path)
    validate_args = [
        "run", "rtm:validate", "--", f"RUN={folder / 'qgis'}", f"EVENTS={events}",
        "WHERE=type=robbery", "CHALLENGERS=false", f"OUTPUT={validation}",
    ]  # fmt: skip
    layers_args = [
        "run", "rtm:layers", "--", f"AREA={SAMPLE / 'area.gpkg'}",
        f"FACTORS={SAMPLE / 'factors' / 'bars.shp'}",
        f"PROTECTIVE={SAMPLE / 'factors' / 'parks.shp'}", "BLOCK_LENGTH=300", f"OUTPUT={layers}",
    ]  # fmt: skip
    audit_args = [
        "run", "rtm:audit", "--", f"RUN={folder / 'qgis'}", f"POPULATION={population}",
        "GROUPS=group_a", "GROUPS=group_b", f"SUBAREAS={halves}", "SUBAREA_FIELD=name",
        "OPTIONS=--bootstrap 20", f"OUTPUT={tmp_path / 'audit'}",
    ]  # fmt: skip
    trial_args = [
        "run", "rtm:trial_design", "--", f"RUN={folder / 'qgis'}", "PLACES=6", "BLOCK_SIZE=2",
        f"OUTPUT={tmp_path / 'trial'}",
    ]  # fmt: skip
    running = [
        subprocess.Popen(
            [str(QGIS_PROCESS), *args], env=qgis_env, stdout=subprocess.PIPE, text=True
        )
        for args in (validate_args, layers_args, audit_args, trial_args)
    ]
    logs = [process.communicate(timeout=300)[0] for process in running]
    assert [process.returncode for process in running] == [0, 0, 0, 0], logs
    scored = json.loads(validation.read_text())
    assert scored["events"] == 1821 and "cap@10%" in logs[0]  # the table, in the log
    from rtm.export.plots import capture_plot  # one naming rule for every command

    assert capture_plot(validation).stat().st_size > 0
    with rasterio.open(layers) as raster:
        assert raster.count == 12  # 2 factors x proximity, density x 3 distances
        assert "bars:proximity:300" in raster.descriptions
    audited = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert {row["group"] for row in audited["exposure_disparity"]} == {"group_a", "group_b"}
    assert {area["name"] for area in audited["accuracy_parity"]["subareas"]} == {"west", "east"}
    assert (tmp_path / "audit" / "audit.md").is_file()
    allocation = gpd.read_file(tmp_path / "trial" / "allocation.gpkg", layer="places")
    assert sorted(allocation["arm"]) == ["control"] * 3 + ["treatment"] * 3
    assert "ALLOCATION:\t" in logs[3]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_qgis_process_leaves_no_output(qgis_env: dict[str, str], tmp_path: Path) -> None:
    events, factors = _analyze_inputs(tmp_path)
    folder = tmp_path / "outputs"
    folder.mkdir()
    qgis = subprocess.Popen(
        [str(QGIS_PROCESS), *_qgis_analyze_args(events, factors, folder / "run")],
        env=qgis_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (folder / ".run.rtm-lock").exists():  # rtm holds the output: it is working
        assert qgis.poll() is None and time.monotonic() < deadline, "rtm never started"
        time.sleep(0.2)
    (child,) = _children(qgis.pid)
    qgis.send_signal(signal.SIGKILL)  # QGIS dies: the pipe to rtm closes
    qgis.wait()
    deadline = time.monotonic() + 60
    while _running(child):
        assert time.monotonic() < deadline, "rtm outlived QGIS"
        time.sleep(0.2)
    assert sorted(p.name for p in folder.iterdir()) == []


# The plugin's parts that need no QGIS -------------------------------------------------


class FakeFeedback:
    """The methods of QgsProcessingFeedback that the runner calls."""

    def __init__(self, cancel_at: str | None = None) -> None:
        self.cancel_at, self.cancelled = cancel_at, False
        self.progress: list[int] = []
        self.messages: list[str] = []

    def isCanceled(self) -> bool:  # noqa: N802
        return self.cancelled

    def setProgress(self, value: float) -> None:  # noqa: N802
        self.progress.append(int(value))

    def pushInfo(self, text: str) -> None:  # noqa: N802
        self.messages.append(text)
        if self.cancel_at and text.startswith(self.cancel_at):
            self.cancelled = True

    pushWarning = pushCommandInfo = pushConsoleInfo = pushInfo  # noqa: N815


def test_cancelling_stops_rtm_and_leaves_nothing(tmp_path: Path) -> None:
    feedback = FakeFeedback(cancel_at="grid:")  # rtm holds its output folder by then
    out = tmp_path / "run"
    args = [
        "analyze", str(SAMPLE / "crimes.csv"), "--area", str(SAMPLE / "area.gpkg"),
        "--factors-dir", str(SAMPLE / "factors"), "--block-length", "150", "--out", str(out),
    ]  # fmt: skip
    with pytest.raises(runner.RtmCancelled) as cancelled:
        runner.run_rtm(str(RTM), args, feedback)
    assert cancelled.value.exit_code == 143
    assert str(cancelled.value) == "rtm: terminated; no output was written"
    assert feedback.progress[0] == 2  # rtm's first PROGRESS line (grid), relayed
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rtm_stops_when_the_pipe_from_its_parent_closes(tmp_path: Path) -> None:
    # RTM_PROGRESS=lines with stdin a pipe: the parent's death (the pipe closing) stops rtm
    args = [
        "analyze", str(SAMPLE / "crimes.csv"), "--area", str(SAMPLE / "area.gpkg"),
        "--factors-dir", str(SAMPLE / "factors"), "--block-length", "150",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    rtm = subprocess.Popen(
        [str(RTM), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=runner.child_environment(),
    )
    assert rtm.stdin is not None and rtm.stderr is not None
    rtm.stdin.close()  # at once: the watchdog starts after rtm's SIGTERM handler, so 143
    said = rtm.stderr.read()
    assert rtm.wait(timeout=120) == 143
    assert said.strip().splitlines()[-1] == "rtm: terminated; no output was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rtm_errors_arrive_as_its_one_line(tmp_path: Path) -> None:
    args = ["layers", "--area", str(SAMPLE / "area.gpkg"), "--factors-dir", str(SAMPLE / "factors")]
    args += ["--block-length", "-5", "--out", str(tmp_path / "layers.tif")]
    with pytest.raises(runner.RtmError) as failed:
        runner.run_rtm(str(RTM), args, FakeFeedback())
    assert failed.value.exit_code == 2
    assert str(failed.value) == (
        "rtm: error: --block-length must be a positive, finite number of metres, got -5.0"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rtm_is_found_from_the_setting_the_variable_or_path(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "rtm").write_text("#!/bin/sh\n")
    assert runner.find_rtm(str(venv), {}) == str(venv / "bin" / "rtm")
    assert runner.find_rtm("", {runner.ENV_VAR: str(venv / "bin")}) == str(venv / "bin" / "rtm")
    with pytest.raises(runner.RtmError, match="the rtm setting .* no rtm executable"):
        runner.find_rtm(str(tmp_path / "empty"), {})
    with pytest.raises(runner.RtmError, match="rtm not found: install it"):
        runner.find_rtm(None, {"PATH": str(tmp_path)})
    # QGIS's own library paths are not passed on; machine progress is asked for
    env = runner.child_environment({"PROJ_LIB": "/qgis/proj", "PATH": "/bin"})
    assert "PROJ_LIB" not in env and env["RTM_PROGRESS"] == "lines" and env["PATH"] == "/bin"


def test_the_colours_are_rtms() -> None:
    import numpy as np

    from rtm.export import _style

    assert colours.RAMP == _style.RAMP and colours.TIER_COLOURS == _style.TIER_COLOURS
    assert (colours.PLACE_COLOUR, colours.PRIORITY_COLOUR) == (
        _style.PLACE_COLOUR,
        _style.PRIORITY_COLOUR,
    )
    from rtm.places import TIER_NAMES

    assert colours.TIER_NAMES == TIER_NAMES
    # each stop of the raster ramp has the colour rtm's maps give that RRS (to a shade)
    top = 6.85
    palette = _style.ramp_rgb().astype(int)
    for value, colour in colours.ramp_stops(top):
        index = int(_style.ramp_index(np.array([value]), top)[0])
        expected = palette[index - 1]
        got = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert np.abs(got - expected).max() <= 2, (value, colour, expected)


def test_places_layers_are_found_by_name(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    square = gpd.GeoDataFrame({"rank": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32630")
    for layer in ("places", "priority_places", "patrol_places"):
        square.to_file(tmp_path / "places.gpkg", layer=layer)
    found = run_layers.run_layers(tmp_path)  # no risk.tif: no tiers either
    assert [(f.key, f.title) for f in found] == [
        ("PLACES", "Highest-risk places"),
        ("PRIORITY_PLACES", "Priority places"),
        ("PATROL_PLACES", "Patrol places"),
    ]
    assert colours.place_colour("patrol_places") == colours.PATROL_COLOUR


def test_gdals_sidecar_is_removed_only_from_rtms_folders(tmp_path: Path) -> None:
    said: list[str] = []
    for folder, marked in ((tmp_path / "run", True), (tmp_path / "mine", False)):
        folder.mkdir()
        (folder / "risk.tif.aux.xml").write_text("<PAMDataset/>")
        if marked:
            (folder / ".rtm-run").write_text("{}")
    assert run_layers.remove_gdal_sidecar(tmp_path / "run", said.append)
    assert not (tmp_path / "run" / "risk.tif.aux.xml").exists() and said
    assert not run_layers.remove_gdal_sidecar(tmp_path / "mine", said.append)
    assert (tmp_path / "mine" / "risk.tif.aux.xml").exists()


def test_the_plugin_zip_installs_and_needs_nothing_of_rtm(tmp_path: Path) -> None:
    first = build.build(tmp_path / "a")
    second = build.build(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()  # reproducible
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        metadata = archive.read("rtm_qgis/metadata.txt").decode()
    assert all(name.startswith("rtm_qgis/") for name in names)
    assert "rtm_qgis/__init__.py" in names and not any("__pycache__" in n for n in names)
    assert "hasProcessingProvider=yes" in metadata
    from rtm import __version__

    assert f"version={__version__}\n" in metadata
    # QGIS's Python imports the standard library, QGIS and the plugin itself, nothing else
    allowed = set(sys.stdlib_module_names) | {"qgis", "processing"}
    for path in PLUGIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            assert set(tops) <= allowed, f"{path.name} imports {tops}"
