"""The colours of rtm's maps, for the layers the plugin loads (no QGIS import).

They are rtm's (``rtm/export/_style.py``: the web map, the report and ``risk.png`` use
them); QGIS's Python cannot import rtm, so they are repeated here and a test checks they
are the same. The risk ramp is ColorBrewer's YlOrRd on a log scale of the relative risk
score (RRS) from 1 to its maximum: equal ratios of risk get equal colour steps.
"""

from __future__ import annotations

import math

RAMP = (
    "#ffffcc",
    "#ffeda0",
    "#fed976",
    "#feb24c",
    "#fd8d3c",
    "#fc4e2a",
    "#e31a1c",
    "#bd0026",
    "#800026",
)
#: Highest, moderately high, above average.
TIER_COLOURS = ("#b2182b", "#ef8a62", "#fddbc7")
TIER_NAMES = ("highest", "moderately high", "above average")
PLACE_COLOUR = "#2b0a3d"
PRIORITY_COLOUR = "#1f78b4"
#: Patrol places (``places.gpkg`` layer ``patrol_places``, when a run has them).
PATROL_COLOUR = "#33a02c"
#: Colour stops of the raster ramp: 4 per interval of RAMP, so that QGIS's linear
#: interpolation between stops stays within a shade of rtm's log-scale colours.
STOPS = 4 * (len(RAMP) - 1) + 1


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def ramp_colour(position: float) -> str:
    """The ramp's colour at ``position`` in [0, 1], interpolated as rtm interpolates it."""
    scaled = min(max(position, 0.0), 1.0) * (len(RAMP) - 1)
    low = min(int(math.floor(scaled)), len(RAMP) - 2)
    share = scaled - low
    a, b = _rgb(RAMP[low]), _rgb(RAMP[low + 1])
    channels = [round(x + (y - x) * share) for x, y in zip(a, b)]
    return "#" + "".join(f"{c:02x}" for c in channels)


def ramp_stops(rrs_max: float) -> list[tuple[float, str]]:
    """``(RRS, colour)`` stops of the risk raster's colour ramp, from 1 to ``rrs_max``.

    Stop ``k`` is at ``exp(log(rrs_max) * k / (STOPS - 1))``: a log scale, as rtm's.
    """
    top = math.log(max(rrs_max, 1.0 + 1e-9))
    return [(math.exp(top * k / (STOPS - 1)), ramp_colour(k / (STOPS - 1))) for k in range(STOPS)]


def place_colour(layer_name: str) -> str:
    """The outline colour of a layer of ``places.gpkg``."""
    if layer_name.startswith("priority"):
        return PRIORITY_COLOUR
    if layer_name.startswith("patrol"):
        return PATROL_COLOUR
    return PLACE_COLOUR
