"""/health as a pure function of a hand-built status."""

from __future__ import annotations

from datetime import UTC, datetime

from data_collector.monitoring.health import HealthRules, health
from data_collector.monitoring.sources import DatabaseServerStatus, DatabaseStatus
from tests.monitoring.helpers import NOW_NS, status, venue

RULES = HealthRules(silence_timeout=30.0, snapshot_interval=1.0)


def test_a_flowing_collector_is_healthy_with_the_whole_body() -> None:
    code, body = health(status(open_opportunities=2), RULES)
    assert code == 200
    assert body == {
        "status": "ok",
        "reasons": [],
        "degraded": [],
        "venues": {
            v: {
                "connections_up": 1,
                "connections_expected": 1,
                "last_message_age_s": 0.5,
                "silent_pairs": [],
            }
            for v in ("mexc", "gateio")
        },
        "last_snapshot": "2026-09-21T14:13:19+00:00",
        "last_snapshot_age_s": 1.0,
        "database": {
            "state": "up",
            "backlog_rows": 0,
            "rows_written": 40,
            "rows_spilled": 0,
            "last_error": None,
            "server": None,
        },
        "open_opportunities": 2,
        "crashed_tasks": {},
    }


def test_a_venue_with_a_connection_down_or_silent_is_unhealthy() -> None:
    venues = {
        "mexc": venue(up=1, expected=2),
        "gateio": venue(age_s=31.25),
        "okx": venue(age_s=None),
    }
    code, body = health(status(venues=venues), RULES)
    assert code == 503 and body["status"] == "unhealthy"
    assert body["reasons"] == [
        "mexc: 1/2 connections up",
        "gateio: no message for 31.2s",
        "okx: no message yet",
    ]
    assert body["venues"]["okx"]["last_message_age_s"] is None
    assert body["venues"]["gateio"]["last_message_age_s"] == 31.25


def test_a_late_or_missing_snapshot_is_unhealthy() -> None:
    late = datetime.fromtimestamp(NOW_NS / 1e9 - 3.5, UTC)
    code, body = health(status(last_tick_time=late), RULES)
    assert (code, body["reasons"], body["last_snapshot_age_s"]) == (
        503,
        ["last snapshot 3.5s ago"],
        3.5,
    )
    code, body = health(status(last_tick_time=None), RULES)
    assert (code, body["reasons"]) == (503, ["last snapshot none yet"])
    assert body["last_snapshot"] is None and body["last_snapshot_age_s"] is None
    # three intervals of a slower schedule are still fine
    assert health(status(last_tick_time=late), HealthRules(30.0, 2.0))[0] == 200


def test_a_database_outage_shows_but_stays_healthy() -> None:
    down = DatabaseStatus("down", 120, 40, 80, "ConnectionRefusedError")
    code, body = health(status(database=down), RULES)
    assert (code, body["status"], body["reasons"]) == (200, "degraded", [])
    assert body["degraded"] == ["database down: ConnectionRefusedError"]
    assert body["database"] == {
        "state": "down",
        "backlog_rows": 120,
        "rows_written": 40,
        "rows_spilled": 80,
        "last_error": "ConnectionRefusedError",
        "server": None,
    }
    code, body = health(status(database=None), RULES)
    assert (code, body["database"]) == (200, {"state": "disabled (dry run)", "backlog_rows": 0})
    assert (body["status"], body["degraded"]) == ("ok", [])


def test_a_stalled_database_is_degraded_and_says_what_is_not_finishing() -> None:
    stalled = DatabaseStatus(
        "stalled",
        40,
        0,
        0,
        "COPY of 40 rows into book_ticker_snapshots has not finished after 3.0 s",
    )
    code, body = health(status(database=stalled), RULES)
    assert (code, body["status"], body["database"]["state"]) == (200, "degraded", "stalled")
    assert body["degraded"] == [
        "database stalled: COPY of 40 rows into book_ticker_snapshots has not finished after 3.0 s"
    ]
    # a snapshot problem still makes it unhealthy; the database stays listed as degraded
    code, body = health(status(database=stalled, last_tick_time=None), RULES)
    assert (code, body["status"], len(body["degraded"])) == (503, "unhealthy", 1)


def test_a_crashed_task_is_unhealthy_while_the_collector_stops() -> None:
    crashed = {"analytics": "OverflowError: cannot convert float infinity to integer"}
    code, body = health(status(crashed_tasks=crashed), RULES)
    assert (code, body["status"]) == (503, "unhealthy")
    assert body["reasons"] == [
        "task analytics crashed: OverflowError: cannot convert float infinity to integer"
    ]
    assert body["crashed_tasks"] == crashed


def test_one_expected_connection_reads_in_the_singular() -> None:
    code, body = health(status(venues={"gateio": venue(up=0, expected=1)}), RULES)
    assert (code, body["reasons"]) == (503, ["gateio: 0/1 connection up"])


def test_an_embedded_server_being_restarted_is_degraded_and_says_so_first() -> None:
    problem = (
        "embedded PostgreSQL not running for 12 s, restart attempt 3 in 8.0 s; attempt 2 "
        "failed: FATAL: data directory has invalid permissions"
    )
    server = DatabaseServerStatus("down", 1, problem)
    down = DatabaseStatus("down", 120, 40, 0, "ConnectionRefusedError: [Errno 111]")
    code, body = health(status(database=down, database_server=server), RULES)
    assert (code, body["status"], body["reasons"]) == (200, "degraded", [])
    assert body["degraded"] == [problem, "database down: ConnectionRefusedError: [Errno 111]"]
    assert body["database"]["server"] == {"state": "down", "restarts": 1, "problem": problem}
    # running again: listed, and no longer a reason to be degraded
    back = DatabaseServerStatus("running", 2, None)
    code, body = health(status(database_server=back), RULES)
    assert (code, body["status"], body["degraded"]) == (200, "ok", [])
    assert body["database"]["server"] == {"state": "running", "restarts": 2, "problem": None}


def test_silent_pairs_are_listed_under_their_venue_but_do_not_make_it_unhealthy() -> None:
    venues = {"binance": venue(silent=("FOOUSDT", "BARUSDT")), "bybit": venue()}
    code, body = health(status(venues=venues), RULES)
    assert code == 200 and body["reasons"] == []
    assert body["venues"]["binance"]["silent_pairs"] == ["FOOUSDT", "BARUSDT"]
    assert body["venues"]["bybit"]["silent_pairs"] == []
