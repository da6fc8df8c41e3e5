"""Suggested tasks per risk factor: the factor -> intervention table of ACTION packs.

The table is TOML (shipped: ``rtm/data/tasks.toml``; a user's copy via ``--tasks``):
``[[task]]`` entries with ``match`` (words looked for in a factor's name, any case) and
``task`` (the suggestion), and a ``[default]`` task for factors matching none.
Protective factors get no task (they are what the place already has).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rtm.errors import InputError

__all__ = ["TaskTable", "read_tasks"]


@dataclass(frozen=True)
class TaskTable:
    """Suggested tasks: ``(words, task)`` entries in order, and the default task."""

    entries: tuple[tuple[tuple[str, ...], str], ...]
    default: str
    source: str

    def task_for(self, factor: str) -> str:
        """The first entry whose words occur in the factor's name, else the default."""
        name = factor.lower()
        for words, task in self.entries:
            if any(word in name for word in words):
                return task
        return self.default


def read_tasks(path: str | Path | None = None) -> TaskTable:
    """Read a task table (default: the one shipped with rtm).

    Raises
    ------
    InputError
        The file cannot be read or is not a task table (one line naming it).
    """
    try:
        if path is None:
            text = (resources.files("rtm") / "data" / "tasks.toml").read_text(encoding="utf-8")
            source = "rtm (shipped)"
        else:
            text = Path(path).read_text(encoding="utf-8")
            source = str(path)
        data: dict[str, Any] = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"--tasks {path}: cannot read it as TOML ({exc})") from None
    try:
        entries = tuple(
            (tuple(str(w).lower() for w in item["match"]), str(item["task"]))
            for item in data.get("task", [])
        )
        default = str(data.get("default", {}).get("task", "Problem-solving visit."))
    except (KeyError, TypeError) as exc:
        raise InputError(
            f"--tasks {path}: every [[task]] needs 'match' (a list of words) and 'task' ({exc})"
        ) from None
    return TaskTable(entries, default, source)
