"""MkDocs hook: render docs/tutorial.py (a Jupytext percent-format script) as the tutorial page.

The script is the single source: the test suite runs it (tests/test_docs.py), readers open it in
Jupyter (``jupytext --to notebook docs/tutorial.py``), and this hook turns its markdown cells into
prose and its code cells into code blocks. The page is not executed during the build, so the build
needs neither a kernel nor the data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

SOURCE = "tutorial.py"
PAGE = "tutorial.md"
_CELL = re.compile(r"^# %%(?P<header>.*)$")


def script_to_markdown(text: str) -> str:
    """Convert a percent-format script to Markdown (markdown cells as prose, code cells fenced)."""
    cells: list[tuple[str, list[str]]] = []
    kind, lines = "preamble", []
    for line in text.splitlines():
        match = _CELL.match(line)
        if match:
            cells.append((kind, lines))
            kind = "markdown" if "[markdown]" in match["header"] else "code"
            lines = []
        else:
            lines.append(line)
    cells.append((kind, lines))
    parts = []
    for kind, body in cells:
        if kind == "markdown":
            parts.append("\n".join(re.sub(r"^# ?", "", line) for line in body).strip())
        elif kind == "code":
            code = "\n".join(body).strip()
            if code:
                parts.append(f"```python\n{code}\n```")
    download = (
        "\n\n---\n\n*This page is generated from `docs/tutorial.py`, a Jupytext percent-format "
        "script that the test suite runs. Open it as a notebook with "
        "`jupytext --to notebook docs/tutorial.py`, or run it with `python docs/tutorial.py`.*\n"
    )
    return "\n\n".join(p for p in parts if p) + download


def on_files(files: Files, config: Any) -> Files:
    """Add the generated tutorial page."""
    source = Path(config["docs_dir"]) / SOURCE
    files.append(
        File.generated(config, PAGE, content=script_to_markdown(source.read_text(encoding="utf-8")))
    )
    return files
