"""Benchmarks of rtm at scale: per-stage wall time and peak memory, one subprocess per case.

Usage::

    python -m benchmarks.run                       # every case
    python -m benchmarks.run --cases sample,london100 --repeats 3
    make bench CASES=sample,london100

Each case runs in a fresh Python process (its own peak RSS, from
``resource.getrusage``). A warm-up run first loads (or compiles) the numba
kernels (for the generated-city cases on a 50,000-cell city, so that a run of
minutes is not doubled); it is reported separately as ``first_run_s`` and the
medians exclude it. Results go to ``benchmarks/results/<case>.json``; ``--plot`` redraws
``docs/scaling.png`` from them. Timings are measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.paths import LONDON, RESULTS, ROOT

STAGES = ("read_and_grid", "layers", "culling", "stepwise", "outputs")

#: case -> (kind, parameters, default repeats)
CASES: dict[str, tuple[str, dict[str, Any], int]] = {
    "sample": ("sample", {}, 3),
    "london100": ("london", {"cell_size": 100.0}, 3),
    "london50": ("london", {"cell_size": 50.0}, 3),
    "london25": ("london", {"cell_size": 25.0}, 2),
    "synth1m": ("synthetic", {"n_cells": 1_000_000}, 2),
    "synth4m": ("synthetic", {"n_cells": 4_000_000}, 1),
    "glmnet_london100": ("glmnet", {"source": "london", "cell_size": 100.0}, 1),
    "glmnet_synth1m": ("glmnet", {"source": "synthetic", "n_cells": 1_000_000}, 1),
    # start-up: python -X importtime, imports by stage (benchmarks/startup.py)
    "startup": ("startup", {}, 7),
    # every London borough x crime type x a nightly window, serial and 2 workers (force.py)
    "force": ("force", {}, 1),
}
DEFAULT_CASES = ("startup", "sample", "london100", "london50", "london25", "synth1m", "synth4m")


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB.

    Linux's ``VmHWM`` is the peak of this program's own memory; ``getrusage``'s
    ``ru_maxrss`` survives ``exec`` and so also counts the parent's memory at the fork
    (a benchmark or test run started from a large process would report the parent's peak).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------
# one run of each kind (in the child process)
# ---------------------------------------------------------------------------


def _file_inputs(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The inputs of a case read from files, as ``rtm.api.analyze`` keywords.

    Stated once: the in-process runs pass them to ``analyze`` and the shell runs
    spell them as ``rtm analyze`` options (:func:`_cli_command`), so both time the
    same analysis.
    """
    if kind == "sample":
        sample = ROOT / "sample_data"
        return {
            "events": sample / "crimes.csv",
            "area": sample / "area.gpkg",
            "factors_dir": sample / "factors",
            "protective": ["parks"],
            "where": ["type=robbery"],
            "block_length": 150,
        }
    return {
        "events": LONDON / "crimes_2022.csv.gz",
        "area": LONDON / "study_area.shp",
        "factors_dir": LONDON / "factors",
        "where": ["type=robbery", "month=1..6"],
        "block_length": 200,
        "cell_size": params["cell_size"],
    }


def _file_run(
    kind: str, params: dict[str, Any], out: Path
) -> tuple[dict[str, float], dict[str, Any]]:
    from rtm.api import analyze

    result = analyze(**_file_inputs(kind, params), out=out, overwrite=True)
    return dict(result.timings), _shape(result)


def _sample_run(out: Path) -> tuple[dict[str, float], dict[str, Any]]:
    return _file_run("sample", {}, out)


def _london_run(out: Path, cell_size: float) -> tuple[dict[str, float], dict[str, Any]]:
    return _file_run("london", {"cell_size": cell_size}, out)


def _synthetic_run(out: Path, n_cells: int) -> tuple[dict[str, float], dict[str, Any]]:
    from benchmarks.scale_city import generate
    from rtm.export.atomic import atomic_dir
    from rtm.export.run import write_run
    from rtm.model import RiskTerrainModel
    from rtm.runs import report_from_fit

    city = generate(n_cells)
    result = RiskTerrainModel().fit(city.candidates, city.counts).result_
    timings = dict(result.timings)
    timings["read_and_grid"] = city.seconds["grid"]
    timings["layers"] = city.seconds["layers"]
    start = time.perf_counter()
    report = report_from_fit(result)
    with atomic_dir(out, overwrite=True) as folder:
        write_run(folder, result, report)
    timings["outputs"] = time.perf_counter() - start
    shape = _shape(result)
    shape["planted"] = list(city.planted)
    return timings, shape


def _cli_command(kind: str, params: dict[str, Any], out: Path) -> list[str]:
    """The ``rtm analyze`` command line of a case read from files."""
    rtm = Path(sys.executable).with_name("rtm")
    command = [str(rtm)] if rtm.exists() else [sys.executable, "-m", "rtm_cli.main"]
    inputs = _file_inputs(kind, params)
    command += ["analyze", str(inputs.pop("events"))]
    for key, value in inputs.items():
        flag = "--" + key.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            command += [flag, f"{item:g}" if isinstance(item, float) else str(item)]
    return [*command, "--out", str(out), "--overwrite", "--quiet"]


def _measure_cli(kind: str, params: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Wall time of ``rtm analyze`` as a user runs it: a new process each time.

    Unlike the in-process runs this includes Python's start, the imports, numba's
    loading of its cached kernels and the exit. A first run (which may refresh the
    numba cache and writes the bytecode) is not counted.
    """
    # An installed package has its bytecode compiled (pip does it at install time); an
    # editable install writes it on first import, unless PYTHONDONTWRITEBYTECODE forbids
    # it, and then every run would compile rtm's sources again (about 0.05 s here).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        command = _cli_command(kind, params, Path(tmp) / "run")
        times = []
        for index in range(repeats + 1):
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                message = proc.stderr.strip().splitlines()[-1:] or ["no message"]
                raise RuntimeError(f"rtm analyze failed (exit {proc.returncode}): {message[0]}")
            if index:
                times.append(elapsed)
            print(
                f"  rtm analyze, run {index}{' (warm-up)' if index == 0 else ''}: {elapsed:.2f} s",
                flush=True,
            )
    # (no peak RSS: getrusage's children maximum includes each child's memory between
    # fork and exec, i.e. this process's own; the in-process peak stands for the run)
    return {
        "median_s": statistics.median(times),
        "runs_s": times,
        "command": " ".join(command),
    }


#: shell runs of ``rtm analyze`` per case read from files (the generated cities have none)
_CLI_REPEATS = 5


def _shape(result: Any) -> dict[str, Any]:
    candidates = result.candidates
    return {
        "cells": int(candidates.grid.n_active),
        "candidates": len(candidates.candidates),
        "survivors": len(result.cull_result.survivors),
        "selected": [f.candidate for f in result.factors],
        "distribution": result.distribution,
    }


#: cells of the warm-up run of the generated-city cases
_SMALL_WARM_UP = 50_000


def _measure(kind: str, params: dict[str, Any], repeats: int) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        for index in range(repeats + 1):
            start = time.perf_counter()
            if kind == "sample":
                timings, shape = _sample_run(out)
            elif kind == "london":
                timings, shape = _london_run(out, params["cell_size"])
            elif index == 0 and params["n_cells"] > _SMALL_WARM_UP:
                # the warm-up only loads the kernels: a full-size one would double a
                # run of minutes, so it runs on a small city (its time is reported)
                timings, shape = _synthetic_run(out, _SMALL_WARM_UP)
            else:
                timings, shape = _synthetic_run(out, params["n_cells"])
            timings["end_to_end"] = time.perf_counter() - start
            runs.append(timings)
            print(
                f"  run {index}{' (warm-up)' if index == 0 else ''}: "
                + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()),
                flush=True,
            )
    measured = runs[1:]
    return {
        **shape,
        "first_run_s": runs[0]["end_to_end"],
        "median_s": {k: statistics.median(r[k] for r in measured) for k in measured[0]},
        "runs_s": measured,
    }


def _child(case: str, repeats: int) -> dict[str, Any]:
    kind, params, _ = CASES[case]
    if kind in ("london", "glmnet") and params.get("source", "london") == "london":
        if not LONDON.exists():
            return {"skipped": f"{LONDON} is absent (the London data sit next to the repository)"}
    if kind == "startup":
        from benchmarks.startup import measure

        return measure(repeats)
    if kind == "force":
        from benchmarks.force import measure as measure_force

        return measure_force()
    if kind == "glmnet":
        from benchmarks.glmnet_peer import compare

        record = compare(params)
    else:
        record = _measure(kind, params, repeats)
    record["peak_rss_mb"] = peak_rss_mb()
    if kind in ("sample", "london"):
        record["cli"] = _measure_cli(kind, params, max(repeats, _CLI_REPEATS))
    return record


# ---------------------------------------------------------------------------
# parent: one subprocess per case, results, plot
# ---------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load,
    }


def _print_table(records: dict[str, dict[str, Any]]) -> None:
    header = f"{'case':<18}{'cells':>10}{'cand':>6}" + "".join(f"{s[:9]:>10}" for s in STAGES)
    print(header + f"{'total':>9}{'RSS MB':>9}{'shell':>9}")
    for case, record in records.items():
        if "skipped" in record or "median_s" not in record:
            continue
        med = record["median_s"]
        stages = "".join(f"{med.get(s, float('nan')):>10.2f}" for s in STAGES)
        shell = record.get("cli", {}).get("median_s")
        print(
            f"{case:<18}{record['cells']:>10,}{record['candidates']:>6}{stages}"
            f"{med['end_to_end']:>9.2f}{record['peak_rss_mb']:>9.0f}"
            + (f"{shell:>9.2f}" if shell is not None else f"{'-':>9}")
        )
    print(
        "total: in-process wall time of a warm run (imports and numba kernels loaded); "
        "shell: `rtm analyze` in a new process (median), imports and kernel loading included"
    )


def _print_extras(records: dict[str, dict[str, Any]]) -> None:
    """The cases that are not one analysis: start-up and the force-scale batch."""
    if "first_work_s" in records.get("startup", {}):
        from benchmarks.startup import print_record

        print()
        print_record(records["startup"])
    force = records.get("force", {})
    for mode, result in force.get("modes", {}).items():
        print(
            f"force-scale ({len(force['areas'])} areas x {len(force['crime_types'])} crime "
            f"types x 1 window), {mode}: {result['jobs']} jobs in {result['wall_s']:.1f} s, "
            f"{result['jobs_per_minute']:.1f} jobs/minute"
        )


def plot(results: Path = RESULTS, out: Path = ROOT / "docs" / "scaling.png") -> Path | None:
    """Draw end-to-end and per-stage time against cells x candidates (log-log)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)")
        return None
    points = []
    for path in sorted(results.glob("*.json")):
        record = json.loads(path.read_text())
        if "median_s" in record and "cells" in record:
            points.append((record["cells"] * record["candidates"], record["median_s"], path.stem))
    if not points:
        return None
    points.sort(key=lambda p: p[0])
    size = [p[0] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for stage in (*STAGES, "end_to_end"):
        ax.plot(size, [p[1].get(stage, float("nan")) for p in points], marker="o", label=stage)
    ref = points[-1][1]["end_to_end"] / size[-1]
    ax.plot(size, [ref * s for s in size], "k--", lw=0.8, label="linear (through largest)")
    for s, p in zip(size, points, strict=True):
        ax.annotate(
            p[2], (s, p[1]["end_to_end"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cells x candidates")
    ax.set_ylabel("wall time, s (median)")
    ax.set_title("rtm cost against problem size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot written to {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases, each in its own process, and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help="comma-separated")
    parser.add_argument("--repeats", type=int, default=None, help="measured runs per case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--plot", action="store_true", help="only redraw docs/scaling.png")
    args = parser.parse_args(argv)
    if args.child:
        repeats = args.repeats or CASES[args.child][2]
        print(json.dumps(_child(args.child, repeats)))
        return 0
    if args.plot:
        plot()
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, Any]] = {}
    for case in cases:
        print(f"== {case}", flush=True)
        command = [sys.executable, "-m", "benchmarks.run", "--child", case]
        if args.repeats:
            command += ["--repeats", str(args.repeats)]
        proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
        lines = proc.stdout.strip().splitlines()
        for line in lines[:-1]:
            print(line)
        if proc.returncode != 0 or not lines:
            print(f"  {case} failed (exit {proc.returncode})")
            continue
        record = json.loads(lines[-1])
        record["machine"] = _machine()
        records[case] = record
        if "skipped" in record:
            print(f"  skipped: {record['skipped']}")
            continue
        (RESULTS / f"{case}.json").write_text(json.dumps(record, indent=2) + "\n")
    print()
    _print_table(records)
    _print_extras(records)
    plot()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
