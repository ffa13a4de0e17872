"""The report in its three formats, from the hand-built data set's report (known answers)."""

from __future__ import annotations

import csv
import io
import json

import msgspec

from data_collector.report.render import render_csv, render_json, render_text
from db.report_model import Report
from tests.report_data import ETH_MEDIAN_SPREAD


def venues_only(report: Report) -> Report:
    return msgspec.structs.replace(report, coverage_by_pair=None)


def test_text_reads_well_in_a_terminal(known_report: Report) -> None:
    text = render_text(venues_only(known_report))
    lines = text.splitlines()
    assert lines[0] == (
        "Report from 2030-01-01 00:00:00Z to 2030-01-01 00:02:00Z (2m, ticks every 1 s), all pairs"
    )
    assert lines[1] == "427 snapshot rows in the window"
    section = lines[lines.index("Opportunities per pair and venue pair") + 1 :]
    header, rule, first = section[:3]
    assert header.split() == [
        "pair", "buy", "sell", "count", "open", "total", "median", "median", "net", "max",
        "net", "profit", "longest", "from", "longest",
    ]  # fmt: skip
    assert len(header) == len(rule) == len(first)  # aligned columns
    assert first.split() == [
        "SOL/USDT", "mexc", "gateio", "3", "0", "16.0s", "4.0s", "6.000%", "7.000%", "4.00",
        "2030-01-01", "00:01:00Z", "10.0s",
    ]  # fmt: skip
    assert "  gateio        100       120    83.33%   197           1" in lines
    assert "  binance         0       120     0.00%     0           1" in lines
    assert "  gateio   2030-01-01 00:01:40Z  2030-01-01 00:02:00Z   20.0s" in lines
    assert "  binance  2030-01-01 00:00:00Z  2030-01-01 00:02:00Z   2m00s" in lines
    assert "  mexc    ETH/USDT      120   0.1500%   0.2000%" in lines
    assert any(line.startswith("  gateio   mexc         187     -0.09995%") for line in lines)
    assert "every second of the window, 427 rows" in text


def test_text_with_detail_lists_pairs(known_report: Report) -> None:
    lines = render_text(known_report).splitlines()
    assert "  mexc     BTC/USDT       110       120    91.67%   110           1" in lines
    assert "  mexc     BTC/USDT  2030-01-01 00:00:30Z  2030-01-01 00:00:40Z   10.0s" in lines


def test_json_is_one_document_with_every_section(known_report: Report) -> None:
    doc = json.loads(render_json(known_report))
    assert doc["has_data"] is True and doc["rows"] == 427
    assert doc["window"] == {
        "since": "2030-01-01T00:00:00Z",
        "until": "2030-01-01T00:02:00Z",
        "step_s": 1,
        "seconds": 120,
    }
    sol = doc["opportunities"][0]
    assert (sol["symbol"], sol["count"], sol["median_duration_s"], sol["profit_quote"]) == (
        "SOL/USDT", 3, 4.0, 4.0,
    )  # fmt: skip
    assert sol["longest"] == {
        "opened_at": "2030-01-01T00:01:00Z",
        "duration_s": 10.0,
        "max_net_pct": 5.0,
    }
    gateio = next(c for c in doc["coverage"] if c["exchange"] == "gateio")
    assert gateio["gaps"] == [
        {"start": "2030-01-01T00:01:40Z", "end": "2030-01-01T00:02:00Z", "seconds": 20.0}
    ]
    assert len(doc["coverage_by_pair"]) == 6
    spread = next(s for s in doc["spreads"] if (s["exchange"], s["symbol"]) == ("mexc", "ETH/USDT"))
    assert abs(spread["median_pct"] - ETH_MEDIAN_SPREAD) < 1e-9
    assert doc["mid_differences"][0]["samples"] == 187
    assert doc["sampling"] == {"every": 1, "rows": 427}


def sections(text: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for block in text.strip().split("\n\n"):
        title, *body = block.splitlines()
        assert title.startswith("# ")
        out[title[2:]] = list(csv.DictReader(io.StringIO("\n".join(body))))
    return out


def test_csv_has_one_section_per_table_with_a_header_row(known_report: Report) -> None:
    tables = sections(render_csv(venues_only(known_report)))
    assert list(tables) == ["opportunities", "coverage", "gaps", "spreads", "mid_differences"]
    sol = tables["opportunities"][0]
    assert (sol["symbol"], sol["count"], sol["total_duration_s"], sol["max_net_pct"]) == (
        "SOL/USDT", "3", "16.0", "7.0",
    )  # fmt: skip
    assert sol["longest_opened_at"] == "2030-01-01T00:01:00+00:00"
    assert [(r["exchange"], r["seconds_stored"], r["gaps"]) for r in tables["coverage"]] == [
        ("binance", "0", "1"),
        ("gateio", "100", "1"),
        ("mexc", "120", "0"),
    ]
    assert [(r["exchange"], r["start"], r["seconds"]) for r in tables["gaps"]] == [
        ("binance", "2030-01-01T00:00:00+00:00", "120.0"),
        ("gateio", "2030-01-01T00:01:40+00:00", "20.0"),
    ]
    assert len(tables["spreads"]) == 4
    assert tables["mid_differences"][0]["samples"] == "187"


def test_csv_with_detail_has_a_pair_column(known_report: Report) -> None:
    tables = sections(render_csv(known_report))
    pairs = [r for r in tables["coverage"] if r["symbol"]]
    assert len(pairs) == 6
    mexc_btc = next(r for r in pairs if (r["exchange"], r["symbol"]) == ("mexc", "BTC/USDT"))
    assert (mexc_btc["seconds_stored"], mexc_btc["gaps"]) == ("110", "1")


def test_no_data_is_said_plainly(known_report: Report) -> None:
    empty = msgspec.structs.replace(known_report, has_data=False, rows=0, opportunities=[])
    assert render_text(empty) == (
        "No data from 2030-01-01 00:00:00Z to 2030-01-01 00:02:00Z: nothing was stored in "
        "this window.\n"
    )
    assert json.loads(render_json(empty))["has_data"] is False
