"""Validate: ``rtm validate``, a run's risk map scored against later events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterString,
)

from .base import GROUP_HELP, RtmAlgorithm


class ValidateAlgorithm(RtmAlgorithm):
    """rtm validate: capture rates, PAI, AUC of a run's map on later events."""

    def name(self) -> str:
        return "validate"

    def displayName(self) -> str:
        return self.tr("Validate a run on later events")

    def shortHelpString(self) -> str:
        return self.tr(
            "Scores the risk map of an rtm run folder against later events: capture rate, "
            "PAI, PEI and RRI at 1, 5, 10 and 20% of the area, the AUC, and the same for "
            "the challengers (risk + exposure, random forest) and prior hot spots. Writes "
            "validation.json and the capture-curve PNG beside it; the table is in the log.\n\n"
            "Filters: one per line, as rtm's --where (use the run's own, e.g. type=robbery).\n\n"
            + GROUP_HELP
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                "RUN", self.tr("Run folder (of Analyze)"), QgsProcessingParameterFile.Folder
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "EVENTS", self.tr("Later events"), [QgsProcessing.TypeVectorPoint]
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "WHERE", self.tr("Event filters (one per line)"), multiLine=True, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                "CHALLENGERS", self.tr("Also score the challenger models (slower)"), True
            )
        )
        self.add_options_parameter("validate")
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT", self.tr("Validation report"), self.tr("JSON files (*.json)")
            )
        )
        self.addOutput(QgsProcessingOutputFile("CAPTURE", self.tr("Capture curve (PNG)")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict:
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        arguments = [
            "validate",
            self.parameterAsFile(parameters, "RUN", context),
            self.source_file(parameters, "EVENTS", context, feedback),
            *self.filters(self.parameterAsString(parameters, "WHERE", context)),
            *self.options(parameters, context),
            "--out",
            out,
            "--overwrite",  # QGIS's save dialog asked; rtm still replaces only its own file
        ]
        if not self.parameterAsBoolean(parameters, "CHALLENGERS", context):
            arguments.append("--no-challengers")
        self.rtm(arguments, feedback)
        capture = Path(out).with_name(Path(out).stem + "_capture.png")
        return {"OUTPUT": out, "CAPTURE": str(capture)}
