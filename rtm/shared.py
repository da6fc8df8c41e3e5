"""Work shared by the jobs of a batch: files read once, grids and layers built once per area.

A nightly batch fits every area x crime type x period; the jobs of one area share its
grid and its candidate layers (they depend on the area, the factors and the spatial
influences, never on the events), and every job reads the same events and factor
files. While sharing is on (:func:`sharing`, entered by ``rtm batch`` for each job, in
whichever process runs it), the readers and :mod:`rtm.study` keep what they made in
small, bounded stores of this process and hand it to the next job that asks for the
same thing:

* ``read``: a file as read, before any filter or reprojection, keyed by its path, size
  and modification time (a file changed between two jobs is read again);
* ``derived``: what the readers derive from such a file for any job (its coordinate
  columns as numbers, the distinct values of a column a filter names), keyed by the
  file's ``read`` key and the column;
* ``factor``: a factor file's features as a job gets them (checked, in the grid's CRS),
  keyed by the file, its name, the CRS and the reading options;
* ``grid``: the grid of an area (its geometry's WKB, CRS and cell size);
* ``candidates``: the candidate layers of a grid and its factors (each factor's file,
  name and role, the operationalization, the spatial influences).

Everything kept is what the same call would compute again, and callers never modify
what they are handed (frames are handed out as shallow copies), so a job's outputs are
byte for byte those of a lone ``rtm analyze`` (``tests/test_batch_shared.py``). Warnings
a computation raised are raised again on each reuse, so every job reports its own.
Outside :func:`sharing` nothing is kept: a single analysis never holds memory for
later.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["LIMITS", "clear", "file_key", "is_sharing", "remember", "sharing", "stats"]

T = TypeVar("T")

#: how many entries of each kind a process keeps (least recently used dropped first)
LIMITS = {"read": 64, "derived": 64, "factor": 64, "grid": 8, "candidates": 4}

_lock = threading.RLock()
_depth = 0
_stores: dict[str, OrderedDict[Hashable, tuple[Any, tuple[Any, ...]]]] = {}
_counts: dict[str, list[int]] = {}


@contextmanager
def sharing(*, keep: bool = True) -> Iterator[None]:
    """Share work between the calls made inside (and, with ``keep``, later ones too).

    ``keep=False`` empties the stores when the outermost block ends (the serial batch
    does, once all its jobs ran); a Dask worker keeps them, so its next job of the same
    area finds the grid and layers ready.
    """
    global _depth
    with _lock:
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and not keep:
                clear()


def is_sharing() -> bool:
    """Whether work is being shared now."""
    return _depth > 0


def clear() -> None:
    """Forget everything kept (and the hit counts)."""
    with _lock:
        _stores.clear()
        _counts.clear()


def stats() -> dict[str, tuple[int, int]]:
    """(hits, misses) per kind since the last :func:`clear`."""
    with _lock:
        return {kind: (hits, misses) for kind, (hits, misses) in _counts.items()}


def file_key(path: str | Path) -> tuple[str, int, int]:
    """A file's identity for reuse: its resolved path, size and modification time."""
    resolved = Path(path).resolve()
    status = resolved.stat()
    return (str(resolved), status.st_size, status.st_mtime_ns)


def remember(kind: str, key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, or while sharing the value it gave for ``key`` before.

    The warnings ``make`` raised are recorded with its value and raised again on each
    reuse. An exception is never kept: the next call tries again.
    """
    if not is_sharing():
        return make()
    with _lock:
        store = _stores.setdefault(kind, OrderedDict())
        counts = _counts.setdefault(kind, [0, 0])
        found = store.get(key)
        if found is not None:
            store.move_to_end(key)
            counts[0] += 1
    if found is not None:
        value, caught = found
        for item in caught:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
        return _handed_out(value)
    with warnings.catch_warnings(record=True) as caught_now:
        warnings.simplefilter("always")
        value = make()
    for item in caught_now:
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    with _lock:
        store[key] = (value, tuple(caught_now))
        counts[1] += 1
        while len(store) > LIMITS.get(kind, 8):
            store.popitem(last=False)
    return _handed_out(value)


def _handed_out(value: T) -> T:
    """A frame as a shallow copy (a caller adding a column changes only its own copy)."""
    copy = getattr(value, "copy", None)
    if copy is not None and hasattr(value, "columns"):
        return copy(deep=False)
    return value
