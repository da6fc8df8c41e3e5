"""Argument checks shared by every module: one place, one wording.

String options are resolved through :func:`check_choice`, whose error lists the valid
choices (glum's ``get_family`` style).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from rtm.errors import ParameterError

__all__ = ["check_choice"]

_T = TypeVar("_T", bound=str)


def check_choice(parameter: str, value: object, choices: Sequence[_T]) -> _T:
    """Return ``value`` if it is one of ``choices``; else raise a listing error.

    Raises
    ------
    ParameterError
        ``value`` is not one of ``choices``.

    Examples
    --------
    >>> check_choice("cv_rule", "min", ("min", "1se"))
    'min'
    """
    for choice in choices:
        if value == choice:
            return choice
    listed = ", ".join(repr(c) for c in choices)
    raise ParameterError(f"{parameter} must be one of {listed}; got {value!r}")
