"""The exception hierarchy of rtm.

Every error a user can cause derives from :class:`RTMError` and from the built-in
exception it refines, so ``except ValueError`` still works for library users. Each
class carries the process exit code the command line uses for it; the codes are
documented in the README and in ``rtm --help``.

Exit codes
----------
0  success
1  unexpected internal error (a bug: please report it)
2  usage error: a bad option or option value (also click's own usage errors)
3  the model found no significant risk factor (a report is still written)
4  bad input data: a missing, unreadable or unsuitable file, CRS problems
5  output problem: the output exists (use --overwrite), is not rtm's (never replaced),
   is being written by another rtm process, or cannot be written (read-only, disk full)
6  the data cannot support a model (e.g. too few events)
7  rtm batch: at least one job failed (the others completed)
130 interrupted (Ctrl-C)
143 terminated (SIGTERM)
"""

from __future__ import annotations

import contextvars
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RTMError(Exception):
    """Root of every error rtm raises on purpose."""

    exit_code: int = 1


class ParameterError(RTMError, ValueError):
    """An option or argument has an invalid value."""

    exit_code = 2


class InputError(RTMError, ValueError):
    """An input file is missing, unreadable or unsuitable."""

    exit_code = 4


class CRSError(InputError):
    """A coordinate reference system is missing, wrong or unsuitable for distances."""


class OutputError(RTMError, OSError):
    """An output cannot be written (exists without overwrite, unwritable, disk full)."""

    exit_code = 5


class FitError(RTMError, RuntimeError):
    """The data cannot support a model (for example too few events)."""

    exit_code = 6


class BatchJobsFailed(RTMError):
    """Some jobs of a batch failed; the others completed."""

    exit_code = 7


class NoSignificantFactorError(RTMError):
    """No candidate risk factor survived selection."""

    exit_code = 3


EXIT_INTERRUPTED = 130


class RTMWarning(UserWarning):
    """Something in the data deserves the user's attention but does not stop the run."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none).

    Libraries (GDAL, pandas) raise multi-line messages; rtm's errors are one line.
    """
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- API wording
#: Command-line flags and the Python keyword each stands for (``--factor`` -> ``factors``);
#: filled by :mod:`rtm.spec` from its declarations.
FLAG_KEYWORDS: dict[str, str] = {}
_CLI_WORDING = contextvars.ContextVar("rtm_cli_wording", default=False)


def use_cli_wording(on: bool = True) -> contextvars.Token[bool]:
    """Say the command-line flags in warnings (the ``rtm`` command does); returns the token."""
    return _CLI_WORDING.set(on)


def reset_wording(token: contextvars.Token[bool]) -> None:
    """Undo :func:`use_cli_wording`."""
    _CLI_WORDING.reset(token)


def api_wording(text: str) -> str:
    """``text`` with each command-line flag replaced by its Python keyword.

    >>> api_wording("name them with --x-column/--y-column")
    'name them with x_column/y_column'
    """

    def keyword(match: re.Match[str]) -> str:
        flag = match.group(0)
        return FLAG_KEYWORDS.get(flag, flag[2:].replace("-", "_"))

    return re.sub(r"(?<![\w-])--[a-z][a-z0-9-]*", keyword, text)


@contextmanager
def api_warnings() -> Iterator[None]:
    """Show rtm's warnings as Python users read them: keywords, not flags; no source line.

    The Python API wraps its work in this. Warnings still pass the caller's filters
    (``warnings.simplefilter``, pytest's capture); only the text of an
    :class:`RTMWarning` changes (outside the command line) and it is shown without the
    rtm source line that raised it.
    """
    previous = warnings.showwarning

    def show(
        message: Any,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if not issubclass(category, RTMWarning):
            previous(message, category, filename, lineno, file, line)
            return
        text = str(message)
        if not _CLI_WORDING.get():
            text = api_wording(text)
        previous(category(text), category, "rtm", 0, file, "")

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
