"""Entry point of the ``rtm`` command: the group, error handling and exit codes.

Every subcommand lives in its own module and is a thin shell over one library
call. Errors rtm raises on purpose become one line on stderr and the exit code
documented in :mod:`rtm.errors`; only a bug shows a traceback.
"""

from __future__ import annotations

import atexit
import gc
import sys
import warnings
from typing import Any

import click

from rtm import __version__

EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  1    internal error (a bug: please report it)
  2    usage error: a bad option or value
  3    no significant risk factor (the report says so; no risk map)
  4    bad input data (missing/unreadable file, CRS problem, ...)
  5    output problem (exists without --overwrite, unwritable, disk full)
  6    the data cannot support a model (e.g. too few events)
  7    rtm batch: at least one job failed (the others completed)
  130  interrupted (Ctrl-C)
"""


def _show_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    text = str(message).strip().splitlines()[0] if str(message).strip() else str(category.__name__)
    click.echo(f"rtm: warning: {text}", err=True)


class RTMGroup(click.Group):
    """A click group that turns rtm's errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; report rtm's errors as one line with their exit code."""
        from rtm.errors import EXIT_INTERRUPTED, RTMError, RTMWarning

        previous = warnings.showwarning
        warnings.showwarning = _show_warning
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", RTMWarning)
                # Library noise (e.g. numba, pyogrio) is not the user's business.
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=FutureWarning)
                return super().invoke(ctx)
        except RTMError as exc:
            message = str(exc).strip().replace("\n", " ")
            click.echo(f"rtm: error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("rtm: interrupted; no output was written", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        finally:
            warnings.showwarning = previous


@click.group(cls=RTMGroup, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="rtm")
def main() -> None:
    """Risk Terrain Modeling: where the environment makes crime likely.

    Turn risk factors (bars, bus stops, ...) into proximity and density layers on a
    grid, select the ones that correlate with crime, and map relative risk.
    """


def _register() -> None:
    from rtm_cli import layers

    main.add_command(layers.layers)
    from rtm_cli import batch

    main.add_command(batch.batch)
    from rtm_cli import map as map_cli

    main.add_command(map_cli.map_command)
    from rtm_cli import validate

    main.add_command(validate.validate)
    main.add_command(validate.validate_temporal)
    try:
        from rtm_cli import analyze
    except ImportError:  # pragma: no cover - during the foundation only
        return
    main.add_command(analyze.analyze)


_register()

# At exit Python runs full collections while it tears the modules down, walking every
# object of the imported libraries: 0.4-0.8 s after ``rtm analyze``. The process is
# ending, so there is nothing to reclaim: freezing first makes the collections skip them
# (files and datasets are closed by their ``with`` blocks, not by the collector).
atexit.register(gc.freeze)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
