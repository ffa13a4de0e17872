"""The pacer of one transport: counted messages inside the venue's sliding window (with
headroom), pongs ahead of waiting requests, uncounted kinds at once; and a link's transports
honouring the budget against the loopback server."""

from __future__ import annotations

import asyncio

from data_collector.connection import ConnectionSettings, MessageKind, NoPing, Pacer
from data_collector.connection.pacer import counts, usable_messages
from data_collector.venues.base import BudgetScope, ControlBudget
from tests.connection.loopback import Recorder, Server, make_link, most_in_any_window
from tests.helpers import wait_until

SUB, PING, PONG = MessageKind.SUBSCRIPTION, MessageKind.PING, MessageKind.PONG
#: Binance's rule on a faster clock: 5 messages in any 0.2 s, pongs counted
FAST_BINANCE = ControlBudget(messages=5, per_seconds=0.2, counts_pongs=True)


class Wire:
    """What a pacer wrote, with the loop time of each write."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, MessageKind, bytes]] = []

    def __call__(self, kind: MessageKind, payload: bytes) -> None:
        self.writes.append((asyncio.get_running_loop().time(), kind, payload))

    def payloads(self) -> list[bytes]:
        return [payload for _t, _k, payload in self.writes]


def _pacer(budget: ControlBudget | None) -> tuple[Pacer, Wire]:
    wire = Wire()
    return Pacer(budget, wire, asyncio.get_running_loop().time), wire


def test_the_pacer_uses_four_fifths_of_a_budget() -> None:
    assert usable_messages(ControlBudget(5, 1.0)) == 4
    assert usable_messages(ControlBudget(480, 3600.0)) == 384
    assert usable_messages(ControlBudget(1, 1.0)) == 1


def test_what_a_budget_counts() -> None:
    binance = ControlBudget(5, 1.0, counts_pongs=True)
    assert all(counts(binance, kind) for kind in MessageKind)
    mexc = ControlBudget(100, 1.0)
    assert counts(mexc, SUB) and counts(mexc, PING) and not counts(mexc, PONG)
    okx = ControlBudget(480, 3600.0, scope=BudgetScope.SUBSCRIPTIONS)
    assert counts(okx, SUB) and not counts(okx, PING) and not counts(okx, PONG)
    assert not any(counts(None, kind) for kind in MessageKind)


async def test_a_burst_leaves_in_order_inside_the_window() -> None:
    pacer, wire = _pacer(FAST_BINANCE)
    burst = [f"sub-{i}".encode() for i in range(12)]
    for payload in burst:
        pacer.send(SUB, payload)
    assert len(wire.writes) == 4  # the first window's share went out at once
    assert pacer.pending(SUB) == 8
    await wait_until(lambda: len(wire.writes) == 12, timeout=3.0, what="the whole burst")
    assert wire.payloads() == burst
    assert most_in_any_window([t for t, _k, _p in wire.writes], 0.2) <= 4
    assert wire.writes[-1][0] - wire.writes[0][0] >= 0.4  # three windows' worth
    assert pacer.sent_counted == 12 and pacer.pending(SUB) == 0


async def test_a_pong_jumps_the_queue_of_waiting_requests() -> None:
    pacer, wire = _pacer(FAST_BINANCE)
    for i in range(10):
        pacer.send(SUB, f"sub-{i}".encode())
    pacer.send(PONG, b"p1")
    pacer.send(PONG, b"p2")
    await wait_until(lambda: len(wire.writes) == 12, timeout=3.0, what="everything")
    kinds = [k for _t, k, _p in wire.writes]
    assert kinds[4:6] == [PONG, PONG]  # first in the next window, in the order received
    assert wire.payloads()[4:6] == [b"p1", b"p2"]
    assert most_in_any_window([t for t, _k, _p in wire.writes], 0.2) <= 4


async def test_uncounted_kinds_never_wait() -> None:
    okx_fast = ControlBudget(2, 0.5, scope=BudgetScope.SUBSCRIPTIONS)  # 1 per 0.5 s
    pacer, wire = _pacer(okx_fast)
    pacer.send(SUB, b"sub-1")
    pacer.send(SUB, b"sub-2")  # waits
    pacer.send(PING, b"ping")
    pacer.send(PONG, b"")
    assert wire.payloads() == [b"sub-1", b"ping", b""]
    await wait_until(lambda: len(wire.writes) == 4, timeout=2.0, what="the second request")
    assert wire.writes[-1][0] - wire.writes[0][0] >= 0.5


async def test_without_a_budget_everything_goes_at_once() -> None:
    pacer, wire = _pacer(None)
    for i in range(50):
        pacer.send(SUB, str(i).encode())
    assert len(wire.writes) == 50 and pacer.sent_counted == 0


async def test_close_drops_what_waits() -> None:
    pacer, wire = _pacer(ControlBudget(1, 0.05))
    pacer.send(SUB, b"a")
    pacer.send(SUB, b"b")
    pacer.close()
    pacer.send(SUB, b"c")
    await asyncio.sleep(0)  # let a (wrongly) live timer run
    assert wire.payloads() == [b"a"] and pacer.pending(SUB) == 0


async def test_a_link_paces_its_burst_and_starts_the_deadline_after_it(server: Server) -> None:
    """Ten subscribe requests at 4 per 0.5 s take over a second, three times the subscribe
    timeout: the deadline starts when the last one is out, so the transport survives; the
    server's pings are answered and their pongs counted in the same budget."""
    server.ack_after = 10
    server.start_pinging(0.2)  # 5 pings a second: pongs take about half of the budget
    rec = Recorder([f"sub-{i}" for i in range(10)])
    budget = ControlBudget(messages=5, per_seconds=0.5, counts_pongs=True)
    settings = ConnectionSettings(silence_timeout=2.0, pong_timeout=1.0, subscribe_timeout=0.3)
    link = make_link(server.url, rec, settings, keepalive=NoPing(), budget=budget)
    link.start()
    try:
        await wait_until(lambda: rec.takeovers, timeout=5.0, what="subscribed after the burst")
        session = server.sessions[0]
        subs = [(t, text) for t, text in session.arrivals if text.startswith("sub")]
        assert [text for _t, text in subs] == rec.subscribe
        assert subs[-1][0] - subs[0][0] > settings.subscribe_timeout
        assert session.pongs, "the server's pings were answered"
        assert most_in_any_window([t for t, _w in session.arrivals], 0.5) <= 5
        assert rec.lost == [] and len(server.sessions) == 1
    finally:
        await link.close()
