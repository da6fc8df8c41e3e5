"""``evaluate_trial``: the effect of a trial on the events that followed its design.

Reads the design folder and the trial period's events, counts them per place (and per
place and day for a crossover), and writes into an rtm-owned folder:

* ``evaluation.json``: ``effect`` (``irr``, ``ci``, ``p_value``, ``p_randomization``, ...),
  ``harm`` (the same for harm, with a harm column), ``displacement`` (WDQ and WDD per
  ring and for all rings), ``dose_response`` (with a dosage folder), ``analysed``, ``model``;
* ``counts.csv``: per place its arm, block, baseline and trial counts, harm and rings;
* ``evaluation.html``: the printable report (CONSORT flow, effects, displacement, figure);
* ``counts.png``: trial counts against baseline by arm.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from rtm.errors import InputError, ParameterError
from rtm.export.atomic import atomic_dir
from rtm.runs.folder import write_json
from rtm.trial.allocation import rerandomise
from rtm.trial.design import EventSource, TrialDesign, read_design, read_trial_events
from rtm.trial.displacement import wdd, wdq
from rtm.trial.models import Estimate, crossover_estimates, parallel_estimate, randomization_p
from rtm.trial.places import count_in, days_spanned
from rtm.trial.report import evaluation_html

__all__ = ["evaluate_trial"]


def evaluate_trial(
    design_dir: str | Path,
    events: str | Path,
    out: str | Path,
    *,
    where: tuple[str, ...] | None = None,
    days: float | None = None,
    dosage_dir: str | Path | None = None,
    permutations: int = 500,
    level: float = 0.95,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate a trial on its events and write the evaluation folder (atomically).

    Parameters
    ----------
    design_dir : path
        A folder written by ``rtm trial design``.
    events : path
        The trial period's events (same columns as the history's).
    where : tuple of str, optional
        Filters of the events (``COL=V1,V2`` or ``COL=LO..HI``); default the design's.
    days : float, optional
        The trial's duration (default: from the events' dates or months).
    dosage_dir : path, optional
        A folder written by ``rtm trial dosage``: adds the dose-response.
    permutations : int
        Re-drawn allocations for the randomisation p-value.
    """
    if permutations < 1:
        raise ParameterError(f"--permutations {permutations}: must be at least 1")
    design = read_design(design_dir)
    source = replace(
        design.events,
        file=str(events),
        where=design.events.where if where is None else tuple(where),
    )
    with atomic_dir(out, overwrite=overwrite, kind="trial-evaluation") as folder:
        crs = pyproj.CRS.from_user_input(design.crs)
        points, harm, frame = read_trial_events(source, crs, what="--events")
        trial_days = days or days_spanned(frame)
        if trial_days is None:
            raise ParameterError(
                "--days: the events have no date or month column; give the trial's duration"
            )
        counts = _counts(design, points, harm)
        place_days = None
        effect: tuple[Estimate, float]
        if design.settings.scheme == "crossover":
            estimate, p_random, place_days = _crossover(design, points, frame, permutations)
            effect, harm_effect = (estimate, p_random), None
        else:
            effect = _parallel(
                design, counts["events"], design.allocation["baseline"], permutations
            )
            harm_effect = (
                _parallel(design, counts["harm"], design.allocation["baseline_harm"], permutations)
                if design.events.harm_column
                else None
            )
        result = _result(
            design, counts, effect, harm_effect, float(trial_days), level, source,
            place_days,
        )  # fmt: skip
        if dosage_dir is not None:
            result["dose_response"] = _dose_response(design, counts, Path(dosage_dir), level)
        figure = _figure(counts)
        counts.to_csv(Path(folder) / "counts.csv", index=False, lineterminator="\n")
        write_json(Path(folder) / "evaluation.json", result)
        (Path(folder) / "counts.png").write_bytes(figure)
        html = evaluation_html(result, design.record["consort"], figure)
        (Path(folder) / "evaluation.html").write_text(html, encoding="utf-8")
    return result


def _counts(design: TrialDesign, points: np.ndarray, harm: np.ndarray) -> pd.DataFrame:
    table = design.allocation
    geoms = np.asarray(design.places.geometry.values, dtype=object)
    out = table[["place_id", "block", "arm", "baseline", "baseline_harm"]].copy()
    out["events"] = count_in(geoms, points).astype(np.int64)
    out["harm"] = count_in(geoms, points, harm)
    rings = design.rings
    ring_counts = count_in(np.asarray(rings.geometry.values, dtype=object), points)
    for outer in design.settings.rings:
        chosen = rings["outer"].to_numpy() == outer
        by_place = dict(
            zip(rings["place_id"].astype(str)[chosen], ring_counts[chosen], strict=True)
        )
        out[f"ring_{outer:g}"] = [int(by_place[p]) for p in out["place_id"].astype(str)]
    return out


def _parallel(
    design: TrialDesign, y: pd.Series, baseline: pd.Series, permutations: int
) -> tuple[Estimate, float]:
    outcome = y.to_numpy(np.float64)
    base = baseline.to_numpy(np.float64)
    blocks = design.blocks
    observed = parallel_estimate(outcome, design.treated, blocks, base)
    draws = rerandomise(blocks, design.settings.seed, permutations)
    stats = np.array([parallel_estimate(outcome, t, blocks, base).z for t in draws])
    return observed, randomization_p(observed.z, stats)


def _crossover(
    design: TrialDesign, points: np.ndarray, frame: pd.DataFrame, permutations: int
) -> tuple[Estimate, float, dict[str, dict[str, float]]]:
    """The crossover estimate, its randomisation p-value, and the events per arm's place-days."""
    if design.schedule is None or "date" not in frame.columns:
        raise InputError("--events: a crossover evaluation needs a date column in the events")
    dates = pd.to_datetime(frame["date"], errors="coerce").dt.strftime("%Y-%m-%d").to_numpy()
    days = sorted(set(design.schedule["date"]))
    ids = design.allocation["place_id"].astype(str).tolist()
    geoms = np.asarray(design.places.geometry.values, dtype=object)
    y = np.stack([count_in(geoms, points[dates == day]) for day in days])
    wide = design.schedule.assign(treated=design.schedule["arm"] == "treatment").pivot(
        index="date", columns="place_id", values="treated"
    )
    treated = wide.loc[days, ids].to_numpy(bool)
    tau, se = crossover_estimates(y, treated)
    observed = Estimate(float(tau[0]), float(se[0]), None, int(y.size))
    place_days = {
        "treatment": {"events": float(y[treated].sum()), "place_days": float(treated.sum())},
        "control": {"events": float(y[~treated].sum()), "place_days": float((~treated).sum())},
    }
    draws = rerandomise(design.blocks, design.settings.seed, permutations, days=len(days))
    tau_draws, se_draws = crossover_estimates(y, draws)
    return observed, randomization_p(observed.z, tau_draws / se_draws), place_days


def _effect_dict(estimate: Estimate, p_random: float, level: float) -> dict[str, Any]:
    low, high = estimate.ci(level)
    return {
        "irr": estimate.irr,
        "ci": [low, high],
        "ci_level": level,
        "p_value": estimate.p_value,
        "p_randomization": p_random,
        "log_irr": estimate.log_irr,
        "se": estimate.se,
        "alpha": estimate.alpha,
        "n": estimate.n,
    }


def _displacement(design: TrialDesign, counts: pd.DataFrame, trial_days: float) -> dict[str, Any]:
    treated = counts["arm"].to_numpy() == "treatment"
    table = design.allocation
    scale = trial_days / float(design.settings.baseline_days or trial_days)
    t0, c0 = float(table["baseline"][treated].sum()), float(table["baseline"][~treated].sum())
    t1, c1 = float(counts["events"][treated].sum()), float(counts["events"][~treated].sum())
    rows = []
    inner = 0.0
    totals = {"d0": 0.0, "d1": 0.0, "dc0": 0.0, "dc1": 0.0}
    for outer in design.settings.rings:
        before = table[f"ring_{outer:g}_baseline"].to_numpy(np.float64)
        after = counts[f"ring_{outer:g}"].to_numpy(np.float64)
        ring = {
            "d0": float(before[treated].sum()),
            "d1": float(after[treated].sum()),
            "dc0": float(before[~treated].sum()),
            "dc1": float(after[~treated].sum()),
        }
        for key in totals:
            totals[key] += ring[key]
        rows.append(_ring_row(inner, outer, t0, t1, c0, c1, ring, scale))
        inner = outer
    return {
        "rings": rows,
        "all_rings": _ring_row(0.0, max(design.settings.rings), t0, t1, c0, c1, totals, scale),
        "baseline_scale": scale,
    }


def _ring_row(
    inner: float,
    outer: float,
    t0: float,
    t1: float,
    c0: float,
    c1: float,
    ring: dict[str, float],
    scale: float,
) -> dict[str, Any]:
    test = wdd({"t0": t0, "t1": t1, "c0": c0, "c1": c1, **ring}, scale=scale)
    return {
        "inner": inner,
        "outer": outer,
        "treated_rings_before": ring["d0"],
        "treated_rings_after": ring["d1"],
        "control_rings_before": ring["dc0"],
        "control_rings_after": ring["dc1"],
        "wdq": wdq(t0, t1, c0, c1, ring["d0"], ring["d1"], ring["dc0"], ring["dc1"]),
        "wdd": test["wdd"],
        "wdd_local": test["local"],
        "wdd_rings": test["rings"],
        "wdd_se": test["se"],
        "wdd_z": test["z"],
        "wdd_p_value": test["p_value"],
    }


def _result(
    design: TrialDesign,
    counts: pd.DataFrame,
    effect: tuple[Estimate, float],
    harm_effect: tuple[Estimate, float] | None,
    trial_days: float,
    level: float,
    source: EventSource,
    place_days: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    estimate, p_random = effect
    crossover = design.settings.scheme == "crossover"
    description = (
        "Poisson with place fixed effects (conditional on each place's total), "
        "standard errors clustered by place"
        if crossover
        else "NB2 with block fixed effects and log(1 + baseline); HC3 sandwich "
        "standard error, t reference"
    )
    treated = counts["arm"] == "treatment"
    low, high = estimate.ci(level)
    if place_days is not None:
        on, off = place_days["treatment"], place_days["control"]
        tally = (
            f"{on['events']:.0f} crimes on {on['place_days']:.0f} treated and "
            f"{off['events']:.0f} on {off['place_days']:.0f} control place-days"
        )
    else:
        tally = (
            f"{int(counts['events'][treated].sum())} crimes at {int(treated.sum())} treated and "
            f"{int(counts['events'][~treated].sum())} at {int((~treated).sum())} control places"
        )
    summary = (
        f"Treated {'place-days' if crossover else 'places'} had {estimate.irr:.2f} times the "
        f"crime rate of control ones (95% CI {low:.2f}-{high:.2f}; p = {estimate.p_value:.3f}, "
        f"randomisation p = {p_random:.3f}); {tally} over {trial_days:.0f} days."
    )
    return {
        "schema": "rtm-trial-evaluation/1",
        "effect": _effect_dict(estimate, p_random, level),
        "harm": _effect_dict(*harm_effect, level) if harm_effect else None,
        "displacement": _displacement(design, counts, trial_days),
        "dose_response": None,
        "analysed": {"treatment": int(treated.sum()), "control": int((~treated).sum())},
        "place_days": place_days,
        "model": {"scheme": design.settings.scheme, "description": description},
        "trial_days": trial_days,
        "events": {"file": source.file, "where": list(source.where)},
        "design_sha256": design.record["sha256"]["allocation"],
        "summary": summary,
    }


def _dose_response(
    design: TrialDesign, counts: pd.DataFrame, dosage_dir: Path, level: float
) -> dict[str, Any]:
    path = dosage_dir / "dosage.csv"
    if not path.is_file():
        raise InputError(
            f"--dosage {dosage_dir}: dosage.csv is missing (is it an rtm trial dosage output?)"
        )
    dosage = pd.read_csv(path, dtype={"place_id": str})
    days = max(dosage["date"].nunique(), 1)
    minutes = dosage.groupby("place_id")["minutes"].sum() / days
    per_day = counts["place_id"].astype(str).map(minutes).fillna(0.0).to_numpy(np.float64)
    dose = np.log2(1.0 + per_day)
    # The dose enters where the treatment indicator does; blocks and baseline as before.
    estimate = parallel_estimate(
        counts["events"].to_numpy(np.float64),
        dose,
        design.blocks,
        design.allocation["baseline"].to_numpy(np.float64),
    )
    low, high = estimate.ci(level)
    return {
        "description": "IRR per doubling of (1 + patrol minutes per day) at a place",
        "irr": estimate.irr,
        "ci": [low, high],
        "p_value": estimate.p_value,
        "observational": True,
    }


def _figure(counts: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for arm, colour in (("treatment", "#c0392b"), ("control", "#2c3e50")):
        chosen = counts["arm"] == arm
        ax.scatter(
            counts["baseline"][chosen], counts["events"][chosen], label=arm, color=colour, alpha=0.8
        )
    ax.set_xlabel("baseline crimes")
    ax.set_ylabel("crimes during the trial")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
