"""``rtm map``: re-render the map, report, static map, tiers and places of a run folder."""

from __future__ import annotations

from typing import Any

import click
from rtm_cli._options import Progress, echo, spec_options, spec_values


def output_options_from(**options: Any) -> Any:
    """:class:`rtm.export.options.OutputOptions` from the tier and place options given."""
    # the light module: the output machinery is imported beside the fit, not before it
    from rtm.export.options import OutputOptions

    return OutputOptions(**spec_values(options))


@click.command(name="map")
@click.argument("run_dir", metavar="RUN_DIR")
@spec_options("outputs", exclude=("outputs",))
@click.option(
    "--out",
    metavar="DIR",
    help="Write a re-rendered copy of the run folder here instead of updating RUN_DIR.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing outputs (needed to re-render RUN_DIR in place).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("-v", "--verbose", is_flag=True, help="Progress messages with timings.")
def map_command(
    run_dir: str, out: str | None, overwrite: bool, quiet: bool, verbose: bool, **options: Any
) -> None:
    """Re-render map.html, report.html, risk.png and the tiers and places of RUN_DIR.

    Nothing is refitted: everything is read from the run folder (report.json,
    cells.gpkg, features.gpkg). report.json, cells.gpkg (its tier column) and
    places.gpkg are updated to the new tiers and places.

    \b
    Example:
      rtm map run/ --tiers 2.5,1.5,0.5 --recent-days 28 --overwrite
      rtm map run/ --priority-tier 2 --out run-tier2/
    """
    from rtm.export.rerender import rerender

    progress = Progress(quiet=quiet, verbose=verbose)
    target = rerender(
        run_dir,
        out=out,
        overwrite=overwrite,
        options=output_options_from(**options),
        progress=progress,
    )
    if not quiet:
        echo(
            f"Outputs: {target}/map.html, report.html, risk.png, places.gpkg, "
            "concentration.png, action_plan.html/.csv/.gpkg "
            "(report.json and cells.gpkg updated)"
        )
