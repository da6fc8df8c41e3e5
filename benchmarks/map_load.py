"""Size of map.html files and their time to ready in headless Chromium with the network off.

    .venv/bin/python -m benchmarks.map_load RUN_DIR/map.html [...]

Needs Debian's chromium (/usr/bin/chromium) and the playwright package (test extra); no
browser is downloaded. Prints the median of 3 loads; "ready" is when the page's own
script has drawn every layer (window.rtm.ready).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]


def main(paths: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for path in paths:
            walls = []
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                start = time.perf_counter()
                page.goto("file://" + os.path.abspath(path), wait_until="load")
                page.wait_for_function("window.rtm && window.rtm.ready", timeout=120_000)
                walls.append(time.perf_counter() - start)
                page.close()
            size = os.path.getsize(path) / 1e6
            print(
                f"{path}: {size:.2f} MB; "
                f"time to ready (median of 3): {statistics.median(walls):.2f} s"
            )
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
