"""``rtm map``: re-render the map, report, static map, tiers and places of a run folder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rtm_cli._options import Progress, echo


def _tier_cuts(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give three numbers, e.g. 2,1,0") from None


def place_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Options of tiers and priority places, shared by ``rtm analyze`` and ``rtm map``."""
    decorators = [
        click.option(
            "--tiers",
            "tier_cuts",
            callback=_tier_cuts,
            metavar="K1,K2,K3",
            help="Tier cuts in SDs above the mean RRS: highest, moderately high, above "
            "average (default 2,1,0).",
        ),
        click.option(
            "--priority-tier",
            type=click.IntRange(1, 3),
            default=1,
            show_default=True,
            help="Cells in this tier or higher can be priority places (1 = highest only).",
        ),
        click.option(
            "--recent-days",
            type=float,
            default=90.0,
            show_default=True,
            help="Recent window for priority places, counted back from the latest event.",
        ),
        click.option(
            "--recent-distance",
            type=float,
            metavar="M",
            help="How near a recent event must be to a cell centre (default: the block length).",
        ),
        click.option(
            "--date-column",
            metavar="NAME",
            help="Event date or month column (default: detected; none = all events are recent).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def output_options_from(**options: Any) -> Any:
    """Build :class:`rtm.export.outputs.OutputOptions` from the place options."""
    # the light module: the output machinery is imported beside the fit, not before it
    from rtm.export.options import DEFAULT_TIER_CUTS, OutputOptions

    defaults = OutputOptions()
    chosen = {key: options.get(key) for key in PLACE_KEYS}
    return OutputOptions(
        tier_cuts=chosen["tier_cuts"] if chosen["tier_cuts"] is not None else DEFAULT_TIER_CUTS,
        priority_tier=chosen["priority_tier"]
        if chosen["priority_tier"] is not None
        else defaults.priority_tier,
        recent_days=chosen["recent_days"]
        if chosen["recent_days"] is not None
        else defaults.recent_days,
        recent_distance=chosen["recent_distance"],
        date_column=chosen["date_column"],
    )


PLACE_KEYS = ("tier_cuts", "priority_tier", "recent_days", "recent_distance", "date_column")


@click.command(name="map")
@click.argument("run_dir", metavar="RUN_DIR")
@place_options
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
            f"Outputs: {target}/map.html, report.html, risk.png, places.gpkg "
            "(report.json and cells.gpkg updated)"
        )
