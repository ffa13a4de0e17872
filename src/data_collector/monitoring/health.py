"""``/health``: a pure function of a :class:`CollectorStatus` and the rules it is judged by.

Healthy (HTTP 200) when every venue flows (all connections up, a message within
``silence_timeout``), the last snapshot is under 3 intervals old and no essential task has
crashed; 503 otherwise, with the reasons. A database that is down or stalled, or an embedded
PostgreSQL that is not running (being restarted), shows in ``database`` and makes the status
"degraded" (the reasons in ``degraded``), but is no reason for 503: rows are buffered, nothing
is lost; nor are a venue's silent pairs, listed under the venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from data_collector.monitoring.sources import (
    CollectorStatus,
    DatabaseServerStatus,
    DatabaseStatus,
)
from data_collector.wording import plural

#: the last snapshot must be younger than this many intervals
HEALTH_SNAPSHOT_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class HealthRules:
    #: a venue without a message for longer than this is not flowing
    silence_timeout: float
    snapshot_interval: float


def health(status: CollectorStatus, rules: HealthRules) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body)."""
    now_ns = status.now_ns
    reasons: list[str] = []
    venues: dict[str, Any] = {}
    for venue, v in status.venues.items():
        n_up, expected = v.connections_up, v.connections_expected
        last = v.stats.last_message_ns
        age = (now_ns - last) / 1e9 if last else None
        venues[venue] = {
            "connections_up": n_up,
            "connections_expected": expected,
            "last_message_age_s": None if age is None else round(age, 3),
            # subscribed but quiet while the connection delivers others: worth a look, though
            # no reason for 503 (the rest of the venue flows)
            "silent_pairs": list(v.silent_pairs),
        }
        if n_up < expected:
            reasons.append(f"{venue}: {n_up}/{plural(expected, 'connection')} up")
        if age is None:
            reasons.append(f"{venue}: no message yet")
        elif age > rules.silence_timeout:
            reasons.append(f"{venue}: no message for {age:.1f}s")
    last_tick = status.last_tick_time
    tick_age = None if last_tick is None else now_ns / 1e9 - last_tick.timestamp()
    if tick_age is None or tick_age > HEALTH_SNAPSHOT_INTERVALS * rules.snapshot_interval:
        shown = "none yet" if tick_age is None else f"{tick_age:.1f}s ago"
        reasons.append(f"last snapshot {shown}")
    db, server = status.database, status.database_server
    degraded = [server.problem] if server is not None and server.problem else []
    if db is not None and db.state != "up":
        degraded.append(f"database {db.state}: {db.last_error}")
    reasons.extend(f"task {task} crashed: {error}" for task, error in status.crashed_tasks.items())
    body: dict[str, Any] = {
        "status": "unhealthy" if reasons else "degraded" if degraded else "ok",
        "reasons": reasons,
        "degraded": degraded,
        "venues": venues,
        "last_snapshot": None if last_tick is None else last_tick.isoformat(),
        "last_snapshot_age_s": None if tick_age is None else round(tick_age, 3),
        "database": _database(status.database, status.database_server),
        "open_opportunities": status.open_opportunities,
        "crashed_tasks": status.crashed_tasks,
    }
    return (200 if not reasons else 503), body


def _database(db: DatabaseStatus | None, server: DatabaseServerStatus | None) -> dict[str, Any]:
    if db is None:
        return {"state": "disabled (dry run)", "backlog_rows": 0}
    return {
        "state": db.state,
        "backlog_rows": db.backlog_rows,
        "rows_written": db.rows_written,
        "rows_spilled": db.rows_spilled,
        "last_error": db.last_error,
        "server": None
        if server is None
        else {"state": server.state, "restarts": server.restarts, "problem": server.problem},
    }
