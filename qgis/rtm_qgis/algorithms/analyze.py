"""Analyze: ``rtm analyze``, its run folder's layers loaded in rtm's colours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsProject,
)

from ..run_layers import remove_gdal_sidecar, run_layers
from ..runner import NO_SIGNIFICANT_FACTOR
from ..styles import layer_uri, place_in_group, rrs_max, style_layer
from .base import GROUP_HELP, RtmAlgorithm

#: Post-processors must outlive the algorithm (QGIS holds them by a raw pointer).
_STYLERS: list[QgsProcessingLayerPostProcessorInterface] = []


class _StyleRunLayer(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded run layer in the main thread, once QGIS has loaded it."""

    def __init__(self, item: Any, top: float, group: str) -> None:
        super().__init__()
        self.item, self.top, self.group = item, top, group

    def postProcessLayer(self, layer: Any, context: Any, feedback: Any) -> None:
        style_layer(layer, self.item, self.top)
        project = context.project() or QgsProject.instance()
        place_in_group(layer, self.item, project, self.group)


class AnalyzeAlgorithm(RtmAlgorithm):
    """rtm analyze: select the risk factors, map relative risk, find the places."""

    def name(self) -> str:
        return "analyze"

    def displayName(self) -> str:
        return self.tr("Analyze (risk terrain model)")

    def shortHelpString(self) -> str:
        return self.tr(
            "Fits a risk terrain model: each factor layer becomes proximity and density "
            "layers at 1-3 block lengths, the ones that correlate with the events are "
            "selected (elastic-net culling, BIC stepwise), and the relative risk score is "
            "mapped. Writes an rtm run folder (report.json, factors.csv, risk.tif, "
            "cells.gpkg, places.gpkg, map.html, report.html) and loads the risk raster, "
            "the risk tiers and the places in rtm's colours.\n\n"
            "Filters: one per line, as rtm's --where, e.g. type=robbery or month=1..6.\n\n"
            + GROUP_HELP
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "EVENTS", self.tr("Events (crimes)"), [QgsProcessing.TypeVectorPoint]
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "AREA", self.tr("Study area"), [QgsProcessing.TypeVectorPolygon]
            )
        )
        self.add_study_parameters()
        self.addParameter(
            QgsProcessingParameterString(
                "WHERE",
                self.tr("Event filters (one per line, e.g. type=robbery)"),
                multiLine=True,
                optional=True,
            )
        )
        overwrite = QgsProcessingParameterBoolean(
            "OVERWRITE", self.tr("Replace an existing run folder (only one rtm wrote)"), False
        )
        overwrite.setFlags(overwrite.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(overwrite)
        self.add_options_parameter("analyze")
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", self.tr("Run folder")))
        self.addOutput(QgsProcessingOutputRasterLayer("RISK", self.tr("Relative risk score")))
        for key, title in (
            ("TIERS", "Risk tiers"),
            ("PLACES", "Highest-risk places"),
            ("PRIORITY_PLACES", "Priority places"),
            ("PATROL_PLACES", "Patrol places"),
        ):
            self.addOutput(QgsProcessingOutputVectorLayer(key, self.tr(title)))
        self.addOutput(QgsProcessingOutputFile("MODEL_TABLE", self.tr("Model table (factors.csv)")))
        self.addOutput(QgsProcessingOutputHtml("REPORT", self.tr("Report")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict:
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        arguments = [
            "analyze",
            self.source_file(parameters, "EVENTS", context, feedback),
            "--area",
            self.source_file(parameters, "AREA", context, feedback),
            *self.factor_arguments(parameters, context, feedback),
            *self.grid_arguments(parameters),
            *self.filters(self.parameterAsString(parameters, "WHERE", context)),
            *self.options(parameters, context),
            "--out",
            out,
        ]
        if self.parameterAsBoolean(parameters, "OVERWRITE", context):
            arguments.append("--overwrite")
            remove_gdal_sidecar(Path(out), feedback.pushInfo)
        code, _ = self.rtm(arguments, feedback, accept=(0, NO_SIGNIFICANT_FACTOR))
        if code == NO_SIGNIFICANT_FACTOR:
            feedback.pushWarning("No risk factor is significant: no risk map (see report.json).")
        results: dict[str, Any] = {
            "OUTPUT": out,
            "MODEL_TABLE": str(Path(out) / "factors.csv"),
            "REPORT": str(Path(out) / "report.html"),
        }
        self._load(out, results, context)
        return results

    def _load(self, out: str, results: dict[str, Any], context: Any) -> None:
        """Load the run's layers when the algorithm ends, each styled as rtm draws it."""
        group = f"rtm run: {Path(out).name}"
        load_on_completion(run_layers(out), rrs_max(out), group, results, context)


def load_on_completion(
    items: list[Any], top: float, group: str, results: dict[str, Any], context: Any
) -> None:
    """Have QGIS load ``items`` when the algorithm ends, styled and grouped by ``group``."""
    for item in items:
        uri = layer_uri(item)
        results[item.key] = uri
        details = QgsProcessingContext.LayerDetails(item.title, context.project(), item.key)
        details.forceName = True
        if item.kind == "risk":
            details.layerTypeHint = QgsProcessingUtils.LayerHint.Raster
        else:
            details.layerTypeHint = QgsProcessingUtils.LayerHint.Vector
        styler = _StyleRunLayer(item, top, group)
        _STYLERS.append(styler)
        details.setPostProcessor(styler)
        context.addLayerToLoadOnCompletion(uri, details)
