"""Gradient-boosted Poisson trees: a challenger on layers, continuous factors and exposure.

scikit-learn's ``HistGradientBoostingRegressor(loss="poisson")`` (seeded, settings in
:data:`BOOST_DEFAULTS`, fixed by common practice and not fitted to a city) on

* every candidate layer (the binary "within d" and "dense" layers RTM selects from);
* **continuous** versions of the factors (:func:`continuous_layers`): the distance to
  the nearest feature, capped at the top of the KDE ladder, and the raw kernel density
  of the features at each radius of the ladder;
* exposure features of a window of events (:func:`exposure_features`): the lagged
  own-cell counts and rings of :func:`rtm.validation.baselines.lag_features`, the KDE
  of the window's events at each radius of the ladder, and the periods since the last
  event within one block (when the events carry periods).

Continuous layers carry much more signal than the binary candidates: a model on them
alone, with no crime history, can reach a hot-spot map's accuracy. Part of such a gain
can be **location memory** rather than an environmental effect: a fine mix of many
layers can single out the places where crime has always been, so the boosted model's
accuracy is not evidence that the factors cause crime (RTM's model table is the
diagnosis; this is a forecast).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from rtm.errors import ParameterError
from rtm.grid import Grid
from rtm.validation import baselines as bl
from rtm.validation.hotspots import LADDER_BLOCKS, kde_ladder

__all__ = [
    "BOOST_DEFAULTS",
    "BoostFit",
    "continuous_layers",
    "exposure_features",
    "fit_boost",
    "thresholds_of",
]

#: Settings of the boosted trees: shallow trees, shrinkage, leaves of at least 40 cells,
#: a fixed number of rounds (no early stopping, so the fit uses no random hold-out).
BOOST_DEFAULTS: dict[str, Any] = {
    "loss": "poisson",
    "learning_rate": 0.08,
    "max_iter": 120,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


def continuous_layers(
    grid: Grid, factors: Sequence[Any], block_length: float
) -> tuple[NDArray[np.float64], list[str]]:
    """Per factor: distance to the nearest feature (capped) and its density at each radius.

    Parameters
    ----------
    grid : Grid
        The grid.
    factors : sequence of rtm.layers.Factor
        The study's factors (their features, in the grid's CRS).
    block_length : float
        The ladder's unit: the cap is the top radius, :data:`LADDER_BLOCKS` in blocks.

    Returns
    -------
    (values, names)
        ``(n_active, k)`` float64 columns and their names (``bars:distance``,
        ``bars:density_400``).
    """
    from rtm.layers import kernel_density, nearest_distance

    cap = max(LADDER_BLOCKS) * float(block_length)
    radii = [b * float(block_length) for b in LADDER_BLOCKS]
    columns: list[NDArray[np.float64]] = []
    names: list[str] = []
    for factor in factors:
        distance = nearest_distance(grid, factor.features, cap)
        columns.append(np.minimum(distance, cap))
        names.append(f"{factor.name}:distance")
        for radius, values in zip(radii, kernel_density(grid, factor.features, radii), strict=True):
            columns.append(values)
            names.append(f"{factor.name}:density_{radius:g}")
    if not columns:
        return np.zeros((grid.n_active, 0)), []
    return np.column_stack(columns), names


def thresholds_of(
    candidates: Sequence[Any], continuous: Sequence[str], block_length: float
) -> NDArray[np.bool_]:
    """Which candidate layers are a threshold of one of the ``continuous`` columns.

    A proximity candidate within ``d`` is ``distance <= d`` (kept by the capped distance
    when ``d`` is at most the cap); a density candidate at ``d`` is ``density >= mean +
    2 SD`` of the same Epanechnikov density at radius ``d`` (when ``d`` is a ladder
    radius). A tree on the continuous column can make the same split, so the boosted
    trees leave these binary columns out (they would double the work and add nothing);
    candidates of other operationalizations (street-network distance, a radius off the
    ladder) stay.
    """
    names = set(continuous)
    cap = max(LADDER_BLOCKS) * float(block_length)
    out = np.zeros(len(candidates), dtype=np.bool_)
    for i, candidate in enumerate(candidates):
        d = float(candidate.spatial_influence)
        if candidate.operationalization == "proximity":
            out[i] = d <= cap and f"{candidate.factor}:distance" in names
        elif candidate.operationalization == "density":
            out[i] = f"{candidate.factor}:density_{d:g}" in names
    return out


def _since_last(
    grid: Grid,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    periods: NDArray[np.int64],
    last_period: int,
    radius: float,
    cap: float,
) -> NDArray[np.float64]:
    """Periods since the last event within ``radius`` of each cell centre (``cap`` if none)."""
    since = np.full(grid.n_active, float(cap))
    if x.size == 0:
        return since
    cx, cy = grid.cell_centres()
    pairs = cKDTree(np.column_stack([x, y])).sparse_distance_matrix(
        cKDTree(np.column_stack([cx, cy])), radius, output_type="ndarray"
    )
    latest = np.full(grid.n_active, -np.inf)
    np.maximum.at(latest, pairs["j"], periods[pairs["i"]].astype(np.float64))
    seen = np.isfinite(latest)
    since[seen] = np.minimum(last_period - latest[seen], cap)
    return since


def exposure_features(
    grid: Grid,
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_periods: int,
    block_length: float,
    periods: ArrayLike | None = None,
    last_period: int | None = None,
) -> dict[str, NDArray[np.float64]]:
    """The boosted model's exposure features of one window of events (per period)."""
    px = np.asarray(x, dtype=np.float64).ravel()
    py = np.asarray(y, dtype=np.float64).ravel()
    scale = 1.0 / max(int(n_periods), 1)
    features = bl.lag_features(grid, px, py, n_periods=n_periods, block_length=block_length)
    for name, values in kde_ladder(grid, px, py, block_length).items():
        features[name] = values * grid.cell_size**2 * scale
    if periods is not None and last_period is not None:
        features["periods_since_last_1b"] = _since_last(
            grid,
            px,
            py,
            np.asarray(periods, dtype=np.int64).ravel(),
            int(last_period),
            float(block_length),
            float(n_periods + 1),
        )
    return features


@dataclass(frozen=True, eq=False)
class BoostFit:
    """A fitted boosted-trees challenger."""

    model: Any = field(repr=False)
    feature_names: tuple[str, ...]
    settings: dict[str, Any]

    def predict(self, design: ArrayLike) -> NDArray[np.float64]:
        """Expected counts per cell."""
        values = self.model.predict(np.asarray(design, dtype=np.float32))  # rows independent
        return np.asarray(values, dtype=np.float64)


def fit_boost(
    design: ArrayLike,
    counts: ArrayLike,
    *,
    feature_names: Sequence[str],
    seed: int = 0,
    **settings: Any,
) -> BoostFit:
    """Fit seeded Poisson gradient-boosted trees of counts on ``design``."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    X = np.asarray(design, dtype=np.float32)
    y = np.asarray(counts, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[0] != y.size or X.shape[1] != len(feature_names):
        raise ParameterError(f"design has shape {X.shape}; there are {y.size} cells")
    params = {**BOOST_DEFAULTS, **settings}
    model = HistGradientBoostingRegressor(random_state=int(seed), **params)
    # OpenMP threads as the process allows (OMP_NUM_THREADS; a Dask worker's nanny sets
    # 1): the histograms are built one feature per thread, so the fit is the same on any
    # number of threads (tests/test_forecast.py checks 1 against 2)
    model.fit(X, y)
    return BoostFit(
        model=model,
        feature_names=tuple(feature_names),
        settings={**params, "random_state": int(seed)},
    )
