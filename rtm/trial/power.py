"""Power and minimum detectable effect of a trial, by simulation from the places' history.

Each simulated trial draws an allocation with the design's own scheme (a seed spawned from
the power seed), draws every place's trial outcome as negative binomial around its own
baseline rate scaled to the trial's duration (times the effect when treated), and runs the
estimator the evaluation will run (:mod:`rtm.trial.models`). The power is the share of
trials whose test rejects at ``alpha``; the minimum detectable effect is the smallest
reduction with the wanted power (bisection on the reduction, the same random draws at each
step).

The over-dispersion comes from the history (:func:`history_dispersion`): with several
months of baseline, the NB2 model of the evaluation (block effects and the baseline as
covariate) is fitted to the later half of the months given the earlier half; with one
period only, an NB2 with block effects is fitted to the baseline counts.

Harm is simulated as counts times each place's own mean harm per event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rtm.errors import ParameterError
from rtm.export.atomic import atomic_dir
from rtm.runs.folder import write_json
from rtm.trial.allocation import make_blocks, rerandomise
from rtm.trial.models import crossover_estimates, parallel_estimate
from rtm.trial.nb import fit_nb2

__all__ = [
    "PowerResult",
    "history_dispersion",
    "minimum_detectable_effect",
    "simulate_power",
    "trial_power",
]


@dataclass(frozen=True)
class PowerResult:
    """The simulated power of one effect."""

    irr: float
    power: float
    mc_se: float
    sims: int


def history_dispersion(panel: pd.DataFrame, blocks: dict[str, int]) -> float:
    """NB2 over-dispersion of the places' counts, from their history (see the module notes)."""
    wide = panel.pivot_table(index="place_id", columns="period", values="events", aggfunc="sum", fill_value=0)
    block = np.array([blocks[str(p)] for p in wide.index])
    levels = np.unique(block)
    dummies = (block[:, None] == levels[None, 1:]).astype(np.float64)
    if wide.shape[1] >= 2:
        half = wide.shape[1] // 2
        earlier = wide.iloc[:, :half].sum(axis=1).to_numpy(np.float64)
        later = wide.iloc[:, half:].sum(axis=1).to_numpy(np.float64)
        x = np.column_stack([np.ones(len(block)), dummies, np.log1p(earlier)])
        return float(fit_nb2(later, x).alpha)
    counts = wide.sum(axis=1).to_numpy(np.float64)
    return float(fit_nb2(counts, np.column_stack([np.ones(len(block)), dummies])).alpha)


def _gamma_poisson(rng: np.random.Generator, mean: np.ndarray, alpha: float) -> np.ndarray:
    """NB2 draws with the given means and over-dispersion (a gamma mixture of Poissons)."""
    shape = 1.0 / max(alpha, 1e-8)
    return rng.poisson(mean * rng.gamma(shape, 1.0 / shape, size=mean.shape))


def simulate_power(
    baseline: np.ndarray,
    blocks: np.ndarray,
    *,
    rate_scale: float,
    alpha_nb: float,
    irr: float,
    sims: int = 500,
    level: float = 0.05,
    seed: int = 0,
    crossover_days: int | None = None,
    harm_per_event: np.ndarray | None = None,
) -> PowerResult:
    """Power of the evaluation for an effect ``irr`` (treatment / control rate).

    Parameters
    ----------
    baseline : (places,) array
        Baseline events per place.
    blocks : (places,) array
        The design's blocks.
    rate_scale : float
        Trial days / baseline days: a place's expected trial count is ``baseline * rate_scale``
        (per day of a crossover: ``baseline / baseline_days``).
    alpha_nb : float
        NB2 over-dispersion of the outcomes.
    crossover_days : int, optional
        Days of a crossover trial (``rate_scale`` then per day).
    harm_per_event : (places,) array, optional
        Simulate harm (counts times harm per event) instead of counts.
    """
    baseline = np.asarray(baseline, dtype=np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    base_rate = np.maximum(baseline, 0.5) * rate_scale  # a place without events is not safe
    if crossover_days is not None:
        schedules = rerandomise(blocks, seed, sims, days=crossover_days)
        mean = base_rate[None, None, :] * np.where(schedules, irr, 1.0)
        y = _gamma_poisson(rng, mean, alpha_nb).astype(np.float64)
        rejections = 0
        for draw in range(sims):
            tau, se = crossover_estimates(y[draw], schedules[draw])
            rejections += bool(np.isfinite(se[0]) and 2.0 * _norm_sf(abs(tau[0] / se[0])) < level)
    else:
        allocations = rerandomise(blocks, seed, sims)
        rejections = 0
        for treated in allocations:
            y = _gamma_poisson(rng, base_rate * np.where(treated, irr, 1.0), alpha_nb).astype(np.float64)
            if harm_per_event is not None:
                y = y * harm_per_event
            estimate = parallel_estimate(y, treated, blocks, baseline if harm_per_event is None else baseline * harm_per_event)
            rejections += bool(np.isfinite(estimate.se) and estimate.p_value < level)
    power = rejections / sims
    return PowerResult(float(irr), float(power), float(np.sqrt(power * (1 - power) / sims)), sims)


def _norm_sf(z: float) -> float:
    from scipy import stats

    return float(stats.norm.sf(z))


def minimum_detectable_effect(
    target: float = 0.8, *, steps: int = 6, **kwargs: object
) -> tuple[PowerResult, list[PowerResult]]:
    """The smallest reduction detected with power ``target``, by bisection on the reduction.

    Takes the keywords of :func:`simulate_power` except ``irr``; returns the result at the
    minimum detectable effect and every step tried.
    """
    low, high = 0.0, 0.9  # reductions
    tried: list[PowerResult] = []
    best: PowerResult | None = None
    for _ in range(steps):
        middle = (low + high) / 2.0
        result = simulate_power(irr=1.0 - middle, **kwargs)  # type: ignore[arg-type]
        tried.append(result)
        if result.power >= target:
            best, high = result, middle
        else:
            low = middle
    if best is None:
        best = simulate_power(irr=1.0 - high, **kwargs)  # type: ignore[arg-type]
        tried.append(best)
    return best, tried


def resample_places(baseline: np.ndarray, harm: np.ndarray, n: int, block_size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` places drawn with replacement from the design's (a trial of another size)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(baseline), size=n)
    new_baseline = np.asarray(baseline)[pick]
    return new_baseline, np.asarray(harm)[pick], make_blocks(new_baseline, block_size)


def trial_power(
    design_dir: str | Path,
    out: str | Path,
    *,
    days: float,
    irr: float | None = None,
    level: float = 0.05,
    target: float = 0.8,
    sims: int = 500,
    outcome: str = "counts",
    scheme: str | None = None,
    places: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Power (for ``irr``) or the minimum detectable effect of a design; writes power.json.

    ``places`` other than the design's draws that many places from the design's (with
    replacement); ``scheme`` other than the design's simulates the other scheme on the same
    places (a crossover of ``days`` days).
    """
    from rtm.trial.design import read_design

    _check(days=days, irr=irr, level=level, target=target, sims=sims, outcome=outcome, scheme=scheme, places=places)
    design = read_design(design_dir)
    scheme = scheme or design.settings.scheme
    table = design.allocation
    blocks_by_place = dict(zip(table["place_id"].astype(str), table["block"], strict=True))
    alpha_nb = history_dispersion(design.panel, blocks_by_place)
    baseline = table["baseline"].to_numpy(np.float64)
    harm = table["baseline_harm"].to_numpy(np.float64)
    blocks = design.blocks
    if places is not None and places != len(table):
        baseline, harm, blocks = resample_places(baseline, harm, places, design.settings.block_size, seed)
    if outcome == "harm" and not design.events.harm_column:
        raise ParameterError("--outcome harm: the design has no harm column (design with --harm-column)")
    baseline_days = float(design.settings.baseline_days or days)
    crossover = scheme == "crossover"
    kwargs: dict[str, Any] = {
        "baseline": baseline,
        "blocks": blocks,
        "rate_scale": (1.0 if crossover else days) / baseline_days,
        "alpha_nb": alpha_nb,
        "sims": sims,
        "level": level,
        "seed": seed,
        "crossover_days": int(round(days)) if crossover else None,
        "harm_per_event": harm / np.maximum(baseline, 1.0) if outcome == "harm" else None,
    }
    if irr is not None:
        result = simulate_power(irr=irr, **kwargs)
        record: dict[str, Any] = {"question": "power", "power": asdict(result)}
    else:
        best, tried = minimum_detectable_effect(target, **kwargs)
        record = {
            "question": "minimum detectable effect",
            "target_power": target,
            "mde_irr": best.irr,
            "mde_reduction": 1.0 - best.irr,
            "reached_target": best.power >= target,
            "power": asdict(best),
            "steps": [asdict(step) for step in tried],
        }
    record.update(
        {
            "schema": "rtm-trial-power/1",
            "scheme": scheme,
            "outcome": outcome,
            "places": int(len(baseline)),
            "days": float(days),
            "alpha": level,
            "sims": sims,
            "seed": seed,
            "nb_dispersion": alpha_nb,
            "baseline_days": baseline_days,
            "expected_events_per_place": float(np.mean(baseline) * days / baseline_days),
            "test": "crossover: Poisson place fixed effects, clustered s.e."
            if crossover
            else "NB2, block fixed effects, log(1 + baseline), HC3 s.e., t reference",
        }
    )
    with atomic_dir(out, overwrite=overwrite, kind="trial-power") as folder:
        write_json(Path(folder) / "power.json", record)
    return record


def _check(**values: Any) -> None:
    if not values["days"] > 0:
        raise ParameterError(f"--days {values['days']}: must be positive")
    if values["irr"] is not None and not 0 < values["irr"]:
        raise ParameterError(f"--effect {values['irr']}: the incidence-rate ratio must be positive")
    if not 0 < values["level"] < 1:
        raise ParameterError(f"--alpha {values['level']}: must be between 0 and 1")
    if not 0 < values["target"] < 1:
        raise ParameterError(f"--target-power {values['target']}: must be between 0 and 1")
    if values["sims"] < 10:
        raise ParameterError(f"--sims {values['sims']}: at least 10")
    if values["outcome"] not in ("counts", "harm"):
        raise ParameterError(f"--outcome {values['outcome']!r}: choose counts or harm")
    if values["scheme"] not in (None, "parallel", "crossover"):
        raise ParameterError(f"--scheme {values['scheme']!r}: choose parallel or crossover")
    if values["places"] is not None and values["places"] < 4:
        raise ParameterError(f"--places {values['places']}: at least 4")
