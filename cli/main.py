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
from rtm_cli._options import echo, exit_with_parent, flush_quietly

from rtm import __version__

EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  1    internal error (a bug: please report it)
  2    usage error: a bad option or value
  3    no significant risk factor (the report says so; no risk map)
  4    bad input data (missing/unreadable file, CRS problem, ...)
  5    output problem (exists without --overwrite, not rtm's, busy, unwritable, disk full)
  6    the data cannot support a model (e.g. too few events)
  7    rtm batch: at least one job failed (the others completed)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM)
"""


def _show_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    text = str(message).strip().splitlines()[0] if str(message).strip() else str(category.__name__)
    echo(f"rtm: warning: {text}", err=True)


def _interrupted_message() -> str:
    from rtm import interrupts
    from rtm.export.ownership import listing

    kept = interrupts.committed()
    what = "interrupted" if interrupts.exit_code() == 130 else "terminated"
    if not kept:
        return f"rtm: {what}; no output was written"
    shown = listing([str(p) for p in kept], limit=3)
    return f"rtm: {what}; only outputs already complete were kept: {shown}"


class RTMGroup(click.Group):
    """A click group that turns rtm's errors into one line and an exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line; Ctrl-C and SIGTERM are recorded, a closed pipe is not an error."""
        from rtm import interrupts

        interrupts.install()
        standalone = kwargs.pop("standalone_mode", True)
        kwargs.setdefault("prog_name", "rtm")  # also under `python -m rtm_cli.main`
        try:
            try:
                exit_with_parent()  # its SIGTERM may land at once: inside the handlers
                value = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
            except click.exceptions.NoArgsIsHelpError as exc:
                exc.show()  # `rtm` alone: the help
                value = exc.exit_code
            except click.ClickException as exc:
                # click's own usage errors, as one line like every other error
                context = getattr(exc, "ctx", None)
                command = context.command_path if context is not None else "rtm"
                hint = f" (see '{command} --help')" if isinstance(exc, click.UsageError) else ""
                echo(f"rtm: error: {exc.format_message()}{hint}", err=True)
                value = exc.exit_code
            except (click.Abort, KeyboardInterrupt):
                echo(_interrupted_message(), err=True)
                value = interrupts.exit_code()
            if not standalone:
                return value
            sys.exit(value if isinstance(value, int) else 0)
        finally:
            flush_quietly()

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; report rtm's errors as one line with their exit code."""
        from rtm import interrupts
        from rtm.errors import RTMError, RTMWarning, reset_wording, use_cli_wording

        interrupts.reset()
        wording = use_cli_wording()
        previous = warnings.showwarning
        warnings.showwarning = _show_warning
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", RTMWarning)
                # Library noise (e.g. numba, pyogrio) is not the user's business.
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=FutureWarning)
                value = super().invoke(ctx)
            interrupts.check()  # a signal that something swallowed still interrupts
            return value
        except click.exceptions.Exit:
            if interrupts.received() is None:
                raise
            echo(_interrupted_message(), err=True)
            ctx.exit(interrupts.exit_code())
        except (KeyboardInterrupt, Exception) as exc:
            # After a signal, whatever failed (a numba kernel reports the interruption as a
            # SystemError, say) failed because of it.
            if interrupts.received() is not None or isinstance(exc, KeyboardInterrupt):
                echo(_interrupted_message(), err=True)
                ctx.exit(interrupts.exit_code())
            if isinstance(exc, RTMError):
                message = str(exc).strip().replace("\n", " ")
                echo(f"rtm: error: {message}", err=True)
                ctx.exit(exc.exit_code)
            if isinstance(exc, click.ClickException):
                raise
            raise
        finally:
            warnings.showwarning = previous
            reset_wording(wording)


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
    from rtm_cli import audit

    main.add_command(audit.audit)
    from rtm_cli import validate

    main.add_command(validate.validate)
    main.add_command(validate.validate_temporal)
    from rtm_cli import trial

    main.add_command(trial.trial)
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
