"""The map layers of an rtm run folder, in drawing order (no QGIS import).

A run folder holds ``risk.tif`` (the relative risk score), ``cells.gpkg`` (each cell's
score and tier) and ``places.gpkg`` (one layer per kind of place: ``places``,
``priority_places`` and, in runs that have them, ``patrol_places``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Titles of the layers of places.gpkg; a layer not listed gets its name, capitalised.
PLACE_TITLES = {
    "places": "Highest-risk places",
    "priority_places": "Priority places",
    "patrol_places": "Patrol places",
    "intervention_areas": "Intervention areas",
}


@dataclass(frozen=True)
class RunLayer:
    """One layer to load: its output key, kind (raster/tiers/places), source and title."""

    key: str
    kind: str
    source: str
    title: str
    sublayer: str = ""


def gpkg_layers(path: Path) -> list[str]:
    """The feature tables of a GeoPackage, in the order they were written."""
    if not path.is_file():
        return []
    uri = path.resolve().as_uri() + "?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute(
            "SELECT table_name FROM gpkg_contents WHERE data_type = 'features' ORDER BY rowid"
        ).fetchall()
    return [row[0] for row in rows]


def run_layers(folder: str | Path) -> list[RunLayer]:
    """The layers of a run folder that exist, bottom first (risk, tiers, places)."""
    folder = Path(folder)
    found: list[RunLayer] = []
    if (folder / "risk.tif").is_file():
        found.append(RunLayer("RISK", "risk", str(folder / "risk.tif"), "Relative risk score"))
    if "cells" in gpkg_layers(folder / "cells.gpkg") and found:  # tiers exist with a surface
        found.append(RunLayer("TIERS", "tiers", str(folder / "cells.gpkg"), "Risk tiers", "cells"))
    for name in gpkg_layers(folder / "places.gpkg"):
        title = PLACE_TITLES.get(name, name.replace("_", " ").capitalize())
        found.append(RunLayer(name.upper(), "places", str(folder / "places.gpkg"), title, name))
    return found


def remove_gdal_sidecar(folder: Path, say: Callable[[str], Any]) -> bool:
    """Remove the statistics GDAL saved beside a run's raster when QGIS drew it.

    QGIS's GDAL writes ``risk.tif.aux.xml`` (the raster's statistics) into a run folder
    it displayed; rtm replaces only folders holding nothing but its own files, so the
    sidecar alone would make "Replace an existing run folder" fail. Only in rtm's folders
    (those with rtm's ``.rtm-run`` marker); returns whether it was removed.
    """
    sidecar = folder / "risk.tif.aux.xml"
    if not (sidecar.is_file() and (folder / ".rtm-run").is_file()):
        return False
    sidecar.unlink()
    say(f"Removed {sidecar.name} (GDAL's statistics of the previous risk.tif)")
    return True
