"""The model families: each owns its variance, its dispersion, its kernel and its words.

A family is looked up by name (:func:`get_family`, glum's ``get_family`` is the model).
Poisson and the two negative binomials compete in stepwise selection (the lower BIC
wins); the quasi-Poisson is the harm-weighted outcome's. Adding a family is one entry
here (and, for a new likelihood, its kernel) with its tests.

Negative binomial parametrizations
----------------------------------
``nb2``
    Variance ``mu + mu**2 / theta``; the dispersion reported is ``theta``
    (statsmodels' ``NegativeBinomial(loglike_method="nb2")`` reports ``alpha = 1/theta``).
``nbii``
    gamlss ``NBII``, as RTMDx uses: variance ``mu * (1 + sigma)``, a negative binomial
    with size ``mu / sigma``; the dispersion reported is ``sigma`` (statsmodels'
    ``loglike_method="nb1"`` reports the same number as ``alpha``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from rtm.checks import check_choice

__all__ = [
    "DISTRIBUTIONS",
    "FAMILIES",
    "NB_FORMS",
    "Distribution",
    "Family",
    "NBForm",
    "get_family",
]

Distribution = Literal["poisson", "nb2", "nbii"]
NBForm = Literal["nbii", "nb2"]


@dataclass(frozen=True)
class Family:
    """A count-model family.

    Attributes
    ----------
    name : str
        The registry key (``poisson``, ``nbii``, ``nb2``, ``quasipoisson``).
    label : str
        How summaries name it.
    variance_text : str
        The variance function, as the report states it.
    dispersion_name : str or None
        The dispersion parameter reported (``sigma``, ``theta``; None for Poisson).
    kernel : int or None
        The negative-binomial kernel's ``kind`` (:func:`rtm._kernels.glm.nb_newton`):
        0 for NB2, 1 for NBII; None for Poisson-likelihood families.
    """

    name: str
    label: str
    variance_text: str
    dispersion_name: str | None = None
    kernel: int | None = None

    @property
    def negative_binomial(self) -> bool:
        """Whether the family is a negative binomial."""
        return self.kernel is not None

    def variance(self, mu: NDArray[np.float64], dispersion: float | None) -> NDArray[np.float64]:
        """``V(mu)`` at the fitted means (Poisson where the dispersion is unknown)."""
        if self.kernel is None or dispersion is None:
            return mu
        if self.kernel == 1:
            return mu * (1.0 + float(dispersion))
        theta = float(dispersion)
        return mu + (mu * mu / theta if math.isfinite(theta) and theta > 0 else 0.0)

    def dispersion_from_log(self, log_value: float) -> float:
        """The reported dispersion from the kernel's log parameter ``a``."""
        return float(np.exp(-log_value)) if self.kernel == 0 else float(np.exp(log_value))

    @property
    def boundary_dispersion(self) -> float:
        """The reported dispersion at the Poisson boundary (theta infinite, sigma 0)."""
        return np.inf if self.kernel == 0 else 0.0

    def moment_scale(self, w: NDArray[np.float64], mu: NDArray[np.float64]) -> float:
        """The denominator of the method-of-moments start of the dispersion."""
        if self.kernel == 0:
            return max(float((w * mu**2).sum()), 1e-300)
        return max(float((w * mu).sum()), 1e-300)


FAMILIES: dict[str, Family] = {
    "poisson": Family("poisson", "Poisson", "var = mu"),
    "nbii": Family(
        "nbii",
        "negative binomial (nbii)",
        "var = mu * (1 + sigma)  (NBII, as gamlss and RTMDx)",
        dispersion_name="sigma",
        kernel=1,
    ),
    "nb2": Family(
        "nb2",
        "negative binomial (nb2)",
        "var = mu + mu^2 / theta  (NB2)",
        dispersion_name="theta",
        kernel=0,
    ),
    "quasipoisson": Family("quasipoisson", "quasi-Poisson", "var = phi * mu  (quasi-Poisson)"),
}

#: The likelihood families a model can be fitted with (the quasi-Poisson scales Poisson).
DISTRIBUTIONS: tuple[Distribution, ...] = ("poisson", "nb2", "nbii")
#: The negative binomials that can compete with Poisson (``--nb-form``).
NB_FORMS: tuple[NBForm, ...] = ("nbii", "nb2")


def get_family(name: str) -> Family:
    """The family called ``name``; the error lists the valid names.

    Examples
    --------
    >>> get_family("nbii").dispersion_name
    'sigma'
    """
    return FAMILIES[check_choice("distribution", name, tuple(FAMILIES))]
