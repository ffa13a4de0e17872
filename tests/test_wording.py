"""Counts read in the singular for exactly one, wherever a line words a count: the helper, a
whole (dry) run with one pair, the writer's outage lines with one row, alert messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from structlog.testing import capture_logs

from data_collector.alerts.events import VenueDown
from data_collector.alerts.messages import digest, word
from data_collector.simulator import Simulator, pairs_for
from data_collector.wording import noun_for, plural
from db.writer_health import WriterHealth
from tests.alerts.helpers import closed
from tests.helpers import events, make_config, running, wait_until


def test_plural_and_the_noun_alone() -> None:
    assert [plural(n, "pair") for n in (0, 1, 2)] == ["0 pairs", "1 pair", "2 pairs"]
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"
    assert (noun_for(1, "row"), noun_for(12, "row")) == ("row", "rows")


async def test_a_run_with_one_pair_words_each_count_in_the_singular(tmp_path: Path) -> None:
    pairs = pairs_for(1)
    with capture_logs() as logs:
        async with Simulator(pairs, rate_hz=4) as sim:
            config = make_config(tmp_path, sim, pairs, "postgresql://nobody@127.0.0.1:1/none")
            async with running(config, dry_run=True) as collector:
                await wait_until(lambda: collector.scheduler.stats.rows >= 2, 15, what="a tick")
    summaries = {e["event"]: e["summary"] for e in logs if "summary" in e}
    assert [e["summary"].split(" at ")[0] for e in events(logs, "simulator_venue_started")] == [
        "simulated mexc serving 1 pair",
        "simulated gateio serving 1 pair",
    ]
    assert summaries["pairs_loaded"] == "Loaded 1 trading pair"
    assert sorted(e["summary"] for e in events(logs, "subscribed")) == [
        "gateio: gateio-0 subscribed to 1 channel",
        "mexc: mexc-0 subscribed to 1 channel",
    ]


def test_the_writer_outage_lines_say_one_row_and_one_spill_file() -> None:
    health = WriterHealth("postgresql://u@db/x", lambda: (1, 1), retry_initial=0.5, retry_max=10)
    with capture_logs() as logs:
        health.stalled("COPY of 1 row into t", 3.0)
        health.failed(ConnectionRefusedError(111, "Connection refused"), expected=True)
        health.stats.rows_written += 1  # as the writer counts a commit
        health.succeeded(1)
        health.closing = True
        health.dropped(1, "rejected by PostgreSQL")
        health.closed(Path("/data/spill"), "t")
    said = {e["event"]: e["summary"] for e in logs if "summary" in e}
    assert said["writer_stalled"].endswith("after 3.0 s; 1 row waiting")
    assert said["writer_batch_failed"].endswith("; 1 row waiting")
    assert said["writer_recovered"].endswith("(1 row written)")
    assert said["writer_dropped"] == "dropped 1 row: rejected by PostgreSQL"
    assert said["writer_closed"] == (
        "t writer closed: 1 row written, 1 spill file waiting in /data/spill for the next run, "
        "1 row dropped (1 rejected by PostgreSQL)"
    )


def test_alerts_word_one_tick_one_connection_and_one_alert() -> None:
    one_tick = dataclasses.replace(closed(), ticks=1)  # open for a single snapshot
    assert "(1 tick), peak" in word(one_tick).body
    assert "0/1 connection up" in word(VenueDown("okx", "closed", 0, 1)).body
    single = digest([word(VenueDown("okx", "closed", 0, 1))])
    assert (single.title, single.line) == ("1 alert (venue_down)", "1 alert")
