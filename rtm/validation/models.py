"""The challenger models of plain RTM: risk + exposure, and a random forest.

Risk + exposure
    The RTM-selected environmental factors plus recent crime exposure, the log of
    kernel-smoothed prior events around the cell
    (:func:`rtm.validation.baselines.exposure_covariate`),
    in one Poisson log-linear model, optionally with adjustment covariates and an
    offset (e.g. log population, for rates)::

        log E[y] = b0 + sum_k b_k x_k + gamma * log(1 + exposure) + sum_j d_j z_j + offset

    The model table keeps a relative risk value ``exp(b_k)`` per environmental factor,
    now *adjusted* for exposure. Standard errors are robust (sandwich), so
    overdispersion does not overstate significance.
Random forest
    scikit-learn's ``RandomForestRegressor`` (seeded) on every candidate layer plus the
    exposure covariate, with permutation importance per factor (all of a factor's
    candidate columns permuted together).

Design. When the fit period's events carry a period (e.g. month), both challengers use
the *lagged* forecasting design (:func:`rtm.validation.design.challenger_surfaces`):
features computed from the earlier part of the fit period (own-cell events, and events
kernel-smoothed at 1 and 2 block lengths, see :func:`rtm.validation.baselines.lag_features`)
explain the events of the later part, and the test period is predicted from the same
features computed on the most recent window of the same length. Without periods, the
exposure is built from the same events the model is fitted to, each cell's own events
left out (``exclude_own_cell``), so the covariate never contains the outcome it explains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from rtm.errors import FitError, ParameterError
from rtm.selection.glm import fit_glm

__all__ = [
    "FOREST_DEFAULTS",
    "ExposureFit",
    "ForestFit",
    "fit_exposure_model",
    "fit_forest",
    "permutation_importance_by_group",
]

#: Forest settings, fixed by common practice for regression forests, not fitted to a city:
#: Breiman's p/3 features per split, leaves of at least 5 cells (counts are noisy); 100
#: trees each grown on half the cells (subsampling decorrelates the trees, so 100 give
#: the ranking of 300 trees on all cells to within noise, at a sixth of the time).
FOREST_DEFAULTS: dict[str, Any] = {
    "n_estimators": 100,
    "max_features": 1 / 3,
    "min_samples_leaf": 5,
    "max_samples": 0.5,
}


@dataclass(frozen=True, eq=False)
class ExposureFit:
    """A fitted risk + exposure model (Poisson, log link, robust standard errors).

    Attributes
    ----------
    names : tuple of str
        Covariate names (environmental candidates, then ``"exposure"``, then adjustments).
    coef : numpy.ndarray
        Intercept first, then one coefficient per name.
    se, pvalues : numpy.ndarray
        Robust (sandwich) standard errors and Wald p-values, same order as ``coef``.
    environment : tuple of str
        The environmental candidate names (their ``exp(coef)`` are the adjusted RRVs).
    exposure : tuple of str
        The exposure covariates' names.
    loglik : float
        Poisson log-likelihood.
    converged : bool
        Newton met its tolerance.
    """

    names: tuple[str, ...]
    coef: NDArray[np.float64] = field(repr=False)
    se: NDArray[np.float64] = field(repr=False)
    pvalues: NDArray[np.float64] = field(repr=False)
    environment: tuple[str, ...]
    loglik: float
    converged: bool
    exposure: tuple[str, ...] = ()

    def predict(self, design: ArrayLike, offset: ArrayLike | None = None) -> NDArray[np.float64]:
        """Expected counts for a design with the columns of :attr:`names`."""
        X = np.asarray(design, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.names):
            raise ParameterError(
                f"design must have {len(self.names)} columns ({', '.join(self.names)}); "
                f"got shape {X.shape}"
            )
        eta = self.coef[0] + X @ self.coef[1:]
        if offset is not None:
            eta = eta + np.asarray(offset, dtype=np.float64)
        return np.exp(eta)

    def table(self) -> list[dict[str, Any]]:
        """The model table: one row per covariate (RRV for environmental factors)."""
        rows: list[dict[str, Any]] = []
        for position, name in enumerate(self.names, start=1):
            coefficient = float(self.coef[position])
            if np.isnan(self.se[position]):  # aliased: constant or collinear in this window
                rows.append(
                    {
                        "name": name,
                        "kind": "environment"
                        if name in self.environment
                        else ("exposure" if name in self.exposure else "adjustment"),
                        "coefficient": None,
                        "rrv": None,
                        "robust_se": None,
                        "p_value": None,
                        "aliased": "constant or a linear combination of the columns before it "
                        "in these cells: left out of the fit",
                    }
                )
                continue
            rows.append(
                {
                    "name": name,
                    "kind": "environment"
                    if name in self.environment
                    else ("exposure" if name in self.exposure else "adjustment"),
                    "coefficient": coefficient,
                    "rrv": math.exp(coefficient) if name in self.environment else None,
                    "robust_se": float(self.se[position]),
                    "p_value": float(self.pvalues[position]),
                }
            )
        return rows


def fit_exposure_model(
    environment: ArrayLike,
    environment_names: Sequence[str],
    counts: ArrayLike,
    exposure: ArrayLike | Mapping[str, ArrayLike] | None,
    *,
    covariates: Mapping[str, ArrayLike] | None = None,
    offset: ArrayLike | None = None,
) -> ExposureFit:
    """Fit the risk + exposure model.

    Parameters
    ----------
    environment : array_like, shape (n_cells, k)
        The selected environmental candidates (0/1, or 0/-1 for protective factors).
    environment_names : sequence of str
        Their names.
    counts : array_like, shape (n_cells,)
        Events per cell.
    exposure : array_like, shape (n_cells,), or mapping of str to array_like, optional
        The exposure covariate (see :func:`rtm.validation.baselines.exposure_covariate`), or
        several named exposure covariates (the lagged design's own-cell and ring
        features, on the log scale); None fits the environment (and adjustments) alone.
    covariates : mapping of str to array_like, optional
        Adjustment covariates (e.g. land use shares), one value per cell.
    offset : array_like, optional
        Log-scale offset per cell (e.g. ``log(population)`` to model rates).

    Returns
    -------
    ExposureFit
    """
    y = np.asarray(counts, dtype=np.float64).ravel()
    n = y.size
    if y.sum() <= 0:
        raise FitError("cannot fit the risk + exposure model: there are no events")
    blocks: list[NDArray[np.float64]] = []
    names: list[str] = []
    exposure_names: list[str] = []
    env = np.asarray(environment, dtype=np.float64).reshape(n, -1)
    if env.shape[1] != len(environment_names):
        raise ParameterError(
            f"environment has {env.shape[1]} columns but {len(environment_names)} names"
        )
    blocks.append(env)
    names.extend(environment_names)
    if exposure is not None:
        named = exposure if isinstance(exposure, Mapping) else {"exposure": exposure}
        for name, values in named.items():
            if name in names:
                raise ParameterError(f"exposure name {name!r} is already used")
            blocks.append(np.asarray(values, dtype=np.float64).reshape(n, 1))
            names.append(name)
            exposure_names.append(name)
    for name, values in (covariates or {}).items():
        if name in names:
            raise ParameterError(f"covariate name {name!r} is already used")
        blocks.append(np.asarray(values, dtype=np.float64).reshape(n, 1))
        names.append(name)
    X = np.column_stack(blocks) if blocks else np.zeros((n, 0))
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=np.float64).ravel()
    if off.shape != (n,):
        raise ParameterError(f"offset has {off.size} values; there are {n} cells")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(off))):
        raise ParameterError("covariates and offset must be finite in every cell (log(0)?)")
    kept = _not_aliased(X)
    try:
        fit = fit_glm(X[:, kept], y, offset=off)  # rtm's one Poisson solver
    except FitError as exc:
        raise FitError(f"cannot fit the risk + exposure model: {exc}") from exc
    beta = np.zeros(X.shape[1] + 1)  # an aliased column keeps 0 (R: NA), so predict works
    beta[np.concatenate([[True], kept])] = np.asarray(fit.coef, dtype=np.float64)
    design = np.column_stack([np.ones(n), X[:, kept]])
    mu = np.exp(design @ beta[np.concatenate([[True], kept])] + off)
    hessian = design.T @ (design * mu[:, None])
    bread = np.linalg.pinv(hessian)
    meat = design.T @ (design * ((y - mu) ** 2)[:, None])
    cov = bread @ meat @ bread
    se = np.full(beta.size, np.nan)
    se[np.concatenate([[True], kept])] = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        pvalues = 2 * stats.norm.sf(np.abs(beta / se))
    return ExposureFit(
        names=tuple(names),
        coef=beta,
        se=se,
        pvalues=pvalues,
        environment=tuple(environment_names),
        exposure=tuple(exposure_names),
        loglik=float(fit.loglik),
        converged=bool(fit.converged),
    )


def _not_aliased(X: NDArray[np.float64], tol: float = 1e-7) -> NDArray[np.bool_]:
    """The columns kept, in order: those not (nearly) a combination of the ones before.

    The intercept and the columns kept before it span the space a column is checked
    against (R's ``glm`` aliases the same ones, giving them NA).
    """
    n, k = X.shape
    kept = np.zeros(k, dtype=np.bool_)
    basis = np.ones((n, 1)) / math.sqrt(n)
    for j in range(k):
        column = X[:, j]
        scale = float(np.linalg.norm(column))
        if scale == 0.0:
            continue
        residual = column - basis @ (basis.T @ column)
        residual -= basis @ (basis.T @ residual)  # twice: Gram-Schmidt stays orthogonal
        norm = float(np.linalg.norm(residual))
        if norm > tol * scale:
            kept[j] = True
            basis = np.column_stack([basis, residual / norm])
    return kept


@dataclass(frozen=True, eq=False)
class ForestFit:
    """A fitted random-forest challenger.

    Attributes
    ----------
    model : sklearn.ensemble.RandomForestRegressor
        The fitted forest.
    feature_names : tuple of str
        Column names of the design.
    groups : tuple of str
        The factor (or ``"exposure"``) of each column, for permutation importance.
    settings : dict
        The forest's parameters.
    """

    model: Any = field(repr=False)
    feature_names: tuple[str, ...]
    groups: tuple[str, ...]
    settings: dict[str, Any]

    def predict(self, design: ArrayLike) -> NDArray[np.float64]:
        """Expected counts per cell."""
        return np.asarray(
            self.model.predict(np.asarray(design, dtype=np.float32)), dtype=np.float64
        )


def fit_forest(
    design: ArrayLike,
    counts: ArrayLike,
    *,
    feature_names: Sequence[str],
    groups: Sequence[str],
    seed: int = 0,
    n_jobs: int | None = None,
    **settings: Any,
) -> ForestFit:
    """Fit a seeded random-forest regression of counts on the candidate layers (+ exposure).

    Parameters
    ----------
    design : array_like, shape (n_cells, p)
        Candidate values (and the exposure covariate).
    counts : array_like, shape (n_cells,)
        Events per cell.
    feature_names, groups : sequence of str
        Name and factor of each column.
    seed : int
        ``random_state`` of the forest.
    n_jobs : int, optional
        Trees grown in parallel (scikit-learn's meaning); default every core this process
        may use. Predictions always run on one thread, so that they are reproducible.
    **settings
        Override :data:`FOREST_DEFAULTS`.
    """
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise ImportError(
            "the forest challenger needs scikit-learn: pip install scikit-learn"
        ) from exc
    X = np.asarray(design, dtype=np.float32)
    y = np.asarray(counts, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[0] != y.size:
        raise ParameterError(f"design has shape {X.shape}; there are {y.size} cells")
    if len(feature_names) != X.shape[1] or len(groups) != X.shape[1]:
        raise ParameterError("feature_names and groups need one entry per design column")
    params = {**FOREST_DEFAULTS, **settings}
    if n_jobs is None:
        from rtm.resources import usable_cores

        n_jobs = usable_cores()
    model = RandomForestRegressor(random_state=int(seed), n_jobs=n_jobs, **params)
    model.fit(X, y)  # each tree has its own seed: the same forest on any number of cores
    # predictions sum the trees in completion order when parallel; one thread keeps the
    # order, and the bytes of the scores, fixed
    model.n_jobs = 1
    return ForestFit(
        model=model,
        feature_names=tuple(feature_names),
        groups=tuple(groups),
        settings={**params, "random_state": int(seed)},
    )


def permutation_importance_by_group(
    predict: Any,
    design: ArrayLike,
    events: ArrayLike,
    groups: Sequence[str],
    *,
    n_repeats: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Fall in AUC when all columns of a group (a factor) are permuted together.

    Parameters
    ----------
    predict : callable
        Design -> scores.
    design : array_like, shape (n_cells, p)
        The design the scores are computed from.
    events : array_like, shape (n_cells,)
        Events per cell to score against (use held-out events for an honest measure).
    groups : sequence of str
        The group of each column.
    n_repeats : int
        Permutations per group.
    seed : int
        Seed of the permutations.

    Returns
    -------
    dict
        ``{group: {"auc_drop": mean, "sd": sd}}``, largest drop first.
    """
    from rtm.validation.metrics import auc

    X = np.array(design, dtype=np.float32)
    rng = np.random.default_rng(seed)
    base = auc(predict(X), events)
    result: dict[str, dict[str, float]] = {}
    for group in dict.fromkeys(groups):
        columns = [i for i, g in enumerate(groups) if g == group]
        drops = []
        for _ in range(n_repeats):
            shuffled = X.copy()
            order = rng.permutation(X.shape[0])
            shuffled[:, columns] = X[order][:, columns]
            drops.append(base - auc(predict(shuffled), events))
        result[group] = {
            "auc_drop": float(np.mean(drops)),
            "sd": float(np.std(drops, ddof=1)) if n_repeats > 1 else 0.0,
        }
    return dict(sorted(result.items(), key=lambda item: -item[1]["auc_drop"]))
