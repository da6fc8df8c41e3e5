"""``rtm analyze``: fit a risk terrain model and write the run folder."""

from __future__ import annotations

import click
from rtm_cli._options import (
    Progress,
    echo,
    frozen_imports,
    output_options,
    spec_options,
    spec_values,
)


@click.command()
@click.argument("crimes", metavar="CRIMES")
@spec_options(required=("area", "block_length"))
@output_options
@click.option(
    "--out",
    required=True,
    metavar="DIR",
    help="Run folder to write (report.json, factors.csv, risk.tif, cells.gpkg, maps).",
)
def analyze(
    crimes: str, out: str, overwrite: bool, quiet: bool, verbose: bool, **options: object
) -> None:
    """Fit a risk terrain model to CRIMES and write the model table and risk map.

    \b
    Example:
      rtm analyze crimes.csv --area area.gpkg --factors-dir factors/ \\
          --block-length 150 --where type=robbery --out run/

    Exits with 3 when no factor is significant (the report says so; no risk map).
    """
    from rtm.api import analyze as run_analysis
    from rtm.errors import NoSignificantFactorError
    from rtm.spec import StudySpec

    spec = StudySpec(events=crimes, **spec_values(options))  # every option checked here
    progress = Progress(quiet=quiet, verbose=verbose)
    with frozen_imports():
        result = run_analysis(spec, out=out, overwrite=overwrite, progress=progress)
    if not quiet:
        echo(result.summary())
        if verbose:
            timing = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
            echo(f"timings: {timing}", err=True)
        echo(
            f"Outputs: {out}/report.json, factors.csv, cells.gpkg"
            + (
                ", risk.tif, map.html, report.html, risk.png, places.gpkg, concentration.png, "
                "action_plan.html/.csv/.gpkg"
                if result.significant
                else ""
            )
        )
    if not result.significant:
        raise NoSignificantFactorError(f"no risk factor is significant; see {out}/report.json")
