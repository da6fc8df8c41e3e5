"""Golden masters of whole runs: the sample city and London robbery, January-June 2022.

The digests in ``tests/golden/digests.json`` are of the files people use: the model
section of report.json (selection, coefficients, BIC, dispersion, steps), factors.csv,
risk.tif and cells.gpkg (GeoPackages are written with a fixed timestamp, so the same run
gives the same bytes). A refactoring must leave them unchanged; a change of method or
output format regenerates them on purpose (``RTM_REGENERATE_GOLDEN=1``), with the reason
in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, run_rtm

DIGESTS = Path(__file__).parent / "golden" / "digests.json"
FILES = ("factors.csv", "risk.tif", "cells.gpkg")


def digest(run: Path) -> dict[str, str]:
    """sha256 of the model section of report.json and of the files people use."""
    model = json.loads((run / "report.json").read_text())["model"]
    canonical = json.dumps(model, sort_keys=True, separators=(",", ":")).encode()
    out = {"report.json:model": hashlib.sha256(canonical).hexdigest()}
    for name in FILES:
        out[name] = hashlib.sha256((run / name).read_bytes()).hexdigest()
    return out


def _check(case: str, run: Path) -> None:
    current = digest(run)
    stored = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    if os.environ.get("RTM_REGENERATE_GOLDEN") == "1":
        stored[case] = current
        DIGESTS.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    assert case in stored, f"no golden digest for {case}: run with RTM_REGENERATE_GOLDEN=1"
    assert current == stored[case]


def test_sample_city_robbery(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_rtm(
        "analyze", SAMPLE / "crimes.csv", "--area", SAMPLE / "area.gpkg",
        "--factors-dir", SAMPLE / "factors", "--protective", "parks",
        "--where", "type=robbery", "--block-length", "150", "--out", out, "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _check("sample_robbery", out)


@pytest.mark.london
def test_london_robbery_first_half_2022(tmp_path: Path, london_dir: Path) -> None:
    out = tmp_path / "run"
    result = run_rtm(
        "analyze", london_dir / "crimes_2022.csv.gz", "--area", london_dir / "study_area.shp",
        "--factors-dir", london_dir / "factors", "--where", "type=robbery",
        "--where", "month=1..6", "--block-length", "200", "--cell-size", "100",
        "--out", out, "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _check("london_robbery_h1_2022", out)
