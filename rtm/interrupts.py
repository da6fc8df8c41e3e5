"""Ctrl-C and SIGTERM, honoured at the one moment that matters: before an output appears.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be.
Some of those places swallow it: a ctypes callback (the Arrow writer's) prints
"Exception ignored" and carries on; a numba kernel returns a value with the exception
set, which Python reports as ``SystemError``. So the command line installs
:func:`install`, whose handler also *records* the signal. rtm then checks the record
where it counts (:func:`check`, called before every output is moved into place by
:mod:`rtm.export.atomic`), and the command line reports any failure that follows a
signal as the interruption it is (exit 130, or 143 for SIGTERM).

The renames that put an output in place run under :func:`deferred`: a signal arriving
meanwhile is held until they are done, so an output is never half swapped.

Without :func:`install` (a notebook, a library user) nothing changes: Ctrl-C raises
``KeyboardInterrupt`` as usual.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = [
    "committed",
    "check",
    "deferred",
    "exit_code",
    "install",
    "received",
    "record_commit",
    "reset",
]


class _State:
    signal: int | None = None
    pending: bool = False
    depth: int = 0
    installed: bool = False
    committed: list[Path] = []


_state = _State()


#: Where raising ``KeyboardInterrupt`` is unsafe: numba's dispatcher calls back into these
#: Python modules from C, and an exception raised there can crash the process (SIGSEGV) or
#: come back as a ``SystemError``.
_UNSAFE_MODULES = ("/numba/", "\\numba\\", "/llvmlite/", "\\llvmlite\\")
#: Seconds before a signal that landed in such a place is raised again.
_RETRY = 0.02


def _unsafe(frame: FrameType | None) -> bool:
    if frame is None:
        return True
    filename = frame.f_code.co_filename
    return any(part in filename for part in _UNSAFE_MODULES)


def _retry(signum: int) -> None:
    """Deliver the signal to the main thread again shortly (as if it had just arrived)."""
    import _thread

    def again() -> None:
        try:
            _thread.interrupt_main(signal.Signals(signum))
        except (ValueError, RuntimeError):  # pragma: no cover - handler gone meanwhile
            pass

    timer = threading.Timer(_RETRY, again)
    timer.daemon = True
    timer.start()


def _handler(signum: int, frame: FrameType | None) -> None:
    _state.signal = signum
    if _state.depth:
        _state.pending = True
        return
    if _unsafe(frame):
        _retry(signum)
        return
    raise KeyboardInterrupt


def install() -> None:
    """Record SIGINT and SIGTERM and raise ``KeyboardInterrupt`` for both (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _handler)
    if not _state.installed:
        previous = sys.unraisablehook

        def quiet(unraisable: Any) -> None:
            # a Ctrl-C raised inside a callback that cannot pass it on (ctypes, __del__) is
            # not an error to print: it is recorded, and honoured by check()
            if isinstance(unraisable.exc_type, type) and issubclass(
                unraisable.exc_type, KeyboardInterrupt
            ):
                return
            previous(unraisable)

        sys.unraisablehook = quiet
    _state.installed = True


def reset() -> None:
    """Forget a recorded signal and the outputs committed (for a new command in-process)."""
    _state.signal = None
    _state.pending = False
    _state.committed = []


def received() -> int | None:
    """The signal received since :func:`install` (or :func:`reset`), if any."""
    return _state.signal


def exit_code() -> int:
    """The conventional exit code of the signal received: 128 + its number."""
    return 128 + int(_state.signal or signal.SIGINT)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a signal was received (even one swallowed meanwhile)."""
    if _state.signal is not None:
        raise KeyboardInterrupt


def record_commit(path: Path) -> None:
    """Remember an output that was moved into place whole (for the interruption message)."""
    _state.committed.append(Path(path))


def committed() -> list[Path]:
    """The outputs moved into place since :func:`install` or :func:`reset`."""
    return list(_state.committed)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal that arrives inside the block; raise it when the block is done."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
    if _state.depth == 0 and _state.pending:
        _state.pending = False
        raise KeyboardInterrupt
