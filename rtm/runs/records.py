"""The run report's types: what ``report.json`` holds, as frozen dataclasses.

:class:`RunReport` is the interface between the fit and everything drawn from it (the
map, the printable report, validation, ``rtm map``). It is versioned (``schema``,
:data:`SCHEMA`); :meth:`RunReport.as_dict` writes the JSON and :meth:`RunReport.from_dict`
reads it back, reports of earlier rtm versions included (their filters, stored as text,
are parsed). The sections people read typed (inputs, grid, model, factors) are classes;
the detailed sections that are only written and shown (culling, tiers, places, the
honest-inference diagnostics) are JSON objects as their owners describe them. The
JSON Schema is ``docs/reference/run-report.schema.json`` (:mod:`rtm.runs.schema`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rtm.filters import WhereClause, as_clauses

__all__ = [
    "SCHEMA",
    "FactorRecord",
    "GridRecord",
    "InputsRecord",
    "ModelRecord",
    "RunReport",
]

#: The report's format: bumped when a field changes meaning or disappears.
SCHEMA = "rtm-run/2"


def _number(value: Any) -> float:
    """A float from JSON, where null stands for NaN."""
    return float("nan") if value is None else float(value)


def _where_dicts(clauses: tuple[WhereClause, ...]) -> list[dict[str, Any]]:
    return [clause.as_dict() for clause in clauses]


def _where_from(value: Any) -> tuple[WhereClause, ...]:
    """Filters as stored: parsed dicts (schema 2) or the text of earlier reports."""
    items = [WhereClause.from_dict(v) if isinstance(v, dict) else v for v in value or ()]
    return as_clauses(items)


@dataclass(frozen=True)
class GridRecord:
    """Where the grid lies: its top-left corner and shape (the mask is in cells.gpkg)."""

    x_min: float
    y_max: float
    n_rows: int
    n_cols: int

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "x_min": self.x_min,
            "y_max": self.y_max,
            "n_rows": self.n_rows,
            "n_cols": self.n_cols,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridRecord:
        """Read :meth:`as_dict`'s output."""
        return cls(
            float(data["x_min"]), float(data["y_max"]), int(data["n_rows"]), int(data["n_cols"])
        )


@dataclass(frozen=True)
class InputsRecord:
    """The inputs of a run, its grid and what was counted on it."""

    events: int
    events_outside: int
    events_file: str | None
    where: tuple[WhereClause, ...]
    x_column: str | None
    y_column: str | None
    events_crs: str | None
    area_file: str
    block_length: float
    max_blocks: int
    increment: str
    operationalization: str
    spatial_influences: tuple[float, ...]
    factors: tuple[str, ...]
    factor_files: dict[str, str]
    protective: tuple[str, ...]
    crs: str
    cell_size: float
    cells: int
    grid: GridRecord
    cells_with_events: int
    weight_column: str | None = None
    harm_total: float | None = None
    network: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report's representation (the order of earlier reports kept)."""
        out: dict[str, Any] = {
            "events": self.events,
            "events_outside": self.events_outside,
            "events_file": self.events_file,
            "where": _where_dicts(self.where),
            "x_column": self.x_column,
            "y_column": self.y_column,
            "events_crs": self.events_crs,
            "area_file": self.area_file,
            "block_length": self.block_length,
            "max_blocks": self.max_blocks,
            "increment": self.increment,
            "operationalization": self.operationalization,
            "spatial_influences": list(self.spatial_influences),
            "factors": list(self.factors),
            "factor_files": dict(self.factor_files),
            "protective": list(self.protective),
        }
        if self.weight_column is not None:
            out["weight_column"] = self.weight_column
            out["harm_total"] = self.harm_total
        if self.network is not None:
            out["network"] = self.network
        out.update(
            crs=self.crs,
            cell_size=self.cell_size,
            cells=self.cells,
            grid=self.grid.as_dict(),
            cells_with_events=self.cells_with_events,
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputsRecord:
        """Read :meth:`as_dict`'s output (or an earlier report's ``inputs``)."""
        return cls(
            events=int(data.get("events", 0)),
            events_outside=int(data.get("events_outside", 0)),
            events_file=data.get("events_file"),
            where=_where_from(data.get("where")),
            x_column=data.get("x_column"),
            y_column=data.get("y_column"),
            events_crs=data.get("events_crs"),
            area_file=str(data.get("area_file", "")),
            block_length=float(data.get("block_length", 0.0)),
            max_blocks=int(data.get("max_blocks", 3)),
            increment=str(data.get("increment", "whole")),
            operationalization=str(data.get("operationalization", "both")),
            spatial_influences=tuple(float(d) for d in data.get("spatial_influences", ())),
            factors=tuple(data.get("factors", ())),
            factor_files=dict(data.get("factor_files", {})),
            protective=tuple(data.get("protective", ())),
            crs=str(data["crs"]),
            cell_size=float(data["cell_size"]),
            cells=int(data.get("cells", 0)),
            grid=GridRecord.from_dict(data["grid"]),
            cells_with_events=int(data.get("cells_with_events", 0)),
            weight_column=data.get("weight_column"),
            harm_total=data.get("harm_total"),
            network=data.get("network"),
        )


@dataclass(frozen=True)
class FactorRecord:
    """A selected factor of the model table."""

    name: str
    operationalization: str
    spatial_influence: float
    coefficient: float
    rrv: float
    standard_error: float
    p_value: float
    protective: bool
    coverage: float | None = None

    @property
    def candidate(self) -> str:
        """Its candidate's name (and its column in cells.gpkg): ``bars:proximity:150``."""
        return f"{self.name}:{self.operationalization}:{self.spatial_influence:g}"

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        return {
            "name": self.name,
            "operationalization": self.operationalization,
            "spatial_influence": self.spatial_influence,
            "coefficient": self.coefficient,
            "rrv": self.rrv,
            "standard_error": self.standard_error,
            "p_value": self.p_value,
            "protective": self.protective,
            "coverage": self.coverage,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FactorRecord:
        """Read :meth:`as_dict`'s output."""
        return cls(
            name=str(data["name"]),
            operationalization=str(data["operationalization"]),
            spatial_influence=float(data["spatial_influence"]),
            coefficient=float(data["coefficient"]),
            rrv=float(data["rrv"]),
            standard_error=_number(data.get("standard_error")),
            p_value=_number(data.get("p_value")),
            protective=bool(data.get("protective", False)),
            coverage=data.get("coverage"),
        )


@dataclass(frozen=True)
class ModelRecord:
    """The selected model: its family, fit statistics, factors and stepwise path.

    ``harm`` holds what a harm-weighted fit adds (outcome, quasi-Poisson dispersion).
    """

    distribution: str
    nb_form: str
    variance: str
    intercept: float
    bic: float
    loglik: float
    dispersion: float | None
    dispersion_parameter: str | None
    bic_poisson: float
    bic_negative_binomial: float | None
    alpha: float
    factors: tuple[FactorRecord, ...]
    steps: tuple[dict[str, Any], ...]
    harm: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report's representation."""
        out: dict[str, Any] = {
            "distribution": self.distribution,
            "nb_form": self.nb_form,
            "variance": self.variance,
            "intercept": self.intercept,
            "bic": self.bic,
            "loglik": self.loglik,
            "dispersion": self.dispersion,
            "dispersion_parameter": self.dispersion_parameter,
            "bic_poisson": self.bic_poisson,
            "bic_negative_binomial": self.bic_negative_binomial,
            "alpha": self.alpha,
            "factors": [f.as_dict() for f in self.factors],
            "steps": [dict(step) for step in self.steps],
        }
        out.update(self.harm)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecord:
        """Read :meth:`as_dict`'s output."""
        names = {f.name for f in dataclasses.fields(cls)} - {"harm", "factors", "steps"}
        values: dict[str, Any] = {name: data.get(name) for name in names}
        return cls(
            **values,
            factors=tuple(FactorRecord.from_dict(f) for f in data.get("factors", ())),
            steps=tuple(data.get("steps", ())),
            harm={k: v for k, v in data.items() if k not in names | {"factors", "steps"}},
        )


#: Sections written as JSON objects by their owners, in report order (after ``caveats``).
_SECTIONS = (
    "message",
    "residual_autocorrelation",
    "stability",
    "split_sample",
    "tiers",
    "places",
    "priority_places",
    "output_settings",
    "outcome_provenance",
)


@dataclass(frozen=True)
class RunReport:
    """What a run folder's ``report.json`` holds.

    Attributes
    ----------
    version : str
        The rtm version that wrote it.
    seed : int
        The seed of the run.
    inputs : InputsRecord
    candidates : int
        Candidate variables tested (dropped constant ones included).
    candidate_names : tuple of str
        The candidates kept, in column order.
    dropped_candidates : tuple of dict
        ``{"name", "reason"}`` of each constant candidate.
    skipped_factors : tuple of str
        Factors with no feature within reach.
    culled : int
        Candidates surviving culling.
    culling : dict
        The culling's settings and survivors.
    model : ModelRecord
    significant : bool
    rrs : dict
        ``min``, ``max``, ``mean`` and the definition of the relative risk score.
    caveats : tuple of str
    sections : dict
        The optional sections, by name: ``message``, ``residual_autocorrelation``,
        ``stability``, ``split_sample``, ``tiers``, ``places``, ``priority_places``,
        ``output_settings``, ``outcome_provenance``.
    spec : dict or None
        The study specification (:meth:`rtm.spec.StudySpec.to_record`).
    schema : str
    """

    version: str
    seed: int
    inputs: InputsRecord
    candidates: int
    candidate_names: tuple[str, ...]
    dropped_candidates: tuple[dict[str, Any], ...]
    skipped_factors: tuple[str, ...]
    culled: int
    culling: dict[str, Any]
    model: ModelRecord
    significant: bool
    rrs: dict[str, Any]
    caveats: tuple[str, ...]
    sections: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] | None = None
    schema: str = SCHEMA

    def section(self, name: str) -> Any:
        """An optional section (``tiers``, ``places``, ...), or None."""
        return self.sections.get(name)

    def with_sections(self, **sections: Any) -> RunReport:
        """A copy with these sections set (e.g. new tiers and places)."""
        return dataclasses.replace(self, sections={**self.sections, **sections})

    @property
    def where(self) -> tuple[WhereClause, ...]:
        """The event filters of the run."""
        return self.inputs.where

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``report.json``."""
        out: dict[str, Any] = {
            "schema": self.schema,
            "version": self.version,
            "seed": self.seed,
            "inputs": self.inputs.as_dict(),
            "candidates": self.candidates,
            "candidate_names": list(self.candidate_names),
            "dropped_candidates": [dict(d) for d in self.dropped_candidates],
            "skipped_factors": list(self.skipped_factors),
            "culled": self.culled,
            "culling": self.culling,
            "model": self.model.as_dict(),
            "significant": self.significant,
            "rrs": self.rrs,
            "caveats": list(self.caveats),
        }
        for name in _SECTIONS:
            if self.sections.get(name) is not None:
                out[name] = self.sections[name]
        if self.spec is not None:
            out["spec"] = self.spec
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        """Read a ``report.json`` (this version's, or an earlier one without ``schema``).

        Raises
        ------
        KeyError, TypeError, ValueError
            It is not an rtm report; the caller names the file.
        """
        return cls(
            version=str(data["version"]),
            seed=int(data.get("seed", 0)),
            inputs=InputsRecord.from_dict(data["inputs"]),
            candidates=int(data.get("candidates", 0)),
            candidate_names=tuple(data.get("candidate_names", ())),
            dropped_candidates=tuple(data.get("dropped_candidates", ())),
            skipped_factors=tuple(data.get("skipped_factors", ())),
            culled=int(data.get("culled", 0)),
            culling=dict(data.get("culling", {})),
            model=ModelRecord.from_dict(data["model"]),
            significant=bool(data.get("significant")),
            rrs=dict(data.get("rrs", {})),
            caveats=tuple(data.get("caveats", ())),
            sections={name: data[name] for name in _SECTIONS if name in data},
            spec=data.get("spec"),
            schema=str(data.get("schema", "rtm-run/1")),
        )
