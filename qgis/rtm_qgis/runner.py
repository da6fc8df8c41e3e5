"""Run the ``rtm`` command as a subprocess and relay it to a Processing feedback object.

QGIS's own Python needs none of rtm's dependencies: rtm runs from its own installation
(a virtualenv the user points to, or ``rtm`` on PATH). This module imports nothing from
QGIS, so it is tested with plain Python; ``feedback`` is anything with the methods of
``QgsProcessingFeedback`` that it calls (``isCanceled``, ``setProgress``, ``pushInfo``,
``pushWarning``, ``pushCommandInfo``, ``pushConsoleInfo``).

rtm is run with ``RTM_PROGRESS=lines``: it writes ``PROGRESS <percent> <message>`` lines
to stderr, its warnings as ``rtm: warning: ...`` and its errors as one
``rtm: error: ...`` line with a documented exit code. Its stdin is a pipe held here: if
QGIS dies, the pipe closes and rtm stops as on SIGTERM, leaving nothing.
"""

from __future__ import annotations

import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The provider's setting (Processing options) and the environment variable naming rtm.
SETTING = "RTM_PATH"
ENV_VAR = "RTM_EXECUTABLE"
#: Exit code of an analysis that found no significant factor (a report, no risk map).
NO_SIGNIFICANT_FACTOR = 3
#: After a cancel, rtm gets this long to remove what it started before it is killed.
KILL_AFTER_SECONDS = 60.0
#: Variables that point QGIS's Python or libraries at QGIS's own files; rtm has its own.
_QGIS_ONLY = (
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PROJ_LIB",
    "PROJ_DATA",
    "GDAL_DATA",
    "GDAL_DRIVER_PATH",
)
_NAMES = ("rtm.exe", "rtm") if os.name == "nt" else ("rtm",)


class RtmError(Exception):
    """rtm could not be found, failed, or was cancelled; the message is rtm's one line."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RtmCancelled(RtmError):
    """The user cancelled; rtm was stopped and wrote nothing."""


def _executable_in(path: Path) -> Path | None:
    if path.is_file():
        return path
    if path.is_dir():  # a virtualenv, or its bin/Scripts folder
        for folder in (path / "bin", path / "Scripts", path):
            for name in _NAMES:
                if (folder / name).is_file():
                    return folder / name
    return None


def find_rtm(setting: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The ``rtm`` executable: the provider's setting, else ``$RTM_EXECUTABLE``, else PATH.

    The setting and the variable may name the executable, a virtualenv or its bin folder.

    Raises
    ------
    RtmError
        None of them leads to an ``rtm`` executable; the message says how to point to one.
    """
    environ = os.environ if environ is None else environ
    for origin, value in (("the rtm setting", setting), (ENV_VAR, environ.get(ENV_VAR))):
        if value and value.strip():
            found = _executable_in(Path(value.strip()).expanduser())
            if found is None:
                raise RtmError(f"{origin} ({value}) is no rtm executable or virtualenv holding one")
            return str(found)
    found_on_path = shutil.which("rtm", path=environ.get("PATH"))
    if found_on_path:
        return found_on_path
    raise RtmError(
        "rtm not found: install it in a virtualenv (pip install PATH-TO-RTM) and set that "
        "folder in Settings > Options > Processing > Providers > Risk Terrain Modeling, "
        f"or set {ENV_VAR}, or put rtm on PATH"
    )


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment rtm runs in: QGIS's, without its library paths, with machine progress."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items()}
    for name in _QGIS_ONLY:
        env.pop(name, None)
    env.update(RTM_PROGRESS="lines", PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    return env


def _read(stream: Any, kind: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    for line in stream:
        lines.put((kind, line.rstrip("\r\n")))
    lines.put((kind, None))


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (rtm exits 143 and removes what it started); on Windows, close its stdin."""
    if process.poll() is not None:
        return
    if os.name == "nt":
        if process.stdin:
            process.stdin.close()
        return
    process.send_signal(signal.SIGTERM)


class _Relay:
    """What rtm said: progress to the feedback, its error line kept for the exception."""

    def __init__(self, feedback: Any) -> None:
        self.feedback = feedback
        self.stdout: list[str] = []
        self.error: str | None = None
        self.stopped: str | None = None
        self.tail: list[str] = []

    def line(self, kind: str, text: str) -> None:
        feedback = self.feedback
        if kind == "out":
            self.stdout.append(text)
            feedback.pushInfo(text)
        elif text.startswith("PROGRESS "):
            _, percent, message = (text.split(" ", 2) + [""])[:3]
            if percent.isdigit():
                feedback.setProgress(int(percent))
            feedback.pushInfo(message)
        elif text.startswith("rtm: error: "):
            self.error = text
        elif text.startswith("rtm: warning: "):
            feedback.pushWarning(text)
        elif text.startswith(("rtm: interrupted", "rtm: terminated")):
            self.stopped = text
            feedback.pushInfo(text)
        elif text.strip():
            self.tail = (self.tail + [text])[-5:]
            feedback.pushConsoleInfo(text)


def run_rtm(
    executable: str,
    arguments: Sequence[str],
    feedback: Any,
    *,
    accept: Sequence[int] = (0,),
    environ: Mapping[str, str] | None = None,
    poll_seconds: float = 0.2,
) -> tuple[int, list[str]]:
    """Run ``rtm ARGUMENTS``, relaying its progress, warnings and output to ``feedback``.

    Parameters
    ----------
    executable : str
        The rtm executable (:func:`find_rtm`).
    arguments : sequence of str
        The command line after ``rtm``.
    feedback : QgsProcessingFeedback or alike
        Receives progress, messages; polled for cancellation.
    accept : sequence of int
        Exit codes that are not failures (Analyze also accepts 3: no significant factor).

    Returns
    -------
    exit_code, stdout_lines

    Raises
    ------
    RtmCancelled
        ``feedback.isCanceled()`` became true: rtm was stopped (SIGTERM) and wrote nothing.
    RtmError
        rtm failed: the message is its one ``rtm: error: ...`` line.
    """
    command = [executable, *map(str, arguments)]
    feedback.pushCommandInfo(" ".join(shlex.quote(part) for part in command))
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=child_environment(environ),
            creationflags=flags,
        )
    except OSError as exc:
        raise RtmError(f"could not start {executable}: {exc.strerror or exc}") from exc
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    readers = [
        threading.Thread(target=_read, args=(process.stdout, "out", lines), daemon=True),
        threading.Thread(target=_read, args=(process.stderr, "err", lines), daemon=True),
    ]
    for reader in readers:
        reader.start()
    relay, open_streams, cancelled = _Relay(feedback), 2, 0.0
    try:
        while open_streams:
            if feedback.isCanceled() and not cancelled:
                cancelled = time.monotonic()
                feedback.pushInfo("Cancelling: stopping rtm...")
                _stop(process)
            elif cancelled and time.monotonic() - cancelled > KILL_AFTER_SECONDS:
                process.kill()  # rtm did not stop: its next run cleans what it left
            try:
                kind, text = lines.get(timeout=poll_seconds)
            except queue.Empty:
                continue
            if text is None:
                open_streams -= 1
            else:
                relay.line(kind, text)
        code = process.wait()
    finally:
        if process.poll() is None:  # an exception in the feedback: do not leave rtm running
            _stop(process)
            process.wait()
        for reader in readers:
            reader.join(timeout=5)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
    if cancelled:
        raise RtmCancelled(relay.stopped or "rtm: cancelled; no output was written", code)
    if code not in accept:
        message = relay.error or relay.stopped
        if message is None:
            detail = "; ".join(relay.tail) or "no message"
            message = f"rtm stopped with exit code {code}: {detail}"
        raise RtmError(message, code)
    feedback.setProgress(100)
    return code, relay.stdout
