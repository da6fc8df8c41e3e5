"""The JSON Schema of ``report.json``, generated from the record classes.

:func:`json_schema` walks the fields of :mod:`rtm.runs.records` (their annotations say
each type; a field with a default is optional), so the schema cannot drift from what rtm
writes. ``make schema`` writes it to ``docs/reference/run-report.schema.json``, which the
tests check is current and validate real reports against.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from rtm.filters import WhereClause
from rtm.runs.records import (
    _SECTIONS,
    SCHEMA,
    FactorRecord,
    GridRecord,
    InputsRecord,
    ModelRecord,
    RunReport,
)

__all__ = ["json_schema", "schema_text"]


#: What the optional sections hold, for the JSON Schema.
_SECTION_DOCS = {
    "message": "Why no model was selected, when none was.",
    "residual_autocorrelation": "Moran's I of the model's Pearson residuals.",
    "stability": "Bootstrap selection stability (rtm.stability.bootstrap_selection).",
    "split_sample": "Select on one half, refit on the other (rtm.stability.split_sample).",
    "tiers": "Risk tiers: RRS cut-offs, area and event shares.",
    "places": "The highest-risk places, ranked.",
    "priority_places": "High-risk places with recent events.",
    "output_settings": "The output options the run was written with.",
    "outcome_provenance": "The share of the outcome in police-generated categories "
    "(rtm.accountability.provenance).",
}

#: Floats that are NaN when undefined (written as null).
_NULLABLE = {("FactorRecord", "standard_error"), ("FactorRecord", "p_value")}

_WHERE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An event filter, parsed: a column and its values or its range.",
    "required": ["column", "label"],
    "properties": {
        "column": {"type": "string"},
        "label": {"type": "string", "description": "As the user wrote it: COL=A,B or COL=LO..HI"},
        "values": {"type": "array", "items": {"type": "string"}},
        "low": {"type": ["string", "null"]},
        "high": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}


def _type_schema(hint: Any, owner: str, name: str) -> dict[str, Any]:
    """The JSON Schema of one annotated field."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in args if a is not type(None)]
        schema = _type_schema(inner, owner, name)
        kind = schema.get("type")
        if isinstance(kind, str):
            return {**schema, "type": [kind, "null"]}
        return {"anyOf": [schema, {"type": "null"}]}
    if origin is tuple:
        if args and args[0] is WhereClause:
            return {"type": "array", "items": _WHERE_SCHEMA}
        return {"type": "array", "items": _type_schema(args[0], owner, name)}
    if origin is dict or hint is dict:
        if args and args[1] is str:
            return {"type": "object", "additionalProperties": {"type": "string"}}
        return {"type": "object"}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return {"$ref": f"#/$defs/{hint.__name__}"}
    if hint is float:
        return {"type": ["number", "null"] if (owner, name) in _NULLABLE else "number"}
    simple = {int: "integer", str: "string", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint is Any:
        return {}
    raise TypeError(f"{owner}.{name}: no JSON Schema for {hint!r}")


def _record_schema(cls: type, *, extra: bool = False) -> dict[str, Any]:
    """A record's object schema from its fields (those with a default are optional)."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required = []
    for item in dataclasses.fields(cls):
        properties[item.name] = _type_schema(hints[item.name], cls.__name__, item.name)
        if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            required.append(item.name)
    doc = (cls.__doc__ or "").strip().splitlines()[0]
    return {
        "type": "object",
        "description": doc,
        "required": required,
        "properties": properties,
        "additionalProperties": extra,
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``report.json`` at :data:`SCHEMA`.

    Generated from the record classes, so it cannot drift from what rtm writes; the copy
    in ``docs/reference/run-report.schema.json`` is checked to be current by the tests.
    """
    top = _record_schema(RunReport)
    properties = top["properties"]
    del properties["sections"]
    for name in _SECTIONS:
        properties[name] = {"description": _SECTION_DOCS[name]}
    properties["schema"] = {"const": SCHEMA}
    properties["spec"] = {
        "type": "object",
        "description": "The study specification of the run (rtm.spec.StudySpec.to_record).",
    }
    properties["dropped_candidates"]["items"] = {
        "type": "object",
        "required": ["name", "reason"],
        "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
    }
    top["required"] = [*top["required"], "schema"]
    model = _record_schema(ModelRecord, extra=True)
    model["properties"].pop("harm")
    model["description"] += " Harm-weighted fits add their own keys (outcome, dispersion)."
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"rtm run report ({SCHEMA})",
        **top,
        "$defs": {
            "InputsRecord": _record_schema(InputsRecord),
            "GridRecord": _record_schema(GridRecord),
            "ModelRecord": model,
            "FactorRecord": _record_schema(FactorRecord),
        },
    }


def schema_text() -> str:
    """:func:`json_schema` as the text of ``docs/reference/run-report.schema.json``."""
    return json.dumps(json_schema(), indent=2) + "\n"
