"""The jobs of a batch: planned from a configuration, each run into its own folder.

:func:`plan_jobs` expands a configuration into areas x crime types x periods, each job
self-contained and picklable (it carries its area's geometry), with a digest of its
inputs and settings; :func:`run_job` analyses one job into its folder and never raises
for a data problem (the outcome says it). A job whose digest has not changed since its
last complete run is not recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtm._version import __version__
from rtm.batch.config import BatchConfig
from rtm.errors import InputError, ParameterError, RTMError, RTMWarning

__all__ = ["JOB_MARKER", "Job", "JobOutcome", "plan_jobs", "run_job"]

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


def _areas(config: BatchConfig) -> list[tuple[str, Any, Any]]:
    """The areas of a batch: (name, one geometry, CRS), in the order the config asks for."""
    import geopandas as gpd
    import shapely

    from rtm.filters import WhereClause
    from rtm.io import read_study_area, read_vector, select_polygons

    spec = config.areas
    where = config.analysis.get("area_where", ())
    if spec.name_column is None:
        area = read_study_area(spec.file, crs=config.analysis.get("crs"), where=where)
        return [(Path(spec.file).stem, shapely.union_all(area.geometry.values), area.crs)]
    layer = read_vector(spec.file, what="areas file")
    if where:
        layer = select_polygons(layer, where, what=f"config {config.path}: area_where")
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
        # the --area-where selection, one name at a time (names match exactly here)
        clause = WhereClause(spec.name_column, values=(name,))
        polygons = select_polygons(layer, [clause], what=f"config {config.path}: areas")
        polygons = polygons.loc[[str(n) == name for n in polygons[spec.name_column]]]
        area = read_study_area(
            gpd.GeoDataFrame(geometry=polygons.geometry.values, crs=layer.crs),
            crs=config.analysis.get("crs"),
        )
        areas.append((name, shapely.union_all(area.geometry.values), area.crs))
    return areas


def _input_digests(config: BatchConfig) -> dict[str, str]:
    """SHA-256 of every input file the analysis reads, by path."""
    cache: dict[Path, str] = {}
    inputs = {}
    for file in _input_files(config.analysis):
        if not file.exists():
            raise InputError(f"config {config.path}: input {file} not found")
        inputs[str(file)] = _file_digest(file, cache)
    return inputs


def plan_jobs(config: BatchConfig, out: Path, *, force: bool = False) -> list[Job]:
    """Expand a configuration into jobs (areas x crime types x periods)."""
    import shapely

    areas = _areas(config)
    inputs = _input_digests(config)
    analysis = tuple(
        sorted(
            (k, tuple(v) if isinstance(v, list) else v)
            for k, v in config.analysis.items()
            if k not in {"area", "area_where", "where", "test_where"}
        )
    )
    base_where = tuple(config.analysis.get("where", ()))
    base_test_where = tuple(config.analysis.get("test_where", ()))
    jobs = []
    for area_name, geometry, crs in areas:
        wkb = shapely.to_wkb(geometry)
        for crime in config.crime_types:
            for period in config.periods:
                where = base_where + crime.where + period.fit_where
                test_where = (
                    (base_where + base_test_where + crime.where + period.test_where)
                    if period.test_where
                    else ()
                )
                identity = {
                    "version": __version__,
                    "analysis": [list(item) for item in analysis],
                    "where": where,
                    "test_where": test_where,
                    "area": hashlib.sha256(wkb).hexdigest(),
                    "crs": crs.to_wkt(),
                    "inputs": inputs,
                }
                job_id = "-".join(_slug(p) for p in (area_name, crime.name, period.name))
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
                        digest=_digest(identity),
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


def _digest(identity: dict[str, Any]) -> str:
    """The digest of a job's identity: what must not change for it to count as unchanged."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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

    from rtm.shared import sharing

    # files, grids and layers made here are kept for the next job this process runs
    # (a Dask worker stays warm across jobs); the serial runner forgets them at the end
    with warnings.catch_warnings(record=True) as caught, sharing():
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
