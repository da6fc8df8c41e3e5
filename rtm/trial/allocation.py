"""Blocks and seeded randomisation: who is treated, reproducibly and verifiably.

Places are ranked by their baseline (events or harm), within a stratum when one is given
(a borough or ward column), and cut into blocks of ``block_size`` consecutive places. In
each block, half the places are treated (an odd block gives its extra place to an arm by
a coin toss): the arms are balanced within every block. A crossover schedule draws that
allocation afresh for every day.

The randomness is one ``numpy.random.default_rng(seed)`` stream consumed block by block in
a fixed order, so the same places, blocks and seed give the same allocation on any
machine; :func:`allocation_digest` hashes the inputs, the seed and the result so anyone
can check later that the allocation was not changed after the fact. Randomisation
inference re-runs exactly this scheme with other seeds (:func:`rerandomise`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ARMS",
    "allocate",
    "allocation_digest",
    "crossover_schedule",
    "make_blocks",
    "rerandomise",
]

#: The two arms, as allocation.csv writes them.
ARMS = ("treatment", "control")


def make_blocks(
    baseline: np.ndarray, block_size: int, strata: Sequence[object] | None = None
) -> np.ndarray:
    """Block number per place: consecutive ``block_size`` places by descending baseline.

    Within a stratum places are ranked by baseline (ties by their order); a stratum's last
    block may be smaller, and a block of one is merged into the block before it in the same
    stratum (a single place cannot be balanced). Block numbers start at 1.

    Examples
    --------
    >>> make_blocks(np.array([5, 9, 1, 7]), 2).tolist()
    [2, 1, 2, 1]
    """
    values = np.asarray(baseline, dtype=np.float64)
    groups = np.zeros(len(values), dtype=np.int64) if strata is None else _codes(strata)
    blocks = np.zeros(len(values), dtype=np.int64)
    next_block = 1
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        order = members[np.argsort(-values[members], kind="stable")]
        sizes = [block_size] * (len(order) // block_size)
        if len(order) % block_size:
            sizes.append(len(order) % block_size)
        if len(sizes) > 1 and sizes[-1] == 1:
            sizes[-2] += 1
            sizes.pop()
        position = 0
        for size in sizes:
            blocks[order[position : position + size]] = next_block
            next_block += 1
            position += size
    return blocks


def _codes(strata: Sequence[object]) -> np.ndarray:
    labels = [str(value) for value in strata]
    order = {label: index for index, label in enumerate(sorted(set(labels)))}
    return np.array([order[label] for label in labels], dtype=np.int64)


def _draw(blocks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One allocation: True for treated, half of each block (a coin for an odd one out)."""
    treated = np.zeros(len(blocks), dtype=bool)
    for block in np.unique(blocks):
        members = np.flatnonzero(blocks == block)
        n_treated = len(members) // 2 + (int(rng.integers(2)) if len(members) % 2 else 0)
        chosen = rng.permutation(members)[:n_treated]
        treated[chosen] = True
    return treated


def allocate(blocks: np.ndarray, seed: int) -> np.ndarray:
    """Treated (True) or control per place: seeded block randomisation.

    Examples
    --------
    >>> blocks = np.array([1, 1, 2, 2, 2, 2])
    >>> treated = allocate(blocks, seed=7)
    >>> [int(treated[blocks == b].sum()) for b in (1, 2)]
    [1, 2]
    >>> bool((allocate(blocks, seed=7) == treated).all())
    True
    """
    return _draw(np.asarray(blocks), np.random.default_rng(seed))


def crossover_schedule(blocks: np.ndarray, days: int, seed: int) -> np.ndarray:
    """A (days, places) array of treated flags: a fresh block randomisation every day."""
    rng = np.random.default_rng(seed)
    blocks = np.asarray(blocks)
    return (
        np.stack([_draw(blocks, rng) for _ in range(days)])
        if days
        else np.zeros((0, len(blocks)), bool)
    )


def rerandomise(
    blocks: np.ndarray, seed: int, draws: int, *, days: int | None = None
) -> np.ndarray:
    """``draws`` allocations of the same scheme, from seeds derived from ``seed``.

    Returns (draws, places) for a parallel design, (draws, days, places) for a crossover.
    The seeds come from ``numpy.random.SeedSequence(seed).spawn``: reproducible, and never
    the design's own seed.
    """
    children = np.random.SeedSequence(seed).spawn(draws)
    if days is None:
        return np.stack([_draw(np.asarray(blocks), np.random.default_rng(c)) for c in children])
    return np.stack(
        [
            np.stack([_draw(np.asarray(blocks), rng) for _ in range(days)])
            for rng in (np.random.default_rng(c) for c in children)
        ]
    )


def allocation_digest(
    inputs: dict[str, object], seed: int, allocation: list[dict[str, object]]
) -> dict[str, str]:
    """SHA-256 digests of the inputs, and of the inputs + seed + allocation together.

    ``inputs`` holds what the allocation was drawn from (the places and their baselines,
    the block settings); ``allocation`` the rows of allocation.csv. Publishing the
    ``allocation`` digest before the trial lets anyone check, after it, that the file they
    are shown is the one that was drawn.
    """
    inputs_text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    inputs_hash = hashlib.sha256(inputs_text.encode()).hexdigest()
    whole = json.dumps(
        {"inputs": inputs_hash, "seed": int(seed), "allocation": allocation},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return {"inputs": inputs_hash, "allocation": hashlib.sha256(whole.encode()).hexdigest()}
