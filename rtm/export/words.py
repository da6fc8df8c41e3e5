"""Words and numbers for people, and the HTML templates that print them.

Shared by the map, the printable report and the static map: a share as a percentage
(:func:`fraction`) and the jinja2 environment of rtm's templates (:func:`environment`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["TEMPLATES", "environment", "fraction"]

TEMPLATES = Path(__file__).parent / "templates"


def fraction(value: float) -> str:
    """A share as a percentage for people (``0.4%``, ``12%``)."""
    percent = 100 * value
    if percent == 0:
        return "0%"
    return f"{percent:.1f}%" if percent < 10 else f"{percent:.0f}%"


@lru_cache(maxsize=1)
def environment() -> Any:
    """The jinja2 environment of rtm's HTML templates (autoescaping on).

    One per process, so each template is compiled once (jinja2 caches compiled templates
    per environment and reloads one whose file changed).
    """
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover - jinja2 is a dependency
        raise ImportError("rtm's HTML outputs need jinja2: pip install jinja2") from exc
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, keep_trailing_newline=True
    )
