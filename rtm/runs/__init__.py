"""The run folder's owner: the typed run report and the folder read back.

* :mod:`rtm.runs.records`: :class:`RunReport` and its parts, versioned (``schema``);
* :mod:`rtm.runs.build`: the report of a fit (:func:`report_from_fit`);
* :mod:`rtm.runs.folder`: ``report.json`` written and read, the grid rebuilt
  (:func:`load_run`).

Writing the outputs of a run (maps, rasters) is :mod:`rtm.export`; making run folders
safe (markers, locks, atomic moves) is :mod:`rtm.export.atomic`.
"""

from rtm.runs.build import CAVEATS, report_from_fit
from rtm.runs.folder import (
    Run,
    json_default,
    load_run,
    read_features,
    read_report,
    write_json,
    write_report,
)
from rtm.runs.records import (
    SCHEMA,
    FactorRecord,
    GridRecord,
    InputsRecord,
    ModelRecord,
    RunReport,
)

__all__ = [
    "CAVEATS",
    "SCHEMA",
    "FactorRecord",
    "GridRecord",
    "InputsRecord",
    "ModelRecord",
    "Run",
    "RunReport",
    "json_default",
    "load_run",
    "read_features",
    "read_report",
    "report_from_fit",
    "write_json",
    "write_report",
]
