"""``rtm layers``: write the candidate layers for inspection."""

from __future__ import annotations

from pathlib import Path

import click
from rtm_cli._options import Progress, echo, network_option, output_options, study_options


@click.command()
@study_options
@network_option
@output_options
@click.option(
    "--out",
    required=True,
    metavar="FILE",
    help="Output: .tif (multi-band GeoTIFF, one band per candidate) or .gpkg (one polygon per cell).",
)
def layers(out: str, overwrite: bool, quiet: bool, verbose: bool, **study: object) -> None:
    """Build the proximity and density candidate layers of every factor and write them.

    \b
    Example:
      rtm layers --area area.shp --factors-dir factors/ --block-length 200 --out layers.tif
    """
    from rtm.api import write_layers

    progress = Progress(quiet=quiet, verbose=verbose)
    path = write_layers(out=Path(out), overwrite=overwrite, progress=progress, **study)  # type: ignore[arg-type]
    if not quiet:
        echo(f"rtm: layers written to {path}", err=True)
