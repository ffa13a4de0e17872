"""A tiny picows server on loopback and a recording link owner, for the connection tests."""

from __future__ import annotations

import asyncio
import random

from picows import WSListener, WSMsgType, WSTransport, ws_create_server

from data_collector.connection import ConnectionSettings, IntervalPing, Keepalive, Link
from data_collector.venues.base import ControlBudget

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


class _Session(WSListener):
    def __init__(self, server: Server) -> None:
        super().__init__()
        self.server = server
        self.transport: WSTransport | None = None
        self.received: list[str] = []
        #: (loop time, what) of every text and pong frame the client sent, for budget checks
        self.arrivals: list[tuple[float, str]] = []
        self.pongs: list[bytes] = []
        self.subs = 0
        self.subscribed = False
        self.overlapped = False  # another subscribed session was open when this one subscribed
        self.open = True

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.server.sessions.append(self)
        if self.server.mode == "drop":
            transport.disconnect(graceful=False)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:  # type: ignore[no-untyped-def]
        now = asyncio.get_running_loop().time()
        if frame.msg_type is WSMsgType.PONG:
            self.pongs.append(frame.get_payload_as_bytes())
            self.arrivals.append((now, "pong"))
            return
        if frame.msg_type is not WSMsgType.TEXT:
            return
        text = frame.get_payload_as_utf8_text()
        self.received.append(text)
        self.arrivals.append((now, text))
        if self.server.mode == "silent":
            return
        if text == "ping":
            transport.send(WSMsgType.TEXT, b"pong")
        elif text.startswith("sub") and self.server.sessions.index(self) < self.server.ack_sessions:
            self.subs += 1
            if self.subs < self.server.ack_after:
                return
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
        self.ack_after = 1  # a session acknowledges once it received this many subscribe texts
        self.url = ""
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self._server = await ws_create_server(lambda _req: _Session(self), "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/"
        return self.url

    def open_sessions(self) -> list[_Session]:
        return [s for s in self.sessions if s.open]

    def start_pinging(self, period: float) -> None:
        """Send a protocol ping (payload ``p<n>``) to every open session every ``period`` s, as
        Binance does every 20 s."""

        async def ping() -> None:
            n = 0
            while True:
                await asyncio.sleep(period)
                n += 1
                for s in self.open_sessions():
                    if s.transport is not None:
                        s.transport.send_ping(f"p{n}".encode())

        self._pinger = asyncio.get_running_loop().create_task(ping())

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
        for task in (self._ticker, self._pinger):
            if task is not None:
                task.cancel()
        for s in self.open_sessions():
            if s.transport is not None:
                s.transport.disconnect(graceful=False)
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class Recorder:
    """The link's owner: records callbacks, subscribes with ``subscribe`` texts (two)."""

    def __init__(self, subscribe: list[str] | None = None) -> None:
        self.subscribe = subscribe or ["sub-a", "sub-b"]
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
        return list(self.subscribe)

    def on_lost(self, link: Link, reason: str) -> None:
        self.lost.append(reason)


def make_link(
    url: str,
    rec: Recorder,
    settings: ConnectionSettings = FAST,
    ping: float = 0.2,
    keepalive: Keepalive | None = None,
    budget: ControlBudget | None = None,
) -> Link:
    """A link owned by ``rec``; it pings "ping" every ``ping`` seconds unless given another
    ``keepalive``; its control messages keep inside ``budget``."""
    return Link(
        "test-0",
        url,
        settings,
        keepalive=keepalive or IntervalPing(lambda _now: "ping", ping),
        lifetime=None,
        on_frame=rec.on_frame,
        on_connected=rec.on_connected,
        on_lost=rec.on_lost,
        budget=budget,
        rng=random.Random(3),
    )


def missing_pushes(rec: Recorder, last: int) -> list[int]:
    """Ticker pushes up to ``last`` (from the first one seen) that never reached the owner."""
    counters = {int(d) for _t, d, _n in rec.frames if d.isdigit()}
    return sorted(set(range(min(counters), last + 1)) - counters)


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` that fall within one ``window`` (sliding)."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most
