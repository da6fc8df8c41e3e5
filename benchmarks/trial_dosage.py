"""Patrol dosage from a million GPS pings: streamed, located in geofences, summed per day.

    python -m benchmarks.trial_dosage                 # 1,000,000 pings
    python -m benchmarks.trial_dosage --pings 4000000

Builds a design of 40 places on the sample city (from a synthetic places layer, no run
needed), writes a pings CSV (``time, lon, lat, unit``; units wandering the city, a share
of pings at places) and times ``rtm.trial.trial_dosage`` on it: reading in chunks,
projection, point-in-geofence (box filter + STRtree), per-place-day sums. Reports the
median of three runs (wall and CPU time) and the peak memory (VmHWM). Results go to
benchmarks/results/trial_dosage.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.paths import RESULTS, ROOT


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pings(design_places: object, crs: str, path: Path, n: int, seed: int) -> None:
    import pandas as pd
    import pyproj
    import shapely

    rng = np.random.default_rng(seed)
    centres = shapely.point_on_surface(np.asarray(design_places, dtype=object))
    cx, cy = shapely.get_x(centres), shapely.get_y(centres)
    at_place = rng.random(n) < 0.2
    which = rng.integers(0, len(cx), n)
    x = np.where(
        at_place, cx[which] + rng.normal(0, 20, n), rng.uniform(cx.min() - 2000, cx.max() + 2000, n)
    )
    y = np.where(
        at_place, cy[which] + rng.normal(0, 20, n), rng.uniform(cy.min() - 2000, cy.max() + 2000, n)
    )
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    units = 50
    seconds = np.sort(rng.integers(0, 28 * 86400, n)) + np.datetime64("2024-07-01", "s").astype(
        np.int64
    )
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(seconds, unit="s").strftime("%Y-%m-%dT%H:%M:%S"),
            "lon": np.round(lon, 6),
            "lat": np.round(lat, 6),
            "unit": [f"u{u:02d}" for u in rng.integers(0, units, n)],
        }
    )
    frame.to_csv(path, index=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import geopandas as gpd
    import pandas as pd
    import shapely

    from rtm.trial import DesignSettings, EventSource, design_trial, trial_dosage

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        crimes = pd.read_csv(ROOT / "sample_data" / "crimes.csv")
        cells = (crimes["x"] // 200).astype(int) * 100_000 + (crimes["y"] // 200).astype(int)
        top = cells.value_counts().index[:120]
        xy = np.column_stack([(top // 100_000) * 200 + 100, (top % 100_000) * 200 + 100])
        gpd.GeoDataFrame(geometry=shapely.points(xy), crs="EPSG:32630").to_file(root / "p.gpkg")
        design = design_trial(
            None,
            root / "design",
            DesignSettings(places=40, seed=1, rings=(50.0,), min_spacing=150.0, place_radius=100.0),
            events=EventSource(file=str(ROOT / "sample_data" / "crimes.csv")),
            place_layer=str(root / "p.gpkg"),
        )
        pings = root / "pings.csv"
        _pings(design.places.geometry.values, "EPSG:32630", pings, args.pings, seed=2)
        size_mb = pings.stat().st_size / 1e6
        times, cpu = [], []
        record = {}
        for repeat in range(args.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            record = trial_dosage(root / "design", pings, root / f"dosage{repeat}")
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        median = statistics.median(times)
        median_cpu = statistics.median(cpu)
        peak = _peak_mb()
    print(f"{args.pings:,} pings ({size_mb:.0f} MB CSV): {median:.2f} s median of {args.repeats} "
          f"(CPU {median_cpu:.2f} s; wall time depends on the machine's load) "
          f"({args.pings / median / 1e6:.2f} M pings/s), peak memory {peak:.0f} MB; "
          f"{record['pings_in_geofences']:,} in geofences")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trial_dosage.json").write_text(
        json.dumps(
            {
                "pings": args.pings,
                "csv_mb": round(size_mb, 1),
                "seconds_median": round(median, 3),
                "cpu_seconds_median": round(median_cpu, 3),
                "seconds_all": [round(t, 3) for t in times],
                "peak_memory_mb": round(peak),
                "pings_in_geofences": record["pings_in_geofences"],
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
