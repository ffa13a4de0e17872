"""The [SNAPSHOT] lines worded from a tick and the writer's progress (a plain struct)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from data_collector.snapshot_log import SnapshotLog, TickOutcome, WriterProgress
from tests.helpers import Log, events

T0 = datetime(2026, 11, 23, 14, 40, 1, tzinfo=UTC)


def outcome(tick: int, rows: int, pairs: int = 20) -> TickOutcome:
    return TickOutcome(tick, T0 + timedelta(seconds=tick), pairs, rows, 0.0009, 0.0001)


class Progress:
    """The writer's totals as a test sets them."""

    def __init__(self) -> None:
        self.now = WriterProgress("up", 0, 0, 0)

    def __call__(self) -> WriterProgress:
        return self.now


def test_a_writer_catching_up_or_stalled_says_so(logs: Log) -> None:
    progress = Progress()
    log = SnapshotLog(progress=progress)
    progress.now = WriterProgress("up", 0, 0, 40)
    log.tick(outcome(1, 40))
    progress.now = WriterProgress("up", 400, 0, 1240)  # back from an outage, writing the backlog
    log.tick(outcome(2, 40))
    progress.now = WriterProgress("stalled", 400, 0, 1280)
    log.tick(outcome(3, 40))
    progress.now = WriterProgress("up", 1680, 0, 40)
    log.tick(outcome(4, 40))
    assert [e["summary"] for e in events(logs, "snapshot")] == [
        "[SNAPSHOT #001] Captured 20 pairs, queued 40 records in 0.9ms",
        "[SNAPSHOT #002] Captured 20 pairs, queued 40 records in 0.9ms; database: 400 stored, "
        "1240 waiting",
        "[SNAPSHOT #003] Captured 20 pairs, queued 40 records in 0.9ms; database stalled: "
        "1280 records waiting",
        "[SNAPSHOT #004] Captured 20 pairs, queued 40 records in 0.9ms; database: 1280 stored",
    ]


def test_a_dry_run_and_a_scheduler_without_writer(logs: Log) -> None:
    SnapshotLog(dry_run=True).tick(outcome(7, 1, pairs=1))
    SnapshotLog().tick(outcome(8, 2, pairs=1))
    dry, bare = events(logs, "snapshot")
    assert dry["summary"] == (
        "[SNAPSHOT #007] Captured 1 pair, 1 record in 0.9ms (dry run: not stored)"
    )
    assert (dry["queued"], "db_state" in dry) == (0, False)
    assert bare["summary"] == "[SNAPSHOT #008] Captured 1 pair, queued 2 records in 0.9ms"
    assert (bare["rows"], bare["ms"], bare["lateness_ms"]) == (2, 0.9, 0.1)
