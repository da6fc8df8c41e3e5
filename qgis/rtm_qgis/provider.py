"""The rtm Processing provider: its algorithms and its one setting (where rtm is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.analyze import AnalyzeAlgorithm
from .algorithms.audit import AuditAlgorithm
from .algorithms.layers import LayersAlgorithm
from .algorithms.trial import TrialDesignAlgorithm
from .algorithms.validate import ValidateAlgorithm
from .runner import SETTING

ICON = Path(__file__).with_name("icon.svg")


class RtmProvider(QgsProcessingProvider):
    """Risk Terrain Modeling: Analyze, Validate, Candidate layers, Audit, Trial design."""

    def id(self) -> str:
        return "rtm"

    def name(self) -> str:
        return "Risk Terrain Modeling"

    def longName(self) -> str:
        return "Risk Terrain Modeling (rtm)"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        return str(ICON)

    def load(self) -> bool:
        """Declare the setting that points to rtm (Processing options > Providers)."""
        settings = _processing_config()
        if settings is not None:
            config, setting = settings
            config.settingIcons[self.name()] = self.icon()
            config.addSetting(
                setting(
                    self.name(),
                    SETTING,
                    "rtm executable, or the virtualenv holding it (empty: rtm on PATH)",
                    "",
                    valuetype=setting.FOLDER,
                )
            )
            config.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        settings = _processing_config()
        if settings is not None and SETTING in settings[0].settings:
            settings[0].removeSetting(SETTING)

    def loadAlgorithms(self) -> None:
        algorithms = (
            AnalyzeAlgorithm(),
            ValidateAlgorithm(),
            LayersAlgorithm(),
            AuditAlgorithm(),
            TrialDesignAlgorithm(),
        )
        for algorithm in algorithms:
            self.addAlgorithm(algorithm)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]


def _processing_config() -> tuple[Any, Any] | None:
    """Processing's settings classes, when the Processing plugin is loaded."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return None
    return ProcessingConfig, Setting
