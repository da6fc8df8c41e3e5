"""The force-scale case: every London borough x every crime type x a rolling nightly window.

    python -m benchmarks.force                      # serial, then a 2-worker LocalCluster
    python -m benchmarks.force --modes serial --areas 3
    python -m benchmarks.force --outputs risk.tif,forecast.tif,factors.csv   # a lean nightly
    make bench CASES=force

A force refits every area for every crime type every night. This case writes the batch
configuration a force would write for the open London data and runs ``rtm batch`` on it,
serially and on a 2-worker Dask LocalCluster, each from a fresh output folder
(``--force``: nothing is ``unchanged``), and prints jobs per minute of each:

* every borough of ``boroughs.shp``;
* every police.uk crime type with at least 100 events in every borough's fit window, so
  that no job is doomed by too few events;
* the rolling window of the nightly example: fit on the 9 months before the last 3,
  validate on the last 3 against the baselines (the challengers, a research comparison
  that costs most of a job, only with ``--challengers``).

The jobs share the files read and each area's grid and candidate layers
(:mod:`rtm.shared`). Timings are measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.paths import LONDON, RESULTS

#: a crime type joins the force-scale case with at least this many events in every area
MIN_EVENTS = 100
FIT_MONTHS = range(1, 10)  # "last 9 months" before the last 3 of 2022


def crime_types(min_events: int = MIN_EVENTS, areas: list[str] | None = None) -> list[str]:
    """The crime types with at least ``min_events`` in the fit window of every borough."""
    import geopandas as gpd
    import pandas as pd

    events = pd.read_csv(LONDON / "crimes_2022.csv.gz")
    events = events[events["month"].isin(FIT_MONTHS)]
    boroughs = gpd.read_file(LONDON / "boroughs.shp")
    if areas:
        boroughs = boroughs[boroughs["LAD11NM"].isin(areas)]
    points = gpd.GeoDataFrame(
        events,
        geometry=gpd.points_from_xy(events["longitude"], events["latitude"]),
        crs="EPSG:4326",
    ).to_crs(boroughs.crs)
    joined = gpd.sjoin(points, boroughs, predicate="within")
    table = joined.groupby(["LAD11NM", "type"]).size().unstack(fill_value=0)
    table = table.reindex(boroughs["LAD11NM"], fill_value=0)
    return sorted(str(t) for t in table.columns if int(table[t].min()) >= min_events)


def borough_names() -> list[str]:
    import pyogrio

    frame = pyogrio.read_dataframe(LONDON / "boroughs.shp", read_geometry=False)
    return sorted(str(name) for name in frame["LAD11NM"])


def write_config(
    folder: Path,
    areas: list[str],
    types: list[str],
    *,
    challengers: bool = False,
    outputs: list[str] | None = None,
) -> Path:
    """The nightly configuration of the force-scale case, in ``folder``."""
    crimes = "".join(
        f'\n[[crime_types]]\nname = "{name}"\nwhere = ["type={name}"]\n' for name in types
    )
    names = ", ".join(json.dumps(a) for a in areas)
    text = f"""# force-scale benchmark: every borough x crime type x a rolling nightly window
[analysis]
events = "{LONDON / "crimes_2022.csv.gz"}"
factors_dir = "{LONDON / "factors"}"
block_length = 200
cell_size = 100
seed = 0
challengers = {str(challengers).lower()}
{"" if outputs is None else f"outputs = {json.dumps(outputs)}"}

[areas]
file = "{LONDON / "boroughs.shp"}"
name_column = "LAD11NM"
names = [{names}]
{crimes}
[periods]
date_column = "month"
reference = 12
test = "last 3 months"
fit = "last 9 months"
"""
    path = folder / "force.toml"
    path.write_text(text)
    return path


def run_mode(config: Path, out: Path, workers: int | None) -> dict[str, Any]:
    """One ``rtm batch`` of the configuration; its wall time and jobs per minute."""
    from rtm.batch import run_batch

    start = time.perf_counter()
    summary = run_batch(config, out, workers=workers, force=True)
    wall = time.perf_counter() - start
    statuses: dict[str, int] = {}
    for outcome in summary.outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    jobs = len(summary.outcomes)
    return {
        "workers": workers,
        "jobs": jobs,
        "statuses": statuses,
        "wall_s": wall,
        "jobs_per_minute": 60.0 * jobs / wall,
        "job_median_s": sorted(o.duration for o in summary.outcomes)[jobs // 2],
    }


def measure(
    modes: tuple[str, ...] = ("serial", "dask2"),
    n_areas: int | None = None,
    *,
    challengers: bool = False,
    outputs: list[str] | None = None,
) -> dict[str, Any]:
    """Run the force-scale case in each mode; the record written to results/force.json."""
    if not (LONDON / "boroughs.shp").exists():
        return {"skipped": f"{LONDON} is absent (the London data sit next to the repository)"}
    areas = borough_names()[:n_areas] if n_areas else borough_names()
    types = crime_types(areas=areas)
    record: dict[str, Any] = {
        "areas": areas,
        "crime_types": types,
        "challengers": challengers,
        "outputs": "all" if outputs is None else outputs,
        "modes": {},
    }
    print(f"  {len(areas)} areas x {len(types)} crime types x 1 window", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), areas, types, challengers=challengers, outputs=outputs)
        for mode in modes:
            workers = None if mode == "serial" else int(mode.removeprefix("dask"))
            result = run_mode(config, Path(tmp) / f"out-{mode}", workers)
            record["modes"][mode] = result
            print(
                f"  {mode}: {result['jobs']} jobs in {result['wall_s']:.1f} s, "
                f"{result['jobs_per_minute']:.1f} jobs/minute {result['statuses']}",
                flush=True,
            )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="serial,dask2", help="serial, daskN (comma-separated)")
    parser.add_argument("--areas", type=int, default=None, help="only the first N boroughs")
    parser.add_argument(
        "--challengers", action="store_true", help="also score the challengers in each job"
    )
    parser.add_argument(
        "--outputs", default=None, help="the files each job writes (rtm analyze --outputs)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "force.json")
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    outputs = None if args.outputs is None else args.outputs.split(",")
    from benchmarks.run import _machine

    machine = _machine()  # (the load: timings on a shared host vary by a third)
    record = measure(modes, args.areas, challengers=args.challengers, outputs=outputs)
    if "skipped" in record:
        print(f"skipped: {record['skipped']}", file=sys.stderr)
        return 0
    record["machine"] = machine
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
