"""Build the installable QGIS plugin: ``dist/rtm_qgis-<version>.zip`` (``make qgis-plugin``).

The zip holds one folder, ``rtm_qgis/``, as QGIS's "Install from ZIP" expects; its
``metadata.txt`` carries rtm's version. Standard library only, and reproducible: the same
sources give the same bytes (fixed timestamps and order).
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = Path(__file__).resolve().parent / "rtm_qgis"
SKIP = {"__pycache__", ".pytest_cache"}


def version() -> str:
    """The version of rtm (``rtm/_version.py``)."""
    text = (ROOT / "rtm" / "_version.py").read_text(encoding="utf-8")
    found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text)
    if found is None:
        raise SystemExit("rtm/_version.py: no __version__")
    return found.group(1)


def build(out_dir: Path = ROOT / "dist") -> Path:
    """Write the plugin zip into ``out_dir``; returns its path."""
    release = version()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"rtm_qgis-{release}.zip"
    files = sorted(
        p
        for p in PLUGIN.rglob("*")
        if p.is_file() and not SKIP & set(p.relative_to(PLUGIN).parts) and p.suffix != ".pyc"
    )
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            data = path.read_bytes()
            if path.name == "metadata.txt":
                text = re.sub(r"(?m)^version=.*$", f"version={release}", data.decode("utf-8"))
                data = text.encode("utf-8")
            name = "rtm_qgis/" + path.relative_to(PLUGIN).as_posix()
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    partial.replace(target)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder of the zip")
    print(build(parser.parse_args().out))
