"""Model card, transparency record and outcome provenance (rtm/accountability/).

One sample-city run, with a fifth of the robberies relabelled as drug offences so the
outcome includes a police-generated category, validated on the second half-year.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rtm.accountability.model_card import model_card_markdown
from rtm.accountability.provenance import category_of, outcome_provenance
from rtm.accountability.transparency import TO_FILL, transparency_record
from rtm.api import analyze
from rtm.errors import RTMWarning
from rtm.filters import as_clauses
from rtm.runs import read_report


@pytest.fixture(scope="module")
def drugs_run(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("accountability")
    crimes = pd.read_csv(sample_dir / "crimes.csv")
    robbery = crimes.index[crimes["type"] == "robbery"]
    crimes.loc[robbery[::5], "type"] = "Drugs"
    crimes.to_csv(folder / "crimes.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analyze(
            events=folder / "crimes.csv",
            area=sample_dir / "area.gpkg",
            factors_dir=sample_dir / "factors",
            protective=["parks"],
            where=["type=robbery,drugs", "month=1..6"],
            test_events=folder / "crimes.csv",
            test_where=["type=robbery,drugs", "month=7..12"],
            challengers=False,
            block_length=150,
            out=folder / "run",
        )
    (folder / "warnings.txt").write_text(
        "\n".join(str(w.message) for w in caught if issubclass(w.category, RTMWarning))
    )
    return folder


def test_police_generated_outcome_is_recorded_and_warned(drugs_run: Path) -> None:
    crimes = pd.read_csv(drugs_run / "crimes.csv")
    used = crimes[crimes["type"].isin(["robbery", "Drugs"]) & (crimes["month"] <= 6)]
    report = json.loads((drugs_run / "run" / "report.json").read_text())
    record = report["outcome_provenance"]
    # every event of the sample city lies inside the area, so the counts are exact
    assert record["events"] == len(used) == report["inputs"]["events"]
    assert record["by_category"] == {"drugs": int((used["type"] == "Drugs").sum())}
    assert record["share"] == pytest.approx((used["type"] == "Drugs").mean())
    assert record["outcome_categories"] == ["drugs"] and record["flagged"]
    assert (
        "police-generated categories are the outcome (drugs)"
        in (drugs_run / "warnings.txt").read_text()
    )


def test_provenance_matches_police_uk_spellings() -> None:
    assert category_of("Possession of weapons").name == "possession of weapons"
    assert category_of("possession-of-weapons").name == "possession of weapons"
    assert category_of("DRUGS").name == "drugs"
    assert category_of("weapon possession").name == "possession of weapons"  # London extract
    assert category_of("robbery") is None
    frame = pd.DataFrame({"Crime type": ["Drugs", "Robbery", "Robbery", "Robbery"]})
    record = outcome_provenance(frame, as_clauses([]), ["bars", "drugs"])
    assert record["column"] == "Crime type" and record["share"] == 0.25
    assert record["factors"] == ["drugs"] and record["outcome_categories"] == []


def _numbers(data: Any) -> list[float]:
    """Every number of a JSON document, dict keys that are numbers included."""
    out: list[float] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if re.fullmatch(r"-?\d+(\.\d+)?", str(key)):
                out.append(float(key))
            out += _numbers(value)
    elif isinstance(data, list):
        for value in data:
            out += _numbers(value)
    elif isinstance(data, bool) or data is None:
        pass
    elif isinstance(data, int | float):
        out.append(float(data))
    return out


def _strings(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return [data] if isinstance(data, str) else []


def _renderings(value: float) -> set[str]:
    forms = {f"{value:.1f}", f"{value:.2f}", f"{value:.3f}", f"{value:.3g}", f"{value:g}"}
    if float(value).is_integer():
        forms |= {f"{int(value):,}", str(int(value))}
    return forms


def _check_numbers(text: str, *documents: Any) -> int:
    """Every number in ``text`` is a number of ``documents`` as rendered; returns how many."""
    for string in sorted(set(sum((_strings(d) for d in documents), [])), key=len, reverse=True):
        if any(ch.isdigit() for ch in string) and len(string) > 2:
            text = text.replace(string, " ")  # file names, filters, versions, CRS
    allowed = set().union(*(_renderings(v) for d in documents for v in _numbers(d)))
    tokens = re.findall(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]\d+)?", text)
    strange = [t for t in tokens if t not in allowed]
    assert not strange, f"numbers not in the run's records: {strange}"
    return len(tokens)


def test_every_model_card_number_is_in_report_json(drugs_run: Path) -> None:
    run = drugs_run / "run"
    card = (run / "model_card.md").read_text()
    report = json.loads((run / "report.json").read_text())
    validation = json.loads((run / "validation.json").read_text())
    assert _check_numbers(card, report, validation) > 30
    assert f"Events used: {report['inputs']['events']:,};" in card
    assert f"BIC {report['model']['bic']:.1f}" in card
    for factor in report["model"]["factors"]:
        assert f"| {factor['name']} | {factor['operationalization']} |" in card
        assert f"| {factor['rrv']:.2f} |" in card
    assert f"| rtm | {validation['auc']:.3f} |" in card
    assert "**Not validated" not in card
    html = (run / "report.html").read_text()
    assert '<section class="model-card">' in html and html.rstrip().endswith("</html>")


def test_unvalidated_card_says_so_and_record_marks_what_to_fill(drugs_run: Path) -> None:
    report = read_report(drugs_run / "run")
    card = model_card_markdown(report, None)
    assert "**Not validated.**" in card
    record = (drugs_run / "run" / "transparency_record.md").read_text()
    headings = re.findall(r"^## (.+)$", record, flags=re.M)
    assert headings[1:] == [
        "Tier 1: overview",
        "Tier 2, section 1: owner and responsibility",
        "Tier 2, section 2: description and rationale",
        "Tier 2, section 3: decision-making process",
        "Tier 2, section 4: tool specification",
        "Tier 2, section 5: risks, mitigations and impact assessments",
    ]
    assert record.count(TO_FILL) >= 10
    assert "**This run uses police-generated categories**" in record
    assert record == transparency_record(
        report, json.loads((drugs_run / "run" / "validation.json").read_text())
    )


@pytest.mark.london
def test_police_uk_categories_of_the_london_extract(london_dir: Path) -> None:
    """The shipped list recognises the London extract's spellings, and only those two."""
    crimes = pd.read_csv(london_dir / "crimes_2022.csv.gz", usecols=["type"])
    flagged = {t for t in crimes["type"].unique() if category_of(t) is not None}
    assert flagged == {"drugs", "weapon possession"}
    record = outcome_provenance(crimes, as_clauses([]))
    assert record["share"] == pytest.approx(crimes["type"].isin(flagged).mean())
