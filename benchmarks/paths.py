"""Where the benchmarks find their data and write their results (one place for every script)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
#: The open London data, read in place (never copied into the repository).
LONDON = Path(os.environ.get("RTM_LONDON_DATA", ROOT.parent / "shared" / "data" / "london"))
