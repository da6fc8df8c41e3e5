"""Randomised patrol trials at hot spots: design, power, dosage and evaluation.

* :func:`design_trial`: eligible places from a run (its ``patrol_places`` or ``places``
  layer, or a layer you give), spacing, catchment rings, blocks and a seeded allocation
  (parallel or daily crossover), with digests and a pre-registration;
* :func:`trial_power`: power or the minimum detectable effect, by simulation from the
  places' own baseline counts;
* :func:`trial_dosage`: GPS pings to minutes and visits per place per day, compliance per arm;
* :func:`evaluate_trial`: the intention-to-treat IRR (NB2 with block effects and the
  baseline, or the crossover analogue), randomisation inference, harm, dose-response,
  displacement (WDQ, WDD) and a printable report.
"""

from rtm.trial.design import DesignSettings, EventSource, TrialDesign, design_trial, read_design
from rtm.trial.dosage import trial_dosage
from rtm.trial.evaluate import evaluate_trial
from rtm.trial.power import trial_power

__all__ = [
    "DesignSettings",
    "EventSource",
    "TrialDesign",
    "design_trial",
    "evaluate_trial",
    "read_design",
    "trial_dosage",
    "trial_power",
]
