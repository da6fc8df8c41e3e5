"""How much memory a study needs, checked before the layers are built.

A cell size a hundred times too small is an easy typo (``--cell-size 2`` for 20) and
would otherwise grow for minutes until the machine swaps or the kernel kills the run.
:func:`check_memory` estimates the peak memory of an analysis from the study area and
the cell size, before any grid is built, and refuses (exit 2) a run that cannot fit in
the memory available, naming a cell size that would; a run that needs more than half of
it gets a warning.

The estimate is a linear model of the peak resident memory measured by ``make bench``
(docs/performance.md): a fixed cost for the libraries, about 4.5 bytes per cell and
candidate (the int8 candidate matrix and culling's working copies), about 200 bytes per
active cell (distances, densities, counts, scores, the outputs) and 24 bytes per cell of
the grid's bounding box (masks and row buffers). It is within about 15% of the measured
peaks from 16 thousand to 4 million cells.

:func:`usable_cores` says how many processors this process may run on.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

from rtm.errors import ParameterError, RTMWarning

__all__ = ["available_memory", "check_memory", "estimate_memory"]

#: Resident memory of the libraries and the interpreter, before any data.
BASE_BYTES = 450 * 2**20
#: Bytes per active cell and candidate variable.
PER_CELL_CANDIDATE = 4.5
#: Bytes per active cell, whatever the number of candidates.
PER_CELL = 200.0
#: Bytes per cell of the grid's bounding box.
PER_GRID_CELL = 24.0
#: Above this share of the available memory a run gets a warning.
WARN_SHARE = 0.5


def usable_cores() -> int:
    """The processors this process may run on (its CPU affinity; the machine's elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def estimate_memory(n_active: float, n_candidates: int, n_grid_cells: float) -> int:
    """Estimated peak memory (bytes) of an analysis of ``n_active`` cells.

    Examples
    --------
    >>> round(estimate_memory(4_000_000, 180, 6_000_000) / 2**30, 1)
    4.3
    """
    per_cell = PER_CELL_CANDIDATE * max(n_candidates, 1) + PER_CELL
    return int(BASE_BYTES + n_active * per_cell + n_grid_cells * PER_GRID_CELL)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Memory this process can still use (bytes): the machine's, capped by its cgroup."""
    available: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        available = None
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = None
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < 2**60:
            room = max(limit - (usage or 0), 0)
            available = room if available is None else min(available, room)
    return available


def _gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.0f} MB"


def check_memory(
    area: float,
    perimeter: float,
    width: float,
    height: float,
    cell_size: float,
    n_candidates: int,
    *,
    available: int | None = None,
    option: str = "--cell-size",
) -> int:
    """Refuse a study that cannot fit in memory; warn about one that takes most of it.

    Parameters
    ----------
    area, perimeter : float
        Of the study area, in CRS units (squared for the area).
    width, height : float
        Of the study area's bounding box.
    cell_size : float
        The cell side.
    n_candidates : int
        Candidate variables to build (factors x operationalizations x distances).
    available : int, optional
        Bytes available (default :func:`available_memory`).
    option : str
        How messages name the cell size.

    Returns
    -------
    int
        The estimate, in bytes.

    Raises
    ------
    ParameterError
        The estimate exceeds the memory available (exit 2); the message gives the
        estimate and the smallest cell size that would use at most half of it.
    """
    n_active = area / cell_size**2 + perimeter / cell_size
    n_grid = math.ceil(width / cell_size) * math.ceil(height / cell_size)
    need = estimate_memory(n_active, n_candidates, n_grid)
    room = available_memory() if available is None else available
    if room is None or need <= WARN_SHARE * room:
        return need
    cells = f"about {n_active:,.0f} cells x {n_candidates} candidate layers"
    if need > room:
        start = f"{option} {cell_size:g} m: {cells} would need about {_gigabytes(need)} of memory"
        per_cell = PER_CELL_CANDIDATE * max(n_candidates, 1) + PER_CELL + PER_GRID_CELL
        budget = WARN_SHARE * room - BASE_BYTES
        if budget <= 0:
            raise ParameterError(
                f"{start} and only {_gigabytes(room)} is available: too little memory for rtm "
                "on this machine now (close other programs)"
            )
        smallest = math.ceil(math.sqrt(area * per_cell / budget))
        raise ParameterError(
            f"{start} and {_gigabytes(room)} is available; use a cell size of at least "
            f"{smallest:g} m"
        )
    warnings.warn(
        f"{option} {cell_size:g} m: {cells} will need about {_gigabytes(need)}, "
        f"more than half of the {_gigabytes(room)} of memory available",
        RTMWarning,
        stacklevel=2,
    )
    return need
