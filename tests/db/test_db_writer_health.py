"""Writer state and outage bookkeeping on a fake clock: states, outage length, log rate."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from db.writer_health import WriterHealth

DSN = "postgresql://u:Sup3r-S3cret-pw@db.example/cex"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **options) -> WriterHealth:
    return WriterHealth(
        DSN, lambda: (40, 2), retry_initial=0.5, retry_max=10, clock=clock, **options
    )


def test_states_and_the_outage_from_the_first_stalled_attempt() -> None:
    clock = Clock()
    health = make(clock)
    assert (health.stats.state, health.stats.db_up) == ("up", True)
    with capture_logs() as logs:
        health.attempt_started()  # t = 1000: the write that will hang
        clock.now += 3
        health.stalled("COPY of 40 rows into t", 3.0)
        assert (health.stats.state, health.stats.db_up) == ("stalled", False)
        clock.now += 27
        health.failed(
            TimeoutError("COPY of 40 rows into t did not finish within 30 s"), expected=True
        )
        assert health.stats.state == "down"
        for _ in range(3):  # the server stays frozen: each retry hangs, then fails
            health.attempt_started()
            clock.now += 3
            health.stalled("connecting to postgresql://u:***@db.example/cex", 3.0)
            clock.now += 2
            health.failed(TimeoutError("connecting ... did not finish within 5 s"), expected=True)
        health.attempt_started()
        clock.now += 0.5
        health.succeeded(40)
    assert (health.stats.state, health.stats.db_up) == ("up", True)
    events = [e["event"] for e in logs if e["log_level"] != "debug"]
    assert events == ["writer_stalled", "writer_batch_failed", "writer_recovered"]
    recovered = logs[-1]
    assert recovered["outage_s"] == 45.5 and recovered["failed_attempts"] == 4
    assert logs[0]["summary"] == (
        "database stalled: COPY of 40 rows into t has not finished after 3.0 s; 40 rows waiting"
    )


def test_failures_are_logged_first_then_every_thirty_seconds() -> None:
    clock = Clock()
    health = make(clock)
    with capture_logs() as logs:
        for _ in range(200):  # 100 s of failures, two a second
            health.attempt_started()
            health.failed(ConnectionRefusedError(111, "Connection refused"), expected=True)
            clock.now += 0.5
    warnings = [e for e in logs if e["event"] == "writer_batch_failed"]
    assert [e["attempt"] for e in warnings] == [1, 61, 121, 181]
    assert warnings[1]["summary"] == (
        "database writes still failing after 61 attempts in 30 s (ConnectionRefusedError: "
        "[Errno 111] Connection refused); 40 rows waiting, 2 spill files"
    )
    assert sum(e["event"] == "writer_retry" for e in logs) == 200  # every attempt, at debug
    assert all(e["log_level"] == "debug" for e in logs if e["event"] == "writer_retry")


def test_nothing_but_the_outcome_is_logged_while_closing() -> None:
    clock = Clock()
    health = make(clock)
    health.closing = True
    with capture_logs() as logs:
        for _ in range(40):
            health.attempt_started()
            health.stalled("connecting to x", 3.0)
            health.failed(OSError("unreachable"), expected=True)
            clock.now += 0.1
        health.dropped(5, "spilling to /x failed: read-only file system")
        health.closed(Path("/data/spill"), "book_ticker_snapshots")
    loud = [e for e in logs if e["log_level"] != "debug"]
    assert [e["event"] for e in loud] == ["writer_dropped", "writer_closed"]
    closed = loud[-1]
    assert (closed["log_level"], closed["table"]) == ("error", "book_ticker_snapshots")
    assert closed["summary"] == (
        "book_ticker_snapshots writer closed: database down (OSError: unreachable); 0 rows "
        "written, 2 spill files "
        "waiting in /data/spill for the next run, 5 rows dropped (5 spilling to /x failed: "
        "read-only file system)"
    )
    assert health.stats.drop_reasons == {"spilling to /x failed: read-only file system": 5}
    assert health.delay() == 0.1  # retries come quickly while closing


def test_the_password_never_reaches_the_stats_or_the_log() -> None:
    health = make(Clock())
    with capture_logs() as logs:
        health.failed(OSError(f"could not connect to {DSN}"), expected=True)
        health.failed(RuntimeError("Sup3r-S3cret-pw in a bug"), expected=False)
    assert "Sup3r-S3cret-pw" not in repr(logs) + repr(health.stats)


def test_an_error_without_a_message_says_what_it_interrupted() -> None:
    health = make(Clock())
    health.failed(ConnectionResetError(), expected=True, during="COPY of 40 rows into t")
    assert (
        health.stats.last_error == "ConnectionResetError: no message, during COPY of 40 rows into t"
    )
