"""Link behaviour against a tiny picows server on loopback: subscribe, keepalive, watchdogs,
reconnect backoff and its per-minute cap, rotation (scheduled or requested) without a gap,
takeover reporting, crash recovery, clean close."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from picows import WSListener, WSMsgType, WSTransport, ws_create_server
from structlog.testing import capture_logs

from data_collector.connection import (
    AttemptLimiter,
    ConnectionSettings,
    Link,
    backoff_delay,
    rotation_after,
)
from tests.conftest import wait_until

FAST = ConnectionSettings(
    silence_timeout=1.0,
    pong_timeout=0.5,
    reconnect_initial_delay=0.02,
    reconnect_max_delay=0.1,
    max_reconnects_per_minute=50,
)

#: near-zero backoff and a cap of 4 attempts a minute: a flapping server hits the cap at once
STORM = ConnectionSettings(
    silence_timeout=1.0,
    pong_timeout=0.5,
    reconnect_initial_delay=0.001,
    reconnect_max_delay=0.005,
    max_reconnects_per_minute=4,
)


# --- pure parts ------------------------------------------------------------------------------


def test_backoff_has_full_jitter_within_capped_bounds() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(5.0, 0.1 * 2**attempt)
        samples = [backoff_delay(attempt, 0.1, 5.0, rng) for _ in range(400)]
        assert all(0.0 <= s <= ceiling for s in samples)
        # full jitter: spread over the whole [0, ceiling] range, not clustered at the top
        assert min(samples) < 0.1 * ceiling
        assert max(samples) > 0.9 * ceiling
    assert backoff_delay(100_000, 0.1, 5.0, rng) <= 5.0  # no float overflow


def test_attempt_limiter_slides_over_one_minute() -> None:
    lim = AttemptLimiter(3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        assert lim.wait_time(t) == 0.0
        lim.record(t)
    assert lim.wait_time(10.0) == pytest.approx(50.0)  # oldest attempt leaves at t=60
    assert lim.wait_time(60.0) == 0.0
    lim.record(60.0)
    assert lim.wait_time(60.5) == pytest.approx(0.5)  # t=1 leaves at 61
    assert AttemptLimiter(0).limit == 1  # never unlimited


def test_rotation_after() -> None:
    s = ConnectionSettings(rotation_margin=600.0)
    assert rotation_after(86400.0, s) == 85800.0
    assert rotation_after(None, s) is None
    assert rotation_after(900.0, s) == 450.0  # margin beyond half the lifetime: half
    assert rotation_after(None, ConnectionSettings(max_lifetime_override=2.0)) == 2.0


# --- a tiny server -----------------------------------------------------------------------------


class _Session(WSListener):
    def __init__(self, server: Server) -> None:
        super().__init__()
        self.server = server
        self.transport: WSTransport | None = None
        self.received: list[str] = []
        self.subscribed = False
        self.overlapped = False  # another subscribed session was open when this one subscribed
        self.open = True

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.server.sessions.append(self)
        if self.server.mode == "drop":
            transport.disconnect(graceful=False)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:  # type: ignore[no-untyped-def]
        if frame.msg_type is not WSMsgType.TEXT:
            return
        text = frame.get_payload_as_utf8_text()
        self.received.append(text)
        if self.server.mode == "silent":
            return
        if text == "ping":
            transport.send(WSMsgType.TEXT, b"pong")
        elif text.startswith("sub") and self.server.sessions.index(self) < self.server.ack_sessions:
            others = (o for o in self.server.sessions if o is not self)
            self.overlapped = any(o.open and o.subscribed for o in others)
            self.subscribed = True
            transport.send(WSMsgType.TEXT, b"ack:" + text.encode())

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.open = False


class Server:
    """mode: "echo" (answers ping/sub), "silent" (answers nothing), "drop" (aborts at once)."""

    def __init__(self, mode: str = "echo") -> None:
        self.mode = mode
        self.sessions: list[_Session] = []
        self.pushed = 0
        self.ack_sessions = 1_000_000  # sessions after the first this many get no subscribe ack
        self.url = ""
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self._server = await ws_create_server(lambda _req: _Session(self), "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/"
        return self.url

    def open_sessions(self) -> list[_Session]:
        return [s for s in self.sessions if s.open]

    def start_ticker(self, period: float = 0.005) -> None:
        """Broadcast a rising counter to every subscribed session, like a venue's pushes."""

        async def tick() -> None:
            while True:
                self.pushed += 1
                payload = str(self.pushed).encode()
                for s in self.open_sessions():
                    if s.subscribed and s.transport is not None:
                        s.transport.send(WSMsgType.BINARY, payload)
                await asyncio.sleep(period)

        self._ticker = asyncio.get_running_loop().create_task(tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for s in self.open_sessions():
            if s.transport is not None:
                s.transport.disconnect(graceful=False)
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class Recorder:
    """The link's owner: records callbacks, subscribes with two texts."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes, int]] = []
        self.lost: list[str] = []
        self.connected = 0
        self.takeovers: list[int] = []  # transports transport_ready() reported as taking over

    def on_frame(self, link: Link, tid: int, data: bytes, receive_ns: int) -> None:
        self.frames.append((tid, data, receive_ns))
        if data.startswith(b"ack:") and link.transport_ready(tid):
            self.takeovers.append(tid)

    def on_connected(self, link: Link) -> list[str]:
        self.connected += 1
        return ["sub-a", "sub-b"]

    def on_lost(self, link: Link, reason: str) -> None:
        self.lost.append(reason)


def make_link(
    url: str, rec: Recorder, settings: ConnectionSettings = FAST, ping: float = 0.2
) -> Link:
    return Link(
        "test-0",
        url,
        settings,
        ping_message=lambda _now: "ping",
        ping_interval=ping,
        lifetime=None,
        on_frame=rec.on_frame,
        on_connected=rec.on_connected,
        on_lost=rec.on_lost,
        rng=random.Random(3),
    )


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[Server]:
    srv = Server()
    await srv.start()
    yield srv
    await srv.stop()


# --- integration ----------------------------------------------------------------------------


async def test_subscribes_delivers_frames_and_pings(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    link.start()
    try:
        await wait_until(lambda: len(rec.frames) >= 2, what="two acks")
        session = server.sessions[0]
        assert session.received[:2] == ["sub-a", "sub-b"]
        tid, data, receive_ns = rec.frames[0]
        assert tid == link.current_id and data == b"ack:sub-a"
        assert abs(receive_ns - time.time_ns()) < 2e9
        await wait_until(lambda: session.received.count("ping") >= 2, what="keepalive pings")
        assert link.is_up and rec.lost == []
    finally:
        await link.close()
    await wait_until(lambda: not server.open_sessions(), what="server sees the close")
    assert not link.is_up


async def test_reconnects_and_resubscribes_after_abrupt_drop(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    link.start()
    try:
        await wait_until(lambda: server.sessions and server.sessions[0].subscribed)
        first = link.current_id
        assert server.sessions[0].transport is not None
        server.sessions[0].transport.disconnect(graceful=False)
        await wait_until(lambda: len(server.sessions) == 2 and server.sessions[1].subscribed)
        assert server.sessions[1].received[:2] == ["sub-a", "sub-b"]
        assert rec.lost == ["disconnected"]
        assert link.reconnects == 1
        await wait_until(lambda: link.is_up and link.current_id != first)
    finally:
        await link.close()


async def test_silent_server_is_detected_and_replaced(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    link = make_link(server.url, rec)
    t0 = time.monotonic()
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="stall detection")
        # ping after 0.2 s, no answer within pong_timeout 0.5 s
        assert rec.lost[0] == "pong_timeout"
        assert time.monotonic() - t0 < FAST.silence_timeout + 0.5
        await wait_until(lambda: len(server.sessions) >= 2, what="reconnect")
    finally:
        await link.close()


async def test_silence_timeout_without_pings(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    # the pong deadline (5 s) lies beyond the silence deadline (1 s): silence must fire first
    settings = ConnectionSettings(silence_timeout=1.0, pong_timeout=5.0)
    link = make_link(server.url, rec, settings, ping=60.0)
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="silence detection")
        assert rec.lost[0] == "silence"
        # a quiet link pings at least twice per silence period, whatever the venue's interval
        assert server.sessions[0].received.count("ping") >= 1
    finally:
        await link.close()


async def test_attempts_per_minute_cap_stops_a_reconnect_storm(server: Server) -> None:
    server.mode = "drop"
    rec = Recorder()
    link = make_link(server.url, rec, STORM)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(
                lambda: any(e["event"] == "reconnect_throttled" for e in logs), what="throttle"
            )
            assert len(server.sessions) == 4
            throttled = next(e for e in logs if e["event"] == "reconnect_throttled")
            assert 50.0 < throttled["wait"] <= 60.0
            scheduled = [e for e in logs if e["event"] == "reconnect_scheduled"]
            assert all(0.0 <= e["delay"] <= 0.005 for e in scheduled)
            assert [e["attempt"] for e in scheduled] == list(range(1, len(scheduled) + 1))
        finally:
            await link.close()
    assert len(server.sessions) == 4


async def test_request_reconnect_closes_and_reconnects(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    link.start()
    try:
        await wait_until(lambda: server.sessions and server.sessions[0].subscribed)
        link.request_reconnect("upgrade")
        await wait_until(lambda: len(server.sessions) == 2 and server.sessions[1].subscribed)
        assert rec.lost == ["upgrade"]
        await wait_until(lambda: not server.sessions[0].open, what="old session closed")
    finally:
        await link.close()


async def test_rotation_overlaps_and_loses_nothing(server: Server) -> None:
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=1.0, pong_timeout=0.5, max_lifetime_override=0.4)
    link = make_link(server.url, rec, settings)
    server.start_ticker()
    link.start()
    try:
        await wait_until(lambda: link.rotations >= 2, what="two rotations")
        last = server.pushed
        await wait_until(lambda: any(d == str(last).encode() for _t, d, _n in rec.frames))
    finally:
        await link.close()
    assert len(server.sessions) >= 3
    assert all(s.overlapped for s in server.sessions[1:])  # replacement up before old closed
    assert rec.lost == []  # an orderly rotation is not a loss
    assert len({tid for tid, _d, _n in rec.frames}) >= 3
    counters = {int(d) for _t, d, _n in rec.frames if d.isdigit()}
    first = min(counters)
    missing = set(range(first, last + 1)) - counters
    assert not missing, f"lost pushes during rotation: {sorted(missing)[:10]}"


def missing_pushes(rec: Recorder, last: int) -> list[int]:
    """Ticker pushes up to ``last`` (from the first one seen) that never reached the owner."""
    counters = {int(d) for _t, d, _n in rec.frames if d.isdigit()}
    return sorted(set(range(min(counters), last + 1)) - counters)


async def test_requested_rotation_is_make_before_break(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    server.start_ticker()
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: len(rec.takeovers) == 1, what="first transport confirmed")
            first = link.current_id
            assert rec.takeovers == [first]
            link.request_rotation("upgrade")
            await wait_until(lambda: link.rotations == 1, what="rotation")
            second = link.current_id
            assert second != first and rec.takeovers == [first, second]
            await wait_until(lambda: not server.sessions[0].open, what="old session closed")
            last = server.pushed
            await wait_until(lambda: any(d == str(last).encode() for _t, d, _n in rec.frames))
        finally:
            await link.close()
    assert server.sessions[1].overlapped  # the new one was subscribed before the old closed
    assert rec.lost == [] and link.reconnects == 0
    assert not any(e["event"] == "reconnect_scheduled" for e in logs)  # no backoff
    assert not missing_pushes(rec, last)
    assert link.transport_ready(second) is False  # a repeated confirmation is no takeover


async def test_late_frames_of_a_retired_transport_are_dropped(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    link.start()
    try:
        await wait_until(lambda: rec.takeovers, what="first transport confirmed")
        old = next(iter(link._all))  # the listener of the first transport
        link.request_rotation("test")
        await wait_until(lambda: link.rotations == 1, what="rotation")
        n = len(rec.frames)
        old._deliver(b"late")  # what picows would hand over if a frame was still buffered
        assert len(rec.frames) == n and link.stray_frames == 1
    finally:
        await link.close()


async def test_rotation_requested_of_the_replacement_retries_it(server: Server) -> None:
    server.ack_sessions = 1  # the replacement never confirms: it stays the replacement
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=2.0)
    link = make_link(server.url, rec, settings)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: rec.takeovers, what="first transport confirmed")
            link.request_rotation("upgrade")
            await wait_until(lambda: link.replacement_id, what="a replacement")
            link.request_rotation("upgrade", link.replacement_id)
            await wait_until(lambda: any(e["event"] == "rotation_failed" for e in logs))
            assert link.rotations == 0 and rec.lost == [] and link.is_up
        finally:
            await link.close()


class Crashing(Recorder):
    """An owner whose on_lost has a bug (raises) the first ``times`` times."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def on_lost(self, link: Link, reason: str) -> None:
        super().on_lost(link, reason)
        if len(self.lost) <= self.times:
            raise RuntimeError("bug in on_lost")


async def test_crashed_supervisor_is_logged_and_restarted(server: Server) -> None:
    rec = Crashing(times=1)
    link = make_link(server.url, rec)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: server.sessions and server.sessions[0].subscribed)
            assert server.sessions[0].transport is not None
            server.sessions[0].transport.disconnect(graceful=False)
            await wait_until(lambda: len(server.sessions) == 2 and server.sessions[1].subscribed)
            await wait_until(lambda: link.is_up, what="link up again")
        finally:
            await asyncio.wait_for(link.close(), 2.0)
    crashed = [e for e in logs if e["event"] == "link_crashed"]
    assert len(crashed) == 1 and crashed[0]["log_level"] == "error"
    assert isinstance(crashed[0]["exc_info"], RuntimeError)
    assert link.reconnects == 1


async def test_crash_restarts_obey_the_attempt_cap(server: Server) -> None:
    server.mode = "drop"
    rec = Crashing(times=1_000_000)
    link = make_link(server.url, rec, STORM)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(
                lambda: any(e["event"] == "reconnect_throttled" for e in logs), what="throttle"
            )
        finally:
            await link.close()
    assert len(server.sessions) == 4
    assert sum(e["event"] == "link_crashed" for e in logs) >= 3


async def test_close_while_connecting_to_a_dead_port() -> None:
    srv = Server()
    url = await srv.start()
    await srv.stop()  # nothing listens there any more: every attempt is refused
    rec = Recorder()
    link = make_link(url, rec)
    with capture_logs() as logs:
        link.start()
        await wait_until(lambda: any(e["event"] == "connection_failed" for e in logs))
        await asyncio.wait_for(link.close(), 2.0)
    assert rec.connected == 0 and not link.is_up


async def test_unconfirmed_transport_is_replaced_after_subscribe_timeout(server: Server) -> None:
    server.ack_sessions = 0  # pings answered, subscriptions silently ignored
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=0.4)
    link = make_link(server.url, rec, settings)
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="subscribe timeout")
        assert rec.lost[0] == "subscribe_timeout"
        await wait_until(lambda: len(server.sessions) >= 2, what="a fresh attempt")
    finally:
        await link.close()


async def test_unready_replacement_takes_over_after_timeout(server: Server) -> None:
    server.ack_sessions = 1  # only the first session is ever acknowledged
    rec = Recorder()
    settings = ConnectionSettings(
        silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=0.3, max_lifetime_override=0.3
    )
    link = make_link(server.url, rec, settings)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: link.rotations >= 1, what="rotation on timeout")
            rotated = next(e for e in logs if e["event"] == "connection_rotated")
            assert rotated["ready"] is False
            assert rec.lost == []  # the old one was closed in order, not lost
            # the unconfirmed transport now carries the pairs and gets its own deadline
            await wait_until(lambda: rec.lost, what="subscribe timeout after takeover")
            assert rec.lost == ["subscribe_timeout"]
        finally:
            await link.close()
