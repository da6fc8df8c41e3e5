"""Start-up of ``rtm analyze``: how soon it reaches its first work, and what each stage imports.

    python -m benchmarks.startup            # 7 fresh interpreters per figure
    make bench CASES=startup

Three figures, each the median over fresh interpreters (nothing cached in memory but the
operating system's file cache):

* ``python_s``: the interpreter alone (``python -c pass``), the floor;
* ``first_work_s``: the interpreter plus everything ``rtm analyze`` imports before its
  first stage starts reading (the CLI, the study specification, the workflow module);
* ``stages_s``: in one fresh interpreter, the imports of each stage in the order a run
  meets them (read: geopandas, pyogrio; layers: numba and the layer kernels; fit: the
  model and selection, scipy.special; outputs: matplotlib, rasterio, the renderers).

``importtime`` lists the slowest modules of a whole sample-city ``rtm analyze`` by
cumulative import time (``python -X importtime``). Measured, never asserted; compare old
and new code by running this module with each on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.paths import RESULTS, ROOT
from rtm.export.run import PREFETCH

#: the modules of each stage, imported in this order by a run
STAGES: dict[str, tuple[str, ...]] = {
    "command": ("rtm_cli.main", "rtm_cli.analyze", "rtm.spec", "rtm.api"),
    "read": ("rtm.study", "pyogrio"),
    "layers": (
        "rtm.layers.candidates",
        "rtm.layers.operationalizations.proximity",
        "rtm.layers.operationalizations.density",
        "rtm._kernels.design",
    ),
    "fit": ("rtm.model", "rtm.diagnostics", "rtm.stability"),
    # what the run's prefetch thread imports beside the fit, then the writer's raster module
    "outputs": ("rtm.export.run", *PREFETCH["outputs"], "rtm.export.raster"),
}

_STAGE_CODE = """
import importlib, json, sys, time
stages = json.loads(sys.argv[1])
out = {}
for stage, modules in stages.items():
    start = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    out[stage] = time.perf_counter() - start
print(json.dumps(out))
"""


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def _median_wall(command: list[str], repeats: int) -> float:
    _wall(command)  # warm-up: bytecode and the file cache
    return statistics.median(_wall(command) for _ in range(repeats))


def stage_imports(repeats: int) -> dict[str, float]:
    """Median import time of each stage, stages imported in order in fresh interpreters."""
    runs = []
    for index in range(repeats + 1):
        proc = subprocess.run(
            [sys.executable, "-c", _STAGE_CODE, json.dumps(STAGES)],
            check=True,
            capture_output=True,
            text=True,
        )
        if index:
            runs.append(json.loads(proc.stdout))
    return {stage: statistics.median(r[stage] for r in runs) for stage in STAGES}


def importtime_profile(top: int = 15) -> list[tuple[str, float]]:
    """The slowest imports (cumulative seconds) of a whole sample-city ``rtm analyze``."""
    sample = ROOT / "sample_data"
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "rtm_cli.main",
            "analyze",
            str(sample / "crimes.csv"),
            "--area",
            str(sample / "area.gpkg"),
            "--factors-dir",
            str(sample / "factors"),
            "--protective",
            "parks",
            "--where",
            "type=robbery",
            "--block-length",
            "150",
            "--out",
            str(Path(tmp) / "run"),
            "--quiet",
        ]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and not name.startswith("   "):  # top level only
            rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda row: -row[1])[:top]


def measure(repeats: int = 7) -> dict[str, Any]:
    """Every figure of the module notes."""
    python = _median_wall([sys.executable, "-c", "pass"], repeats)
    first = _median_wall([sys.executable, "-c", "import " + ", ".join(STAGES["command"])], repeats)
    return {
        "python_s": python,
        "first_work_s": first,
        "stages_s": stage_imports(repeats),
        "importtime": importtime_profile(),
    }


def print_record(record: dict[str, Any]) -> None:
    """The start-up figures as a short table."""
    print(
        f"start-up: python {record['python_s']:.3f} s; `rtm analyze` reaches its first "
        f"stage at {record['first_work_s']:.3f} s"
    )
    print(
        "  imports by stage, in run order: "
        + ", ".join(f"{stage} {seconds:.3f} s" for stage, seconds in record["stages_s"].items())
    )
    print("  slowest top-level imports of a sample-city run (cumulative, -X importtime):")
    for name, seconds in record["importtime"]:
        print(f"    {name:<40}{seconds:>8.3f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "startup.json")
    args = parser.parse_args(argv)
    record = measure(args.repeats)
    print_record(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
