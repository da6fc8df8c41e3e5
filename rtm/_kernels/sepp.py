"""Numba kernel of the self-exciting point process's E-step (:mod:`rtm.validation.sepp`).

Over the candidate (parent, child) pairs of events (the parent earlier, within the
time and distance cut-offs), each child's intensity is its background rate plus what
each parent triggers; each pair gets the probability that the parent triggered the
child and each event the probability that it is a background event.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def sepp_estep(parent, child, dt, d2, background, theta, omega, sigma2):
    """One E-step: ``(p_pairs, p_background)``.

    ``background[j]`` is the background intensity at event ``j``; the triggering
    kernel is ``theta * omega * exp(-omega * dt) * exp(-d2 / (2 sigma2)) / (2 pi sigma2)``.
    """
    n = background.size
    m = parent.size
    total = background.copy()
    g = np.empty(m)
    norm = theta * omega / (2.0 * math.pi * sigma2)
    for k in range(m):
        value = norm * math.exp(-omega * dt[k] - d2[k] / (2.0 * sigma2))
        g[k] = value
        total[child[k]] += value
    p_back = np.empty(n)
    for j in range(n):
        p_back[j] = background[j] / total[j] if total[j] > 0 else 1.0
    for k in range(m):
        t = total[child[k]]
        g[k] = g[k] / t if t > 0 else 0.0
    return g, p_back
