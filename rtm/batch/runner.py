"""Run every job of a batch configuration: serially, on a LocalCluster, or on a Dask cluster.

Nightly-job semantics:

* one output folder per job (``OUT/jobs/<job id>/``) and a summary (``batch.json``,
  ``batch.csv``);
* a job whose inputs, configuration and rtm version have not changed since its last
  complete run is not recomputed (status ``unchanged``);
* every job folder is written under a temporary name and swapped in only when
  complete, so a crash or kill never leaves a half-written map or report, and the
  previous night's outputs stay until the new ones are complete;
* structured logs, one JSON object per line, in ``OUT/batch.log.jsonl``;
* a lock (``OUT/.rtm-batch.lock``) so two overlapping runs cannot corrupt each other;
* the exit code is 0 when every job succeeded, 7 when any failed (the others still
  complete).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtm._version import __version__
from rtm.batch.config import BatchConfig, load_config
from rtm.batch.jobs import Job, JobOutcome, plan_jobs, run_job
from rtm.errors import OutputError, ParameterError

__all__ = ["BatchSummary", "run_batch"]


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of a batch run."""

    outcomes: tuple[JobOutcome, ...]
    duration: float
    out: Path

    @property
    def failed(self) -> tuple[JobOutcome, ...]:
        """The jobs that failed."""
        return tuple(o for o in self.outcomes if not o.succeeded)


# --------------------------------------------------------------------------- planning


# --------------------------------------------------------------------------- one job


# --------------------------------------------------------------------------- the batch


def _prepare_out(out: Path) -> None:
    """Make (or check) the batch folder: new, empty, or one rtm batch wrote; never a user's."""
    from rtm.export.atomic import check_writable
    from rtm.export.ownership import folder_is_rtms, foreign_entries, listing, mark_folder

    if out.exists() and out.is_dir() and any(out.iterdir()):
        foreign = foreign_entries(out)
        if foreign or (folder_is_rtms(out) and not folder_is_rtms(out, kind="batch")):
            shown = listing(foreign or ["an rtm run"])
            raise OutputError(
                f"--out {out}: the folder holds files rtm batch did not write ({shown}); rtm "
                "never writes into such a folder: choose a new folder for the batch"
            )
    else:
        check_writable(out, overwrite=True, what="--out", folder=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        mark_folder(out, "batch")
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot be written ({exc.strerror or exc})") from exc


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    import fcntl

    _prepare_out(out)
    path = out / ".rtm-batch.lock"
    try:
        handle = open(path, "a+")
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot be written ({exc.strerror or exc})") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OutputError(f"--out {out}: another rtm batch is running on it ({holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class _Log:
    """Structured log: one JSON object per line."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None) -> None:
        self.path = path
        self.echo = echo

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields}
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, default=str) + "\n")
        except OSError as exc:
            raise OutputError(
                f"--out {self.path.parent}: cannot write {self.path.name} ({exc.strerror or exc})"
            ) from exc
        if self.echo is not None:
            detail = ", ".join(
                f"{k}={v}"
                for k, v in fields.items()
                if k not in {"output"} and v not in (None, "", ())
            )
            self.echo(f"{event}: {detail}")


def run_batch(
    config_path: str | Path,
    out: str | Path | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    on_job: Callable[[JobOutcome, int, int], None] | None = None,
) -> BatchSummary:
    """Run every job of a configuration.

    Parameters
    ----------
    config_path : path
        The TOML configuration (see :mod:`rtm.batch.config`).
    out : path, optional
        Output folder; default ``<config stem>-runs`` beside the configuration.
    workers : int, optional
        Start a Dask LocalCluster with this many worker processes.
    scheduler : str, optional
        Address of an existing dask.distributed scheduler (``tcp://host:port``).
    force : bool
        Recompute every job even when its inputs have not changed.
    progress : callable, optional
        Receives a line per job event.
    on_job : callable, optional
        Called as each job ends, ``on_job(outcome, done, total)`` (``rtm batch`` prints a
        line per job with it).
    """
    config = load_config(config_path)
    if workers is not None and scheduler is not None:
        raise ParameterError(
            "--workers and --scheduler exclude each other: "
            "start a LocalCluster or use an existing one"
        )
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be at least 1, got {workers}")
    out_dir = (
        Path(out) if out is not None else config.path.resolve().parent / f"{config.path.stem}-runs"
    )
    start = time.perf_counter()
    with _lock(out_dir):
        log = _Log(out_dir / "batch.log.jsonl", progress)
        jobs = plan_jobs(config, out_dir, force=force)
        log(
            "batch_start",
            config=str(config.path),
            jobs=len(jobs),
            workers=workers,
            scheduler=scheduler,
        )
        outcomes = []
        for outcome in _execute(jobs, workers=workers, scheduler=scheduler, log=log):
            outcomes.append(outcome)
            if on_job is not None:
                on_job(outcome, len(outcomes), len(jobs))
        order = {job.id: i for i, job in enumerate(jobs)}
        outcomes.sort(key=lambda o: order[o.job])
        summary = BatchSummary(
            outcomes=tuple(outcomes), duration=time.perf_counter() - start, out=out_dir
        )
        _write_summary(summary, config)
        log(
            "batch_end",
            jobs=len(outcomes),
            failed=len(summary.failed),
            duration=round(summary.duration, 3),
        )
    return summary


def _execute(
    jobs: list[Job], *, workers: int | None, scheduler: str | None, log: _Log
) -> Iterator[JobOutcome]:
    def done(outcome: JobOutcome) -> JobOutcome:
        log(
            "job_end",
            job=outcome.job,
            status=outcome.status,
            duration=round(outcome.duration, 3),
            error=outcome.error,
            warnings=list(outcome.warnings),
            output=outcome.output,
        )
        return outcome

    if workers is None and scheduler is None:
        from rtm.shared import sharing

        with sharing(keep=False):  # what the jobs share is freed with the batch
            for job in jobs:
                log("job_start", job=job.id)
                yield done(run_job(job))
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ParameterError(
            "--workers/--scheduler need Dask: pip install 'rtm[distributed]'"
        ) from None

    cluster = None
    if workers is not None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = _submit(client, jobs)
        log("jobs_submitted", jobs=len(jobs), scheduler=client.scheduler.address)  # type: ignore[union-attr]
        for future in as_completed(futures):
            try:
                yield done(future.result())
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
                job = jobs[futures.index(future)]
                yield done(
                    JobOutcome(
                        job=job.id,
                        area=job.area_name,
                        crime=job.crime,
                        period=job.period,
                        status="failed",
                        error=f"{type(exc).__name__}: {exc}",
                        output=job.out_dir,
                    )
                )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _submit(client: Any, jobs: list[Job]) -> list[Any]:
    """Submit the jobs, those of one area preferably to one worker.

    The worker that ran an area's first job holds its grid, layers and inputs
    (:mod:`rtm.shared`); its later jobs find them there. Areas are dealt to the workers
    in turn; a busy or lost worker's jobs may still run elsewhere.
    """
    addresses = sorted(client.scheduler_info().get("workers", {}))
    areas = list(dict.fromkeys(job.area_name for job in jobs))
    futures = []
    for job in jobs:
        preferred = [addresses[areas.index(job.area_name) % len(addresses)]] if addresses else None
        futures.append(
            client.submit(
                run_job,
                job,
                key=f"rtm-job-{job.id}-{job.digest[:12]}",
                pure=False,
                workers=preferred,
                allow_other_workers=True,
            )
        )
    return futures


def _write_summary(summary: BatchSummary, config: BatchConfig) -> None:
    from rtm.export.atomic import atomic_file
    from rtm.runs import write_json

    rows = [dataclasses.asdict(o) for o in summary.outcomes]
    with atomic_file(summary.out / "batch.json", overwrite=True) as tmp:
        write_json(
            tmp,
            {
                "version": __version__,
                "config": str(config.path),
                "duration": summary.duration,
                "jobs": len(rows),
                "failed": len(summary.failed),
                "outcomes": rows,
            },
        )
    with atomic_file(summary.out / "batch.csv", overwrite=True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "job",
                    "status",
                    "events",
                    "factors",
                    "distribution",
                    "auc",
                    "capture_10",
                    "duration",
                    "error",
                ]
            )
            for o in summary.outcomes:
                writer.writerow(
                    [
                        o.job,
                        o.status,
                        o.events,
                        ";".join(o.factors),
                        o.distribution,
                        _rounded(o.auc),
                        _rounded(o.capture_10),
                        f"{o.duration:.1f}",
                        o.error or "",
                    ]
                )


def _rounded(value: float | None, digits: int = 3) -> str:
    """A number of batch.csv, rounded for reading (batch.json keeps full precision)."""
    return "" if value is None else f"{value:.{digits}f}"
