"""`rtm batch`: configuration errors, nightly-job semantics, and a real Dask LocalCluster."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from rtm.batch import load_config, run_batch
from rtm.errors import OutputError, ParameterError
from tests.conftest import run_rtm


def _config(
    tmp_path: Path,
    sample: Path,
    *,
    crimes: str | None = None,
    periods: str | None = None,
    extra: str = "",
) -> Path:
    crimes = (
        crimes
        or """
[[crime_types]]
name = "robbery"
where = ["type=robbery"]

[[crime_types]]
name = "burglary"
where = ["type=burglary"]
"""
    )
    periods = (
        periods
        or """
[periods]
date_column = "month"
reference = 12
test = "last 6 months"
fit = "last 6 months"
"""
    )
    text = f"""# rtm batch test configuration
[analysis]
events = "{sample / "crimes.csv"}"
factors_dir = "{sample / "factors"}"
protective = ["parks"]
block_length = 150
{extra}
[areas]
file = "{sample / "area.gpkg"}"
{crimes}
{periods}
"""
    path = tmp_path / "nightly.toml"
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "mutation,message",
    [
        (
            ("block_length = 150", 'block_length = "wide"'),
            "line 6: analysis.block_length: --block-length must be a positive number of metres",
        ),
        (
            ("block_length = 150", "block_length = 150\ncolour = 3"),
            "line 7: analysis.colour: unknown option",
        ),
        (("block_length = 150", ""), "analysis: missing required option 'block_length'"),
        (
            ('test = "last 6 months"', 'test = "the summer"'),
            'periods.test: must read like "last 6 months"',
        ),
        (("reference = 12", "reference = 13"), "periods.reference: a month number must be 1..12"),
        (
            ('name = "burglary"', 'name = "robbery"'),
            "crime_types: names must be unique; repeated: robbery",
        ),
        (("[areas]", "[area]"), "unknown section [area]"),
        (("block_length = 150", "block_length = ["), "not valid TOML"),
    ],
)
def test_config_errors_name_the_key_and_line(
    tmp_path: Path, sample_dir: Path, mutation, message: str
) -> None:
    path = _config(tmp_path, sample_dir)
    text = path.read_text()
    assert mutation[0] in text
    path.write_text(text.replace(mutation[0], mutation[1], 1))
    with pytest.raises(ParameterError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_relative_periods(tmp_path: Path, sample_dir: Path) -> None:
    config = load_config(_config(tmp_path, sample_dir))
    (period,) = config.periods
    assert period.fit_where == ("month=1..6",) and period.test_where == ("month=7..12",)
    dated = _config(
        tmp_path,
        sample_dir,
        periods=(
            '[periods]\ndate_column = "date"\nreference = "2023-02"\n'
            'fit = "last 12 months"\ntest = "last month"\n'
        ),
    )
    (period,) = load_config(dated).periods
    assert period.fit_where == ("date=2022-02..2023-01",)
    assert period.test_where == ("date=2023-02..2023-02",)


def test_relative_paths_resolve_against_the_config(tmp_path: Path, sample_dir: Path) -> None:
    path = _config(tmp_path, sample_dir)
    path.write_text(path.read_text().replace(f'"{sample_dir / "crimes.csv"}"', '"data/crimes.csv"'))
    config = load_config(path)
    assert config.analysis["events"] == str((tmp_path / "data" / "crimes.csv").resolve())


# ----------------------------------------------------------------------------- runs


def _periods_list() -> str:
    return """
[[periods]]
name = "h1"
fit_where = ["month=1..6"]

[[periods]]
name = "h2"
fit_where = ["month=7..12"]
"""


def test_serial_batch_skips_unchanged_and_recomputes_changed(
    tmp_path: Path, sample_dir: Path
) -> None:
    import shutil

    city = tmp_path / "city"
    shutil.copytree(sample_dir, city)
    config = _config(tmp_path, city, periods=_periods_list())
    out = tmp_path / "out"
    first = run_batch(config, out)
    assert [o.status for o in first.outcomes] == ["ok"] * 4
    assert {o.job for o in first.outcomes} == {
        "area-robbery-h1",
        "area-robbery-h2",
        "area-burglary-h1",
        "area-burglary-h2",
    }
    summary = json.loads((out / "batch.json").read_text())
    assert summary["jobs"] == 4 and summary["failed"] == 0
    report = json.loads((out / "jobs" / "area-robbery-h1" / "report.json").read_text())
    assert [c["label"] for c in report["inputs"]["where"]] == ["type=robbery", "month=1..6"]
    assert report["inputs"]["events"] == first.outcomes[0].events
    risk_before = (out / "jobs" / "area-robbery-h1" / "risk.tif").stat().st_mtime_ns

    second = run_batch(config, out)
    assert [o.status for o in second.outcomes] == ["unchanged"] * 4
    assert [o.factors for o in second.outcomes] == [o.factors for o in first.outcomes]
    assert (out / "jobs" / "area-robbery-h1" / "risk.tif").stat().st_mtime_ns == risk_before

    # a changed input is noticed through its content, and every job depending on it reruns
    crimes = (city / "crimes.csv").read_text().splitlines()
    (city / "crimes.csv").write_text("\n".join(crimes[:-1]) + "\n")
    third = run_batch(config, out)
    assert [o.status for o in third.outcomes] == ["ok"] * 4

    forced = run_batch(config, out, force=True)
    assert [o.status for o in forced.outcomes] == ["ok"] * 4
    log = [json.loads(line) for line in (out / "batch.log.jsonl").read_text().splitlines()]
    assert sum(1 for r in log if r["event"] == "batch_start") == 4
    assert sum(1 for r in log if r["event"] == "job_end") == 16


def test_a_failing_job_does_not_stop_the_others(tmp_path: Path, sample_dir: Path) -> None:
    crimes = """
[[crime_types]]
name = "robbery"
where = ["type=robbery"]

[[crime_types]]
name = "arson"
where = ["type=arson"]
"""
    config = _config(tmp_path, sample_dir, crimes=crimes)
    out = tmp_path / "out"
    result = run_rtm("batch", config, "--out", out)
    assert result.returncode == 7, result.stderr
    assert "1 of 2 jobs failed" in result.stderr and "Traceback" not in result.stderr
    rows = (out / "batch.csv").read_text().splitlines()
    assert rows[1].startswith("area-robbery-") and ",ok," in rows[1]
    assert (
        rows[2].startswith("area-arson-")
        and ",failed," in rows[2]
        and "no event matches" in rows[2]
    )
    assert not (out / "jobs" / rows[2].split(",")[0]).exists()


def test_a_failed_rerun_keeps_last_nights_outputs(tmp_path: Path, sample_dir: Path) -> None:
    config = _config(
        tmp_path, sample_dir, crimes='[[crime_types]]\nname = "robbery"\nwhere = ["type=robbery"]\n'
    )
    out = tmp_path / "out"
    assert run_batch(config, out).outcomes[0].status == "ok"
    job = out / "jobs" / "area-robbery-last6m-test6m"
    validation = json.loads((job / "validation.json").read_text())
    assert validation["run"] == str(job)  # the final folder, not the temporary it was built in
    assert 0.5 < validation["auc"] <= 1 and (job / "capture.png").exists()
    before = (job / "report.json").read_bytes()
    config.write_text(
        config.read_text().replace(
            'where = ["type=robbery"]', 'where = ["type=robbery", "month=13..14"]'
        )
    )
    again = run_batch(config, out)
    assert again.outcomes[0].status == "failed"
    assert (job / "report.json").read_bytes() == before
    assert sorted(p.name for p in (out / "jobs").iterdir()) == [job.name]  # no temporary left


def test_overlapping_runs_are_refused(tmp_path: Path, sample_dir: Path) -> None:
    config = _config(tmp_path, sample_dir)
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".rtm-batch.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("pid 12345")
        handle.flush()
        with pytest.raises(OutputError, match="another rtm batch is running"):
            run_batch(config, out)
        result = run_rtm("batch", config, "--out", out)
        assert result.returncode == 5 and "another rtm batch is running" in result.stderr


# ----------------------------------------------------------------------------- Dask


def test_local_cluster_survives_a_killed_worker_and_matches_serial(
    tmp_path: Path, sample_dir: Path
) -> None:
    from dask.distributed import Client, LocalCluster

    config = _config(tmp_path, sample_dir, periods=_periods_list())
    serial = run_batch(config, tmp_path / "serial")
    assert all(o.status == "ok" for o in serial.outcomes)

    cluster = LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    try:
        pids = client.run(os.getpid)
        out = tmp_path / "dask"
        box: dict[str, object] = {}
        runner = threading.Thread(
            target=lambda: box.update(
                summary=run_batch(config, out, scheduler=cluster.scheduler_address)
            )
        )
        runner.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            busy = [
                address for address, keys in client.processing().items() if keys and address in pids
            ]
            if busy:
                victim = busy[0]
            else:
                time.sleep(0.05)
        assert victim is not None, "no worker ever started a job"
        os.kill(pids[victim], signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
    finally:
        client.close()
        cluster.close()
    summary = box["summary"]
    outcomes = summary.outcomes  # type: ignore[attr-defined]
    assert [o.status for o in outcomes] == ["ok"] * 4, [o.error for o in outcomes]
    log = [json.loads(line) for line in (out / "batch.log.jsonl").read_text().splitlines()]
    ended = [r["job"] for r in log if r["event"] == "job_end"]
    assert sorted(ended) == sorted(
        o.job for o in serial.outcomes
    )  # each job completed exactly once
    for outcome in serial.outcomes:
        for name in ("report.json", "factors.csv", "risk.tif"):
            a = tmp_path / "serial" / "jobs" / outcome.job / name
            b = out / "jobs" / outcome.job / name
            assert a.read_bytes() == b.read_bytes(), f"{outcome.job}/{name}"
    assert not [p for p in (out / "jobs").iterdir() if p.name.startswith(".")]


def test_outputs_in_the_configuration_choose_each_jobs_files(
    tmp_path: Path, sample_dir: Path
) -> None:
    """A nightly refit that writes only its rasters (plus the record); asking for more
    outputs later reruns the jobs (the choice is part of what makes a job unchanged)."""
    lean = 'challengers = false\noutputs = ["risk.tif", "forecast.tif"]'
    config = _config(tmp_path, sample_dir, extra=lean)
    out = tmp_path / "out"
    first = run_batch(config, out)
    assert [o.status for o in first.outcomes] == ["ok"] * 2
    for outcome in first.outcomes:
        files = sorted(p.name for p in (out / "jobs" / outcome.job).iterdir())
        files = [name for name in files if not name.startswith(".")]
        assert files == [
            "cells.gpkg",
            "forecast.tif",
            "job.json",  # the batch's record of the job
            "report.json",
            "risk.tif",
            "validation.json",
        ], outcome.job
    assert [o.status for o in run_batch(config, out).outcomes] == ["unchanged"] * 2
    config = _config(tmp_path, sample_dir, extra="challengers = false")
    again = run_batch(config, out)
    assert [o.status for o in again.outcomes] == ["ok"] * 2
    assert all((out / "jobs" / o.job / "map.html").is_file() for o in again.outcomes)
