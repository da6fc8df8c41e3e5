"""``rtm batch``: run every job of a TOML configuration (nightly jobs, Dask scale-out)."""

from __future__ import annotations

import click


@click.command()
@click.argument("config", metavar="CONFIG")
@click.option(
    "--out",
    metavar="DIR",
    help="Output folder (default: <config name>-runs beside CONFIG).",
)
@click.option(
    "--workers",
    type=int,
    metavar="N",
    help="Run jobs on a local Dask cluster of N worker processes.",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Run jobs on an existing dask.distributed scheduler.",
)
@click.option(
    "--force", is_flag=True, help="Recompute every job, even those whose inputs have not changed."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("-v", "--verbose", is_flag=True, help="Progress messages with timings.")
def batch(
    config: str,
    out: str | None,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run every job (areas x crime types x periods) of CONFIG.

    One folder per job under OUT/jobs/, a summary in OUT/batch.json and OUT/batch.csv, JSON-lines
    logs in OUT/batch.log.jsonl. Jobs whose inputs and configuration have not changed are not
    recomputed. Exits 0 when every job succeeded, 7 when any failed (the others complete).
    See docs/batch.md for the configuration format.
    """
    from rtm_cli._options import Progress, echo
    from rtm_cli._tables import batch_lines, job_line

    from rtm.batch import run_batch
    from rtm.errors import BatchJobsFailed

    progress = Progress(quiet=quiet, verbose=verbose)
    summary = run_batch(
        config,
        out,
        workers=workers,
        scheduler=scheduler,
        force=force,
        progress=progress if verbose else None,
        on_job=None if quiet else lambda o, done, total: echo(job_line(o, done, total)),
    )
    if not quiet:
        for line in batch_lines(summary.outcomes):
            echo(line)
        counts: dict[str, int] = {}
        for outcome in summary.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        detail = ", ".join(
            f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items())
        )
        echo(
            f"{len(summary.outcomes)} jobs in {summary.duration:.1f} s: {detail}. Summary: {summary.out / 'batch.csv'}"
        )
        for outcome in summary.failed:
            echo(f"  failed: {outcome.job}: {outcome.error}", err=True)
    if summary.failed:
        raise BatchJobsFailed(
            f"{len(summary.failed)} of {len(summary.outcomes)} jobs failed; see {summary.out / 'batch.log.jsonl'}"
        )
