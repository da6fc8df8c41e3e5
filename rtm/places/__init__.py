"""Risk tiers, highest-risk places and priority places from a relative risk surface.

* :mod:`rtm.places.surface`: what they are computed from (:class:`RiskSurface`);
* :mod:`rtm.places.tiers`: the RRS cut at ``mean + k * SD`` (defaults k = 2, 1, 0:
  "highest", "moderately high", "above average"), ties never split;
* :mod:`rtm.places.clusters`: places as clusters of cells, their facts and polygons;
* :mod:`rtm.places.recent`: the recent window of priority places;
* :mod:`rtm.places.analysis`: all of them together (:func:`analyze_places`).
"""

from rtm.places.analysis import PlaceAnalysis, analyze_places
from rtm.places.clusters import Place, PlaceFactor, place_frame
from rtm.places.recent import DEFAULT_RECENT_DAYS, RecentWindow, select_recent
from rtm.places.surface import FactorLayer, RiskSurface
from rtm.places.tiers import TIE_RULE, TIER_NAMES, Tier, Tiers, assign_tiers
from rtm.spec_values import CONNECTIVITY, DEFAULT_TIER_CUTS, check_tier_cuts

__all__ = [
    "CONNECTIVITY",
    "DEFAULT_RECENT_DAYS",
    "DEFAULT_TIER_CUTS",
    "TIER_NAMES",
    "TIE_RULE",
    "FactorLayer",
    "Place",
    "PlaceAnalysis",
    "PlaceFactor",
    "RecentWindow",
    "RiskSurface",
    "Tier",
    "Tiers",
    "analyze_places",
    "assign_tiers",
    "check_tier_cuts",
    "place_frame",
    "select_recent",
]
