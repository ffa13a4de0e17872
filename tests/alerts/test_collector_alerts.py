"""Alerts from a running collector (simulator, dry run) to real local HTTP receivers: a
planted gap opens and closes, a pair goes silent, a venue goes down and comes back, and
targets that hang or refuse are counted failed without delaying a single tick."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_collector import outlets
from data_collector.alerts.delivery import DeliverySettings
from data_collector.analytics.formatting import format_price
from data_collector.cache import Snapshot
from data_collector.scheduler import TickStats
from data_collector.simulator import Simulator, pairs_for
from tests.alerts.helpers import Receiver, refused_url
from tests.helpers import NO_DB, make_config, plant_gap, running, wait_for_ticks, wait_until
from tests.monitoring.helpers import get, sample


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_planted_gap_and_a_venue_outage_reach_the_target_without_delaying_ticks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = DeliverySettings(send_timeout_s=1.0, attempts=2, backoff_s=0.1, window_s=1.0)
    monkeypatch.setattr(outlets, "DELIVERY", settings)
    pairs = pairs_for(3)
    sol = pairs[2]
    async with (
        Simulator(pairs, rate_hz=5) as sim,
        Receiver() as good,
        Receiver(hang=True) as hanging,
    ):
        targets = f'["{good.url()}", "{hanging.url()}", "{refused_url()}"]'
        alerts = f"{{targets: {targets}, cooldown_s: 0}}"
        # the outage retries every ~0.3 s: no reconnect throttle; a pair is silent after 2 s
        connection = (
            "{silence_timeout: 5, pong_timeout: 3, reconnect_initial_delay: 0.1, "
            "reconnect_max_delay: 0.5, max_reconnects_per_minute: 600, pair_silence_timeout: 2}"
        )
        config = make_config(tmp_path, sim, pairs, NO_DB, alerts=alerts, connection=connection)
        async with running(config, dry_run=True) as collector:
            lateness: list[float] = []

            def note(_snap: Snapshot, stats: TickStats) -> None:
                lateness.append(stats.last_lateness_s)

            collector.scheduler.add_observer(note)
            await wait_until(collector.manager.flowing, 15, what="feeds flowing")
            await wait_for_ticks(collector, 1)
            missed_before = collector.scheduler.stats.missed

            gate = sim.venues["gateio"]
            bid = await plant_gap(sim, sol)
            await wait_until(lambda: good.got("SOL/USDT: buy MEXC"), what="the open")
            gate.release(sol)
            await wait_until(
                lambda: good.got("SOL/USDT: buy MEXC, sell GATEIO closed"), what="the close"
            )

            btc = gate.last_sent(pairs[0])
            assert btc is not None
            gate.set_quote(pairs[0], btc["bid"], "1", btc["ask"], "1", hold=True)  # then silent
            await wait_until(lambda: good.got("BTC/USDT silent on GATEIO"), what="pair_silent")
            gate.release(pairs[0])

            await gate.stop()
            await wait_until(lambda: good.got("GATEIO down"), 15, what="venue_down")
            await gate.start()
            await wait_until(lambda: good.got("GATEIO up again"), 20, what="venue_up")

            alerts = collector.alerts
            assert alerts is not None
            await wait_until(
                lambda: all(alerts.counters().failed[t] > 0 for t in ("json-2", "json-3")),
                10,
                what="the hanging and the refusing target counted failed",
            )
            # open, close, silent, down, up: counted once the receiver answered (alone or in
            # digests)
            await wait_until(lambda: alerts.counters().sent["json"] >= 5, what="5 alerts sent")
            assert collector.scheduler.stats.missed == missed_before
            # a send blocking the loop would make a tick late by its whole 1 s timeout
            assert max(lateness) < 0.5, lateness
            assert collector.monitoring is not None
            _, metrics, _ = await get(f"{collector.monitoring.url}/metrics")

    opened = next(m for m in good.messages if m["title"].startswith("Arbitrage SOL/USDT"))
    assert opened["message"].startswith("SOL/USDT: buy MEXC ")  # at its ask of that tick
    assert f"sell GATEIO {format_price(float(bid))}" in opened["message"]
    assert "size 2.5" in opened["message"]
    down = next(m for m in good.messages if m["title"] == "GATEIO down")
    assert "0/1 connection up" in down["message"]
    assert sample(metrics, "collector_alerts_sent_total", target="json") >= 5
    assert sample(metrics, "collector_alerts_failed_total", target="json-2") >= 1
    assert sample(metrics, "collector_alerts_failed_total", target="json-3") >= 1
    assert sample(metrics, "collector_alerts_dropped_total") == 0
