"""The commands in the README and the docs run as written.

Every shell block (```sh, ```bash) of README.md and docs/**/*.md runs, in order within its
page, in a scratch folder laid out as the docs assume: the sample city under the names the
docs use (``crimes.csv``, ``area.gpkg``, ``factors/``, ``my-study/``...), ``rtm`` and
``.venv/bin/rtm`` on hand, ``../shared/data/london`` pointing at the London data (blocks
that use it skip when it is absent). ``make`` lines are left to the Makefile's own tests.
A block that cannot run (option fragments with ``...``, a Dask cluster) says so and why
in a comment just above it: ``<!-- docs-test: skip (reason) -->``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest

from tests.conftest import LONDON, ROOT, SAMPLE

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<marker>[^>]*?)\s*-->\s*\n)?```(?:sh|bash|shell)\n(?P<body>.*?)```",
    re.S,
)


def blocks(page: Path) -> list[tuple[str | None, str]]:
    """The shell blocks of a page: (marker, commands), make lines dropped."""
    found = []
    for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
        lines = [ln for ln in match.group("body").splitlines() if not ln.startswith("make ")]
        body = "\n".join(lines).strip()
        if body:
            found.append((match.group("marker"), body))
    return found


RUNNABLE = [page for page in PAGES if blocks(page)]


def _scratch(folder: Path) -> dict[str, str]:
    """Lay out the inputs the docs name; returns the environment to run them in."""
    work = folder / "work"
    work.mkdir()
    for name in ("crimes.csv", "crimes_2023.csv", "later_crimes.csv"):
        shutil.copy(SAMPLE / "crimes.csv", work / name)
    shutil.copy(SAMPLE / "area.gpkg", work / "area.gpkg")
    factors = work / "factors"  # the sample's, and the police stations a how-to names
    factors.mkdir()
    for layer in (SAMPLE / "factors").iterdir():
        (factors / layer.name).symlink_to(layer)
        if layer.stem == "churches":
            (factors / f"police_stations{layer.suffix}").symlink_to(layer)
    (work / "sample_data").symlink_to(SAMPLE)
    (work / "docs").symlink_to(ROOT / "docs")
    area = gpd.read_file(SAMPLE / "area.gpkg")
    area.to_file(work / "borough.shp")
    from tests.test_analyst import _boroughs  # the sample area in two named halves

    shutil.copy(_boroughs(folder), work / "boroughs.gpkg")
    study = work / "my-study"
    study.mkdir()
    shutil.copy(SAMPLE / "crimes.csv", study / "crimes.csv")
    area.to_file(study / "area.shp")
    (study / "factors").symlink_to(SAMPLE / "factors")
    if LONDON.exists():
        (folder / "shared" / "data").mkdir(parents=True)
        (folder / "shared" / "data" / "london").symlink_to(LONDON)
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    shim = bin_dir / "rtm"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m rtm_cli.main "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "MPLBACKEND": "Agg",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }


def test_every_skipped_block_says_why() -> None:
    for page in PAGES:
        for marker, _ in blocks(page):
            if marker is not None:
                assert re.fullmatch(r"skip \(.+\)", marker), f"{page}: {marker!r}"


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_the_commands_of_a_page_run_as_written(page: Path, tmp_path: Path) -> None:
    env = _scratch(tmp_path)
    ran = 0
    for marker, body in blocks(page):
        if marker is not None:
            continue
        if "shared/data/london" in body and not LONDON.exists():
            continue  # (London blocks run where the data is)
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=tmp_path / "work",
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, f"{page.name}:\n{body}\n---\n{proc.stderr[-2000:]}"
        ran += 1
    if not ran:
        pytest.skip(f"{page.name}: every block needs data that is absent here")


def test_make_demo_installs_only_rtm(tmp_path: Path) -> None:
    """`make demo` installs rtm without the test, docs and dev extras."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    proc = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    installs = [ln for ln in proc.stdout.splitlines() if "pip install" in ln and " -e " in ln]
    assert installs and all("[" not in ln for ln in installs), installs


def test_every_folder_of_rtm_is_a_listed_package() -> None:
    """setuptools warns ("absent from the `packages` configuration") about a folder of
    package data that is not listed: rtm/export/static and templates must be."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for folder in (ROOT / "rtm").rglob("*"):
        if not folder.is_dir() or folder.name == "__pycache__":
            continue
        if any(p.is_file() for p in folder.iterdir()):
            name = ".".join(folder.relative_to(ROOT).parts)
            assert name in listed, f"{name} is not in pyproject.toml packages"
            data = config["package-data"].get(name, [])
            if not (folder / "__init__.py").exists():
                assert data == ["*"], f"{name}: its files are package data"
