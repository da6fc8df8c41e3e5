"""Shared fixtures: paths to the sample city and to the London data, CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
LONDON = Path(os.environ.get("RTM_LONDON_DATA", ROOT.parent / "shared" / "data" / "london"))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def london_dir() -> Path:
    if not (LONDON / "study_area.shp").exists():
        pytest.skip(
            f"London data not found at {LONDON} "
            "(set RTM_LONDON_DATA or place ../shared/data/london)"
        )
    return LONDON


def fresh_python(*lines: str) -> str:
    """Run ``lines`` in a new interpreter (nothing imported yet); returns its stdout.

    Fails the test, with the child's stderr, when the code raises.
    """
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def run_rtm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `rtm` command in a subprocess (so exit codes and stderr are real)."""
    return subprocess.run(
        [sys.executable, "-m", "rtm_cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
        timeout=600,
    )


def sample_analyze_args(
    out: Path,
    *extra: str,
    events: Path = SAMPLE / "crimes.csv",
    where: str | None = "type=robbery",
    cell_size: str | None = None,
) -> list[str]:
    """`rtm analyze` of the sample city (robbery, parks protective, 150 m blocks) into ``out``."""
    args = [
        "analyze", str(events), "--area", str(SAMPLE / "area.gpkg"),
        "--factors-dir", str(SAMPLE / "factors"), "--protective", "parks",
        "--block-length", "150", "--out", str(out), *extra,
    ]  # fmt: skip
    if cell_size is not None:
        args += ["--cell-size", cell_size]
    return args + (["--where", where] if where else [])
