"""Options shared by several commands, defined once."""

from __future__ import annotations

import dataclasses
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


def _click_option(option: Any, *, required: bool = False) -> Callable[[F], F]:
    """The click option of one field of :class:`rtm.spec.StudySpec`."""
    from rtm.spec import StudySpec

    default = StudySpec.__dataclass_fields__[option.name].default
    if default is dataclasses.MISSING:  # a field the spec requires: no default to show
        default = None
    kwargs: dict[str, Any] = {"help": option.help, "metavar": option.metavar}
    if option.kind == "flag":
        return click.option(option.flag, option.name, is_flag=True, help=option.help)
    if option.kind == "switch":
        no = "--no-" + option.flag.removeprefix("--")
        return click.option(
            f"{option.flag}/{no}", option.name, default=default, show_default=True, help=option.help
        )
    if option.kind == "list":
        kwargs.update(multiple=True, type=float if option.item == "float" else str)
    elif option.kind == "choice":
        kwargs.update(type=click.Choice(list(option.choices)), default=default, show_default=True)
    elif option.kind in ("int", "float"):
        # values are checked by the spec, so that every entry point says the same
        kwargs.update(type=int if option.kind == "int" else float)
        if default is not None:
            kwargs.update(default=default, show_default=True)
    return click.option(option.flag, option.name, required=required, **kwargs)


def spec_options(
    *groups: str,
    exclude: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """The click options of the study specification's fields in ``groups``.

    Every option is declared once, in :class:`rtm.spec.StudySpec`; the commands take them
    from here, and :func:`spec_from` turns the parsed values back into a spec.
    """
    from rtm.spec import options

    chosen = [
        o
        for o in options(groups or None)
        if o.flag and o.name not in exclude and (not only or o.name in only)
    ]
    return _stack(*(_click_option(o, required=o.name in required) for o in chosen))


def spec_values(params: dict[str, Any]) -> dict[str, Any]:
    """The parsed options that belong to the spec, without the ones left unset."""
    from rtm.spec import spec_fields

    fields = set(spec_fields())
    return {
        name: value
        for name, value in params.items()
        if name in fields and value is not None and value != ()
    }


output_options = _stack(
    click.option("--overwrite", is_flag=True, help="Replace an existing output."),
    click.option("-q", "--quiet", is_flag=True, help="No progress messages."),
    click.option("-v", "--verbose", is_flag=True, help="Progress messages with timings."),
)


#: ``RTM_PROGRESS=lines``: progress for a program running rtm (the QGIS plugin), as
#: ``PROGRESS <percent> <message>`` lines on stderr, whatever --quiet, --verbose or the
#: terminal say. The percent is the share of a typical analysis done once a stage reports.
MACHINE_PROGRESS = "RTM_PROGRESS"
STAGE_PERCENT = {
    "grid": 2,
    "factors": 4,
    "events": 5,
    "layers": 20,
    "culling": 60,
    "stepwise": 85,
    "bootstrap": 90,
    "places": 95,
    "outputs": 100,
}


def exit_with_parent() -> None:
    """With ``RTM_PROGRESS=lines`` and stdin a pipe: stop as on SIGTERM once it closes.

    The program running rtm holds the other end; when it dies (a killed QGIS) the pipe
    closes and rtm stops, leaving nothing, instead of finishing a run nobody waits for.
    """
    if os.environ.get(MACHINE_PROGRESS) != "lines" or sys.stdin is None:
        return
    import signal
    import stat
    import threading

    try:
        if not stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
            return
    except (OSError, ValueError):
        return

    def watch() -> None:
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="rtm-parent-pipe", daemon=True).start()


class Progress:
    """Stage messages on stderr: on a terminal only, silent with --quiet, timed with --verbose."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.machine = os.environ.get(MACHINE_PROGRESS) == "lines"
        self.enabled = (not quiet) and (verbose or sys.stderr.isatty())
        self.verbose = verbose
        self.percent = 0
        self.start = self.last = time.perf_counter()

    #: Seconds of silence after which :meth:`heartbeat` says the stage is still running.
    HEARTBEAT = 10.0

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        self.stage = message
        if self.machine:
            stage = message.split(":", 1)[0]
            self.percent = max(self.percent, STAGE_PERCENT.get(stage, self.percent))
            echo(f"PROGRESS {self.percent} {message}", err=True)
        elif self.enabled:
            timing = (
                f" [{now - self.last:.2f} s, {now - self.start:.2f} s total]"
                if self.verbose
                else ""
            )
            echo(f"rtm: {message}{timing}", err=True)
        self.last = now

    @contextmanager
    def heartbeat(self, every: float | None = None) -> Iterator[None]:
        """While the block runs, say which stage is still running after each silence.

        A stage that takes long (fitting the challengers of a validation, say) otherwise
        leaves the terminal silent for a minute: after ``every`` seconds without a message
        this prints ``rtm: still working (after <last stage>), 40 s``, then after twice
        as long, and so on up to six times ``every``.
        """
        import threading

        first = self.HEARTBEAT if every is None else every
        done = threading.Event()

        def beat() -> None:
            interval, said = first, self.last
            while not done.wait(min(first, 1.0)):
                now = time.perf_counter()
                if self.last != said:  # a real message: back to the first interval
                    interval = first
                if now - self.last >= interval and self.enabled:
                    stage = getattr(self, "stage", "starting")
                    echo(f"rtm: still working (after {stage}), {now - self.start:.0f} s", err=True)
                    self.last = said = now
                    interval = min(2 * interval, 6 * first)  # then less and less often

        thread = threading.Thread(target=beat, name="rtm-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


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
