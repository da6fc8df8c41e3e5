"""Harm tables (`--harm`): the shipped police.uk table, user tables, errors, the study."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rtm.errors import InputError, ParameterError
from rtm.harm import harm_weights, read_harm_table, shipped_tables
from rtm.spec import StudySpec
from rtm.study import load_study
from tests.conftest import run_rtm

ROOT = Path(__file__).resolve().parents[1]

#: police.uk's street-level categories: the CSV names and the API slugs.
POLICE_UK = {
    "Anti-social behaviour": "anti-social-behaviour",
    "Bicycle theft": "bicycle-theft",
    "Burglary": "burglary",
    "Criminal damage and arson": "criminal-damage-arson",
    "Drugs": "drugs",
    "Other crime": "other-crime",
    "Other theft": "other-theft",
    "Possession of weapons": "possession-of-weapons",
    "Public order": "public-order",
    "Robbery": "robbery",
    "Shoplifting": "shoplifting",
    "Theft from the person": "theft-from-the-person",
    "Vehicle crime": "vehicle-crime",
    "Violence and sexual offences": "violent-crime",
}
#: The spellings of the London test extract (shared/data/london).
LONDON_SPELLINGS = (
    "violent or sexual", "other theft", "theft from person", "vehicle crime", "public order",
    "burglary", "criminal damage or arson", "drugs", "robbery", "shoplifting",
    "bicycle theft", "other", "weapon possession",
)  # fmt: skip


def test_shipped_table_covers_every_police_uk_category_and_cites_its_sources() -> None:
    assert "police-uk" in shipped_tables()
    table = read_harm_table("police-uk")
    assert set(table.weights) == set(POLICE_UK)
    for name, slug in POLICE_UK.items():
        assert table.category_of(name) == name
        assert table.category_of(slug) == name, slug
        assert table.category_of(name.upper()) == name
    for spelling in LONDON_SPELLINGS:
        assert table.category_of(spelling) is not None, spelling
    docs = (ROOT / "docs" / "harm.md").read_text(encoding="utf-8")
    for category, notes in table.notes.items():
        assert notes["source"] and notes["status"] and notes["derivation"], category
        assert notes["source"] in docs, f"source of {category} not listed in docs/harm.md"
        assert re.search(rf"\| {re.escape(category)} \| {table.weights[category]:g} \|", docs)
    assert "harm.md" in (ROOT / "mkdocs.yml").read_text()
    assert table.weights["Robbery"] > table.weights["Shoplifting"] > 0
    assert table.weights["Anti-social behaviour"] == 0  # not a notifiable crime


def test_user_table_and_the_one_line_error_for_unknown_categories(tmp_path: Path) -> None:
    path = tmp_path / "harm.csv"
    path.write_text("Category,Weight,aliases\nRobbery,10,street robbery\nBurglary,2.5,\n")
    table = read_harm_table(str(path))
    events = pd.DataFrame({"Crime type": ["robbery", "Street Robbery", "burglary"]})
    assert harm_weights(events, table).tolist() == [10.0, 10.0, 2.5]
    unknown = pd.DataFrame({"type": ["robbery", "drugs", "arson", "drugs"]})
    with pytest.raises(InputError, match=r"no weight for 2 categories .*'arson', 'drugs'$"):
        harm_weights(unknown, table)
    with pytest.raises(ParameterError, match="shipped: police-uk"):
        read_harm_table("no-such-table")
    path.write_text("category,weight\nRobbery,-1\n")
    with pytest.raises(InputError, match="weights must be numbers >= 0"):
        read_harm_table(str(path))
    with pytest.raises(ParameterError, match="give one of them"):
        StudySpec(area="a.gpkg", block_length=100, harm="police-uk", weight_column="w")


def test_study_counts_harm_per_cell_from_the_table(sample_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "harm.csv"
    path.write_text("category,weight\nrobbery,7\nburglary,3\n")
    study = load_study(
        area=sample_dir / "area.gpkg",
        events=sample_dir / "crimes.csv",
        factors_dir=sample_dir / "factors",
        block_length=150,
        harm=str(path),
    )
    counts = study.counts
    assert counts.harm is not None
    x, y = study.events.geometry.x.to_numpy(), study.events.geometry.y.to_numpy()
    row, col = study.grid.cell_of(x, y)
    position = np.full(study.grid.n_rows * study.grid.n_cols, -1)
    position[study.grid.active_index] = np.arange(study.grid.n_active)
    weight = np.where(study.events["type"].to_numpy() == "robbery", 7.0, 3.0)
    expected = np.bincount(
        position[row * study.grid.n_cols + col], weights=weight, minlength=study.grid.n_active
    )
    np.testing.assert_allclose(counts.harm, expected)


def test_cli_reports_unknown_categories_in_one_line(sample_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "harm.csv"
    path.write_text("category,weight\nrobbery,7\n")
    done = run_rtm(
        "analyze", sample_dir / "crimes.csv", "--area", sample_dir / "area.gpkg",
        "--factors-dir", sample_dir / "factors", "--block-length", "150",
        "--harm", path, "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 4, done.stderr  # input data
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'burglary'" in lines[0] and "--harm" in lines[0]
    assert not (tmp_path / "out").exists()
