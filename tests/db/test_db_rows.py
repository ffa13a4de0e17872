"""Snapshot rows as CSV for COPY: the fast path, malformed rows, and no driver imported."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from db.rows import COLUMNS, encode_rows

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def row(base: str, bid: str, ts: datetime = T0, ex_time: datetime | None = None) -> tuple:
    return ("gate", base, "USDT", bid, "1.500", "101.5", "2", ts, ex_time)


def test_encode_rows_fast_path_is_plain_csv() -> None:
    ts = T0 + timedelta(seconds=3)
    rows = [row("C0", "100.0030", ts, ts - timedelta(milliseconds=7)), row("C1", "101", ts)]
    payload, n, rejected = encode_rows(rows)
    assert (n, rejected) == (2, [])
    first = payload.decode().splitlines()[0]
    assert first == (
        "gate,C0,USDT,100.0030,1.500,101.5,2,2024-05-01T12:00:03+00:00,"
        "2024-05-01T12:00:02.993000+00:00"
    )


def test_malformed_rows_are_left_out_with_a_reason() -> None:
    good = [row("C0", "1"), row("C1", "2")]
    ts = T0
    bad: list = [
        ("mexc", "B1", "USDT", "1,5", "1", "2", "1", ts, None),  # would shift columns
        ("mexc", "B2", "USDT", '"1"', "1", "2", "1", ts, None),  # CSV quote
        ("mexc", "B3", "USDT", "1", "1", "2", "1", "2024-05-01", None),  # not a datetime
        ("mexc", "B4", "USDT", "1", "1", "2"),  # short row
        ("mexc", "B5", "USDT", None, "1", "2", "1", ts, None),  # missing side
    ]
    payload, n, rejected = encode_rows([good[0], *bad, good[1]])
    assert n == 2 and len(rejected) == len(bad)
    assert payload == encode_rows(good)[0]
    assert "not a 9-tuple" in rejected[3] and "not a datetime" in rejected[2]
    assert all("B" in reason for reason in rejected)


def test_a_missing_exchange_time_is_an_empty_field() -> None:
    row = ("mexc", "BTC", "USDT", "1", "2", "3", "4", T0, None)
    payload, n, _ = encode_rows(iter([row]))  # any iterable
    assert n == 1 and payload == b"mexc,BTC,USDT,1,2,3,4,2024-05-01T12:00:00+00:00,\n"
    assert payload.count(b",") == len(COLUMNS) - 1


@pytest.mark.parametrize(
    "module", ["db", "db.rows", "db.tables", "db.spill", "db.backlog", "db.writer_health"]
)
def test_driver_free_modules_import_no_asyncpg(module: str) -> None:
    code = f"import sys, {module}; print('asyncpg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
