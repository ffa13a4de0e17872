"""A query result as a text table, CSV or JSON: exact decimals stay exact in every format."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

from data_collector.tabular import render

COLUMNS = ["exchange", "bid_price", "n", "at", "note"]
ROWS = [
    ("mexc", "80535.880", 12, datetime(2026, 11, 23, 10, 0, 1, 500, tzinfo=UTC), None),
    ("gateio", Decimal("0.000000001230"), 3, date(2026, 11, 23), 'a, "quoted" note'),
]


def test_text_is_an_aligned_table_with_a_row_count() -> None:
    lines = render(COLUMNS, ROWS).splitlines()
    assert lines[0].split() == COLUMNS
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split()[:3] == ["mexc", "80535.880", "12"]
    assert "0.000000001230" in lines[3] and "NULL" in lines[2]
    # numbers right-aligned: "12" and "3" end in the same column
    assert lines[2].index("12  2026") + 2 == lines[3].index("3  2026") + 1
    assert lines[-1] == "(2 rows)"
    assert render(["n"], [(1,)]).splitlines()[-1] == "(1 row)"


def test_csv_has_a_header_and_exact_values() -> None:
    rows = list(csv.reader(io.StringIO(render(COLUMNS, ROWS, "csv"))))
    assert rows[0] == COLUMNS
    assert rows[1] == ["mexc", "80535.880", "12", "2026-11-23T10:00:01.000500+00:00", ""]
    assert rows[2] == ["gateio", "0.000000001230", "3", "2026-11-23", 'a, "quoted" note']


def test_json_is_a_list_of_objects_with_decimals_as_strings() -> None:
    data = json.loads(render(COLUMNS, ROWS, "json"))
    assert data[0] == {
        "exchange": "mexc", "bid_price": "80535.880", "n": 12,
        "at": "2026-11-23T10:00:01.000500+00:00", "note": None,
    }  # fmt: skip
    assert data[1]["bid_price"] == "0.000000001230"
    assert render(COLUMNS, [], "json") == "[]"
