"""Trial design: ``rtm trial design``, a randomised patrol trial from a run's places."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from ..run_layers import RunLayer
from .analyze import load_on_completion
from .base import GROUP_HELP, RtmAlgorithm


class TrialDesignAlgorithm(RtmAlgorithm):
    """rtm trial design: blocks, allocation and catchments of a patrol trial."""

    def name(self) -> str:
        return "trial_design"

    def displayName(self) -> str:
        return self.tr("Trial design (randomised patrols)")

    def shortHelpString(self) -> str:
        return self.tr(
            "Designs a randomised trial of patrols at the places of an rtm run (its patrol "
            "places, else its highest-risk places): takes the busiest places at least a "
            "minimum distance apart, forms blocks by baseline events and randomises half of "
            "each block to treatment. Writes allocation.csv, allocation.gpkg (places by arm, "
            "catchment rings), design.json and preregistration.md, and loads the places by "
            "arm. Other options (scheme, rings, strata, harm) as on rtm's command line.\n\n"
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
                "EVENTS",
                self.tr("History events (default: the run's events file)"),
                [QgsProcessing.TypeVectorPoint],
                optional=True,
            )
        )
        integer = QgsProcessingParameterNumber.Integer
        self.addParameter(
            QgsProcessingParameterNumber(
                "PLACES", self.tr("Places to randomise"), integer, defaultValue=40, minValue=2
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "BLOCK_SIZE", self.tr("Places per block (half treated)"), integer, 4, minValue=2
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber("SEED", self.tr("Seed of the allocation"), integer, 0)
        )
        overwrite = QgsProcessingParameterBoolean(
            "OVERWRITE", self.tr("Replace an existing design folder (only one rtm wrote)"), False
        )
        overwrite.setFlags(overwrite.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(overwrite)
        self.add_options_parameter("trial design")
        self.addParameter(
            QgsProcessingParameterFolderDestination("OUTPUT", self.tr("Design folder"))
        )
        self.addOutput(QgsProcessingOutputVectorLayer("ALLOCATION", self.tr("Places by arm")))
        self.addOutput(QgsProcessingOutputFile("PREREGISTRATION", self.tr("Preregistration")))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict:
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        arguments = [
            "trial",
            "design",
            self.parameterAsFile(parameters, "RUN", context),
            "--places",
            str(self.parameterAsInt(parameters, "PLACES", context)),
            "--block-size",
            str(self.parameterAsInt(parameters, "BLOCK_SIZE", context)),
            "--seed",
            str(self.parameterAsInt(parameters, "SEED", context)),
            *self.options(parameters, context),
            "--out",
            out,
        ]
        if parameters.get("EVENTS"):
            arguments += ["--events", self.source_file(parameters, "EVENTS", context, feedback)]
        if self.parameterAsBoolean(parameters, "OVERWRITE", context):
            arguments.append("--overwrite")
        self.rtm(arguments, feedback)
        results: dict[str, Any] = {
            "OUTPUT": out,
            "PREREGISTRATION": str(Path(out) / "preregistration.md"),
        }
        places = RunLayer(
            "ALLOCATION", "arms", str(Path(out) / "allocation.gpkg"), "Trial places", "places"
        )
        load_on_completion([places], 1.0, f"rtm trial: {Path(out).name}", results, context)
        return results
