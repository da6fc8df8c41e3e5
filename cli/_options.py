"""Options shared by several commands, defined once."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _silence(stream: Any) -> None:
    """Point a stream whose reader has gone (a closed pipe) at /dev/null, for good."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def echo(message: str, *, err: bool = False) -> None:
    """``click.echo``, except that a reader who stopped reading (``| head``) is not an error.

    Messages are a courtesy: when the pipe is closed, the rest go nowhere and the run goes
    on to its real outcome and exit code.
    """
    stream = sys.stderr if err else sys.stdout
    try:
        click.echo(message, err=err)
    except BrokenPipeError:
        _silence(stream)
    except OSError:
        pass  # stderr closed outright (2>&-): nothing to say it on


def flush_quietly() -> None:
    """Flush stdout and stderr at the end, silencing a closed pipe instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            _silence(stream)
        except (OSError, ValueError):
            pass


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


study_options = _stack(
    click.option(
        "--area",
        required=True,
        metavar="FILE",
        help="Study-area polygons (shapefile, GeoPackage FILE.gpkg:LAYER, GeoJSON).",
    ),
    click.option(
        "--factor",
        "factors",
        multiple=True,
        metavar="[NAME=]FILE",
        help="A risk-factor layer; repeat for each factor. NAME defaults to the file name.",
    ),
    click.option(
        "--factors-dir",
        metavar="DIR",
        help="Use every vector layer in DIR as a factor.",
    ),
    click.option(
        "--protective",
        multiple=True,
        metavar="NAME",
        help="A factor that lowers risk (coded 0/-1); repeatable.",
    ),
    click.option(
        "--block-length",
        required=True,
        type=float,
        metavar="M",
        help="Average street-block length, in the CRS's units (metres).",
    ),
    click.option(
        "--cell-size", type=float, metavar="M", help="Cell side; default half the block length."
    ),
    click.option(
        "--max-blocks",
        type=int,
        default=3,
        show_default=True,
        help="Largest spatial influence, in blocks.",
    ),
    click.option(
        "--increment",
        type=click.Choice(["whole", "half"]),
        default="whole",
        show_default=True,
        help="Spatial-influence steps of whole or half blocks.",
    ),
    click.option(
        "--operationalization",
        type=click.Choice(["both", "proximity", "density"]),
        default="both",
        show_default=True,
        help="How factors become candidate variables.",
    ),
    click.option(
        "--crs", metavar="CRS", help="Projected CRS to work in (default: the study area's own)."
    ),
)

network_option = click.option(
    "--network",
    metavar="FILE",
    help="Street lines: measure proximity along this network instead of straight lines "
    "(cells and features snap to the nearest node; density stays Euclidean).",
)

event_options = _stack(
    click.option(
        "--where",
        multiple=True,
        metavar="COL=V1,V2|COL=LO..HI",
        help="Keep events whose COL is one of the values, or within the inclusive range; repeat to combine (all must hold).",
    ),
    click.option(
        "--x-column", metavar="NAME", help="CSV column of x/longitude (default: detected)."
    ),
    click.option(
        "--y-column", metavar="NAME", help="CSV column of y/latitude (default: detected)."
    ),
    click.option(
        "--events-crs",
        metavar="CRS",
        help="CRS of CSV coordinates (default: lon/lat columns EPSG:4326, x/y the area's CRS).",
    ),
)

output_options = _stack(
    click.option("--overwrite", is_flag=True, help="Replace an existing output."),
    click.option("-q", "--quiet", is_flag=True, help="No progress messages."),
    click.option("-v", "--verbose", is_flag=True, help="Progress messages with timings."),
)


class Progress:
    """Stage messages on stderr: on a terminal only, silent with --quiet, timed with --verbose."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.enabled = (not quiet) and (verbose or sys.stderr.isatty())
        self.verbose = verbose
        self.start = self.last = time.perf_counter()

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if self.enabled:
            timing = (
                f" [{now - self.last:.2f} s, {now - self.start:.2f} s total]"
                if self.verbose
                else ""
            )
            echo(f"rtm: {message}{timing}", err=True)
        self.last = now


@contextmanager
def frozen_imports() -> Iterator[None]:
    """Keep the cycle collector off everything that exists now (the imported libraries).

    Enter it once the command's heavy imports are done. numpy, pandas, scipy, numba and
    geopandas leave a few hundred thousand objects (functions, classes, numba types) that
    live as long as the process; every full collection walks all of them, and the
    allocations of a run trigger several: 0.5-0.8 s of ``rtm analyze`` went to the
    collector before (London, 100 m). Frozen objects are skipped; new objects are
    collected as usual, and on leaving everything is unfrozen again (so a long-lived
    process such as a test session, which runs commands in-process, loses nothing).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
