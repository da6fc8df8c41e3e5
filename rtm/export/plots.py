"""Static plots (PNG): capture curves of several risk surfaces; the concentration curve."""

from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from rtm._version import __version__

__all__ = ["capture_plot", "plot_capture_curves", "render_concentration_png"]


def capture_plot(validation_json: str | Path) -> Path:
    """The capture plot written beside a validation: one naming rule for every command.

    ``validation.json`` (a run folder's: ``analyze --test-crimes``, ``rtm validate RUN``)
    has ``capture.png`` beside it; any other name ``NAME.json`` has ``NAME_capture.png``.

    >>> capture_plot("run/validation.json").as_posix(), capture_plot("out/h2.json").as_posix()
    ('run/capture.png', 'out/h2_capture.png')
    """
    path = Path(validation_json)
    if path.name == "validation.json":
        return path.with_name("capture.png")
    return path.with_name(f"{path.stem}_capture.png")


def plot_capture_curves(
    path: str | Path,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str = "Capture of test-period events",
) -> Path:
    """Write a PNG of capture curves: share of events against share of area (both in %).

    Parameters
    ----------
    path : path
        The PNG to write.
    curves : mapping
        ``{label: (area_shares, capture_rates)}``, both from 0 to 1.
    title : str
        Plot title.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise ImportError(
            "the capture-curve plot needs matplotlib: pip install matplotlib"
        ) from exc
    figure, axes = plt.subplots(figsize=(7, 5), dpi=110)
    try:
        for label, (shares, rates) in curves.items():
            style = "--" if label.startswith("best") else "-"
            axes.plot(100 * np.asarray(shares), 100 * np.asarray(rates), style, label=label)
        axes.plot([0, 100], [0, 100], ":", color="grey", label="random")
        for share in (1, 5, 10, 20):
            axes.axvline(share, color="0.9", lw=0.8, zorder=0)
        axes.set_xlim(0, 40)
        axes.set_ylim(0, 100)
        axes.set_xlabel("Share of the study area (% of cells, highest risk first)")
        axes.set_ylabel("Share of test-period events captured (%)")
        axes.set_title(title)
        axes.legend(loc="lower right", fontsize=8)
        figure.tight_layout()
        figure.savefig(path, format="png", metadata={"Software": f"rtm {__version__}"})
    finally:
        plt.close(figure)
    return Path(path)


def render_concentration_png(figures: Any, *, crime: str = "events") -> bytes:
    """The concentration (Lorenz) curve of events and harm over cells, as PNG bytes.

    ``figures`` is a :class:`rtm.places.concentration.Concentration`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rtm.places.concentration import lorenz

    figure = Figure(figsize=(6.2, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    series = [(f"{crime} (Gini {figures.gini_events:.2f})", figures.events, "#b2182b")]
    if figures.harm is not None:
        series.append((f"harm (Gini {figures.gini_harm:.2f})", figures.harm, "#2166ac"))
    for label, values, colour in series:
        x, y = lorenz(values)
        step = max(1, x.size // 2000)  # enough points for a smooth line, a small file
        axes.plot(100 * x[::step], 100 * y[::step], color=colour, lw=2, label=label)
    axes.plot([0, 100], [0, 100], ":", color="grey", label="even spread")
    for item in figures.top_cells:
        share = 100 * item["cell_share"]
        axes.axvline(share, color="0.85", lw=0.8, zorder=0)
        axes.annotate(
            f"top {share:g}%: {100 * item['event_share']:.0f}%",
            (share, 100 * item["event_share"]),
            xytext=(6, -12),
            textcoords="offset points",
            fontsize=8,
        )
    axes.set_xlim(0, 50)
    axes.set_ylim(0, 100)
    axes.set_xlabel("Share of the study area (% of cells, most first)")
    axes.set_ylabel("Share of the period's total (%)")
    axes.set_title(f"How concentrated {crime} are")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    buffer = BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": f"rtm {__version__}"})
    return buffer.getvalue()
