"""report.json, the interface between a fit and everything drawn from it: its JSON Schema
is generated from the record classes, checked in current, and real reports of every kind
(a full run with validation and stability, a harm-weighted run, a run with no significant
factor) validate against it and read back unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from rtm.api import analyze
from rtm.runs import read_report
from rtm.runs.records import SCHEMA, RunReport
from rtm.runs.schema import json_schema, schema_text

ROOT = Path(__file__).resolve().parents[1]
CHECKED_IN = ROOT / "docs" / "reference" / "run-report.schema.json"


def test_the_checked_in_schema_is_current() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == schema_text(), (
        "docs/reference/run-report.schema.json is stale: run `make schema`"
    )
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.fixture(scope="module")
def reports(sample_dir: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reports")
    common = {
        "events": sample_dir / "crimes.csv",
        "area": sample_dir / "area.gpkg",
        "block_length": 150,
    }
    analyze(
        **common,
        factors_dir=sample_dir / "factors",
        where=["type=robbery", "month=1..9"],
        test_events=sample_dir / "crimes.csv",
        test_where=["type=robbery", "month=10..12"],
        challengers=False,
        bootstrap=2,
        split_sample=True,
        out=root / "full",
    )
    analyze(
        **common,
        factors_dir=sample_dir / "factors",
        where=["type=robbery"],
        weight_column="month",
        out=root / "harm",
    )
    none = analyze(
        **common,
        factors={"churches": sample_dir / "factors" / "churches.shp"},
        where=["type=burglary", "month=1"],
        out=root / "none",
    )
    assert not none.significant
    return {name: root / name for name in ("full", "harm", "none")}


@pytest.mark.parametrize("kind", ["full", "harm", "none"])
def test_real_reports_validate_and_read_back(reports: dict[str, Path], kind: str) -> None:
    data = json.loads((reports[kind] / "report.json").read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA
    jsonschema.validate(data, json_schema())
    report = read_report(reports[kind])
    assert report.as_dict() == RunReport.from_dict(report.as_dict()).as_dict()
    expected = {"full": {"stability", "split_sample", "tiers"}, "harm": {"tiers"}, "none": set()}
    assert expected[kind] <= set(data), sorted(data)
    if kind == "harm":
        assert "outcome" in data["model"], "a harm fit's own keys go into model"
    if kind == "none":
        assert data["significant"] is False and data["model"]["factors"] == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["model"]["factors"][0].__setitem__("rrv", "2.1"), "rrv"),
        (lambda d: d["inputs"].pop("grid"), "grid"),
        (lambda d: d["inputs"]["where"].append("type=robbery"), "where"),
        (lambda d: d.__setitem__("schema", "rtm-run/1"), "schema"),
        (lambda d: d.__setitem__("surprise", 1), "surprise"),
    ],
)
def test_the_schema_rejects_a_report_that_breaks_it(
    reports: dict[str, Path], change, where: str
) -> None:
    """The schema constrains: a wrong type, a missing field, an unparsed filter, another
    format, an unknown key each fail validation."""
    data = json.loads((reports["full"] / "report.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    change(broken)
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(broken, json_schema())
    assert where in str(caught.value)
