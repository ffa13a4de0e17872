"""Delivery through apprise's json:// to a real local HTTP receiver: one message per alert,
digests under a burst, the cooldown, and targets that hang or refuse."""

from __future__ import annotations

import time

import pytest

from data_collector.alerts.delivery import DeliverySettings
from data_collector.alerts.events import VenueDown
from data_collector.alerts.service import Alerts
from data_collector.config_schema import AlertsConfig
from tests.alerts.helpers import Receiver, closed, opened, refused_url
from tests.helpers import wait_until

FAST = DeliverySettings(send_timeout_s=1.0, attempts=2, backoff_s=0.05, window_s=2.0)


class Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


async def test_an_opening_and_its_close_arrive_as_two_readable_messages() -> None:
    async with Receiver() as receiver:
        alerts = Alerts(AlertsConfig(targets=[receiver.url()]), settings=FAST)
        alerts.start()
        try:
            alerts.opened(opened())
            await wait_until(lambda: len(receiver.messages) == 1, what="the opening")
            alerts.closed(closed())
            # the counter moves once the receiver answered, a moment after it took the message
            await wait_until(lambda: alerts.counters().sent == {"json": 2}, what="the close")
        finally:
            await alerts.stop()
    first, second = receiver.messages
    assert first["title"] == "Arbitrage SOL/USDT: 6.75% net"
    assert first["message"].startswith("SOL/USDT: buy MEXC 149.75, sell GATEIO 160.23\n")
    assert first["type"] == "warning"
    assert second["title"] == "Closed SOL/USDT: buy MEXC, sell GATEIO after 6.0s"


async def test_a_burst_goes_out_as_one_digest_and_the_cooldown_holds() -> None:
    clock = Clock()
    async with Receiver() as receiver:
        config = AlertsConfig(targets=[receiver.url()], cooldown_s=60)
        alerts = Alerts(config, settings=FAST, clock=clock)
        alerts.start()
        try:
            for i in range(8):  # one tick's worth of openings
                alerts.opened(opened(f"T{i:03d}/USDT"))
            alerts.opened(opened("T000/USDT"))  # the same again: within the cooldown
            await wait_until(lambda: receiver.messages, what="the digest")
            clock.now += 61  # the cooldown is over (the digest window counts on this clock)
            alerts.opened(opened("T000/USDT"))
            await wait_until(lambda: alerts.counters().sent == {"json": 9}, what="the repeat")
        finally:
            await alerts.stop()
    digest, repeat = receiver.messages
    assert digest["title"] == "8 alerts (arbitrage_alert)"
    assert [line.split(":")[0] for line in digest["message"].splitlines()] == [
        f"T{i:03d}/USDT" for i in range(8)
    ]
    assert repeat["title"] == "Arbitrage T000/USDT: 6.75% net"


async def test_a_handful_goes_out_one_by_one_and_more_within_the_window_as_a_digest() -> None:
    async with Receiver() as receiver:
        settings = DeliverySettings(send_timeout_s=1.0, handful=3, window_s=30.0)
        alerts = Alerts(AlertsConfig(targets=[receiver.url()], cooldown_s=0), settings=settings)
        alerts.start()
        try:
            for i in range(3):
                alerts.opened(opened(f"T{i:03d}/USDT"))
                await wait_until(lambda n=i: len(receiver.messages) == n + 1, what="one")
            for i in range(3, 6):
                alerts.opened(opened(f"T{i:03d}/USDT"))
            assert len(alerts.deliveries[0].pending) == 3  # held: the window is full
        finally:
            await alerts.stop()
    assert receiver.titles == [f"Arbitrage T{i:03d}/USDT: 6.75% net" for i in range(3)]


async def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    settings = DeliverySettings(send_timeout_s=1.0, queue_size=4)
    alerts = Alerts(AlertsConfig(targets=[refused_url()], cooldown_s=0), settings=settings)
    for i in range(10):  # the worker is not started: nothing leaves the queue
        alerts.publish(VenueDown(f"v{i}", "closed", 0, 1))
    assert [a.key[1] for a in alerts.deliveries[0].pending] == ["v6", "v7", "v8", "v9"]
    assert alerts.counters().dropped == 6
    await alerts.stop()


@pytest.mark.timeout(30)
async def test_targets_that_hang_or_refuse_are_counted_failed_and_do_not_hold_up_others() -> None:
    async with Receiver(hang=True) as hanging, Receiver() as good:
        targets = [hanging.url(), refused_url(), good.url()]
        alerts = Alerts(AlertsConfig(targets=targets), settings=FAST)
        alerts.start()
        try:
            started = time.monotonic()
            alerts.opened(opened())
            await wait_until(lambda: good.messages, what="the good target")
            assert time.monotonic() - started < FAST.send_timeout_s
            await wait_until(
                lambda: (
                    alerts.counters().failed == {"json": 1, "json-2": 1, "json-3": 0}
                    and alerts.counters().sent["json-3"] == 1
                ),
                timeout=10,
                what="both bad targets counted failed, the good one sent",
            )
        finally:
            await alerts.stop()
    assert alerts.counters().sent == {"json": 0, "json-2": 0, "json-3": 1}
