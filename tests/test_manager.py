"""FeedManager against the venue simulator over loopback: sharding, every pair flowing, loss and
recovery (abrupt drop, silent stall), rotation (scheduled, or on Gate's upgrade notice) without
a missed update, rejected pairs, out-of-order and garbage frames. A tiny Gate-like server
covers what the simulator does not do: refusing a whole request over one bad pair, and
numbering updates afresh on every new connection."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_create_server
from structlog.testing import capture_logs

from data_collector.cache import Outcome, QuoteCache
from data_collector.connection import ConnectionSettings
from data_collector.feeds import preview
from data_collector.manager import FeedManager, shard
from data_collector.pairs import Pair
from data_collector.simulator import Simulator
from data_collector.venues.base import ConnectBudget, QuoteUpdate
from data_collector.venues.gateio import GateIO
from data_collector.venues.mexc import Mexc
from data_collector.venues.okx import Okx
from tests.helpers import wait_until

VENUES = ("mexc", "gateio")
PAIRS = [Pair(f"TK{i:02d}", "USDT") for i in range(35)]
FAST = ConnectionSettings(
    silence_timeout=1.5,
    pong_timeout=0.5,
    reconnect_initial_delay=0.05,
    reconnect_max_delay=0.2,
    max_reconnects_per_minute=100,
    subscribe_timeout=1.0,
)


class RecordingCache(QuoteCache):
    """The real cache, also remembering accepted updates and not-live marks for assertions."""

    def __init__(self, venues: Sequence[str], pairs: Sequence[Pair]) -> None:
        super().__init__(venues, pairs)
        self.accepted: dict[tuple[int, int], list[QuoteUpdate]] = defaultdict(list)
        self.not_live: list[tuple[int, list[int]]] = []

    def apply(self, v: int, p: int, q: QuoteUpdate, receive_ns: int) -> Outcome:
        outcome = super().apply(v, p, q, receive_ns)
        if outcome is Outcome.ACCEPTED:
            self.accepted[v, p].append(q)
        return outcome

    def mark_not_live(self, v: int, pair_indexes: Iterable[int]) -> None:
        idx = list(pair_indexes)
        self.not_live.append((v, idx))
        super().mark_not_live(v, idx)


@dataclass
class Harness:
    sim: Simulator
    cache: RecordingCache
    manager: FeedManager

    def live(self, venue: str) -> bool:
        return bool(self.cache.live[self.cache.venue_index[venue]].all())

    def accepted_since(self, venue: str, since: int) -> bool:
        """Every pair of ``venue`` got an accepted update received after ``since`` (ns)."""
        v = self.cache.venue_index[venue]
        return bool((self.cache.receive_time_ns[v] > since).all())


@asynccontextmanager
async def harness(
    settings: ConnectionSettings = FAST,
    pairs: Sequence[Pair] = PAIRS,
    before_start: Callable[[Simulator], None] | None = None,
) -> AsyncIterator[Harness]:
    async with Simulator(pairs, rate_hz=10.0, seed=5) as sim:
        if before_start is not None:
            before_start(sim)
        cache = RecordingCache(VENUES, pairs)
        venues = {"mexc": (Mexc(), sim.urls["mexc"]), "gateio": (GateIO(), sim.urls["gateio"])}
        manager = FeedManager(cache, venues, pairs, settings)
        await manager.start()
        try:
            yield Harness(sim, cache, manager)
        finally:
            await manager.stop()


def events(logs: list[dict[str, Any]], name: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


# --- pure helpers ------------------------------------------------------------------------------


def test_shard_balances_under_the_cap() -> None:
    symbols = [f"S{i}" for i in range(35)]
    chunks = shard(symbols, 30)
    assert [len(c) for c in chunks] == [18, 17]
    assert [s for c in chunks for s in c] == symbols
    assert [len(c) for c in shard(symbols, None)] == [35]
    assert [len(c) for c in shard(symbols[:30], 30)] == [30]
    assert [len(c) for c in shard(symbols * 2, 30)] == [24, 23, 23]
    assert shard([], 30) == []


def test_preview_is_bounded_text_or_hex() -> None:
    assert preview(b'{"a":1}') == '{"a":1}'
    assert preview(b"x" * 1000) == "x" * 200
    assert preview(b"\xff\x00" * 300) == ("ff00" * 100)


# --- against the simulator ---------------------------------------------------------------------


async def test_35_pairs_shard_to_two_mexc_links_and_every_pair_flows() -> None:
    async with harness() as h:
        assert await h.manager.wait_until_flowing(5.0)
        assert h.manager.connections() == {"mexc": (2, 2), "gateio": (1, 1)}
        mexc = h.sim.venues["mexc"]
        assert sorted(len(s.subscriptions) for s in mexc.sessions) == [17, 18]
        assert len(h.sim.venues["gateio"].sessions) == 1
        await wait_until(lambda: h.live("mexc") and h.live("gateio"), what="all pairs live")
        assert h.manager.subscribed_channels() == 70
        assert h.manager.rejected == {"mexc": {}, "gateio": {}}
        for name in VENUES:
            stats = h.cache.stats[name]
            assert stats.updates > 0 and stats.frames >= stats.updates
            assert stats.parse_errors == 0 and stats.reconnects == 0
            assert stats.last_message_ns > 0
        # the venue's exact strings are stored verbatim
        mexc.pause()
        sent = mexc.last_sent(PAIRS[0])
        assert sent is not None
        p = h.cache.pair_index[PAIRS[0]]
        await wait_until(lambda: h.cache.sequence[0, p] == int(sent["sequence"]))
        q = h.cache.snapshot().quote(0, p)
        assert q is not None
        assert (q.bid_price, q.bid_qty, q.ask_price, q.ask_qty) == (
            sent["bid"],
            sent["bid_qty"],
            sent["ask"],
            sent["ask_qty"],
        )


async def test_abrupt_disconnect_reconnects_resubscribes_and_marks_not_live() -> None:
    async with harness() as h:
        assert await h.manager.wait_until_flowing(5.0)
        mexc = h.sim.venues["mexc"]
        v = h.cache.venue_index["mexc"]
        before = time.time_ns()
        mexc.disconnect_all()
        await wait_until(lambda: mexc.total_connections >= 4, what="two new MEXC sessions")
        # every MEXC pair was marked not live when its connection died, none of Gate's
        marked = sorted(i for venue, idx in h.cache.not_live if venue == v for i in idx)
        assert marked == list(range(len(PAIRS)))
        assert all(venue == v for venue, _ in h.cache.not_live)
        await mexc.wait_for_subscriptions(len(PAIRS))
        assert all(any("SUBSCRIPTION" in t for t in s.received) for s in mexc.sessions)
        await wait_until(lambda: h.accepted_since("mexc", before) and h.live("mexc"))
        await wait_until(lambda: h.manager.connections()["mexc"] == (2, 2))
        assert h.cache.stats["mexc"].reconnects == 2
        assert h.cache.stats["gateio"].reconnects == 0


@pytest.mark.slow
async def test_silent_stall_is_detected_and_recovered() -> None:
    async with harness() as h:
        assert await h.manager.wait_until_flowing(5.0)
        gate = h.sim.venues["gateio"]
        with capture_logs() as logs:
            gate.stall(2.0)
            await wait_until(lambda: events(logs, "connection_lost"), timeout=4.0, what="stall")
            reason = events(logs, "connection_lost")[0]["reason"]
            assert reason in ("silence", "pong_timeout")
            after = time.time_ns()
            await wait_until(
                lambda: h.accepted_since("gateio", after) and h.live("gateio"),
                timeout=8.0,
                what="gate quotes after the stall",
            )
        assert h.cache.stats["gateio"].reconnects >= 1
        assert h.manager.connections()["gateio"] == (1, 1)


async def test_rotation_overlaps_and_misses_no_update() -> None:
    settings = ConnectionSettings(
        silence_timeout=1.5,
        pong_timeout=0.5,
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.2,
        max_lifetime_override=1.5,
    )
    pair = PAIRS[0]
    p = 0
    async with harness(settings) as h:
        assert await h.manager.wait_until_flowing(5.0)
        links = [f.link for vf in h.manager._feeds.values() for f in vf.links]
        sent: list[str] = []
        with capture_logs() as logs:
            deadline = time.monotonic() + 6.0
            k = 0
            while not all(link is not None and link.rotations >= 1 for link in links):
                assert time.monotonic() < deadline, "links did not rotate"
                k += 1
                bid = f"100.{k:04d}"
                for name in VENUES:
                    h.sim.venues[name].set_quote(pair, bid, "1.5", f"101.{k:04d}", "2.5")
                sent.append(bid)
                await asyncio.sleep(0.01)
            for name in VENUES:
                v = h.cache.venue_index[name]
                await wait_until(lambda v=v: h.cache.accepted[v, p][-1].bid_price == sent[-1])
        for name in VENUES:
            v = h.cache.venue_index[name]
            seen = {q.bid_price for q in h.cache.accepted[v, p]}
            missing = [b for b in sent if b not in seen]
            assert not missing, f"{name} missed {len(missing)} of {len(sent)}: {missing[:5]}"
        rotated = events(logs, "connection_rotated")
        assert len(rotated) >= len(links)
        assert all(e["ready"] for e in rotated)  # the manager confirmed each replacement
        assert not events(logs, "connection_lost")
        assert h.cache.not_live == []
        assert all(h.cache.stats[name].reconnects == 0 for name in VENUES)


async def test_rejected_pair_reported_once_and_never_resubscribed() -> None:
    bad = PAIRS[3]

    def reject(sim: Simulator) -> None:
        for name in VENUES:
            sim.venues[name].reject(bad)

    async with harness(before_start=reject) as h:
        with capture_logs() as logs:
            await wait_until(
                lambda: all(h.manager.rejected[n] for n in VENUES), what="both rejections"
            )
            assert set(h.manager.rejected["mexc"]) == {"TK03USDT"}
            assert set(h.manager.rejected["gateio"]) == {"TK03_USDT"}
            assert await h.manager.wait_until_flowing(5.0)
            good = [h.cache.pair_index[q] for q in PAIRS if q != bad]
            await wait_until(lambda: h.cache.live[:, good].all(), what="the other pairs live")
            assert h.manager.subscribed_channels() == 68
            for name in VENUES:
                h.sim.venues[name].disconnect_all()
            await wait_until(lambda: h.sim.venues["mexc"].total_connections >= 4)
            await wait_until(lambda: h.sim.venues["gateio"].total_connections >= 2)
            await wait_until(lambda: h.manager.subscribed_channels() == 68, what="resubscribed")
        for name, symbol in (("mexc", "TK03USDT"), ("gateio", "TK03_USDT")):
            rejected = events(logs, "subscription_rejected", exchange=name)
            assert [e["symbol"] for e in rejected] == [symbol]
            assert rejected[0]["log_level"] == "error" and rejected[0]["reason"]
            for session in h.sim.venues[name].sessions:
                assert session.received and not any(symbol in t for t in session.received)
        assert not h.cache.live[:, h.cache.pair_index[bad]].any()


async def test_out_of_order_and_garbage_are_counted_never_cached() -> None:
    pair = PAIRS[1]
    async with harness() as h:
        assert await h.manager.wait_until_flowing(5.0)
        p = h.cache.pair_index[pair]
        for name in VENUES:
            venue = h.sim.venues[name]
            v = h.cache.venue_index[name]
            stats = h.cache.stats[name]
            await wait_until(lambda v=v: h.cache.accepted[v, p], what="a first quote")
            stale, errors = stats.dropped_stale, stats.parse_errors
            venue.pause()  # no fresh update may race the injected ones
            garbage = 3 * len(venue.sessions)  # every session gets the garbage
            with capture_logs() as logs:
                venue.send_out_of_order(pair)
                venue.send_garbage(3)
                await wait_until(
                    lambda s=stats, e=errors, g=garbage: s.parse_errors == e + g,
                    what="garbage counted",
                )
                await wait_until(lambda s=stats, n=stale: s.dropped_stale >= n + 1, what="stale")
            venue.resume()
            accepted = h.cache.accepted[v, p]
            seqs = [q.sequence for q in accepted]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # never went backwards
            assert len(events(logs, "malformed_frame", exchange=name)) == garbage
            assert all(len(e["preview"]) <= 400 for e in events(logs, "malformed_frame"))
        assert h.manager.connections() == {"mexc": (2, 2), "gateio": (1, 1)}


def feed_bids(h: Harness, names: Sequence[str], pair: Pair, sent: list[str]) -> None:
    """Push one fresh, distinct quote of ``pair`` on the named venues; remember its bid."""
    bid = f"100.{len(sent) + 1:04d}"
    for name in names:
        h.sim.venues[name].set_quote(pair, bid, "1.5", f"101.{len(sent) + 1:04d}", "2.5")
    sent.append(bid)


async def test_gate_upgrade_rotates_make_before_break() -> None:
    pair, p = PAIRS[0], 0
    async with harness() as h:
        assert await h.manager.wait_until_flowing(5.0)
        gate = h.sim.venues["gateio"]
        link = h.manager._feeds["gateio"].links[0].link
        assert link is not None
        sent: list[str] = []
        v = h.cache.venue_index["gateio"]
        with capture_logs() as logs:
            gate.send_upgrade()
            deadline = time.monotonic() + 5.0
            while link.rotations < 1 or len(gate.sessions) > 1:
                assert time.monotonic() < deadline, "no rotation on upgrade"
                feed_bids(h, ["gateio"], pair, sent)
                await asyncio.sleep(0.01)
            feed_bids(h, ["gateio"], pair, sent)
            await wait_until(lambda: h.cache.accepted[v, p][-1].bid_price == sent[-1])
        seen = {q.bid_price for q in h.cache.accepted[v, p]}
        assert not [b for b in sent if b not in seen]
        assert [e["reason"] for e in events(logs, "rotation_requested")] == ["upgrade"]
        assert not events(logs, "connection_lost") and not events(logs, "reconnect_scheduled")
        assert gate.total_connections == 2 and h.cache.not_live == []
        assert all(h.cache.stats[name].reconnects == 0 for name in VENUES)
        assert h.manager.connections()["gateio"] == (1, 1)


# --- a tiny Gate-like server -------------------------------------------------------------------

SEQ_STEP = 10**9  # connection k numbers its updates from 10**12 - k * SEQ_STEP


class _GateSession(WSListener):
    def __init__(self, server: TinyGate) -> None:
        super().__init__()
        self.server = server
        self.transport: WSTransport | None = None
        self.requests: list[list[str]] = []  # payloads of the subscribe requests, in order
        self.subscribed: list[str] = []
        self.open = True
        self.base = self.seq = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.base = self.seq = 10**12 - len(self.server.sessions) * SEQ_STEP
        self.server.sessions.append(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.open = False

    def send(self, **frame: Any) -> None:
        assert self.transport is not None
        ms = time.time_ns() // 1_000_000
        frame = {"time": ms // 1000, "time_ms": ms, **frame}
        self.transport.send(WSMsgType.TEXT, json.dumps(frame).encode())

    def push(self, symbol: str, seq: int) -> None:
        ms = time.time_ns() // 1_000_000
        ticker = {"t": ms, "u": seq, "s": symbol, "b": "1.00", "B": "1", "a": "1.01", "A": "1"}
        self.send(channel="spot.book_ticker", event="update", result=ticker)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type is not WSMsgType.TEXT:
            return
        msg = json.loads(frame.get_payload_as_utf8_text())
        if msg.get("channel") == "spot.ping":
            self.send(channel="spot.pong", event="", error=None, result=None)
            return
        payload = msg["payload"]
        self.requests.append(payload)
        reply = {"id": msg["id"], "channel": "spot.book_ticker", "event": "subscribe"}
        unknown = [s for s in payload if s not in self.server.known]
        if unknown:  # this implementation refuses the whole request, naming the first culprit
            error = {"code": 2, "message": f"unknown currency pair {unknown[0]}"}
            self.send(**reply, error=error, result=None)
            return
        self.subscribed += [s for s in payload if s not in self.subscribed]
        self.send(**reply, error=None, result={"status": "success"})
        self.server.subscribed(self)


class TinyGate:
    """Gate's protocol, with two twists: a request naming an unknown pair is refused whole,
    and every connection numbers its updates lower than the one before (a venue that
    restarted its sequences). With ``straggle``, each new subscription is followed by one
    last update with a sky-high sequence on every older connection."""

    def __init__(self, known: Iterable[str], straggle: bool = False) -> None:
        self.known = set(known)
        self.straggle = straggle
        self.sessions: list[_GateSession] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    def subscribed(self, session: _GateSession) -> None:
        if self.straggle:
            for old in self.sessions:
                if old is not session and old.open:
                    for symbol in old.subscribed:
                        old.push(symbol, old.seq + SEQ_STEP // 2)

    async def _tick(self) -> None:
        while True:
            for session in self.sessions:
                if session.open:
                    for symbol in session.subscribed:
                        session.seq += 1
                        session.push(symbol, session.seq)
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> TinyGate:
        self._server = await ws_create_server(lambda _r: _GateSession(self), "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/ws/v4/"
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._ticker is not None and self._server is not None
        self._ticker.cancel()
        for session in self.sessions:
            if session.open and session.transport is not None:
                session.transport.disconnect(graceful=False)
        self._server.close()
        await self._server.wait_closed()


@asynccontextmanager
async def gate_feed(
    server: TinyGate, pairs: Sequence[Pair], settings: ConnectionSettings = FAST
) -> AsyncIterator[tuple[RecordingCache, FeedManager]]:
    cache = RecordingCache(["gateio"], pairs)
    manager = FeedManager(cache, {"gateio": (GateIO(), server.url)}, pairs, settings)
    await manager.start()
    try:
        yield cache, manager
    finally:
        await manager.stop()


async def test_whole_request_refused_over_a_bad_pair_is_asked_again_once() -> None:
    pairs = PAIRS[:5]
    symbols = [f"{q.base}_{q.quote}" for q in pairs]
    bad = {symbols[1], symbols[3]}
    async with TinyGate(set(symbols) - bad) as server, gate_feed(server, pairs) as (cache, manager):
        with capture_logs() as logs:
            assert await manager.wait_until_flowing(5.0)
            good = [i for i, s in enumerate(symbols) if s not in bad]
            await wait_until(lambda: cache.live[0, good].all(), what="good pairs live")
        assert set(manager.rejected["gateio"]) == bad
        assert manager.subscribed_channels() == 3
    # One resend per rejection, each without the pair just refused: never a loop.
    assert server.sessions[0].requests == [
        symbols,
        [s for s in symbols if s != symbols[1]],
        [s for s in symbols if s not in bad],
    ]
    assert len(events(logs, "resubscribing")) == 2


async def test_rotation_to_a_connection_with_restarted_sequences() -> None:
    pairs = PAIRS[:3]
    symbols = [f"{q.base}_{q.quote}" for q in pairs]
    settings = ConnectionSettings(
        silence_timeout=1.5, pong_timeout=0.5, subscribe_timeout=1.0, max_lifetime_override=0.5
    )
    async with (
        TinyGate(symbols, straggle=True) as server,
        gate_feed(server, pairs, settings) as (cache, manager),
    ):
        link = manager._feeds["gateio"].links[0].link
        assert link is not None
        await wait_until(lambda: link.rotations >= 2, what="two rotations")

        def fed_by_newest() -> bool:
            # every pair's latest accepted update came from the newest connection
            base = server.sessions[-1].base
            return bool(
                ((cache.sequence[0] > base) & (cache.sequence[0] < base + SEQ_STEP // 2)).all()
            )

        await wait_until(fed_by_newest, what="quotes of the newest connection accepted")
        assert cache.live[0].all() and cache.not_live == []
        assert cache.stats["gateio"].reconnects == 0
        # nothing was thrown away as stale: the restarted numbering was expected
        assert cache.stats["gateio"].dropped_stale == 0


class _OnePairPerLinkOkx(Okx):
    """OKX with one pair per connection and room for one connection attempt per 0.5 s (the
    gate's share of 2), so that its three links must take turns."""

    max_subscriptions_per_connection = 1
    connect_budget = ConnectBudget(attempts=2, per_seconds=0.5)


async def test_the_links_of_a_venue_share_its_connection_attempt_budget() -> None:
    pairs = PAIRS[:3]
    async with Simulator(pairs, rate_hz=10.0, seed=5, venues=["okx"]) as sim:
        cache = QuoteCache(["okx"], pairs)
        venues = {"okx": (_OnePairPerLinkOkx(), sim.urls["okx"])}
        manager = FeedManager(cache, venues, pairs, FAST)
        await manager.start()
        try:
            assert await manager.wait_until_flowing(5.0)
            opened = sorted(s.connected_at for s in sim.venues["okx"].sessions)
        finally:
            await manager.stop()
    assert len(opened) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(opened)]
    assert min(gaps) >= 0.45, f"connections opened {gaps} s apart"


async def test_a_venue_acking_each_symbol_is_subscribed_once_every_symbol_is_answered() -> None:
    """OKX answers each arg of a request on its own (an ack, or 60018 for an unknown
    instrument): the link counts as subscribed only once every arg was answered, so the
    rejection is known before the channels are counted."""
    pairs = PAIRS[:3]
    async with Simulator(pairs, rate_hz=10.0, seed=5, venues=["okx"]) as sim:
        sim.venues["okx"].reject(pairs[1])
        manager = FeedManager(
            QuoteCache(["okx"], pairs), {"okx": (Okx(), sim.urls["okx"])}, pairs, FAST
        )
        with capture_logs() as logs:
            await manager.start()
            try:
                await wait_until(
                    lambda: events(logs, "subscribed") and events(logs, "subscription_rejected"),
                    what="the subscription and the rejection",
                )
            finally:
                await manager.stop()
    order = [e["event"] for e in logs if e["event"] in ("subscribed", "subscription_rejected")]
    assert order == ["subscription_rejected", "subscribed"]
    assert events(logs, "subscribed")[0]["channels"] == 2
