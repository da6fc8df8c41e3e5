"""Power and minimum detectable effect of a trial, by simulation from the places' history.

Each simulated trial draws an allocation with the design's own scheme (a seed spawned from
the power seed), draws every place's true rate from its posterior given its baseline and
its trial outcome as negative binomial around that rate scaled to the trial's duration
(times the effect when treated), and runs the estimator the evaluation will run
(:mod:`rtm.trial.models`). The power is the share of trials whose test rejects at
``alpha``; the minimum detectable effect is the smallest reduction with the wanted
power (bisection on the reduction).

The rates and the over-dispersion come from the history (:func:`history_dispersion`): the
month-to-month over-dispersion of each place around its own rate (NB2, by the method of
moments within places: an NB fit with a fixed effect per place is biased low by about
half with six months); the spread of the rates across places (a gamma, by
the method of moments) is the prior whose posterior, given a place's baseline, holds how
well a baseline predicts what follows. With a single period the within-place over-
dispersion cannot be estimated and is taken as Poisson.

Harm is simulated as counts times each place's own mean harm per event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rtm.errors import ParameterError
from rtm.export.atomic import atomic_dir
from rtm.runs.folder import write_json
from rtm.trial.allocation import make_blocks, rerandomise
from rtm.trial.models import crossover_estimates, parallel_estimate

__all__ = [
    "History",
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


@dataclass(frozen=True)
class History:
    """What the history says about the places' rates: the input of the simulation.

    Attributes
    ----------
    baseline : (places,) array
        Events per place over the history.
    periods : int
        Months (periods) of history.
    alpha_within : float
        NB2 over-dispersion of a place's monthly counts around its own rate (moments).
    prior_shape, prior_rate : float
        A gamma distribution of the places' monthly rates (method of moments): a place's
        true rate is drawn from its posterior given its baseline, so a busy baseline month
        is not taken for the truth.
    """

    baseline: np.ndarray
    periods: int
    alpha_within: float
    prior_shape: float
    prior_rate: float


def history_dispersion(panel: pd.DataFrame) -> History:
    """The places' rates and month-to-month over-dispersion, from their monthly history."""
    wide = panel.pivot_table(
        index="place_id", columns="period", values="events", aggfunc="sum", fill_value=0
    )
    wide = wide.loc[panel["place_id"].drop_duplicates().to_numpy()]
    counts = wide.to_numpy(np.float64)
    places, periods = counts.shape
    baseline = counts.sum(axis=1)
    alpha = 1e-6
    active = baseline > 0
    if periods >= 2 and active.sum() >= 2:
        # Moments within each place: its monthly variance is mu + alpha * mu**2. (An NB fit
        # with a fixed effect per place was biased low by about half with six months.)
        months = counts[active]
        mean, variance = months.mean(axis=1), months.var(axis=1, ddof=1)
        excess = float(np.sum(variance - mean))
        scale = float(np.sum(mean**2 - variance / periods))
        alpha = max(excess / scale, 1e-6) if scale > 0 else 1e-6
    monthly = baseline / periods
    mean = float(monthly.mean())
    variance = max(float(baseline.var(ddof=1) - baseline.mean()) / periods**2, 1e-3 * mean**2)
    return History(baseline, periods, alpha, mean**2 / variance, mean / variance)


def _gamma_poisson(rng: np.random.Generator, mean: np.ndarray, alpha: float) -> np.ndarray:
    """NB2 draws with the given means and over-dispersion (a gamma mixture of Poissons)."""
    shape = 1.0 / max(alpha, 1e-8)
    return rng.poisson(mean * rng.gamma(shape, 1.0 / shape, size=mean.shape))


def simulate_power(
    history: History,
    blocks: np.ndarray,
    *,
    trial_periods: float,
    irr: float,
    sims: int = 500,
    level: float = 0.05,
    seed: int = 0,
    crossover_days: int | None = None,
    harm_per_event: np.ndarray | None = None,
) -> PowerResult:
    """Power of the evaluation for an effect ``irr`` (treatment / control rate).

    Each simulated trial draws every place's true monthly rate from its posterior given
    its baseline, its trial count as negative binomial around rate x ``trial_periods``
    (x ``irr`` when treated; the month-to-month over-dispersion, summed over the months),
    a fresh allocation of the design's scheme, and runs the evaluation's test.

    Parameters
    ----------
    history : History
        From :func:`history_dispersion`.
    blocks : (places,) array
        The design's blocks.
    trial_periods : float
        The trial's duration in months (periods of the history); per day for a crossover.
    crossover_days : int, optional
        Days of a crossover trial.
    harm_per_event : (places,) array, optional
        Simulate harm (counts times harm per event) instead of counts.
    """
    baseline = np.asarray(history.baseline, dtype=np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    shape = history.prior_shape + baseline
    scale = 1.0 / (history.prior_rate + history.periods)
    alpha = history.alpha_within / max(trial_periods, 1.0)  # a sum of months averages out
    if crossover_days is not None:
        schedules = rerandomise(blocks, seed, sims, days=crossover_days)
        rejections = 0
        for draw in range(sims):
            rate = rng.gamma(shape, scale) * trial_periods
            y = _gamma_poisson(
                rng, rate[None, :] * np.where(schedules[draw], irr, 1.0), history.alpha_within
            )
            tau, se = crossover_estimates(y.astype(np.float64), schedules[draw])
            rejections += bool(np.isfinite(se[0]) and 2.0 * _norm_sf(abs(tau[0] / se[0])) < level)
    else:
        allocations = rerandomise(blocks, seed, sims)
        covariate = baseline if harm_per_event is None else baseline * harm_per_event
        rejections = 0
        for treated in allocations:
            rate = rng.gamma(shape, scale) * trial_periods
            y = _gamma_poisson(rng, rate * np.where(treated, irr, 1.0), alpha).astype(np.float64)
            if harm_per_event is not None:
                y = y * harm_per_event
            estimate = parallel_estimate(y, treated, blocks, covariate)
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


def resample_places(
    history: History, harm: np.ndarray, n: int, block_size: int, seed: int
) -> tuple[History, np.ndarray, np.ndarray]:
    """``n`` places drawn with replacement from the design's (a trial of another size)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(history.baseline), size=n)
    new = replace(history, baseline=np.asarray(history.baseline)[pick])
    return new, np.asarray(harm)[pick], make_blocks(new.baseline, block_size)


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

    _check(
        days=days,
        irr=irr,
        level=level,
        target=target,
        sims=sims,
        outcome=outcome,
        scheme=scheme,
        places=places,
    )
    design = read_design(design_dir)
    scheme = scheme or design.settings.scheme
    table = design.allocation
    history = history_dispersion(design.panel)
    harm = table["baseline_harm"].to_numpy(np.float64)
    blocks = design.blocks
    if places is not None and places != len(table):
        history, harm, blocks = resample_places(
            history, harm, places, design.settings.block_size, seed
        )
    if outcome == "harm" and not design.events.harm_column:
        raise ParameterError(
            "--outcome harm: the design has no harm column (design with --harm-column)"
        )
    baseline_days = float(design.settings.baseline_days or days)
    period_days = baseline_days / history.periods
    crossover = scheme == "crossover"
    kwargs: dict[str, Any] = {
        "history": history,
        "blocks": blocks,
        "trial_periods": (1.0 if crossover else days) / period_days,
        "sims": sims,
        "level": level,
        "seed": seed,
        "crossover_days": int(round(days)) if crossover else None,
        "harm_per_event": harm / np.maximum(history.baseline, 1.0) if outcome == "harm" else None,
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
            "places": int(len(history.baseline)),
            "days": float(days),
            "alpha": level,
            "sims": sims,
            "seed": seed,
            "nb_dispersion": history.alpha_within,
            "history_periods": history.periods,
            "rate_prior": {"shape": history.prior_shape, "rate": history.prior_rate},
            "baseline_days": baseline_days,
            "expected_events_per_place": float(np.mean(history.baseline) * days / baseline_days),
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
