"""``rtm analyze``: fit a risk terrain model and write the run folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rtm_cli._options import (
    Progress,
    echo,
    frozen_imports,
    output_options,
    spec_options,
    spec_values,
)

if TYPE_CHECKING:
    from rtm.result import RTMResult


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
    with frozen_imports(), progress.heartbeat():
        result = run_analysis(spec, out=out, overwrite=overwrite, progress=progress)
    if not quiet:
        _report(result, out, verbose=verbose)
    if not result.significant:
        raise NoSignificantFactorError(f"no risk factor is significant; see {out}/report.json")


def _report(result: RTMResult, out: str, *, verbose: bool) -> None:
    """The summary, the validation table (with test events) and every file written."""
    import json
    from pathlib import Path

    from rtm_cli._tables import validation_lines

    area = result.study.sources.get("area", "")
    if result.study.spec.area_where:
        echo(f"Study area: {area}")
    echo(result.summary())
    if "validation.json" in result.outputs:
        from rtm.validation import Validation

        report = json.loads((Path(out) / "validation.json").read_text(encoding="utf-8"))
        echo(f"Validation on {report.get('events', 0):,} test events:")
        for line in validation_lines(Validation(report, {}).table()):
            echo("  " + line)
    if verbose:
        timings = result.timings
        echo(f"timings: {', '.join(f'{k} {v:.2f} s' for k, v in timings.items())}", err=True)
    echo(f"Outputs in {out}/: {', '.join(result.outputs)}")
