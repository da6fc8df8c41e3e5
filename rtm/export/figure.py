"""``risk.png``: a publication-quality static risk map (matplotlib).

The relative risk score on a log colour scale with a colour bar, the study-area
outline, the highest-risk places outlined and numbered, a scale bar, a north arrow
(grid north of the projected CRS) and a title. Uses matplotlib's object API (no
pyplot state), so it is safe in batch jobs and threads.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from rtm.export._style import PLACE_COLOUR, RAMP, legend_ticks
from rtm.grid import Grid

__all__ = ["draw_risk", "render_risk_png"]

#: Highest-risk places drawn (outlined and numbered, every one) on the static map.
LABELLED_PLACES = 50


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("rtm's static maps need matplotlib: pip install matplotlib") from exc
    return matplotlib


def _nice_length(span: float) -> float:
    """A round scale-bar length near a fifth of ``span`` (1, 2 or 5 times a power of ten)."""
    target = span / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def draw_risk(
    ax: Any,
    grid: Grid,
    rrs: np.ndarray,
    *,
    area: Any = None,
    places: Any = None,
    title: str | None = None,
    colorbar: bool | Any = True,
) -> Any:
    """Draw the RRS surface on a matplotlib Axes; returns the Axes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    grid : Grid
        The analysis grid.
    rrs : numpy.ndarray
        RRS per active cell.
    area : GeoDataFrame, optional
        The study area, outlined.
    places : GeoDataFrame, optional
        Places (with a ``rank`` column), outlined; the first ten are numbered.
    title : str, optional
        Axes title.
    colorbar : bool or matplotlib.axes.Axes
        Add a colour bar (in this Axes when one is given).
    """
    return _draw_risk(
        ax, grid, rrs, area=area, places=places, title=title, colorbar=colorbar, colour=False
    )


def _draw_risk(
    ax: Any,
    grid: Grid,
    rrs: np.ndarray,
    *,
    area: Any,
    places: Any,
    title: str | None,
    colorbar: bool | Any,
    colour: bool,
    streets: Any = None,
) -> Any:
    """:func:`draw_risk`; ``colour``: draw the raster as RGBA colours, not RRS values.

    The colours are those matplotlib gives the values (same colormap and norm, nearest
    resampling), so the rendered pixels are the same, but colouring the grid's cells
    costs far less than normalising and colouring every pixel of the resampled image at
    draw time. The image then holds no values (no RRS readout under an interactive
    cursor), so only static images (:func:`render_risk_png`) use it.
    """
    mpl = _matplotlib()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, LogNorm

    cmap = LinearSegmentedColormap.from_list("rtm_risk", list(RAMP)).with_extremes(bad=(0, 0, 0, 0))
    raster = np.ma.masked_invalid(grid.to_raster(np.asarray(rrs, dtype=float), nodata=np.nan))
    top = max(float(np.nanmax(rrs)), 1.0 + 1e-6)
    norm = LogNorm(vmin=1.0, vmax=top)
    x0, y0, x1, y1 = grid.bounds
    drawn = cmap(norm(raster), bytes=True) if colour else raster
    image = ax.imshow(
        drawn,
        extent=(x0, x1, y0, y1),
        cmap=None if colour else cmap,
        norm=None if colour else norm,
        interpolation="nearest",
        origin="upper",
    )
    scale = ScalarMappable(norm=norm, cmap=cmap) if colour else image
    if streets is not None and len(streets):
        _draw_streets(ax, streets)
    if area is not None and len(area):
        area.boundary.plot(ax=ax, color="#222222", linewidth=0.8)
    if places is not None and len(places):
        _draw_places(ax, places)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    _draw_scale_bar(ax, grid)
    ax.annotate(
        "N",
        xy=(0.95, 0.96),
        xytext=(0.95, 0.86),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=10,
        fontweight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5},
    )
    if colorbar is not False:
        if colorbar is True:
            bar = ax.figure.colorbar(scale, ax=ax, shrink=0.7, pad=0.02)
        else:
            bar = ax.figure.colorbar(scale, cax=colorbar)
        bar.set_label("Relative risk score (lowest-risk cell = 1)")
        bar.ax.minorticks_off()
        # the ticks map.html's legend has: 1 to the top, evenly spaced on the log scale
        bar.set_ticks([value for _, value in legend_ticks(top)])
        bar.ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
        bar.ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=12)
    return ax


def _draw_places(ax: Any, places: Any) -> None:
    """Outline the places and number each (:data:`LABELLED_PLACES` at most).

    A number is dark on a white disc ringed in the places' colour: legible on the pale
    cells and on the darkest red ones alike.
    """
    places.boundary.plot(ax=ax, color=PLACE_COLOUR, linewidth=0.9)
    for _, place in places.head(LABELLED_PLACES).iterrows():
        point = place.geometry.representative_point()
        ax.annotate(
            str(place["rank"]),
            (point.x, point.y),
            fontsize=6.5,
            fontweight="bold",
            ha="center",
            va="center",
            color=PLACE_COLOUR,
            bbox={"boxstyle": "circle,pad=0.18", "fc": "white", "ec": PLACE_COLOUR, "lw": 0.8},
            gid="rtm-place-label",
        )


def _draw_streets(ax: Any, streets: Any) -> None:
    """The streets, light, for orientation (under the places)."""
    streets.plot(ax=ax, color="#3a3a3a", linewidth=0.35, alpha=0.45, zorder=1.5)


def _draw_scale_bar(ax: Any, grid: Grid) -> None:
    """A two-part scale bar of a round length in the grid's unit, bottom left."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = grid.bounds
    unit = grid.crs.axis_info[0].unit_name if grid.crs.axis_info else "metre"
    length = _nice_length(x1 - x0)
    label = (
        f"{length / 1000:g} km"
        if unit.startswith("met") and length >= 1000
        else f"{length:g} {'m' if unit.startswith('met') else unit}"
    )
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0)
    height = 0.012 * (y1 - y0)
    ax.add_patch(Rectangle((bx, by), length, height, facecolor="black", edgecolor="black"))
    ax.add_patch(
        Rectangle((bx + length / 2, by), length / 2, height, facecolor="white", edgecolor="black")
    )
    ax.text(bx + length / 2, by + 2 * height, label, ha="center", va="bottom", fontsize=8)


def render_risk_png(
    bundle: Any, analysis: Any, *, dpi: int = 150, places_frame: Any = None
) -> bytes:
    """The static map of a run as PNG bytes.

    ``places_frame``, the :func:`rtm.places.place_frame` of ``analysis.places`` (or of its
    first places) when the caller has it, saves recomputing it.
    """
    _matplotlib()
    from matplotlib.figure import Figure

    from rtm.filters import crime_word
    from rtm.places import place_frame

    grid = bundle.grid
    width, height = grid.bounds[2] - grid.bounds[0], grid.bounds[3] - grid.bounds[1]
    aspect = height / width if width else 1.0
    # Fixed axes positions: constrained layout would cost a second full draw.
    map_height = min(max(6.6 * aspect, 3.5), 10.0)
    fig_height = map_height + 1.0
    figure = Figure(figsize=(8.0, fig_height), dpi=dpi)
    ax = figure.add_axes((0.02, 0.45 / fig_height, 0.82, map_height / fig_height))
    cax = figure.add_axes(
        (
            0.87,
            0.45 / fig_height + 0.15 * map_height / fig_height,
            0.025,
            0.7 * map_height / fig_height,
        )
    )
    crime = crime_word(bundle.report.where)
    places = None
    if analysis.places:
        shown = analysis.places[:LABELLED_PLACES]
        frame = places_frame if places_frame is not None else place_frame(grid, shown)
        places = frame.iloc[: len(shown)]
    _draw_risk(
        ax,
        grid,
        bundle.surface.rrs,
        area=bundle.area,
        places=places,
        title=f"Relative risk of {crime}: {len(bundle.surface.factors)} risk factors, "
        f"cells of {grid.cell_size:g} m",
        colorbar=cax,
        colour=True,
        streets=getattr(bundle, "streets", None),
    )
    ax.text(
        0.0,
        -0.02,
        _places_note(len(analysis.places)),
        transform=ax.transAxes,
        fontsize=7,
        va="top",
        color="#444444",
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _places_note(total: int) -> str:
    shown = f", the first {LABELLED_PLACES} of {total}" if total > LABELLED_PLACES else ""
    return (
        f"Outlined and numbered: highest-risk places (ranked by expected events){shown}. "
        "North arrow: grid north."
    )
