"""The clinical tables and the engine document: every row carries its source. (That the CQL libraries'
includes and references resolve is checked by the reference translator: tests/engine/test_cql_agreement.py.)"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "cql_equivalents"
TABLES = sorted((ROOT / "data").glob("*.toml"))
LIBRARIES = sorted(ROOT.glob("*.cql"))


def _rows(node, where: str):
    """Every row of the table: each element of an array of tables (at any depth), and each top-level table."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, dict):
                yield f"{where}[{index}]", item
                yield from _rows(item, f"{where}[{index}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (list, dict)):
                yield from _rows(value, f"{where}.{key}")


def test_there_are_tables_and_libraries():
    assert len(TABLES) >= 13 and len(LIBRARIES) >= 12


@pytest.mark.parametrize("path", TABLES, ids=[p.name for p in TABLES])
def test_every_row_of_every_table_names_its_source(path):
    data = tomllib.loads(path.read_text())
    rows = list(_rows(data, path.stem))
    top_level = [(f"{path.stem}.{key}", value) for key, value in data.items() if isinstance(value, dict)]
    assert rows or top_level
    unsourced = [where for where, row in [*rows, *top_level]
                 if not (isinstance(row.get("source"), str) and len(row["source"].strip()) >= 8)]
    assert unsourced == [], f"rows without a source: {unsourced}"


def test_engine_doc_maps_every_input_phase_entry_point_and_population(client):
    response = client.get("/docs/engine.md")  # the Markdown source; /docs/engine is its HTML page
    assert response.status_code == 200 and response.mimetype == "text/markdown"
    doc = response.get_data(as_text=True)
    dossier = tomllib.loads((ROOT / "data" / "dossier.toml").read_text())
    populations = tomllib.loads((ROOT / "data" / "populations.toml").read_text())["population"]
    names = ([row["name"] for row in dossier["input"]] + [row["key"] for row in dossier["entry_point"]]
             + [row["key"] for row in dossier["phase"]] + [row["key"] for row in populations])
    assert len(dossier["input"]) == 17 and len(dossier["entry_point"]) == 5 and len(dossier["phase"]) == 12
    assert [name for name in names if f"`{name}`" not in doc and f" {name} " not in doc] == []
    assert "What the dossier asks for that the engine cannot do from FHIR data" in doc
