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
import hashlib
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtm._version import __version__
from rtm.batch.config import BatchConfig, load_config
from rtm.errors import InputError, OutputError, ParameterError, RTMError, RTMWarning

__all__ = ["BatchSummary", "Job", "JobOutcome", "plan_jobs", "run_batch", "run_job"]

JOB_MARKER = "job.json"


@dataclass(frozen=True)
class Job:
    """One model to fit: an area x a crime type x a period. Picklable, self-contained."""

    id: str
    area_name: str
    area_wkb: bytes
    crs_wkt: str
    crime: str
    period: str
    analysis: tuple[tuple[str, Any], ...]
    where: tuple[str, ...]
    test_where: tuple[str, ...]
    out_dir: str
    digest: str
    force: bool = False

    def options(self) -> dict[str, Any]:
        """The ``[analysis]`` options as a dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.analysis}


@dataclass(frozen=True)
class JobOutcome:
    """What became of a job."""

    job: str
    area: str
    crime: str
    period: str
    status: str  # "ok" | "no_significant_factor" | "unchanged" | "failed"
    events: int | None = None
    factors: tuple[str, ...] = ()
    distribution: str | None = None
    auc: float | None = None
    capture_10: float | None = None
    duration: float = 0.0
    error: str | None = None
    output: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        """Whether the job ran to a complete output (a model, or the finding that there is none)."""
        return self.status != "failed"


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def _file_digest(path: Path, cache: dict[Path, str]) -> str:
    """SHA-256 of a file and, for a shapefile, of its sidecar files."""
    if path in cache:
        return cache[path]
    digest = hashlib.sha256()
    files = [path]
    if path.suffix.lower() == ".shp":
        files = sorted(
            p
            for p in path.parent.glob(path.stem + ".*")
            if p.suffix.lower() in {".shp", ".shx", ".dbf", ".prj", ".cpg"}
        )
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    cache[path] = digest.hexdigest()
    return cache[path]


def _input_files(analysis: dict[str, Any]) -> list[Path]:
    from rtm.io import factor_sources, split_layer

    sources = [analysis["events"]]
    sources += [
        source
        for _, source in factor_sources(analysis.get("factors", ()), analysis.get("factors_dir"))
    ]
    return [split_layer(source)[0] for source in sources]


def plan_jobs(config: BatchConfig, out: Path, *, force: bool = False) -> list[Job]:
    """Expand a configuration into jobs (areas x crime types x periods)."""
    import geopandas as gpd
    import shapely

    from rtm.io import read_study_area, read_vector

    spec = config.areas
    if spec.name_column is None:
        area = read_study_area(spec.file, crs=config.analysis.get("crs"))
        areas = [(Path(spec.file).stem, shapely.union_all(area.geometry.values), area.crs)]
    else:
        layer = read_vector(spec.file, what="areas file")
        if spec.name_column not in layer.columns:
            raise ParameterError(
                f"config {config.path}: areas.name_column {spec.name_column!r} is not a column of "
                f"{spec.file}; columns are "
                f"{', '.join(c for c in layer.columns if c != layer.geometry.name)}"
            )
        names = [str(n) for n in layer[spec.name_column]]
        wanted = list(spec.names) or sorted(set(names))
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ParameterError(
                f"config {config.path}: areas.names {', '.join(map(repr, missing))} not found in "
                f"column {spec.name_column!r} of {spec.file}"
            )
        areas = []
        for name in wanted:
            polygons = layer.loc[[n == name for n in names]]
            area = read_study_area(
                gpd.GeoDataFrame(geometry=polygons.geometry.values, crs=layer.crs),
                crs=config.analysis.get("crs"),
            )
            areas.append((name, shapely.union_all(area.geometry.values), area.crs))
    cache: dict[Path, str] = {}
    inputs = {}
    for file in _input_files(config.analysis):
        if not file.exists():
            raise InputError(f"config {config.path}: input {file} not found")
        inputs[str(file)] = _file_digest(file, cache)
    analysis = tuple(
        sorted(
            (k, tuple(v) if isinstance(v, list) else v)
            for k, v in config.analysis.items()
            if k not in {"area", "where", "test_where"}
        )
    )
    base_where = tuple(config.analysis.get("where", ()))
    base_test_where = tuple(config.analysis.get("test_where", ()))
    jobs = []
    for area_name, geometry, crs in areas:
        wkb = shapely.to_wkb(geometry)
        for crime in config.crime_types:
            for period in config.periods:
                job_id = "-".join(_slug(p) for p in (area_name, crime.name, period.name))
                where = base_where + crime.where + period.fit_where
                test_where = (
                    (base_where + base_test_where + crime.where + period.test_where)
                    if period.test_where
                    else ()
                )
                identity = json.dumps(
                    {
                        "version": __version__,
                        "analysis": [list(item) for item in analysis],
                        "where": where,
                        "test_where": test_where,
                        "area": hashlib.sha256(wkb).hexdigest(),
                        "crs": crs.to_wkt(),
                        "inputs": inputs,
                    },
                    sort_keys=True,
                    default=str,
                )
                jobs.append(
                    Job(
                        id=job_id,
                        area_name=area_name,
                        area_wkb=wkb,
                        crs_wkt=crs.to_wkt(),
                        crime=crime.name,
                        period=period.name,
                        analysis=analysis,
                        where=where,
                        test_where=test_where,
                        out_dir=str(out / "jobs" / job_id),
                        digest=hashlib.sha256(identity.encode()).hexdigest(),
                        force=force,
                    )
                )
    ids = [j.id for j in jobs]
    clashes = sorted({i for i in ids if ids.count(i) > 1})
    if clashes:
        raise ParameterError(
            f"config {config.path}: job names collide after slugging: {', '.join(clashes)}"
        )
    return jobs


# --------------------------------------------------------------------------- one job


def _previous(job: Job) -> dict[str, Any] | None:
    marker = Path(job.out_dir) / JOB_MARKER
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("digest") == job.digest else None


def run_job(job: Job) -> JobOutcome:
    """Run one job into its folder; never raises for a data problem (the outcome says it).

    Warnings the job raises (e.g. clustered residuals) are kept in the outcome (and so in
    the batch log and summary) instead of being printed by whichever process ran it.
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = _run_job(job)
    notes: list[str] = []
    for item in caught:
        if issubclass(item.category, RTMWarning):
            text = str(item.message).strip().splitlines()[0]
            if text not in notes:
                notes.append(text)
    return dataclasses.replace(outcome, warnings=tuple(notes)) if notes else outcome


def _run_job(job: Job) -> JobOutcome:
    from rtm.export.atomic import atomic_file
    from rtm.runs import write_json

    start = time.perf_counter()
    common = {
        "job": job.id,
        "area": job.area_name,
        "crime": job.crime,
        "period": job.period,
        "output": job.out_dir,
    }
    previous = None if job.force else _previous(job)
    if previous is not None:
        kept = {
            k: v
            for k, v in previous["outcome"].items()
            if k in {f.name for f in dataclasses.fields(JobOutcome)}
        }
        kept.update(
            common,
            status="unchanged",
            duration=time.perf_counter() - start,
            factors=tuple(kept.get("factors", ())),
            warnings=tuple(kept.get("warnings", ())),
        )
        return JobOutcome(**kept)
    try:
        outcome = _fit_job(job, common, start)
        with atomic_file(Path(job.out_dir) / JOB_MARKER, overwrite=True) as marker:
            write_json(marker, {"digest": job.digest, "outcome": dataclasses.asdict(outcome)})
        return outcome
    except RTMError as exc:
        return JobOutcome(
            **common,  # type: ignore[arg-type]
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            duration=time.perf_counter() - start,
        )
    except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the others
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return JobOutcome(
            **common,  # type: ignore[arg-type]
            status="failed",
            error=f"internal error: {detail}",
            duration=time.perf_counter() - start,
        )


def _fit_job(job: Job, common: dict[str, Any], start: float) -> JobOutcome:
    """Analyse one job into its folder (validated on its test period, if it has one)."""
    import geopandas as gpd
    import shapely

    from rtm.api import analyze
    from rtm.filters import as_clauses
    from rtm.spec import StudySpec

    options = job.options()
    events = options["events"]
    test_events = options.pop("test_events", None) or events
    options.pop("test_where", None)
    area = gpd.GeoDataFrame(geometry=[shapely.from_wkb(job.area_wkb)], crs=job.crs_wkt)
    spec = StudySpec(
        **options,
        area=area,
        area_label=job.area_name,
        where=as_clauses(job.where),
        test_events=test_events if job.test_where else None,
        test_where=as_clauses(job.test_where),
    )
    result = analyze(spec, out=job.out_dir, overwrite=True)
    outcome = JobOutcome(
        **common,
        status="ok" if result.significant else "no_significant_factor",
        events=result.n_events,
        factors=tuple(f.candidate for f in result.factors),
        distribution=result.distribution,
    )
    if job.test_where and result.significant:
        validation = json.loads((Path(job.out_dir) / "validation.json").read_text())
        outcome = dataclasses.replace(
            outcome, auc=validation.get("auc"), capture_10=validation.get("capture", {}).get("10")
        )
    return dataclasses.replace(outcome, duration=time.perf_counter() - start)


# --------------------------------------------------------------------------- the batch


def _prepare_out(out: Path) -> None:
    """Make (or check) the batch folder: new, empty, or one rtm batch wrote; never a user's."""
    from rtm.export.atomic import (
        check_writable,
        folder_is_rtms,
        foreign_entries,
        listing,
        mark_folder,
    )

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
        outcomes = list(_execute(jobs, workers=workers, scheduler=scheduler, log=log))
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
        futures = client.map(
            run_job, jobs, key=[f"rtm-job-{job.id}-{job.digest[:12]}" for job in jobs], pure=False
        )
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
                        o.auc,
                        o.capture_10,
                        f"{o.duration:.2f}",
                        o.error or "",
                    ]
                )
