"""rtm for QGIS: a Processing provider that runs rtm (Risk Terrain Modeling).

QGIS's own Python needs none of rtm's dependencies: the algorithms run the ``rtm``
command of an installation the user points to (see :mod:`.runner`).
"""


def classFactory(iface):  # noqa: N802 - the name QGIS calls
    """The plugin object (QGIS's entry point)."""
    from .plugin import RtmPlugin

    return RtmPlugin(iface)
