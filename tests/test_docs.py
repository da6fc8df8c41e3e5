"""The documentation cannot rot: the tutorial runs, the site builds, examples and references hold.

- ``docs/tutorial.py`` (a Jupytext percent-format script) runs end to end on the sample city
  (and its London cell when ../shared/data/london is present);
- ``mkdocs build --strict`` succeeds (skipped when the docs extra is not installed);
- every ``>>>`` example in the Markdown pages passes;
- every public name of ``rtm`` resolves, lazily, and is in the API reference;
- every CLI command and option has help text (the CLI reference is generated from it).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.conftest import fresh_python

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "MPLBACKEND": "Agg", "NO_MKDOCS_2_WARNING": "1", **extra}


def test_tutorial_runs(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(DOCS / "tutorial.py")],
        cwd=ROOT,
        env=_env(RTM_TUTORIAL_OUT=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    # the planted terrain is recovered, the maps are written, the validation ran
    assert "bars" in out and "proximity" in out and "(protective)" in out
    assert (tmp_path / "risk.png").stat().st_size > 0
    assert "<html" in (tmp_path / "map.html").read_text(encoding="utf-8")[:2000].lower()
    assert re.search(r"AUC of the risk map on July-December: 0\.\d+", out)
    assert (tmp_path / "run-h1" / "factors.csv").exists()


def test_tutorial_renders_as_a_page() -> None:
    sys.path.insert(0, str(DOCS / "_hooks"))
    try:
        hook = importlib.import_module("tutorial")
    except ImportError:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    finally:
        sys.path.pop(0)
    page = hook.script_to_markdown((DOCS / "tutorial.py").read_text(encoding="utf-8"))
    assert page.startswith("# Tutorial")
    assert "```python\n" in page and "import rtm\n" in page
    assert "# %%" not in page and "jupytext:" not in page


def test_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_click")
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in ("rtm.api.analyze", "rtm.result.RTMResult.model_table", "rtm.grid.Grid"):
        assert f'id="{anchor}"' in api
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("analyze", "batch", "layers", "map", "validate", "validate-temporal"):
        assert f'id="rtm-{command}"' in cli


@pytest.mark.parametrize(
    "page",
    sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if ">>>" in p.read_text()),
)
def test_markdown_examples(page: str) -> None:
    # the >>> examples of the page's fenced code blocks, run in one namespace per page
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)
    source = "\n\n".join(block for block in blocks if ">>>" in block)
    test = doctest.DocTestParser().get_doctest(source, {}, page, str(DOCS / page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    assert test.examples
    assert runner.failures == 0, f"{runner.failures} example(s) of docs/{page} failed (see stdout)"


def test_import_rtm_is_light() -> None:
    fresh_python(
        "import sys, rtm",
        "heavy = [m for m in ('numba', 'geopandas', 'sklearn', 'rasterio') if m in sys.modules]",
        "assert not heavy, heavy",
        "assert rtm.RiskTerrainModel.__module__ == 'rtm.model'",
    )


def _exports(module: str, name: str) -> bool:
    return name in getattr(importlib.import_module(module), "__all__", [])


def test_public_names_resolve_and_are_documented() -> None:
    import rtm

    api_page = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    directives = set(re.findall(r"^::: ([\w.]+)", api_page, flags=re.MULTILINE))
    missing = []
    for name in rtm.__all__:
        obj = getattr(rtm, name)
        assert name in dir(rtm)
        if name == "__version__":
            continue
        if inspect.ismodule(obj):
            if obj.__name__ not in directives:
                missing.append(obj.__name__)
            continue
        assert inspect.getdoc(obj), f"rtm.{name} has no docstring"
        module = obj.__module__
        parent = module.rsplit(".", 1)[0]  # rtm.batch re-exports rtm.batch.runner's names
        documented = (
            f"{module}.{name}" in directives
            or (module in directives and _exports(module, name))
            or (parent in directives and _exports(parent, name))
        )
        if not documented:
            missing.append(f"{module}.{name}")
    assert not missing, f"not in docs/reference/api.md: {missing}"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rtm.nope  # noqa: B018


def _commands(group: click.Group) -> list[tuple[str, click.Command]]:
    return [(name, group.commands[name]) for name in sorted(group.commands)]


def test_cli_reference_is_complete() -> None:
    from rtm_cli.main import main

    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert ":module: rtm_cli.main" in page and ":command: main" in page
    undocumented = []
    for name, command in _commands(main):
        if not (command.help or "").strip():
            undocumented.append(name)
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                undocumented.append(f"{name} {param.opts[0]}")
    assert not undocumented, f"commands/options without help text: {undocumented}"


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    pages.add("tutorial.md")  # generated from tutorial.py
    not_in_nav = sorted(p for p in pages if f": {p}" not in config)
    assert not not_in_nav, f"pages missing from the nav of mkdocs.yml: {not_in_nav}"
