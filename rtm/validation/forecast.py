"""The deployment forecast: "where will the next crimes be", chosen by inner validation.

Every candidate recipe (each baseline, each challenger and blends of them) is applied to
the events of an inner fit window and scored on inner held-out events, inside the fit
period only; the recipe with the best score is then applied to all fit-period events.
Test-period events are never used.

Candidates (:func:`candidate_surfaces`)
    Baselines: prior counts, KDE at each radius of the ladder
    (:data:`~rtm.validation.hotspots.LADDER_BLOCKS`), prospective hot-spotting (with
    periods), the self-exciting point process (with periods or dates). Challengers (with
    the candidate layers): risk + exposure, the random forest, the boosted trees.
    Blends (:func:`blends`): each of forest, boosted trees, prospective hot-spotting and
    the self-exciting process with the inner-chosen KDE radius, at weights 0.25, 0.5, 0.75
    of the surfaces' shares, the equal blend of forest, boosted trees and that KDE, and
    the multi-scale KDE (every ladder radius in equal shares) alone and with the models.
Inner splits (:func:`inner_splits`)
    With periods spanning at least 3: the last ``h = n // 2`` periods are held out (a
    horizon like the deployment's: the next window as long as the recent half) and
    everything before is the inner fit window; twice more, the held-out window moves one
    period earlier (windows whose fit part would be shorter than 2 periods are skipped).
    Without: **Poisson thinning**: each fit-period event goes to one of two halves at
    random (seeded), the recipes are applied to one half and scored on the other; three
    such splits. Thinning a Poisson process gives independent processes with the same
    intensity, so the score measures how well a recipe recovers the intensity.
Rule (:data:`CHOICE_RULE`)
    The KDE radius of the blends is chosen first, by mean inner capture@10% (a KDE sets
    how concentrated a blend is; inner AUC on short windows rewards smoothing that the
    longer final fit period does not need); then every candidate is scored by mean inner
    AUC + capture@10% over the splits, and the forecast is the equal blend of the
    :data:`TOP_K` best (ties: the first listed; baselines are listed first). A blend of
    the best few is steadier than the single best, whose inner lead is often noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtm.validation import baselines as bl
from rtm.validation import metrics as ev
from rtm.validation.design import ChallengerFits, start_challengers
from rtm.validation.hotspots import LADDER_BLOCKS, kde_ladder, kde_name, prospective_hotspots
from rtm.validation.sepp import Pairs, PairStore, fit_sepp, sepp_surface

__all__ = [
    "BLEND_WEIGHTS",
    "CHOICE_RULE",
    "DAYS_PER_PERIOD",
    "Forecast",
    "History",
    "blends",
    "candidate_surfaces",
    "start_candidates",
    "event_times",
    "inner_splits",
    "make_forecast",
]

#: The equal blend of the KDE ladder's radii (a recipe, see :func:`blends`).
MULTI_SCALE = "kde multi-scale"

#: Weights of the first surface in the two-surface blends.
BLEND_WEIGHTS: tuple[float, ...] = (0.25, 0.5, 0.75)

#: Days per period when events carry only a month (times spread uniformly over it).
DAYS_PER_PERIOD = 365.25 / 12

#: Inner splits of each kind.
N_SPLITS = 3

#: The forecast blends the best TOP_K candidates by inner score, in equal shares.
TOP_K = 3

CHOICE_RULE = (
    "inner validation inside the fit period only (test-period events are never used): "
    "with periods spanning at least 3, the last n // 2 periods are held out and the recipes "
    "are applied to the periods before; twice more the held-out window moves one period "
    "earlier (while at least 2 periods remain to fit on); without periods, Poisson "
    "thinning: the fit events are split at random (seeded) into two halves, the recipes "
    "applied to one and scored on the other, three times. Score = mean over the splits of "
    "inner AUC + inner capture@10%. The KDE radius of the blends is chosen first, by inner "
    "capture@10% alone; then every candidate (baselines, challengers, their blends with "
    "that KDE and with the multi-scale KDE, every ladder radius in equal shares) is scored "
    "and the forecast is the equal-share blend of the 3 best; ties go to the first listed "
    "(baselines first)."
)


@dataclass(frozen=True, eq=False)
class History:
    """A window of events a recipe is applied to (all inside the fit period)."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    periods: NDArray[np.int64] | None
    times: NDArray[np.float64] | None

    def subset(self, keep: NDArray[np.bool_]) -> History:
        """The events where ``keep``."""
        return History(
            self.x[keep],
            self.y[keep],
            None if self.periods is None else self.periods[keep],
            None if self.times is None else self.times[keep],
        )


@dataclass(frozen=True, eq=False)
class Forecast:
    """The forecast and every candidate surface, fitted on all fit-period events.

    Attributes
    ----------
    surface : numpy.ndarray
        The forecast per cell (the chosen recipe applied to all fit-period events).
    recipe : dict
        What it is: ``name``, ``components`` (surface: weight), ``kde_radius``, rule.
    choice : dict
        The inner validation: splits, each candidate's inner scores, the chosen one.
    surfaces : dict
        Every candidate surface fitted on all fit-period events.
    fits : ChallengerFits or None
        The challengers' fits (their reports, the forest for permutation importance).
    reports : dict
        JSON-ready notes on the baselines (``sepp`` parameters).
    """

    surface: NDArray[np.float64] = field(repr=False)
    recipe: dict[str, Any]
    choice: dict[str, Any] = field(repr=False)
    surfaces: dict[str, NDArray[np.float64]] = field(repr=False)
    fits: ChallengerFits | None = field(repr=False)
    reports: dict[str, Any] = field(default_factory=dict, repr=False)


def event_times(fitted: Any) -> NDArray[np.float64] | None:
    """Times (days) of the fit events: their dates, or their periods spread over a month.

    A date column with days gives the days since 1970; a month column (or dates all on
    the first of a month) gives ``(period + u) x DAYS_PER_PERIOD`` with ``u`` uniform
    on [0, 1), seeded. None without periods.
    """
    import pandas as pd

    if fitted.train_periods is None:
        return None
    periods = np.asarray(fitted.train_periods, dtype=np.float64)
    frame, column = fitted.train_events, fitted.extra.get("period_column")
    if frame is not None and column in getattr(frame, "columns", ()) and len(frame) == periods.size:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            dates = pd.to_datetime(values.astype("string"), errors="coerce", format="mixed")
            if dates.notna().all() and (dates.dt.day != 1).any():
                epoch = pd.Timestamp("1970-01-01")
                days = (dates - epoch).dt.total_seconds().to_numpy() / 86400.0
                return np.asarray(days, dtype=np.float64) + 0.5
    rng = np.random.default_rng(int(fitted.seed))
    return (periods + rng.random(periods.size)) * DAYS_PER_PERIOD


def _share(values: ArrayLike) -> NDArray[np.float64]:
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, None)
    total = v.sum()
    return v / total if total > 0 else np.full(v.shape, 1.0 / max(v.size, 1))


Candidates = tuple[dict[str, NDArray[np.float64]], ChallengerFits | None, dict[str, Any]]


def candidate_surfaces(fitted: Any, history: History, **options: Any) -> Candidates:
    """Every base recipe applied to ``history``: surfaces, challenger fits, notes.

    :func:`start_candidates` without a lane, waited for (``options`` are its keywords).
    """
    return start_candidates(fitted, history, **options)()


def start_candidates(
    fitted: Any,
    history: History,
    *,
    horizon: int,
    challengers: bool,
    common: Mapping[str, Any],
    continuous: Any = None,
    lane: Executor | None = None,
    pairs: Callable[[float], Pairs | None] | None = None,
) -> Callable[[], Candidates]:
    """Every base recipe applied to ``history``, the forest growing on ``lane`` meanwhile.

    The challengers start first, so that the forest grows while the boosted trees and
    the baselines are fitted here; the returned function waits for it and gives the
    surfaces, the challenger fits and the notes. The surfaces are listed in the same
    order with or without a lane (baselines first: the rule's ties go to them).
    ``pairs``: the self-exciting process's pairs when already searched
    (:class:`rtm.validation.sepp.PairStore`).
    """
    grid, block = fitted.grid, float(fitted.block_length)
    counts, _ = bl.counts_in_cells(grid, history.x, history.y)
    pending = None
    if challengers and fitted.candidates is not None and counts.sum() > 0:
        pending = start_challengers(
            fitted,
            history.x,
            history.y,
            train_periods=history.periods,
            continuous=continuous,
            lane=lane,
            **common,
        )
    surfaces: dict[str, NDArray[np.float64]] = {"prior_counts": counts.astype(np.float64)}
    surfaces.update(kde_ladder(grid, history.x, history.y, block))
    notes: dict[str, Any] = {}
    if history.periods is not None and history.periods.size:
        last = int(history.periods.max())
        surfaces.update(
            prospective_hotspots(
                grid, history.x, history.y, history.periods, last_period=last, block_length=block
            )
        )
    if history.times is not None and history.times.size >= 2:
        fit = fit_sepp(
            history.x,
            history.y,
            history.times,
            block_length=block,
            area=_area(fitted),
            pairs=pairs,
        )
        end = float(history.times.max())
        surfaces["sepp"] = sepp_surface(
            fit,
            grid,
            history.x,
            history.y,
            history.times,
            start=end,
            horizon=horizon * DAYS_PER_PERIOD,
        )
        notes["sepp"] = {**fit.as_dict(), "horizon_days": horizon * DAYS_PER_PERIOD}

    def finish() -> Candidates:
        if pending is None:
            return surfaces, None, notes
        fits = pending()
        return {**surfaces, **fits.surfaces}, fits, notes

    return finish


def _area(fitted: Any) -> float:
    return float(fitted.grid.n_active * fitted.grid.cell_size**2)


def blends(surfaces: Mapping[str, NDArray[np.float64]], kde: str) -> dict[str, dict[str, float]]:
    """The blend recipes ``{name: {surface: weight}}`` with the KDE surface ``kde``.

    Besides the blends with the chosen radius: the **multi-scale KDE** (every radius of
    the ladder in equal shares, a hedge on the radius) alone and with the forest, the
    boosted trees, and both.
    """
    out: dict[str, dict[str, float]] = {}
    for name in ("forest", "gbm", "promap_1b", "sepp"):
        if name in surfaces:
            for w in BLEND_WEIGHTS:
                out[f"{name}+kde w={w:g}"] = {name: w, kde: 1.0 - w}
    if "forest" in surfaces and "gbm" in surfaces:
        out["forest+gbm+kde"] = {"forest": 1 / 3, "gbm": 1 / 3, kde: 1 / 3}
    ladder = [kde_name(b) for b in LADDER_BLOCKS if kde_name(b) in surfaces]
    if ladder:
        mix = {k: 1.0 / len(ladder) for k in ladder}
        out[MULTI_SCALE] = dict(mix)
        models = [m for m in ("forest", "gbm") if m in surfaces]
        for name in models:
            out[f"{name}+{MULTI_SCALE}"] = {name: 0.5, **{k: 0.5 * w for k, w in mix.items()}}
        if len(models) == 2:
            third = {k: w / 3 for k, w in mix.items()}
            out[f"forest+gbm+{MULTI_SCALE}"] = {"forest": 1 / 3, "gbm": 1 / 3, **third}
    return out


def _blend(surfaces: Mapping[str, NDArray[np.float64]], recipe: Mapping[str, float]) -> Any:
    return sum(w * _share(surfaces[name]) for name, w in recipe.items())


@dataclass(frozen=True)
class Split:
    """One inner split: fit on ``fit``, score on ``score`` (masks of the fit events)."""

    label: str
    fit: NDArray[np.bool_] = field(repr=False)
    score: NDArray[np.bool_] = field(repr=False)
    horizon: int


def inner_splits(periods: NDArray[np.int64] | None, n_events: int, seed: int) -> list[Split]:
    """The inner splits (see the module notes): lagged windows, or Poisson thinning."""
    splits: list[Split] = []
    if periods is not None and periods.size:
        first, last = int(periods.min()), int(periods.max())
        n = last - first + 1
        h = max(1, n // 2)
        for k in range(N_SPLITS if n >= 3 else 0):
            start = last - h + 1 - k
            if start - first < 2:
                break
            held = (periods >= start) & (periods <= start + h - 1)
            splits.append(
                Split(
                    f"fit periods {first}-{start - 1}, score {start}-{start + h - 1}",
                    periods < start,
                    held,
                    h,
                )
            )
    if splits:
        return splits
    rng = np.random.default_rng(seed)
    for k in range(N_SPLITS):
        half = rng.random(n_events) < 0.5
        splits.append(Split(f"thinning {k + 1}: half A -> half B", half, ~half, 1))
    return splits


def _scores(surface: NDArray[np.float64], held: NDArray[np.float64]) -> tuple[float, float]:
    return ev.auc(surface, held), float(ev.capture(surface, held, [0.1])[0])


def _mean(table: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, values in table.items():
        auc = float(np.mean([v[0] for v in values]))
        cap = float(np.mean([v[1] for v in values]))
        out[name] = {"auc": auc, "capture@10%": cap, "score": auc + cap}
    return out


def make_forecast(
    fitted: Any,
    *,
    challengers: bool = True,
    common: Mapping[str, Any],
    continuous: Any = None,
    times: NDArray[np.float64] | None = None,
    progress: Any = None,
) -> Forecast:
    """Choose the forecast recipe by inner validation and apply it to all fit events."""
    history = History(
        np.asarray(fitted.train_x, dtype=np.float64),
        np.asarray(fitted.train_y, dtype=np.float64),
        None if fitted.train_periods is None else np.asarray(fitted.train_periods, dtype=np.int64),
        times,
    )
    splits = inner_splits(history.periods, history.x.size, int(fitted.seed))
    n_periods = (
        1
        if history.periods is None or not history.periods.size
        else int(history.periods.max() - history.periods.min() + 1)
    )
    # (history, horizon, held-out counts, which of the fit events the window holds)
    windows: list[tuple[History, int, NDArray[np.float64] | None, NDArray[np.bool_] | None]]
    windows = []
    for split in splits:
        inner = history.subset(split.fit)
        held, _ = bl.counts_in_cells(fitted.grid, history.x[split.score], history.y[split.score])
        if held.sum() > 0 and inner.x.size > 0:
            windows.append((inner, split.horizon, held.astype(np.float64), split.fit))
    windows.append((history, max(1, n_periods // 2), None, None))  # the final fit: every event
    # the self-exciting pairs of every window come from one search of all the fit events
    store = None
    if history.times is not None and history.times.size >= 2:
        store = PairStore(history.x, history.y, history.times, block_length=fitted.block_length)

    def start(window: tuple[Any, ...], lane: Any) -> Any:
        return start_candidates(
            fitted,
            window[0],
            horizon=window[1],
            challengers=challengers,
            common=common,
            continuous=continuous,
            lane=lane,
            pairs=None if store is None else partial(store.pairs, window[3]),
        )

    with forest_lane(challengers) as lane:
        results = _pipelined(start, windows, lane, progress)
    per_split = [(r[0], w[2]) for r, w in zip(results, windows, strict=True) if w[2] is not None]
    final, fits, notes = results[-1]
    return _choose(final, fits, notes, per_split, splits)


@contextmanager
def forest_lane(enabled: bool = True) -> Iterator[Executor | None]:
    """A thread that grows the forests while this one fits everything else; None on 1 core.

    Most of a window's other work keeps one core busy and leaves the other idle: the
    boosted trees' Python loop between their histograms, the risk + exposure model, the
    KDE ladder, the self-exciting process. Growing the forest on that idle core instead of
    on both cores after them balances the two (London 100 m, per window: forest 2.7 s on
    one core beside 2.9 s of the rest; the forecast stage 10.7 s -> 9.6 s, the whole
    ``analyze --test-crimes`` 16.9 s -> 15.9 s). The boosted trees use one OpenMP thread
    here meanwhile (the limit is this thread's own: the lane does not use OpenMP). Every
    fit is the same as in turn (each tree has its own seed; the histograms are built one
    feature per thread): ``tests/test_lagged.py`` compares them byte for byte.
    """
    from rtm.resources import usable_cores

    if not enabled or usable_cores() < 2:
        yield None
        return
    import sklearn.ensemble  # noqa: F401  # loads the OpenMP runtime the limit below reaches
    from threadpoolctl import threadpool_limits

    lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtm-forest")
    try:
        with threadpool_limits(limits=1, user_api="openmp"):
            yield lane
    except BaseException:
        # an error or Ctrl-C is reported now; the forest being grown cannot be stopped
        # (the process waits for it on exit), the ones queued are dropped
        lane.shutdown(wait=False, cancel_futures=True)
        raise
    lane.shutdown(wait=True)


def _pipelined(start: Any, windows: list[Any], lane: Any, progress: Any) -> list[Any]:
    """Start each window (its forest queued on ``lane``), finishing the one before meanwhile.

    Windows were slower side by side on two threads (12.2 s against 9.6 s on London
    100 m: every fit used both cores inside, and they contended); here the forest lane and
    this thread each use one core, and a window is finished (its forest waited for) once
    the next one has started, so the lane is never idle and progress comes window by
    window.
    """
    say = progress or (lambda message: None)
    done: list[Any] = []
    pending: list[Any] = []
    for window in windows:
        pending.append(start(window, lane))
        if len(pending) > 1:
            done.append(pending.pop(0)())
            say(f"forecast: window {len(done)} of {len(windows)} fitted")
    while pending:
        done.append(pending.pop(0)())
        say(f"forecast: window {len(done)} of {len(windows)} fitted")
    return done


def _choose(
    final: dict[str, NDArray[np.float64]],
    fits: ChallengerFits | None,
    notes: dict[str, Any],
    per_split: list[tuple[dict[str, NDArray[np.float64]], NDArray[np.float64]]],
    splits: list[Split],
) -> Forecast:
    """Apply the rule to the inner scores; the chosen recipe on the final surfaces."""
    ladder = [kde_name(b) for b in LADDER_BLOCKS]
    if not per_split:  # no inner split has held-out events: the two-block KDE
        kde = kde_name(2.0)
        fallback = {"name": kde, "components": {kde: 1.0}, "kde_radius": kde, "rule": CHOICE_RULE}
        reason = {"rule": CHOICE_RULE, "chosen": kde, "reason": "no inner split had events"}
        return Forecast(final[kde], fallback, reason, final, fits, notes)
    raw: dict[str, list[tuple[float, float]]] = {}
    for surfaces, held in per_split:
        for name in surfaces:
            if name in final:
                raw.setdefault(name, []).append(_scores(surfaces[name], held))
    means = _mean({k: v for k, v in raw.items() if len(v) == len(per_split)})
    # the radius by inner capture@10%, the patrol map's measure: a KDE sets how concentrated
    # a blend is, and AUC on a short inner window rewards smoothing that a longer fit
    # period does not need (fine radii gain most from more months of events)
    kde = max(ladder, key=lambda k: means[k]["capture@10%"])
    recipes: dict[str, dict[str, float]] = {name: {name: 1.0} for name in means}
    for name, parts in blends(final, kde).items():
        if all(part in means for part in parts):
            recipes[name] = parts
            values = [_scores(_blend(s, parts), held) for s, held in per_split]
            means[name] = _mean({name: values})[name]
    ranked = sorted(recipes, key=lambda k: -means[k]["score"])  # stable: listed first on ties
    top = ranked[:TOP_K]
    components: dict[str, float] = {}
    for name in top:
        for part, weight in recipes[name].items():
            components[part] = components.get(part, 0.0) + weight / len(top)
    chosen = "top-" + str(len(top)) + " blend: " + " | ".join(top) if len(top) > 1 else top[0]
    recipes[chosen] = components
    means[chosen] = _mean(
        {chosen: [_scores(_blend(s, components), held) for s, held in per_split]}
    )[chosen]
    recipe: dict[str, Any] = {
        "name": chosen,
        "components": recipes[chosen],
        "kde_radius": kde,
        "rule": CHOICE_RULE,
    }
    choice: dict[str, Any] = {
        "rule": CHOICE_RULE,
        "criterion": "mean inner AUC + capture@10% over the splits",
        "splits": [s.label for s in splits],
        "scored_splits": len(per_split),
        "kde_radius": kde,
        "candidates": means,
        "chosen": chosen,
    }
    surface = np.asarray(_blend(final, recipes[chosen]), dtype=np.float64)
    return Forecast(surface, recipe, choice, final, fits, notes)
