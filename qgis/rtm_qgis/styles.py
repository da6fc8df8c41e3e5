"""Styles of the layers of a run folder: rtm's own colours, applied in QGIS.

* ``risk.tif``: the relative risk score on rtm's YlOrRd log ramp (its legend's colours);
* ``cells.gpkg`` filtered to the cells in a tier: the three tiers in rtm's tier colours;
* ``places.gpkg``: highest-risk, priority and patrol places as outlines.
"""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsColorRampShader,
    QgsFillSymbol,
    QgsLayerTreeLayer,
    QgsMapLayer,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsRendererCategory,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from .colours import TIER_COLOURS, TIER_NAMES, place_colour, ramp_stops
from .run_layers import RunLayer

#: The filter of cells.gpkg that keeps the cells in a tier.
TIER_FILTER = '"tier" IS NOT NULL AND "tier" <> \'\''


def rrs_max(run_folder: str | Path, layer: QgsRasterLayer | None = None) -> float:
    """The run's largest RRS: from report.json, else from the raster's statistics."""
    try:
        report = json.loads((Path(run_folder) / "report.json").read_text(encoding="utf-8"))
        return float(report["rrs"]["max"])
    except (OSError, ValueError, KeyError, TypeError):
        if layer is None:
            return 1.0
        stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.Max)
        return float(stats.maximumValue)


def style_risk(layer: QgsRasterLayer, top: float) -> None:
    """The RRS on rtm's ramp, log-scaled from 1 to ``top``."""
    shader = QgsColorRampShader(1.0, top)
    shader.setColorRampType(QgsColorRampShader.Interpolated)
    items = [
        QgsColorRampShader.ColorRampItem(value, QColor(colour), f"{value:.3g}")
        for value, colour in ramp_stops(top)
    ]
    shader.setColorRampItemList(items)
    function = QgsRasterShader()
    function.setRasterShaderFunction(shader)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, function)
    renderer.setClassificationMin(1.0)
    renderer.setClassificationMax(top)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_tiers(layer: QgsVectorLayer) -> None:
    """Cells in a tier, in the tier colours (highest, moderately high, above average)."""
    layer.setSubsetString(TIER_FILTER)
    categories = []
    for name, colour in zip(TIER_NAMES, TIER_COLOURS):
        symbol = QgsFillSymbol.createSimple(
            {"color": colour, "outline_style": "no", "outline_color": colour}
        )
        categories.append(QgsRendererCategory(name, symbol, name))
    layer.setRenderer(QgsCategorizedSymbolRenderer("tier", categories))
    layer.triggerRepaint()


def style_places(layer: QgsVectorLayer, layer_name: str) -> None:
    """Places as outlines in their colour (fill left empty: the risk shows through)."""
    symbol = QgsFillSymbol.createSimple(
        {
            "color": "0,0,0,0",
            "style": "no",
            "outline_color": place_colour(layer_name),
            "outline_width": "0.8",
        }
    )
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    layer.triggerRepaint()


def style_arms(layer: QgsVectorLayer) -> None:
    """A trial's places by arm: treatment in the highest tier's colour, control grey."""
    categories = []
    for arm, colour in (("treatment", TIER_COLOURS[0]), ("control", "#969696")):
        symbol = QgsFillSymbol.createSimple(
            {"color": colour, "outline_color": "#333333", "outline_width": "0.4"}
        )
        categories.append(QgsRendererCategory(arm, symbol, arm))
    layer.setRenderer(QgsCategorizedSymbolRenderer("arm", categories))
    layer.triggerRepaint()


def layer_uri(item: RunLayer) -> str:
    """The QGIS data source of a run layer."""
    return f"{item.source}|layername={item.sublayer}" if item.sublayer else item.source


def style_layer(layer: QgsMapLayer, item: RunLayer, top: float) -> None:
    """Apply the style of ``item``'s kind (risk, tiers or places) to ``layer``."""
    if item.kind == "risk" and isinstance(layer, QgsRasterLayer):
        style_risk(layer, top)
    elif item.kind == "tiers" and isinstance(layer, QgsVectorLayer):
        style_tiers(layer)
    elif item.kind == "places" and isinstance(layer, QgsVectorLayer):
        style_places(layer, item.sublayer)
    elif item.kind == "arms" and isinstance(layer, QgsVectorLayer):
        style_arms(layer)


#: Drawing order within a run's group, top first: small places over large, then the
#: tiers, the risk raster at the bottom.
RANKS = {"patrol_places": 0, "priority_places": 1, "places": 2, "tiers": 3, "risk": 4}


def _rank(item: RunLayer) -> int:
    return RANKS.get(item.sublayer if item.kind == "places" else item.kind, 2)


def place_in_group(layer: QgsMapLayer, item: RunLayer, project: QgsProject, group: str) -> None:
    """Move a loaded run layer into the run's group, in drawing order.

    The tiers start unchecked: they repeat the top of the risk raster in three classes
    and would hide it.
    """
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is None:
        return
    layer.setCustomProperty("rtm/rank", _rank(item))
    target = root.findGroup(group) or root.insertGroup(0, group)
    index = sum(
        1
        for child in target.children()
        if isinstance(child, QgsLayerTreeLayer)
        and child.layer() is not None
        and int(child.layer().customProperty("rtm/rank", 2)) <= _rank(item)
    )
    clone = node.clone()
    clone.setItemVisibilityChecked(item.kind != "tiers")
    target.insertChildNode(index, clone)
    node.parent().removeChildNode(node)
