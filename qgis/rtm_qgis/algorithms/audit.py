"""Audit: ``rtm audit``, a run (or a batch folder) checked for accountable use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from .base import GROUP_HELP, RtmAlgorithm


class AuditAlgorithm(RtmAlgorithm):
    """rtm audit: exposure disparity, accuracy parity, feedback and drift."""

    def name(self) -> str:
        return "audit"

    def displayName(self) -> str:
        return self.tr("Audit a run (accountable use)")

    def shortHelpString(self) -> str:
        return self.tr(
            "Checks an rtm run folder for accountable use: with a population layer, who "
            "lives in the selected places compared with the whole area (exposure disparity "
            "by group); with sub-areas, whether the map works as well in each (accuracy "
            "parity); and the share of the outcome made of police-generated categories. "
            "For a batch folder: the feedback monitor and the drift of factors and RRVs "
            "between periods. Writes audit.json and audit.md into the output folder.\n\n"
            + GROUP_HELP
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                "RUN", self.tr("Run folder (or batch folder)"), QgsProcessingParameterFile.Folder
            )
        )
        polygons = [QgsProcessing.TypeVectorPolygon]
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "POPULATION",
                self.tr("Population: polygons with resident counts per group"),
                polygons,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                "GROUPS",
                self.tr("Group-count fields (default: every numeric field)"),
                parentLayerParameterName="POPULATION",
                type=QgsProcessingParameterField.Numeric,
                allowMultiple=True,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "SUBAREAS", self.tr("Sub-areas (boroughs, wards)"), polygons, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                "SUBAREA_FIELD",
                self.tr("Field naming each sub-area"),
                parentLayerParameterName="SUBAREAS",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "EVENTS",
                self.tr("Later events (default: the run's own)"),
                [QgsProcessing.TypeVectorPoint],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "WHERE", self.tr("Event filters (one per line)"), multiLine=True, optional=True
            )
        )
        overwrite = QgsProcessingParameterBoolean(
            "OVERWRITE", self.tr("Replace an earlier audit folder (only one rtm wrote)"), False
        )
        overwrite.setFlags(overwrite.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(overwrite)
        self.add_options_parameter("audit")
        self.addParameter(
            QgsProcessingParameterFolderDestination("OUTPUT", self.tr("Audit folder"))
        )
        self.addOutput(QgsProcessingOutputFile("AUDIT_MD", self.tr("Audit (audit.md)")))
        self.addOutput(QgsProcessingOutputFile("AUDIT_JSON", self.tr("Audit (audit.json)")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict:
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        arguments = ["audit", self.parameterAsFile(parameters, "RUN", context)]
        if parameters.get("POPULATION"):
            arguments += [
                "--population",
                self.source_file(parameters, "POPULATION", context, feedback),
            ]
            groups = self.parameterAsFields(parameters, "GROUPS", context)
            if groups:
                arguments += ["--groups", ",".join(groups)]
        if parameters.get("SUBAREAS"):
            arguments += ["--subareas", self.source_file(parameters, "SUBAREAS", context, feedback)]
            column = self.parameterAsFields(parameters, "SUBAREA_FIELD", context)
            if column:
                arguments += ["--subarea-column", column[0]]
        if parameters.get("EVENTS"):
            arguments += [
                "--test-crimes",
                self.source_file(parameters, "EVENTS", context, feedback),
            ]
        where = self.parameterAsString(parameters, "WHERE", context)
        arguments += self.filters(where, "--test-where")
        arguments += [*self.options(parameters, context), "--out", out]
        if self.parameterAsBoolean(parameters, "OVERWRITE", context):
            arguments.append("--overwrite")
        self.rtm(arguments, feedback)
        return {
            "OUTPUT": out,
            "AUDIT_MD": str(Path(out) / "audit.md"),
            "AUDIT_JSON": str(Path(out) / "audit.json"),
        }
