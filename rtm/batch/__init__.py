"""Batch runs for nightly jobs: TOML configurations, many jobs, Dask scale-out."""

from rtm.batch.config import BatchConfig, load_config
from rtm.batch.jobs import Job, JobOutcome, plan_jobs, run_job
from rtm.batch.runner import BatchSummary, run_batch

__all__ = [
    "BatchConfig",
    "BatchSummary",
    "Job",
    "JobOutcome",
    "load_config",
    "plan_jobs",
    "run_batch",
    "run_job",
]
