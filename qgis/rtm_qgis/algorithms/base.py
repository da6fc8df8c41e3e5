"""What every rtm algorithm shares: finding rtm, running it, passing layers as files."""

from __future__ import annotations

import re
import shlex
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsSettings,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..runner import SETTING, RtmError, find_rtm, run_rtm

#: Formats rtm reads as they are; other layers are exported to a temporary GeoPackage.
COMPATIBLE = ["gpkg", "shp", "geojson"]
GROUP_HELP = (
    "rtm runs from its own installation (set its virtualenv in Settings > Options > "
    "Processing > Providers > Risk Terrain Modeling, or put rtm on PATH)."
)


def rtm_setting() -> str:
    """The provider's setting: the rtm executable or the virtualenv holding it."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        value = ProcessingConfig.getSetting(SETTING)
    except ImportError:  # Processing not loaded: read the stored value directly
        value = None
    if value is None:
        value = QgsSettings().value(f"Processing/Configuration/{SETTING}", "")
    return str(value or "")


def _factor_name(layer: QgsVectorLayer, position: int) -> str:
    """A factor name rtm accepts (``NAME=FILE``) from the layer's name."""
    name = re.sub(r"[^\w.-]+", "_", layer.name()).strip("_")
    return name or f"factor{position + 1}"


class RtmAlgorithm(QgsProcessingAlgorithm):
    """A Processing algorithm that runs one rtm command."""

    def createInstance(self) -> RtmAlgorithm:
        return type(self)()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("rtm", text)

    def canExecute(self) -> tuple[bool, str]:
        try:
            find_rtm(rtm_setting())
        except RtmError as exc:
            return False, str(exc)
        return True, ""

    # parameters shared by Analyze and Layers --------------------------------------------

    def add_study_parameters(self) -> None:
        """Factor layers, protective factors, block length and cell size."""
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                "FACTORS",
                self.tr("Risk factor layers (one factor each; the layer name is the factor's)"),
                QgsProcessing.TypeVectorAnyGeometry,
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                "PROTECTIVE",
                self.tr("Protective factor layers (expected to lower risk)"),
                QgsProcessing.TypeVectorAnyGeometry,
                optional=True,
            )
        )
        block = QgsProcessingParameterNumber(
            "BLOCK_LENGTH",
            self.tr("Block length (m): the typical street block; spatial influence steps"),
            QgsProcessingParameterNumber.Double,
            defaultValue=150.0,
            minValue=0.001,
        )
        cell = QgsProcessingParameterNumber(
            "CELL_SIZE",
            self.tr("Cell size (m; default: half the block length)"),
            QgsProcessingParameterNumber.Double,
            optional=True,
            minValue=0.001,
        )
        for parameter in (block, cell):
            parameter.setMetadata({"widget_wrapper": {"decimals": 1}})
            self.addParameter(parameter)

    def add_options_parameter(self, command: str) -> None:
        """Any other option of the rtm command, as typed on a command line (advanced)."""
        extra = QgsProcessingParameterString(
            "OPTIONS",
            self.tr(f"Other options of rtm {command} (as on the command line)"),
            optional=True,
        )
        extra.setFlags(extra.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(extra)

    def options(self, parameters: dict[str, Any], context: Any) -> list[str]:
        text = self.parameterAsString(parameters, "OPTIONS", context)
        try:
            return shlex.split(text or "")
        except ValueError as exc:
            raise QgsProcessingException(f"Other options: {exc}") from exc

    @staticmethod
    def number(parameters: dict[str, Any], name: str) -> str | None:
        value = parameters.get(name)
        if value is None or value == "":
            return None
        return repr(float(value))

    @staticmethod
    def filters(text: str, flag: str = "--where") -> list[str]:
        """One ``--where`` per line (or per ``;``) of a filter box."""
        clauses = [c.strip() for line in (text or "").splitlines() for c in line.split(";")]
        return [part for clause in clauses if clause for part in (flag, clause)]

    def source_file(
        self, parameters: dict[str, Any], name: str, context: Any, feedback: Any
    ) -> str:
        """A feature source as a file rtm reads (exported when it is not one)."""
        path, layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, name, context, COMPATIBLE, "gpkg", feedback
        )
        if not path:
            raise QgsProcessingException(self.invalidSourceError(parameters, name))
        return f"{path}:{layer}" if layer and path.lower().endswith(".gpkg") else path

    def factor_arguments(
        self, parameters: dict[str, Any], context: Any, feedback: Any
    ) -> list[str]:
        """``--factor NAME=FILE`` for each factor layer, ``--protective NAME`` for some."""
        arguments: list[str] = []
        chosen: list[tuple[QgsVectorLayer, bool]] = []
        protective = self.parameterAsLayerList(parameters, "PROTECTIVE", context)
        ids = {layer.id() for layer in protective}
        for layer in self.parameterAsLayerList(parameters, "FACTORS", context):
            if layer.id() not in ids:
                chosen.append((layer, False))
        chosen += [(layer, True) for layer in protective]
        for position, (layer, is_protective) in enumerate(chosen):
            if not isinstance(layer, QgsVectorLayer):
                raise QgsProcessingException(f"factor layer {layer.name()}: not a vector layer")
            name = _factor_name(layer, position)
            path, sublayer = QgsProcessingUtils.convertToCompatibleFormatAndLayerName(
                layer, False, name, COMPATIBLE, "gpkg", context, feedback
            )
            if sublayer and path.lower().endswith(".gpkg"):
                path = f"{path}:{sublayer}"
            arguments += ["--factor", f"{name}={path}"]
            if is_protective:
                arguments += ["--protective", name]
        return arguments

    def grid_arguments(self, parameters: dict[str, Any]) -> list[str]:
        arguments = ["--block-length", self.number(parameters, "BLOCK_LENGTH") or "0"]
        cell = self.number(parameters, "CELL_SIZE")
        return arguments + (["--cell-size", cell] if cell else [])

    # running ------------------------------------------------------------------------

    def rtm(
        self, arguments: list[str], feedback: Any, accept: tuple[int, ...] = (0,)
    ) -> tuple[int, list[str]]:
        """Run rtm; its one-line error (or the cancellation) becomes the exception."""
        try:
            return run_rtm(find_rtm(rtm_setting()), arguments, feedback, accept=accept)
        except RtmError as exc:
            message = str(exc)
            if "--overwrite" in message and self.parameterDefinition("OVERWRITE") is not None:
                message += " [in QGIS: Advanced parameters > Replace an existing run folder]"
            raise QgsProcessingException(message) from exc
