"""Layers: ``rtm layers``, the candidate layers of every factor as one raster."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterRasterDestination,
)

from .base import GROUP_HELP, RtmAlgorithm


class LayersAlgorithm(RtmAlgorithm):
    """rtm layers: the proximity and density candidates, one band each."""

    def name(self) -> str:
        return "layers"

    def displayName(self) -> str:
        return self.tr("Candidate layers")

    def shortHelpString(self) -> str:
        return self.tr(
            "Builds the candidate layers an analysis tests: for every factor, proximity "
            "(within 1, 2, 3 block lengths) and density (above mean + 2 SD within the same "
            "bandwidths), written as a multi-band GeoTIFF, one band per candidate "
            "(named factor:operationalization:distance).\n\n" + GROUP_HELP
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "AREA", self.tr("Study area"), [QgsProcessing.TypeVectorPolygon]
            )
        )
        self.add_study_parameters()
        self.add_options_parameter("layers")
        self.addParameter(
            QgsProcessingParameterRasterDestination("OUTPUT", self.tr("Candidate layers"))
        )

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict:
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        arguments = [
            "layers",
            "--area",
            self.source_file(parameters, "AREA", context, feedback),
            *self.factor_arguments(parameters, context, feedback),
            *self.grid_arguments(parameters),
            *self.options(parameters, context),
            "--out",
            out,
            "--overwrite",  # QGIS's save dialog asked; rtm still replaces only its own file
        ]
        self.rtm(arguments, feedback)
        return {"OUTPUT": out}
