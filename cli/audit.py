"""``rtm audit``: exposure disparity, accuracy parity, feedback, drift, provenance."""

from __future__ import annotations

import click
from rtm_cli._options import Progress, echo


@click.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.option(
    "--out", required=True, metavar="DIR", help="Folder to write audit.json and audit.md into."
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier audit folder rtm wrote.")
@click.option(
    "--population",
    metavar="FILE",
    help="Polygons with resident counts per group (e.g. census output areas).",
)
@click.option(
    "--groups",
    metavar="COL1,COL2",
    help="The group-count columns of --population (default: every numeric column); "
    "the groups should partition the residents.",
)
@click.option("--subareas", metavar="FILE", help="Polygons for accuracy parity (boroughs, wards).")
@click.option("--subarea-column", metavar="COL", help="The column naming each sub-area.")
@click.option(
    "--test-crimes",
    metavar="FILE",
    help="Later events to score accuracy and capture on (default: the run's own, in sample).",
)
@click.option(
    "--test-where",
    multiple=True,
    metavar="COL=V1,V2|COL=LO..HI",
    help="Filter the test events (as rtm analyze --where); repeatable.",
)
@click.option(
    "--surface",
    metavar="NAME",
    help="The surface audited: risk (default), or forecast when the run has forecast.tif.",
)
@click.option(
    "--parity-tolerance",
    type=float,
    default=0.2,
    show_default=True,
    help="Parity alternative: every group's ratio within 1 +- this.",
)
@click.option(
    "--bootstrap",
    "n_boot",
    type=click.IntRange(min=0),
    default=999,
    show_default=True,
    help="Resamples of population units for the ratio intervals.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option(
    "--share",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.05,
    show_default=True,
    help="Batch folders: share of the area selected, for the feedback monitor.",
)
@click.option(
    "--fall",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.2,
    show_default=True,
    help="Warn when places selected twice saw their events fall by this share (relative).",
)
@click.option(
    "--min-overlap",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Flag a run whose factors overlap the previous run's less than this (Jaccard).",
)
@click.option(
    "--rrv-change",
    type=click.FloatRange(1, min_open=True),
    default=1.5,
    show_default=True,
    help="Flag a run where a factor's RRV changed by more than this factor.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("-v", "--verbose", is_flag=True, help="Progress messages with timings.")
def audit(
    run_dir: str,
    out: str,
    overwrite: bool,
    population: str | None,
    groups: str | None,
    subareas: str | None,
    subarea_column: str | None,
    test_crimes: str | None,
    test_where: tuple[str, ...],
    surface: str | None,
    parity_tolerance: float,
    n_boot: int,
    seed: int,
    share: float,
    fall: float,
    min_overlap: float,
    rrv_change: float,
    quiet: bool,
    verbose: bool,
) -> None:
    """Check a run (or a batch folder) for accountable use; write audit.json and audit.md.

    For a run folder: who lives in the selected places (--population), whether the map
    works as well in every sub-area (--subareas), and the share of the outcome made of
    police-generated categories. For a batch folder: the feedback monitor and the drift
    of factors and RRVs from period to period, with runs flagged for human review.

    \b
    Examples:
      rtm audit run/ --population oa.gpkg --groups white,black,asian,other --out run-audit/
      rtm audit run/ --subareas boroughs.shp --subarea-column LAD11NM --out run-audit/
      rtm audit nightly/ --out nightly-audit/
    """
    from rtm.audit import Thresholds
    from rtm.audit import audit as run_audit

    progress = Progress(quiet=quiet, verbose=verbose)
    result = run_audit(
        run_dir,
        out=out,
        overwrite=overwrite,
        population=population,
        groups=[g.strip() for g in groups.split(",") if g.strip()] if groups else None,
        subareas=subareas,
        subarea_column=subarea_column,
        test_events=test_crimes,
        test_where=test_where,
        surface=surface,
        tolerance=parity_tolerance,
        n_boot=n_boot,
        seed=seed,
        thresholds=Thresholds(
            share=share, fall=fall, min_overlap=min_overlap, rrv_change=rrv_change
        ),
        progress=progress,
    )
    if quiet:
        return
    for name, monitor in (result.get("feedback") or {}).items():
        for warning in monitor["warnings"]:
            echo(f"rtm: warning: feedback {name}: {warning}", err=True)
    for name, table in (result.get("drift") or {}).items():
        if table["flagged"]:
            echo(f"review {name}: {', '.join(table['flagged'])}")
    echo(f"Outputs: {out}/audit.json, {out}/audit.md")
