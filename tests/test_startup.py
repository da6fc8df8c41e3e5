"""Start-up: each stage of ``rtm analyze`` imports what it needs, when it starts.

The heavy libraries (numba, geopandas, scipy, matplotlib, folium, scikit-learn) cost a
second or more of a command's start; these tests keep them out of what loads before the
work begins, so that the laziness cannot rot unnoticed. Times are measured in
``benchmarks/startup.py``, never asserted.
"""

from __future__ import annotations

import pytest

from tests.conftest import fresh_python

#: never needed before the run writes its outputs
OUTPUT_ONLY = ("matplotlib", "folium", "branca", "jinja2", "rasterio", "scipy.ndimage")
#: never needed by an analysis at all
UNUSED = ("sklearn", "statsmodels", "dask", "distributed")


def _loaded(imports: str, candidates: tuple[str, ...]) -> list[str]:
    out = fresh_python(
        "import sys",
        imports,
        f"print(','.join(m for m in {candidates!r} if m in sys.modules))",
    )
    return [m for m in out.split(",") if m]


def test_the_command_line_reaches_the_analysis_without_heavy_libraries() -> None:
    """`rtm analyze` up to its first stage: the CLI, the spec and the workflow module."""
    heavy = ("numba", "geopandas", "pandas", "scipy", "shapely", "pyproj", "pyogrio")
    imports = "import rtm_cli.main, rtm_cli.analyze, rtm.api, rtm.spec"
    assert _loaded(imports, heavy + OUTPUT_ONLY + UNUSED) == []


def test_reading_a_study_does_not_load_the_kernels_or_the_outputs() -> None:
    """The read stage needs geopandas; numba waits for the layers, matplotlib for the outputs."""
    loaded = _loaded("import rtm.study", ("geopandas", "numba", *OUTPUT_ONLY, *UNUSED))
    assert loaded == ["geopandas"]


@pytest.mark.parametrize("module", ["rtm.model", "rtm.layers.candidates", "rtm.batch"])
def test_the_fit_and_batch_stages_do_not_load_the_outputs(module: str) -> None:
    assert _loaded(f"import {module}", OUTPUT_ONLY + UNUSED) == []


def test_the_layers_package_still_exports_its_names() -> None:
    """``rtm.layers`` loads its modules on first use; every exported name resolves."""
    import rtm.layers as layers

    for name in layers.__all__:
        assert getattr(layers, name) is not None, name
    assert layers.Factor.__module__ == "rtm.layers.candidates"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        layers.nope  # noqa: B018
