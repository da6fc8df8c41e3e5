"""Proximity measured along a street network instead of in straight lines.

The approximation, stated once (the report repeats it):

1. **Graph.** The street lines are cut into pieces no longer than ``node_spacing``
   (default: half the cell size) and every piece's ends become nodes; edges weigh their
   length. Ends closer than ``snap_tolerance`` (default 1 CRS unit) are merged, so lines
   digitised with tiny gaps still connect; lines that cross without sharing a vertex do
   *not* connect (as in a real network, where a bridge crosses a road).
2. **Features** (points; the vertices of lines and polygon rings, sampled every quarter
   cell) join the network at their nearest node, and the straight-line snapping distance
   is added. Cells inside a polygon feature are at distance 0, as with Euclidean distance.
3. **Cells** join the network at the node nearest their centre, plus that snapping
   distance. A cell's distance to a factor is then
   ``snap(cell) + shortest path(node(cell), node(feature)) + snap(feature)``, minimised
   over features with one multi-source Dijkstra (:func:`scipy.sparse.csgraph.dijkstra`).

Errors: along a street the position error is at most half the node spacing; a cell far
from every street is charged the straight-line walk to the nearest node (it is not
"unreachable"). Since every path is at least the straight line, network distances are
never shorter than Euclidean ones (up to the node spacing). Density candidates stay
Euclidean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from rtm.errors import InputError, ParameterError
from rtm.grid import Grid
from rtm.layers.geometry import as_geometries, polygon_parts, rasterized_polygons

__all__ = ["StreetNetwork", "read_network"]

#: Default distance within which line ends are merged into one node (CRS units).
SNAP_TOLERANCE = 1.0

APPROXIMATION = (
    "Proximity is measured along the street network: cells and features join it at their "
    "nearest node (nodes every {spacing:g} {unit} along streets; ends within {tolerance:g} {unit} "
    "merged) "
    "and the straight-line snapping distances are added; density stays Euclidean."
)


@dataclass(frozen=True)
class _Graph:
    nodes: np.ndarray  # (n, 2) node coordinates
    matrix: sparse.csr_matrix  # symmetric edge lengths
    tree: cKDTree


@dataclass(eq=False)
class StreetNetwork:
    """A street network built from line features, for network proximity.

    Parameters
    ----------
    lines : GeoDataFrame, GeoSeries or array of geometries
        LineStrings / MultiLineStrings in the grid's CRS (other geometry types are ignored).
    snap_tolerance : float
        Line ends (and vertices) closer than this are merged into one node.
    node_spacing : float, optional
        Longest edge; default half the cell size of the grid it is used on.

    Examples
    --------
    >>> import shapely
    >>> net = StreetNetwork([shapely.LineString([(0, 0), (100, 0), (100, 100)])])
    >>> float(net.path_length((0, 0), (100, 100)))
    200.0
    """

    lines: object
    snap_tolerance: float = SNAP_TOLERANCE
    node_spacing: float | None = None
    crs: pyproj.CRS | None = None
    _graphs: dict[float, _Graph] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.lines, gpd.GeoDataFrame | gpd.GeoSeries):
            if self.crs is None and self.lines.crs is not None:
                self.crs = pyproj.CRS(self.lines.crs)
            geoms = np.asarray(self.lines.geometry.values)
        else:
            geoms = np.asarray(self.lines, dtype=object)
        parts = shapely.get_parts(geoms)
        parts = parts[np.isin(shapely.get_type_id(parts), [1, 2])]  # LineString, LinearRing
        parts = parts[~shapely.is_empty(parts)]
        if parts.size == 0:
            raise InputError("--network: the layer has no line features")
        self.lines = parts
        if not (np.isfinite(self.snap_tolerance) and self.snap_tolerance >= 0):
            raise ParameterError(
                f"snap tolerance must be a non-negative distance, got {self.snap_tolerance!r}"
            )
        if self.node_spacing is not None and not self.node_spacing > 0:
            raise ParameterError(f"node spacing must be positive, got {self.node_spacing!r}")

    def describe(self, cell_size: float, unit: str = "m") -> str:
        """The approximation in one sentence, for the report."""
        return APPROXIMATION.format(
            spacing=self._spacing(cell_size), tolerance=self.snap_tolerance, unit=unit
        )

    def _spacing(self, cell_size: float) -> float:
        return float(self.node_spacing or cell_size / 2.0)

    def graph(self, spacing: float) -> _Graph:
        """The graph with edges no longer than ``spacing`` (built once per spacing)."""
        if spacing not in self._graphs:
            self._graphs[spacing] = _build_graph(
                np.asarray(self.lines), spacing, self.snap_tolerance
            )
        return self._graphs[spacing]

    def path_length(self, start: tuple[float, float], end: tuple[float, float]) -> float:
        """Snapped network distance between two points (for checks and examples)."""
        spacing = float(self.node_spacing or np.inf)
        g = self.graph(spacing)
        (d0, n0), (d1, n1) = g.tree.query(start), g.tree.query(end)
        along = csgraph.dijkstra(g.matrix, directed=False, indices=int(n0))[int(n1)]
        return float(d0 + along + d1)

    def distance(self, grid: Grid, features: object, reach: float) -> np.ndarray:
        """Network distance from each active cell centre to the nearest feature.

        Same contract as :func:`rtm.layers.nearest_distance`: ``(n_active,)`` float64,
        ``inf`` beyond ``reach``.
        """
        geometries = as_geometries(features)
        out = np.full(grid.n_active, np.inf)
        if geometries.size == 0:
            return out
        g = self.graph(self._spacing(grid.cell_size))
        points = _sample_points(geometries, grid.cell_size / 4.0)
        snap, node = g.tree.query(points)
        # one virtual source joined to each feature's node by its snapping distance
        n = g.nodes.shape[0]
        offset = np.full(n, np.inf)
        np.minimum.at(offset, node, snap)
        hit = np.flatnonzero(np.isfinite(offset) & (offset <= reach))
        if hit.size:
            source = sparse.csr_matrix(
                # csgraph drops zero weights from sparse input: a tiny floor keeps the edge
                (np.maximum(offset[hit], 1e-9), (np.zeros(hit.size, dtype=np.int64), hit)),
                shape=(1, n),
            )
            matrix = sparse.vstack(
                [
                    sparse.hstack([sparse.csr_matrix((1, 1)), source]),
                    sparse.hstack([source.T, g.matrix]),
                ],
                format="csr",
            )
            along = csgraph.dijkstra(matrix, directed=False, indices=0, limit=float(reach) + 1e-6)
            x, y = grid.cell_centres()
            cell_snap, cell_node = g.tree.query(np.column_stack([x, y]))
            out = cell_snap + along[1:][cell_node]
        polygons = polygon_parts(geometries)
        if polygons.size:
            inside = rasterized_polygons(grid, polygons)
            out[inside.ravel()[grid.active_index]] = 0.0
        out[out > reach] = np.inf
        return out


def _sample_points(geometries: np.ndarray, spacing: float) -> np.ndarray:
    """Points standing for the features: points as they are, other vertices densified."""
    parts = shapely.get_parts(geometries)
    kind = shapely.get_type_id(parts)
    rings = (
        np.concatenate([parts[np.isin(kind, [1, 2])], shapely.get_rings(parts[kind == 3])])
        if parts.size
        else parts
    )
    coords = [shapely.get_coordinates(parts[kind == 0])]
    if rings.size:
        coords.append(shapely.get_coordinates(shapely.segmentize(rings, spacing)))
    return np.concatenate(coords, axis=0)


def _build_graph(lines: np.ndarray, spacing: float, tolerance: float) -> _Graph:
    if np.isfinite(spacing):
        lines = shapely.segmentize(lines, spacing)
    coords, index = shapely.get_coordinates(lines, return_index=True)
    same_line = index[1:] == index[:-1]
    first = np.flatnonzero(same_line)
    u, v = first, first + 1
    length = np.hypot(*(coords[v] - coords[u]).T)
    # merge vertices within the snapping tolerance (connected components of near pairs)
    tree = cKDTree(coords)
    pairs = (
        tree.query_pairs(tolerance, output_type="ndarray")
        if tolerance > 0
        else np.empty((0, 2), int)
    )
    n_vertices = coords.shape[0]
    near = (
        sparse.coo_matrix(
            (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_vertices, n_vertices)
        )
        if len(pairs)
        else sparse.coo_matrix((n_vertices, n_vertices))
    )
    _, label = csgraph.connected_components(near, directed=False)
    n_nodes = int(label.max()) + 1
    # a node sits at the first vertex merged into it (deterministic)
    order = np.argsort(label, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(label[order])) + 1]
    nodes = coords[order[starts]]
    a, b = label[u], label[v]
    keep = a != b
    a, b, length = a[keep], b[keep], length[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # parallel edges: keep the shortest (a sparse matrix would sum them)
    key = lo * n_nodes + hi
    order = np.lexsort((length, key))
    key, lo, hi, length = key[order], lo[order], hi[order], length[order]
    first_of = np.r_[True, key[1:] != key[:-1]]
    lo, hi, length = lo[first_of], hi[first_of], np.maximum(length[first_of], 1e-9)
    matrix = sparse.coo_matrix(
        (np.r_[length, length], (np.r_[lo, hi], np.r_[hi, lo])), shape=(n_nodes, n_nodes)
    ).tocsr()
    return _Graph(nodes=nodes, matrix=matrix, tree=cKDTree(nodes))


def read_network(
    source: str | Path, crs: pyproj.CRS, *, snap_tolerance: float = SNAP_TOLERANCE
) -> StreetNetwork:
    """Read a line layer (``--network FILE``) into a :class:`StreetNetwork` in ``crs``."""
    from rtm.io import read_vector, to_crs

    lines = read_vector(source, what="--network")
    kinds = set(lines.geom_type.unique())
    if not kinds & {"LineString", "MultiLineString"}:
        raise InputError(
            f"--network {source}: must be lines (streets), "
            f"got {', '.join(sorted(kinds)) or 'nothing'}"
        )
    lines = to_crs(lines, crs, f"--network {source}")
    return StreetNetwork(lines, snap_tolerance=snap_tolerance, crs=crs)
