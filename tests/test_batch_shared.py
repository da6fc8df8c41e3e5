"""Work shared across the jobs of a batch (:mod:`rtm.shared`): same bytes, less work.

The jobs of one area share its grid and candidate layers, and every job reads the
events and factor files once; each job's run folder must still be byte for byte what
the same job gives when nothing is shared.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from pathlib import Path

import pytest

from rtm import shared
from rtm.batch import load_config
from rtm.batch.jobs import plan_jobs, run_job
from tests.test_batch import _config


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "job.json"}


def test_shared_jobs_write_the_bytes_of_lone_runs(
    tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two crime types on one area: the second job reuses the first's grid, layers and
    files, and both folders equal, byte for byte, those of the jobs run alone."""
    config = load_config(_config(tmp_path, sample_dir, extra="seed = 3\ncell_size = 150"))
    jobs = plan_jobs(config, tmp_path / "batch")
    assert len(jobs) == 2

    with monkeypatch.context() as patched:  # each job alone: nothing shared, nothing kept
        patched.setattr(shared, "sharing", lambda keep=True: contextlib.nullcontext())
        alone = {job.id: run_job(job) for job in jobs}
        assert shared.stats() == {}
    lone_files = {job.id: _files(Path(job.out_dir)) for job in jobs}
    shutil.rmtree(tmp_path / "batch" / "jobs")

    with shared.sharing(keep=False):
        outcomes = [run_job(job) for job in jobs]
        counts = shared.stats()
    assert shared.stats() == {}, "a serial batch frees what it kept"
    assert [o.status for o in outcomes] == ["ok", "ok"], [o.error for o in outcomes]
    assert counts["grid"] == (1, 1)
    assert counts["candidates"] == (1, 1)
    hits, misses = counts["read"]
    assert misses == 1 + 8  # the events CSV and the 8 factor files (the area came with the job)
    # the second job reads the events again from the first read, and so do each job's
    # test events (the same CSV, for the validation)
    assert hits == 1 + 2
    # the second job gets the 8 factors' features as checked and reprojected for the first
    assert counts["factor"] == (8, 8)

    for job, outcome in zip(jobs, outcomes, strict=True):
        assert outcome.factors == alone[job.id].factors
        assert outcome.auc == alone[job.id].auc
        batch_files = _files(Path(job.out_dir))
        assert batch_files.keys() == lone_files[job.id].keys()
        differ = [n for n in batch_files if batch_files[n] != lone_files[job.id][n]]
        assert differ == [], f"{job.id}: {differ} differ from a lone run"


def test_remember_keeps_values_only_while_sharing() -> None:
    calls: list[int] = []

    def make() -> list[int]:
        calls.append(1)
        return [len(calls)]

    assert shared.remember("grid", "k", make) == [1]
    assert shared.remember("grid", "k", make) == [2]  # nothing kept outside sharing
    with shared.sharing(keep=False):
        first = shared.remember("grid", "k", make)
        assert shared.remember("grid", "k", make) is first
        assert shared.stats()["grid"] == (1, 1)
    assert shared.stats() == {}


def test_remember_raises_the_warnings_again_and_never_keeps_an_error() -> None:
    def noisy() -> str:
        warnings.warn("factor 'bars': 2 invalid geometries were repaired", UserWarning, 2)
        return "value"

    def failing() -> str:
        raise ValueError("unreadable")

    with shared.sharing(keep=False):
        for _ in range(2):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert shared.remember("read", "w", noisy) == "value"
            assert [str(w.message) for w in caught] == [
                "factor 'bars': 2 invalid geometries were repaired"
            ]
        for _ in range(2):
            with pytest.raises(ValueError, match="unreadable"):
                shared.remember("read", "e", failing)
        assert shared.stats()["read"] == (1, 1)


def test_limits_drop_the_least_recently_used(monkeypatch) -> None:
    monkeypatch.setitem(shared.LIMITS, "candidates", 2)
    with shared.sharing(keep=False):
        for key in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
            shared.remember("candidates", key, lambda k=key: k)
        made: list[str] = []
        shared.remember("candidates", "b", lambda: made.append("b") or "b")
        shared.remember("candidates", "a", lambda: made.append("a") or "a")
    assert made == ["b", "a"]  # "b" was dropped for "c", then "a" for "b"


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("x,y\n1,2\n")
    before = shared.file_key(path)
    path.write_text("x,y\n1,2\n3,4\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert shared.file_key(path) != before
