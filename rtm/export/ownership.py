"""Which outputs are rtm's: the marker of rtm's folders, and the signs of rtm's files.

A folder rtm writes carries a marker, ``.rtm-run`` (JSON: the kind of folder, the rtm
version, the files rtm put in it). :func:`foreign_entries` lists what else a folder
holds; :func:`file_is_rtms` recognises a single file rtm wrote. :mod:`rtm.export.atomic`
refuses to replace anything that is not rtm's.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rtm._version import __version__

__all__ = [
    "BATCH_FILES",
    "MARKER",
    "RUN_FILES",
    "file_is_rtms",
    "folder_is_rtms",
    "foreign_entries",
    "is_rtm_temporary",
    "listing",
    "mark_folder",
    "read_marker",
    "register_files",
    "umask",
    "write_marker",
]

#: The marker file of a folder rtm wrote (JSON: kind, version, the files rtm put there).
MARKER = ".rtm-run"

_TMP = ".rtm-tmp-"

_OLD = ".rtm-old-"

_LOCK = ".rtm-lock"


#: What rtm writes into a run folder (for folders written before the marker existed).
RUN_FILES = frozenset(
    {
        "report.json",
        "factors.csv",
        "risk.tif",
        "cells.gpkg",
        "places.gpkg",
        "features.gpkg",
        "risk.png",
        "map.html",
        "report.html",
        "validation.json",
        "capture.png",
        "job.json",
    }
)

#: What ``rtm batch`` writes into its output folder (beside one folder per job in jobs/).
BATCH_FILES = frozenset({"batch.json", "batch.csv", "batch.log.jsonl", ".rtm-batch.lock", "jobs"})


def listing(names: list[str], limit: int = 5) -> str:
    """``a, b, c and 4 more``: the first few names, for a one-line message."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of ``folder`` if it is rtm's (None: no marker, or not rtm's)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != "rtm":
        return None
    return data


def _legacy_run(folder: Path) -> bool:
    """A run folder of an rtm version before the marker: an rtm report.json."""
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(report, dict)
        and {"version", "inputs", "culling", "model"} <= set(report)
        and isinstance(report.get("inputs"), dict)
        and "grid" in report["inputs"]
    )


def _legacy_batch(folder: Path) -> bool:
    try:
        summary = json.loads((folder / "batch.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"version", "config", "outcomes"} <= set(summary)


def is_rtm_temporary(name: str) -> bool:
    """Whether a name is one of rtm's temporaries or locks (never a user's file)."""
    return name.startswith(".") and (
        _TMP in name or _OLD in name or name.endswith(_LOCK) or name == ".rtm-batch.lock"
    )


def foreign_entries(folder: str | Path) -> list[str]:
    """The entries of ``folder`` that rtm did not write (sorted; empty if all are rtm's)."""
    path = Path(folder)
    entries = sorted(p.name for p in path.iterdir())
    marker = read_marker(path)
    if marker is not None:
        allowed = set(marker.get("files", ())) | {MARKER}
        allowed |= BATCH_FILES if marker.get("kind") == "batch" else RUN_FILES
    elif _legacy_run(path):
        allowed = set(RUN_FILES)
    elif _legacy_batch(path):
        allowed = set(BATCH_FILES)
    else:
        allowed = set()
    return [
        e
        for e in entries
        if e not in allowed and not is_rtm_temporary(e) and not _derived_sidecar(e, allowed)
    ]


def _derived_sidecar(name: str, allowed: set[str]) -> bool:
    """GDAL's statistics cache of one of rtm's rasters (``risk.tif.aux.xml``).

    A GIS writes it beside a raster it opens (QGIS does, on first draw); it holds only
    statistics GDAL recomputes, so replacing it with the folder loses nothing of the user's.
    """
    return name.endswith(".aux.xml") and name[: -len(".aux.xml")] in allowed


def folder_is_rtms(folder: str | Path, kind: str | None = None) -> bool:
    """Whether ``folder`` is an rtm output folder (of ``kind``) holding only rtm's files."""
    path = Path(folder)
    if not path.is_dir():
        return False
    marker = read_marker(path)
    if marker is None and not (_legacy_batch(path) if kind == "batch" else _legacy_run(path)):
        return False
    if kind is not None and marker is not None and marker.get("kind", "run") != kind:
        return False
    return not foreign_entries(path)


def file_is_rtms(path: str | Path) -> bool:
    """Whether the file at ``path`` is recognisably an output rtm wrote.

    A file inside an rtm folder and listed as rtm's is; otherwise by its content:
    JSON that rtm signed (``"written_by": "rtm ..."``) or shaped as rtm's validation and
    temporal-validation files; a PNG whose ``Software`` text says rtm; a GeoTIFF or
    GeoPackage of rtm's candidate layers (``rtm layers``).
    """
    file = Path(path)
    parent_marker = read_marker(file.parent)
    if parent_marker is not None and file.name in set(parent_marker.get("files", ())):
        return True
    suffix = file.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                return False
            signed = str(data.get("written_by", "")).startswith("rtm")
            validation = {"events", "cells", "auc", "baselines", "rules"} <= set(data)
            temporal = {"scheme", "windows", "summary"} <= set(data)
            return signed or validation or temporal
        if suffix == ".png":
            from PIL import Image

            with Image.open(file) as image:
                return str(image.info.get("Software", "")).startswith("rtm")
        if suffix in {".tif", ".tiff"}:
            import rasterio

            with rasterio.open(file) as dataset:
                if str(dataset.tags().get("RTM_WRITTEN_BY", "")).startswith("rtm"):
                    return True
                names = [d or "" for d in dataset.descriptions]
                return bool(names) and all(n.count(":") == 2 for n in names)
        if suffix == ".gpkg":
            import pyogrio

            layers = [str(row[0]) for row in pyogrio.list_layers(file)]
            if layers != ["cells"]:
                return False
            fields = list(pyogrio.read_info(file, layer="cells")["fields"])
            return fields[:2] == ["row", "col"]
    except Exception:  # noqa: BLE001 - unreadable means: not recognisably rtm's
        return False
    return False


def register_files(folder: str | Path, names: list[str]) -> None:
    """Add ``names`` to the marker of the rtm folder ``folder`` (if it has one)."""
    path = Path(folder)
    marker = read_marker(path)
    if marker is None:
        return
    files = sorted(set(marker.get("files", ())) | set(names))
    if files == marker.get("files"):
        return
    write_marker(path, marker.get("kind", "run"), files)


def mark_folder(folder: str | Path, kind: str) -> None:
    """Give ``folder`` rtm's marker of ``kind`` (a folder rtm fills over time, e.g. a batch)."""
    path = Path(folder)
    marker = read_marker(path)
    if marker is None or marker.get("kind") != kind:
        write_marker(path, kind, sorted(marker.get("files", ())) if marker else [])


def write_marker(folder: Path, kind: str, files: list[str]) -> None:
    """Write ``folder``'s marker (atomically: a reader sees the old one or the new one)."""
    text = json.dumps(
        {"written_by": "rtm", "version": __version__, "kind": kind, "files": files}, indent=1
    )
    fd, name = tempfile.mkstemp(prefix=f".{MARKER}{_TMP}", dir=folder)
    os.fchmod(fd, 0o666 & ~umask())
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(name, folder / MARKER)


def umask() -> int:
    """The process's umask (set back at once: umask can only be read by setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
