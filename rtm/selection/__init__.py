"""Model selection as RTMDx does it: culling by elastic net, then stepwise BIC.

1. :func:`cull` (:mod:`rtm.selection.culling`) keeps the candidates with a nonzero
   coefficient in a Poisson elastic net whose coefficients are constrained to be >= 0
   and whose penalty is chosen by cross-validation on folds balanced on the outcome.
2. :func:`stepwise` (:mod:`rtm.selection.stepwise`) runs a bidirectional stepwise
   search from the null model, minimizing the BIC under RTMDx's rules: at most one
   variable per factor and every factor coefficient positive and significant.
3. :func:`select_model` (:mod:`rtm.selection.select`) runs :func:`stepwise` once per
   competing family (:mod:`rtm.selection.families`: Poisson and a negative binomial)
   and keeps the lower BIC.

The fits themselves are in :mod:`rtm.selection.glm`, on data collapsed by design row
(:mod:`rtm.selection.data`).
"""

from rtm.selection.culling import RULES, CullResult, Rule, cull, enet_path, fold_assignment
from rtm.selection.families import (
    DISTRIBUTIONS,
    FAMILIES,
    NB_FORMS,
    Distribution,
    Family,
    NBForm,
    get_family,
)
from rtm.selection.glm import GLMFit, fit_glm
from rtm.selection.select import SelectionResult, select_model
from rtm.selection.stepwise import StepRecord, StepwiseResult, stepwise

__all__ = [
    "DISTRIBUTIONS",
    "FAMILIES",
    "NB_FORMS",
    "RULES",
    "CullResult",
    "Distribution",
    "Family",
    "GLMFit",
    "NBForm",
    "Rule",
    "SelectionResult",
    "StepRecord",
    "StepwiseResult",
    "cull",
    "enet_path",
    "fit_glm",
    "fold_assignment",
    "get_family",
    "select_model",
    "stepwise",
]
