"""Displacement and diffusion of benefits in the catchments of a trial's places.

For each ring around the places (and for all rings together) with ``T``, ``C`` the crimes
in the treated and control places, ``D``, ``DC`` those in the rings around them, before
(``0``, the baseline scaled to the trial's duration) and during (``1``) the trial:

* the **weighted displacement quotient** (Bowers & Johnson 2003),
  ``WDQ = (D1/DC1 - D0/DC0) / (T1/C1 - T0/C0)``: the change in the rings relative to
  their controls, per unit of success in the places. Above 0: diffusion of benefits;
  below 0: displacement. Meaningful only when the places improved (``T1/C1 < T0/C0``);
* the **weighted displacement difference** (Wheeler & Ratcliffe 2018),
  ``WDD = (T1 - T0) - (C1 - C0) + (D1 - D0) - (DC1 - DC0)``, the net change in crimes
  attributable to treatment counting the rings, with its Poisson variance (the sum of the
  eight counts, scaled counts weighted by the square of their scale) and a z-test.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["wdd", "wdq"]


def wdq(
    t0: float, t1: float, c0: float, c1: float, d0: float, d1: float, dc0: float, dc1: float
) -> float | None:
    """The weighted displacement quotient, or None when a ratio is undefined.

    Examples
    --------
    >>> round(wdq(100, 60, 100, 100, 50, 40, 50, 50), 3)  # the ring improved too: diffusion
    0.5
    """
    if min(c0, c1, dc0, dc1) <= 0:
        return None
    success = t1 / c1 - t0 / c0
    if success == 0:
        return None
    return float((d1 / dc1 - d0 / dc0) / success)


def wdd(counts: dict[str, float], *, scale: float = 1.0) -> dict[str, float]:
    """The weighted displacement difference test.

    ``counts`` holds ``t0 t1 c0 c1 d0 d1 dc0 dc1``; the before counts are multiplied by
    ``scale`` (trial days / baseline days) so both periods count the same length of time.

    Examples
    --------
    >>> counts = {"t0": 20, "t1": 10, "c0": 20, "c1": 20}
    >>> out = wdd({**counts, "d0": 10, "d1": 10, "dc0": 10, "dc1": 10})
    >>> out["wdd"], round(out["se"], 3)
    (-10.0, 10.488)
    """
    c = counts
    local = (c["t1"] - scale * c["t0"]) - (c["c1"] - scale * c["c0"])
    rings = (c["d1"] - scale * c["d0"]) - (c["dc1"] - scale * c["dc0"])
    variance = (c["t1"] + c["c1"] + c["d1"] + c["dc1"]) + scale**2 * (
        c["t0"] + c["c0"] + c["d0"] + c["dc0"]
    )
    se = float(np.sqrt(variance))
    z = (local + rings) / se if se > 0 else 0.0
    return {
        "local": float(local),
        "rings": float(rings),
        "wdd": float(local + rings),
        "se": se,
        "z": float(z),
        "p_value": float(2.0 * stats.norm.sf(abs(z))),
    }
