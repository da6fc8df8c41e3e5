"""``rtm layers``: write the candidate layers for inspection."""

from __future__ import annotations

import click
from rtm_cli._options import Progress, echo, output_options, spec_options, spec_values


@click.command()
@spec_options("inputs", "grid", required=("area", "block_length"))
@output_options
@click.option(
    "--out",
    required=True,
    metavar="FILE",
    help="Output: .tif (multi-band GeoTIFF, one band per candidate) or .gpkg (one polygon per cell).",
)
def layers(out: str, overwrite: bool, quiet: bool, verbose: bool, **options: object) -> None:
    """Build the proximity and density candidate layers of every factor and write them.

    \b
    Example:
      rtm layers --area area.shp --factors-dir factors/ --block-length 200 --out layers.tif
    """
    from rtm.api import write_layers
    from rtm.spec import StudySpec

    spec = StudySpec(**spec_values(options))
    progress = Progress(quiet=quiet, verbose=verbose)
    path = write_layers(spec, out=out, overwrite=overwrite, progress=progress)
    if not quiet:
        echo(f"rtm: layers written to {path}", err=True)
