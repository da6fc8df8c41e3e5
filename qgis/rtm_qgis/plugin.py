"""The plugin object QGIS creates: it registers the provider, in QGIS and in qgis_process."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import RtmProvider


class RtmPlugin:
    """Adds the rtm Processing provider (no menus: everything is in the Toolbox)."""

    def __init__(self, iface: Any = None) -> None:
        self.iface = iface
        self.provider: RtmProvider | None = None

    def initProcessing(self) -> None:
        """Called by QGIS and by qgis_process (plugins with hasProcessingProvider=yes)."""
        if self.provider is None:
            self.provider = RtmProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
