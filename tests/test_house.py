"""The house's rules, checked: no import cycles, every option everywhere, registries.

* no module of ``rtm/`` imports, directly or through others, a module that imports it
  back (imports inside functions count; ``if TYPE_CHECKING:`` blocks do not);
* every option of ``rtm analyze`` is a field of the study specification, and
  ``rtm batch`` and ``rtm validate-temporal`` accept each (validate-temporal's exceptions
  are listed, with their reasons, in ``cli/validate.py``);
* the operationalizations and the model families are registries.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import click
import numpy as np
import pytest

from tests.conftest import ROOT, SAMPLE

RTM = ROOT / "rtm"


# --------------------------------------------------------------------------- import cycles


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The rtm modules ``path`` imports (a name imported from a package may be a module)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)}
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    )
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            # the longest known module the name starts with
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("rtm") and name != _module_name(path):
                found.add(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def import_graph() -> dict[str, set[str]]:
    files = sorted(RTM.rglob("*.py"))
    modules = {_module_name(p) for p in files}
    graph = {}
    for path in files:
        name = _module_name(path)
        # a package face imports its own submodules; those are not cycles of the face
        graph[name] = {
            m
            for m in _imports(path, modules)
            if not (path.name == "__init__.py" and m.startswith(name + "."))
        }
    return graph


def test_no_import_cycles_in_rtm() -> None:
    graph = import_graph()
    assert len(graph) > 40
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = import_graph()
    graph["rtm.grid"] = graph["rtm.grid"] | {"rtm.study"}  # study imports grid already
    assert ["rtm.grid", "rtm.study"] in _cycles(graph) or any(
        {"rtm.grid", "rtm.study"} <= set(c) for c in _cycles(graph)
    )


def test_modules_stay_small() -> None:
    """The ~500-line guide: a module over 600 lines is split (kernels and declarations aside)."""
    long = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in RTM.rglob("*.py")
        if len(p.read_text().splitlines()) > 600
    }
    # numba kernels are kept whole (one compiled unit each); the spec is its declarations
    assert set(long) <= {"rtm/_kernels/glm.py", "rtm/spec.py"}, long


# --------------------------------------------------------------------------- option parity


def _params(command: click.Command) -> dict[str, click.Parameter]:
    return {p.name: p for p in command.params if p.name}


#: Options of a command that are about the run, not the study.
RUN_CONTROL = {"out", "overwrite", "quiet", "verbose"}


def test_every_analyze_option_is_a_spec_field() -> None:
    from rtm_cli.analyze import analyze

    from rtm.spec import spec_fields

    params = set(_params(analyze)) - RUN_CONTROL - {"crimes"}
    fields = set(spec_fields()) - {"area_label", "events"}
    assert params == fields


def test_batch_and_validate_temporal_accept_every_analyze_option(tmp_path: Path) -> None:
    from rtm_cli.analyze import analyze
    from rtm_cli.validate import TEMPORAL_EXCLUDES, validate_temporal

    from rtm.batch import load_config
    from rtm.batch.config import analysis_options
    from rtm.spec import options

    study = set(_params(analyze)) - RUN_CONTROL - {"crimes"}
    assert study <= set(analysis_options())
    temporal = set(_params(validate_temporal))
    outputs = {o.name for o in options(["outputs"])}
    assert study - temporal == set(TEMPORAL_EXCLUDES) | outputs
    # a configuration setting every option at once loads (each value checked as analyze does)
    values = {
        "events": str(SAMPLE / "crimes.csv"),
        "area": str(SAMPLE / "area.gpkg"),
        "factors": [f"bars={SAMPLE / 'factors' / 'bars.shp'}"],
        "factors_dir": str(SAMPLE / "factors"),
        "protective": ["parks"],
        "network": str(SAMPLE / "factors" / "main_roads.shp"),
        "crs": "EPSG:32630",
        "where": ["type=robbery"],
        "x_column": "x",
        "y_column": "y",
        "events_crs": "EPSG:32630",
        "weight_column": "id",
        "harm": "police-uk",
        "block_length": 150,
        "cell_size": 75,
        "max_blocks": 3,
        "increment": "half",
        "operationalization": "proximity,density",
        "seed": 7,
        "nb_form": "nb2",
        "cv_rule": "1se",
        "l1_ratios": [0.9],
        "alpha": 0.01,
        "bootstrap": 0,
        "bootstrap_scheme": "cells",
        "split_sample": False,
        "test_events": str(SAMPLE / "crimes.csv"),
        "test_where": ["type=robbery"],
        "period_column": "month",
        "challengers": False,
        "forecast": True,
        "importance": False,
        "bandwidth": 300,
        "tier_cuts": [2.5, 1.5, 0.5],
        "priority_tier": 2,
        "recent_days": 28,
        "recent_distance": 200,
        "date_column": "date",
        "patrol_size": 150,
        "tasks": str(ROOT / "rtm" / "data" / "tasks.toml"),
        "outputs": ["risk.tif", "forecast.tif"],
        "area_where": ["name=centre"],
        "streets": str(SAMPLE / "factors" / "main_roads.shp"),
        "csv_sep": ";",
        "decimal": ",",
        "encoding": "cp1252",
    }
    assert set(values) == set(analysis_options())
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    config = tmp_path / "all.toml"
    config.write_text("[analysis]\n" + "\n".join(lines) + "\n")
    loaded = load_config(config)
    assert set(loaded.analysis) == set(values)


def test_a_bad_value_gets_the_same_message_everywhere(tmp_path: Path) -> None:
    from rtm.batch import load_config
    from rtm.errors import ParameterError
    from rtm.spec import StudySpec

    with pytest.raises(ParameterError) as api:
        StudySpec(area="a.gpkg", block_length=150, max_blocks=99)
    config = tmp_path / "bad.toml"
    config.write_text(
        f'[analysis]\nevents = "{SAMPLE / "crimes.csv"}"\narea = "{SAMPLE / "area.gpkg"}"\n'
        f'factors_dir = "{SAMPLE / "factors"}"\nblock_length = 150\nmax_blocks = 99\n'
    )
    with pytest.raises(ParameterError) as batch:
        load_config(config)
    assert str(api.value) in str(batch.value)
    assert "--max-blocks must be a whole number 1..20, got 99" in str(api.value)


def test_the_spec_round_trips_through_the_run_report() -> None:
    from rtm.spec import StudySpec

    spec = StudySpec(
        events="crimes.csv",
        area="area.gpkg",
        block_length=150,
        where=["type=robbery", "month=1..6"],
        l1_ratios=[0.9],
        tier_cuts="2.5,1.5,0.5",
    )
    record = json.loads(json.dumps(spec.to_record()))
    again = StudySpec.from_record(record)
    assert again.to_record() == spec.to_record()
    assert record["where"][1] == {"column": "month", "label": "month=1..6", "low": "1", "high": "6"}


def test_factors_may_be_a_mapping_of_names_to_files() -> None:
    from rtm.errors import ParameterError
    from rtm.spec import StudySpec

    common = {"events": "crimes.csv", "area": "area.gpkg", "block_length": 150}
    spec = StudySpec(**common, factors={"bars": Path("data/pubs.shp"), "atms": "atms.gpkg:a"})
    assert spec.factors == ("bars=data/pubs.shp", "atms=atms.gpkg:a")
    with pytest.raises(
        ParameterError, match=r"^--factor bars: give a file path or a GeoDataFrame, got dict"
    ):
        StudySpec(**common, factors={"bars": {"not": "a file"}})


# --------------------------------------------------------------------------- registries


def test_operationalizations_are_a_registry() -> None:
    from rtm.errors import ParameterError
    from rtm.layers import LayerContext, available_operationalizations, resolve_operationalizations
    from rtm.layers.network import StreetNetwork

    assert available_operationalizations() == ("density", "network_proximity", "proximity")
    assert [o.name for o in resolve_operationalizations("both")] == ["proximity", "density"]
    assert [o.name for o in resolve_operationalizations("density,proximity")] == [
        "density",
        "proximity",
    ]
    import shapely

    context = LayerContext(network=StreetNetwork([shapely.LineString([(0, 0), (1, 1)])]))
    assert [o.name for o in resolve_operationalizations("both", context)] == [
        "network_proximity",
        "density",
    ]
    with pytest.raises(
        ParameterError, match="must be one of 'both', 'density', 'network_proximity'"
    ):
        resolve_operationalizations("count")


def test_factors_are_described_by_their_operationalization() -> None:
    """Maps and reports take a factor's words from its operationalization: network
    proximity (which keeps proximity's column) says it is measured along the streets."""
    from rtm.layers.registry import describe_candidate
    from rtm.places import FactorLayer

    assert describe_candidate("proximity", "bars", 150) == "within 150 m of bars"
    assert describe_candidate("proximity", "bars", 150, network=True) == (
        "within 150 m of bars along the streets"
    )
    assert describe_candidate("density", "atms", 300) == "high density of atms (300 m bandwidth)"
    assert describe_candidate("mystery", "atms", 300) == "mystery of atms (300 m)"
    layer = FactorLayer("bars", "proximity", 150.0, 2.0, False, np.ones(3), network=True)
    assert layer.describe() == "within 150 m of bars along the streets"


COUNT_MODULE = """
import numpy as np
import shapely

from rtm.layers.operationalizations.base import Operationalization


class Count(Operationalization):
    name = "count"
    column = "count"

    def raw(self, grid, geometries, distances, context, *, rows=None):
        assert rows is None
        xs, ys = grid.cell_centres()
        tree = shapely.STRtree(geometries)
        centres = shapely.points(xs, ys)
        out = np.zeros((len(distances), xs.size))
        for k, d in enumerate(distances):
            cells, _ = tree.query(centres, predicate="dwithin", distance=d)
            out[k] = np.bincount(cells, minlength=xs.size)
        return out

    def binarize(self, raw, distance):
        return raw >= 3, 3.0

    def describe(self, factor, distance, unit="m"):
        return f"3 or more {factor} within {distance:g} {unit}"


OPERATIONALIZATION = Count()
"""


def test_an_operationalization_is_one_module(tmp_path: Path, monkeypatch) -> None:
    """A new operationalization dropped into the package (and nothing else) is found by the
    registry, accepted by the spec, fitted, and described in the run's outputs."""
    from rtm.api import analyze
    from rtm.layers import operationalizations, registry

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "count.py").write_text(COUNT_MODULE, encoding="utf-8")
    monkeypatch.setattr(
        operationalizations, "__path__", [*operationalizations.__path__, str(folder)]
    )
    registry._registry.cache_clear()
    try:
        assert "count" in registry.available_operationalizations()
        result = analyze(
            events=SAMPLE / "crimes.csv",
            area=SAMPLE / "area.gpkg",
            factors_dir=SAMPLE / "factors",
            block_length=150,
            where=["type=robbery"],
            operationalization="count",
            out=tmp_path / "run",
        )
    finally:
        registry._registry.cache_clear()
    assert result.factors and {f.operationalization for f in result.factors} == {"count"}
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert all(":count:" in name for name in report["candidate_names"])
    assert "3 or more " in (tmp_path / "run" / "report.html").read_text()


def test_proximity_includes_the_cell_exactly_d_away() -> None:
    """Pins ``distance <= d``: a feature exactly one spatial influence from a centre counts."""
    import geopandas as gpd
    import shapely

    from rtm.grid import Grid
    from rtm.layers import Factor, build_candidates, nearest_distance

    grid = Grid.from_area(gpd.GeoSeries([shapely.box(0, 0, 500, 500)], crs="EPSG:27700"), 50)
    # cell centres at 25, 75, ...; a feature 100 m due north of the centre (25, 25)
    feature = gpd.GeoSeries([shapely.Point(25, 125)], crs="EPSG:27700")
    distance = nearest_distance(grid, feature, 1000)
    corner = grid.to_raster(distance)[grid.n_rows - 1, 0]
    assert corner == 100.0  # exactly
    candidates = build_candidates(
        grid, [Factor("f", feature, operationalization="proximity")], [100]
    )
    values = grid.to_raster(candidates.column("f:proximity:100"))
    assert values[grid.n_rows - 1, 0] == 1  # within 100: included
    assert values[grid.n_rows - 1, 1] == 0  # (75, 25): 111.8 away


def test_network_proximity_runs_chunked_like_whole(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    from rtm.grid import Grid
    from rtm.layers import Factor, build_candidates
    from rtm.layers.chunked import build_candidates_chunked
    from rtm.layers.network import StreetNetwork

    grid = Grid.from_area(gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs="EPSG:27700"), 100)
    streets = StreetNetwork(
        [shapely.LineString([(50, 50), (950, 50)]), shapely.LineString([(950, 50), (950, 950)])]
    )
    bars = Factor("bars", gpd.GeoSeries([shapely.Point(50, 50)], crs="EPSG:27700"))
    whole = build_candidates(grid, [bars], [300, 600, 900], network=streets)
    chunks = build_candidates_chunked(grid, [bars], [300, 600, 900], chunk_rows=3, network=streets)
    assert whole.names == chunks.names
    assert np.array_equal(whole.values, chunks.values)
    straight = build_candidates(grid, [bars], [300, 600, 900])
    assert not np.array_equal(whole.values, straight.values)  # the network really was used


def test_families_own_their_variance_and_words() -> None:
    from rtm.errors import ParameterError
    from rtm.selection import FAMILIES, get_family

    mu = np.array([0.5, 2.0, 10.0])
    assert np.allclose(get_family("poisson").variance(mu, None), mu)
    assert np.allclose(get_family("nbii").variance(mu, 0.5), mu * 1.5)
    assert np.allclose(get_family("nb2").variance(mu, 4.0), mu + mu**2 / 4.0)
    assert get_family("nbii").dispersion_name == "sigma"
    assert get_family("nb2").dispersion_from_log(np.log(2.0)) == pytest.approx(0.5)
    assert {f.name for f in FAMILIES.values() if f.negative_binomial} == {"nbii", "nb2"}
    with pytest.raises(ParameterError, match="must be one of 'poisson', 'nbii', 'nb2'"):
        get_family("gamma")


def test_every_package_is_installed() -> None:
    """pyproject.toml lists the packages: one left out would be missing from a wheel."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts).replace("cli", "rtm_cli", 1)
        if init.parent.relative_to(ROOT).parts[0] == "cli"
        else ".".join(init.parent.relative_to(ROOT).parts)
        for folder in ("rtm", "cli")
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found - listed == set(), "add these packages to pyproject.toml"
    # (folders of package data are listed too, tests/test_docs_commands.py says why)
    data = {n for n in listed - found if not (ROOT / n.replace(".", "/") / "__init__.py").exists()}
    assert data == {"rtm.data", "rtm.data.harm", "rtm.export.static", "rtm.export.templates"}
    assert listed - found - data == set()
