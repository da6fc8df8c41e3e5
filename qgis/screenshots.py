"""Screenshots of the plugin for the docs: the Analyze dialog and the loaded result.

Runs headless with QGIS's Python, in a throw-away QGIS profile, on the sample city (the
events as a CSV layer, the factors as shapefiles, as an analyst would have them open)::

    RTM_EXECUTABLE=.venv/bin/rtm QT_QPA_PLATFORM=offscreen \\
        /usr/bin/python3 qgis/screenshots.py --out docs/images

Writes ``qgis-dialog.png`` (the Analyze dialog, filled in) and ``qgis-result.png`` (the
layers panel and the map canvas after the run: the layers loaded and styled by the
algorithm itself, through Processing's ``runAndLoadResults``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
PROCESSING = "/usr/share/qgis/python/plugins"


def _headless() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = Path(tempfile.mkdtemp(prefix="rtm-qgis-shots-"))
    if not os.environ.get("XDG_RUNTIME_DIR"):
        (scratch / "runtime").mkdir(mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(scratch / "runtime")
    os.environ["QGIS_CUSTOM_CONFIG_PATH"] = str(scratch / "profile")  # not the user's


def _inputs(project):  # noqa: ANN001, ANN202 - QGIS objects
    from qgis.core import QgsFillSymbol, QgsSingleSymbolRenderer, QgsVectorLayer

    root = project.layerTreeRoot()
    inputs = root.addGroup("Inputs")
    uri = f"{(SAMPLE / 'crimes.csv').as_uri()}?type=csv&xField=x&yField=y&crs=EPSG:32630"
    events = QgsVectorLayer(uri, "crimes", "delimitedtext")
    area = QgsVectorLayer(str(SAMPLE / "area.gpkg"), "study area", "ogr")
    outline = {"style": "no", "outline_color": "#333333", "outline_width": "0.6"}
    area.setRenderer(QgsSingleSymbolRenderer(QgsFillSymbol.createSimple(outline)))
    factors = [
        QgsVectorLayer(str(path), path.stem, "ogr")
        for path in sorted((SAMPLE / "factors").glob("*.shp"))
    ]
    for layer in [area, events, *factors]:
        assert layer.isValid(), layer.source()
        project.addMapLayer(layer, False)
        node = inputs.addLayer(layer)
        node.setItemVisibilityChecked(layer is area)
        node.setExpanded(False)
    inputs.setExpanded(False)
    parks = [layer for layer in factors if layer.name() == "parks"]
    return {
        "EVENTS": events.id(),
        "AREA": area.id(),
        "FACTORS": [layer.id() for layer in factors if layer.name() != "parks"],
        "PROTECTIVE": [layer.id() for layer in parks],
        "BLOCK_LENGTH": 150,
        "WHERE": "type=robbery",
    }, area


def main() -> None:
    """Write the two screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--run", type=Path, help="run folder to write (default: a temporary one)")
    args = parser.parse_args()
    _headless()
    from qgis.core import QgsApplication, QgsProject

    app = QgsApplication([], True)
    app.initQgis()
    sys.path[:0] = [PROCESSING, str(ROOT / "qgis")]
    import processing
    from processing.core.Processing import Processing
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsProcessingFeedback

    from rtm_qgis.provider import RtmProvider

    Processing.initialize()
    provider = RtmProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    project = QgsProject.instance()
    parameters, area = _inputs(project)
    run = args.run or Path(tempfile.mkdtemp(prefix="rtm-qgis-run-")) / "robbery"
    parameters["OUTPUT"] = str(run)
    args.out.mkdir(parents=True, exist_ok=True)

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("rtm:analyze")
    dialog = AlgorithmDialog(algorithm)
    dialog.setParameters(parameters)
    dialog.resize(980, 860)
    dialog.show()
    for _ in range(20):
        app.processEvents()
    dialog.grab().save(str(args.out / "qgis-dialog.png"))
    dialog.close()

    class Log(QgsProcessingFeedback):
        def pushInfo(self, info: str) -> None:  # noqa: N802
            print(info, flush=True)

    processing.runAndLoadResults("rtm:analyze", parameters, feedback=Log())
    _result_window(app, project, area).grab().save(str(args.out / "qgis-result.png"))
    print(f"screenshots in {args.out}; run folder {run}")
    QgsApplication.processingRegistry().removeProvider(provider)
    app.exitQgis()


def _result_window(app, project, area):  # noqa: ANN001, ANN202 - QGIS objects
    """The layers panel beside the map canvas, drawn."""
    from qgis.core import QgsLayerTreeModel
    from qgis.gui import QgsLayerTreeMapCanvasBridge, QgsLayerTreeView, QgsMapCanvas
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtGui import QColor
    from qgis.PyQt.QtWidgets import QSplitter

    window = QSplitter(Qt.Horizontal)
    view = QgsLayerTreeView()
    root = project.layerTreeRoot()
    node = root.findLayer(area.id())  # the study area's outline over the results
    root.insertChildNode(0, node.clone())
    node.parent().removeChildNode(node)
    model = QgsLayerTreeModel(root)
    model.setFlag(QgsLayerTreeModel.AllowNodeChangeVisibility)
    view.setModel(model)  # the view does not own the model: kept with the window below
    canvas = QgsMapCanvas()
    canvas.setCanvasColor(QColor("#ffffff"))
    canvas.setDestinationCrs(area.crs())
    bridge = QgsLayerTreeMapCanvasBridge(project.layerTreeRoot(), canvas)
    window.addWidget(view)
    window.addWidget(canvas)
    window.setSizes([330, 820])
    window.resize(1150, 780)
    window.show()
    bridge.setCanvasLayers()
    extent = area.extent()
    extent.scale(1.05)
    canvas.setExtent(extent)
    canvas.refreshAllLayers()
    for _ in range(50):
        app.processEvents()
        canvas.waitWhileRendering()
    app.processEvents()
    window.kept = (bridge, model)  # alive as long as the window
    return window


if __name__ == "__main__":
    main()
