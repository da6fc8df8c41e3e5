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
