"""The embedded PostgreSQL a collector runs is restarted when it dies: a real collector writing
into a real embedded server of its own (never the suite's session server), whose postmaster
is killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import pytest

from data_collector.simulator import Simulator, pairs_for
from db.embedded import EmbeddedPostgres
from tests.helpers import (
    Log,
    TickLog,
    events,
    fetch,
    make_config,
    running,
    wait_for_ticks,
    wait_until,
)
from tests.monitoring.helpers import get

#: "..., restart attempt 3 in 1.2 s; attempt 2 failed: FATAL: ..."
NEXT_ATTEMPT = re.compile(
    r", restart attempt (?P<next>\d+) in [\d.]+ s; attempt (?P<failed>\d+) failed: FATAL: "
)


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_killed_embedded_server_is_restarted_and_every_tick_stored_once(
    pg_scratch: Path, logs: Log
) -> None:
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=4) as sim:
        config = make_config(pg_scratch, sim, pairs, dsn="")  # no database: embedded
        pgdata = config.embedded_pgdata
        ticks = TickLog()
        async with running(config) as collector:
            collector.scheduler.add_sink(ticks)
            writer, monitoring = collector.writer, collector.monitoring
            assert writer is not None and monitoring is not None
            await wait_until(lambda: writer.stats.rows_written > 0, 20, what="rows written")
            killed = postmaster_pid(pgdata)
            # postgres refuses a data directory others may enter: restarts fail until it is
            # closed again, so the outage lasts long enough to be looked at
            pgdata.chmod(0o777)
            os.kill(killed, signal.SIGKILL)

            async def health() -> tuple[int, dict]:
                code, _text, body = await get(f"{monitoring.url}/health")
                assert body is not None
                return code, body

            async def two_attempts_failed() -> bool:
                problem = (await health())[1]["database"]["server"]["problem"] or ""
                waiting = NEXT_ATTEMPT.search(problem)
                return waiting is not None and int(waiting["failed"]) >= 2

            await wait_until(two_attempts_failed, 20, what="two failed restart attempts")
            code, down = await health()
            await wait_for_ticks(collector, 1)  # a tick while the server is down
            assert writer.stats.backlog_rows > 0
            pgdata.chmod(0o700)

            async def recovered() -> bool:
                _code, body = await health()
                return body["status"] == "ok" and body["database"]["backlog_rows"] == 0

            await wait_until(recovered, 40, what="server restarted, backlog written")
            await wait_for_ticks(collector, 1)
            _code, back = await health()
            restarted = postmaster_pid(pgdata)
    assert code == 200 and down["status"] == "degraded" and down["reasons"] == []
    problem = down["database"]["server"]["problem"]
    assert down["degraded"][0] == problem
    assert problem.startswith("embedded PostgreSQL not running for ")
    waiting = NEXT_ATTEMPT.search(problem)
    assert waiting is not None and int(waiting["next"]) == int(waiting["failed"]) + 1
    assert "has invalid permissions" in problem
    assert down["database"]["server"]["state"] == "down"
    assert back["database"]["server"] == {"state": "running", "restarts": 1, "problem": None}
    assert back["degraded"] == [] and restarted != killed

    # calm logs: one line each for the death, the failed attempts and the recovery
    assert [e["pid"] for e in events(logs, "embedded_pg_down")] == [killed]
    [failed] = events(logs, "embedded_pg_restart_failed")
    assert failed["attempt"] == 1 and "invalid permissions" in failed["error"]
    [back_up] = events(logs, "embedded_pg_restarted")
    assert back_up["attempts"] >= 3 and back_up["pid"] == restarted

    with EmbeddedPostgres.start(pgdata) as pg:
        rows = await fetch(
            pg.dsn,
            "SELECT exchange, symbol_base, timestamp, count(*) AS n FROM book_ticker_snapshots"
            " GROUP BY 1, 2, 3",
        )
    assert rows and all(r["n"] == 1 for r in rows)  # none twice
    stored = Counter(r["timestamp"] for r in rows)
    assert stored == Counter({t: sum(c.values()) for t, c in ticks.rows.items()})  # none lost
