"""Read the inputs into GeoDataFrames in the study area's CRS, or fail with a clear error.

* :mod:`rtm.io.readers`: the study area, the events, the risk factors (the names most
  callers need, re-exported here);
* :mod:`rtm.io.vectors`: any vector file as it is, checked;
* :mod:`rtm.io.csv_points`: points from CSV files (:class:`CsvOptions`: separator,
  decimal mark, encoding);
* :mod:`rtm.io.streets`: street lines for context (:func:`read_streets`);
* :mod:`rtm.io.crs`: CRS parsing and checks.

Event filters (``--where``) are :mod:`rtm.filters`.
"""

from rtm.filters import WhereClause, apply_where, parse_where
from rtm.io.crs import to_crs
from rtm.io.csv_points import CsvOptions
from rtm.io.readers import (
    FACTOR_SUFFIXES,
    factor_sources,
    read_events,
    read_factor,
    read_study_area,
    select_polygons,
)
from rtm.io.streets import read_streets
from rtm.io.vectors import READABLE_SUFFIXES, read_vector, split_layer

__all__ = [
    "FACTOR_SUFFIXES",
    "READABLE_SUFFIXES",
    "CsvOptions",
    "WhereClause",
    "apply_where",
    "factor_sources",
    "parse_where",
    "read_events",
    "read_factor",
    "read_streets",
    "read_study_area",
    "read_vector",
    "select_polygons",
    "split_layer",
    "to_crs",
]
