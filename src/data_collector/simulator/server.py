"""Venue-agnostic WebSocket server plumbing for the simulated exchanges.

A :class:`VenueServer` accepts picows connections, keeps one :class:`ClientSession` per client,
runs the push loop (every ~10 ms it sends the book-ticker updates that are due) and exposes the
fault-injection knobs the tests and benchmarks use. Everything a venue says on the wire lives in
its :class:`Personality` (``mexc.py``, ``gateio.py``).

Backpressure: a session whose transport asked us to pause writing (or whose write buffer is over
``max_write_buffer``) gets no new frames; the pairs it missed are remembered and their latest
quote is sent once it drains, so a slow client costs memory per pair, never per update.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_create_server,
)

from data_collector.pairs import Pair
from data_collector.simulator.market import Market

log = structlog.get_logger(__name__)

#: the push loop's period (seconds)
PUSH_INTERVAL = 0.01
#: how often idle/lifetime timeouts are checked (seconds)
HOUSEKEEPING_INTERVAL = 0.05
#: a session whose transport buffers more than this many bytes is skipped until it drains
DEFAULT_MAX_WRITE_BUFFER = 1 << 20
#: frames a flood sends before yielding to the event loop
_FLOOD_YIELD_EVERY = 1024


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Quote:
    """One top-of-book state as a venue pushes it. A side is missing when its fields are falsy."""

    __slots__ = ("ask", "ask_qty", "bid", "bid_qty", "sequence", "time_ms")

    def __init__(
        self,
        bid: str | None,
        bid_qty: str | None,
        ask: str | None,
        ask_qty: str | None,
        sequence: int,
        time_ms: int,
    ) -> None:
        self.bid = bid
        self.bid_qty = bid_qty
        self.ask = ask
        self.ask_qty = ask_qty
        self.sequence = sequence
        self.time_ms = time_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "bid": self.bid,
            "bid_qty": self.bid_qty,
            "ask": self.ask,
            "ask_qty": self.ask_qty,
            "sequence": self.sequence,
            "time_ms": self.time_ms,
        }


class ClientSession:
    """One client connection as the venue sees it."""

    __slots__ = (
        "_buffer_size",
        "_writable",
        "channels",
        "closed",
        "connected_at",
        "dirty",
        "frames_sent",
        "last_client_at",
        "last_push_at",
        "received",
        "state",
        "subscriptions",
        "transport",
        "unsubscribed_since",
        "write_paused",
    )

    def __init__(self, transport: WSTransport, now: float) -> None:
        self.transport = transport
        #: venue symbols this client is subscribed to ("BTCUSDT" / "BTC_USDT")
        self.subscriptions: set[str] = set()
        #: every text frame the client sent, in order
        self.received: list[str] = []
        self.connected_at = now
        #: pair index -> push keys (MEXC: channel names; Gate: [""])
        self.channels: dict[int, list[str]] = {}
        self.last_client_at = now
        self.last_push_at = now
        #: monotonic time since which the session holds no subscription (None: it holds some)
        self.unsubscribed_since: float | None = now
        self.frames_sent = 0
        self.write_paused = False
        #: pairs whose latest quote this session still has to receive (skipped under backpressure)
        self.dirty: set[int] = set()
        self.closed = False
        #: scratch space for the personality (e.g. message-rate window)
        self.state: dict[str, Any] = {}
        self._writable = asyncio.Event()
        self._writable.set()
        self._buffer_size: Callable[[], int] = transport.underlying_transport.get_write_buffer_size

    @property
    def channel_count(self) -> int:
        return sum(len(keys) for keys in self.channels.values())

    def send_text(self, text: str) -> None:
        self.transport.send(WSMsgType.TEXT, text.encode())
        self.frames_sent += 1

    def send_frame(self, msg_type: WSMsgType, payload: bytes) -> None:
        self.transport.send(msg_type, payload)
        self.frames_sent += 1

    def backlogged(self, limit: int) -> bool:
        return self.write_paused or self._buffer_size() > limit

    def close(self, code: WSCloseCode = WSCloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close politely: a close frame, then the TCP connection once the buffer drains."""
        self.transport.send_close(code, reason.encode() if reason else None)
        self.transport.disconnect()


class Personality(ABC):
    """What one venue says on the wire. Subclasses are stateless apart from their settings."""

    #: venue name, the key in ``Simulator.venues``
    name: str
    #: URL path clients connect to
    path: str
    #: WebSocket frame type of book-ticker pushes
    push_type: WSMsgType

    def __init__(
        self,
        *,
        no_subscription_timeout: float | None,
        idle_timeout: float | None,
        max_lifetime: float | None,
    ) -> None:
        #: close sessions holding no subscription for this long (None: never)
        self.no_subscription_timeout = no_subscription_timeout
        #: close sessions with no traffic in either direction for this long (None: never)
        self.idle_timeout = idle_timeout
        #: close sessions older than this (None: never)
        self.max_lifetime = max_lifetime

    def accepts_path(self, path: str) -> bool:
        return path.rstrip("/") == self.path.rstrip("/")

    @abstractmethod
    def symbol(self, pair: Pair) -> str:
        """The venue's symbol for ``pair``."""

    @abstractmethod
    def first_sequence(self, symbol: str, rng: random.Random) -> int:
        """Where the pair's update sequence starts."""

    @abstractmethod
    def next_sequence(self, sequence: int, rng: random.Random) -> int:
        """The sequence after ``sequence`` (strictly greater)."""

    @abstractmethod
    def encode_push(self, key: str, symbol: str, quote: Quote) -> bytes:
        """The payload of one book-ticker push for subscription ``key``."""

    @abstractmethod
    def on_text(self, server: VenueServer, session: ClientSession, text: str, now: float) -> None:
        """Handle one text frame from a client (subscribe, ping, ...)."""

    @abstractmethod
    def garbage_frames(self) -> list[tuple[WSMsgType, bytes]]:
        """Well-formed WebSocket frames whose content the venue's clients cannot decode."""

    def upgrade_message(self) -> str:
        """The venue's "close and reconnect" notice."""
        raise NotImplementedError(f"{self.name} has no upgrade notice")


class _Listener(WSListener):
    """Routes picows callbacks of one connection to its VenueServer."""

    def __init__(self, server: VenueServer) -> None:
        self._server = server
        self._session: ClientSession | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._session = self._server._on_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self._session is not None:
            self._server._on_frame(self._session, frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._session is not None:
            self._server._on_disconnected(self._session)

    def pause_writing(self) -> None:
        if self._session is not None:
            self._session.write_paused = True
            self._session._writable.clear()

    def resume_writing(self) -> None:
        if self._session is not None:
            self._session.write_paused = False
            self._session._writable.set()


class VenueServer:
    """A simulated venue: one listening socket, its sessions and its view of the market."""

    def __init__(
        self,
        personality: Personality,
        market: Market,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_hz: float = 5.0,
        seed: int = 1,
        max_write_buffer: int = DEFAULT_MAX_WRITE_BUFFER,
    ) -> None:
        self.personality = personality
        self.name = personality.name
        self.market = market
        self.host = host
        self.port = port
        #: per-pair update rate of the random walk (settable at any time)
        self.rate_hz = rate_hz
        self.max_write_buffer = max_write_buffer
        self.sessions: list[ClientSession] = []
        self.total_connections = 0
        self.updates_sent = 0
        self.skipped_backpressure = 0
        self.malformed_messages = 0
        self._rng = random.Random(f"{seed}:{self.name}")
        self._symbols = [personality.symbol(pair) for pair in market.pairs]
        self._by_symbol = {symbol: i for i, symbol in enumerate(self._symbols)}
        count = len(self._symbols)
        # a persistent per-venue skew keeps cross-venue spreads non-zero but far below 0.5%
        self._bias = [self._rng.uniform(-1e-4, 1e-4) for _ in range(count)]
        self._sequence = [personality.first_sequence(s, self._rng) for s in self._symbols]
        self._last: list[Quote | None] = [None] * count
        self._subscribers: list[set[ClientSession]] = [set() for _ in range(count)]
        self._held: set[int] = set()
        self._rejected: set[int] = set()
        self._paused = False
        self._flooding = False
        self._flood_stop = False
        self._stalled_until = 0.0
        self._credit = 0.0
        self._cursor = 0
        self._garbage_cursor = 0
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.personality.path}"

    async def start(self) -> None:
        self._server = await ws_create_server(
            self._listener_for,
            self.host,
            self.port,
            enable_auto_pong=False,  # we answer pings ourselves so stall() can withhold them
            logger_name=f"simulator.{self.name}",
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self._run(), name=f"simulator-{self.name}")
        log.info(
            "simulator_venue_started",
            venue=self.name,
            url=self.url,
            pairs=len(self._symbols),
            summary=f"simulated {self.name} serving {len(self._symbols)} pairs at {self.url}",
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._server is not None:
            self._server.close()
            for session in tuple(self.sessions):
                if session.backlogged(self.max_write_buffer):
                    session.transport.disconnect(graceful=False)  # it would never drain
                else:
                    session.close(WSCloseCode.GOING_AWAY)
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except TimeoutError:
                log.warning("simulator_close_slow", venue=self.name)
            self._server = None
        log.info(
            "simulator_venue_stopped", venue=self.name, summary=f"simulated {self.name} stopped"
        )

    def _listener_for(self, request: WSUpgradeRequest) -> WSListener | None:
        path = request.path.decode("latin-1").partition("?")[0]
        return _Listener(self) if self.personality.accepts_path(path) else None

    # ------------------------------------------------------------ connection events

    def _on_connected(self, transport: WSTransport) -> ClientSession:
        session = ClientSession(transport, time.monotonic())
        self.sessions.append(session)
        self.total_connections += 1
        self._notify()
        log.debug("simulator_client_connected", venue=self.name, sessions=len(self.sessions))
        return session

    def _on_disconnected(self, session: ClientSession) -> None:
        session.closed = True
        session._writable.set()  # wake a flood waiting on this session
        for idx in session.channels:
            self._subscribers[idx].discard(session)
        if session in self.sessions:
            self.sessions.remove(session)
        self._notify()
        log.debug("simulator_client_disconnected", venue=self.name, sessions=len(self.sessions))

    def _on_frame(self, session: ClientSession, frame: WSFrame) -> None:
        now = time.monotonic()
        session.last_client_at = now
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT:
            try:
                text = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                self.count_malformed("invalid_utf8")
                return
            session.received.append(text)
            if now < self._stalled_until:
                return
            try:
                self.personality.on_text(self, session, text, now)
            except Exception:  # a bug in a personality must not kill the connection
                self.malformed_messages += 1
                log.exception("simulator_handler_failed", venue=self.name)
        elif msg_type == WSMsgType.PING:
            if now >= self._stalled_until:
                session.transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.CLOSE:
            session.transport.send_close(frame.get_close_code())
            session.transport.disconnect()

    def count_malformed(self, reason: str) -> None:
        self.malformed_messages += 1
        log.info("simulator_malformed_client_message", venue=self.name, reason=reason)

    def _notify(self) -> None:
        self._changed.set()

    # ---------------------------------------------------- API for personalities

    def pair_index(self, symbol: str) -> int | None:
        return self._by_symbol.get(symbol)

    def symbol_of(self, idx: int) -> str:
        return self._symbols[idx]

    def is_rejected(self, idx: int) -> bool:
        return idx in self._rejected

    def subscribe(self, session: ClientSession, idx: int, key: str) -> None:
        """Record a subscription; a held pair's quote follows on the next push tick."""
        keys = session.channels.setdefault(idx, [])
        if key in keys:
            return
        keys.append(key)
        session.subscriptions.add(self._symbols[idx])
        session.unsubscribed_since = None
        self._subscribers[idx].add(session)
        if idx in self._held and self._last[idx] is not None:
            session.dirty.add(idx)  # the walk will not push it, so replay it once
        self._notify()

    def unsubscribe(self, session: ClientSession, idx: int, key: str) -> None:
        keys = session.channels.get(idx)
        if not keys or key not in keys:
            return
        keys.remove(key)
        if not keys:
            del session.channels[idx]
            session.subscriptions.discard(self._symbols[idx])
            session.dirty.discard(idx)
            self._subscribers[idx].discard(session)
        if not session.channels:
            session.unsubscribed_since = time.monotonic()
        self._notify()

    # -------------------------------------------------------------- push loop

    async def _run(self) -> None:
        last = time.monotonic()
        next_housekeeping = last
        while True:
            await asyncio.sleep(PUSH_INTERVAL)
            now = time.monotonic()
            elapsed, last = now - last, now
            try:
                self._tick(now, elapsed, next_housekeeping)
            except Exception:  # keep serving: one bad tick must not end the simulation
                log.exception("simulator_tick_failed", venue=self.name)
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_INTERVAL

    def _tick(self, now: float, elapsed: float, next_housekeeping: float) -> None:
        if now < self._stalled_until:
            self._credit = 0.0
            return
        if now >= next_housekeeping:
            self._housekeeping(now)
        if self._flooding:
            self._credit = 0.0
            return
        self._flush_dirty(now)
        if self._paused:
            self._credit = 0.0
            return
        self._random_walk(now, elapsed)

    def _housekeeping(self, now: float) -> None:
        for session in tuple(self.sessions):
            reason = self._expiry_reason(session, now)
            if reason:
                self.close_session(session, reason)

    def _expiry_reason(self, session: ClientSession, now: float) -> str:
        """Why the venue would drop ``session`` now ("" if it would not)."""
        p = self.personality
        since = session.unsubscribed_since
        no_sub = p.no_subscription_timeout
        if no_sub is not None and since is not None and now - since >= no_sub:
            return "no_subscription"
        last_traffic = max(session.last_client_at, session.last_push_at)
        if p.idle_timeout is not None and now - last_traffic >= p.idle_timeout:
            return "idle"
        if p.max_lifetime is not None and now - session.connected_at >= p.max_lifetime:
            return "lifetime"
        return ""

    def close_session(self, session: ClientSession, reason: str) -> None:
        log.info("simulator_closing_session", venue=self.name, reason=reason)
        session.close(WSCloseCode.GOING_AWAY, reason)

    def _random_walk(self, now: float, elapsed: float) -> None:
        count = len(self._symbols)
        if count == 0:
            return
        wanted = count * self.rate_hz
        # cap the credit so a late tick (GC, loaded CI box) cannot trigger a huge burst
        credit = min(self._credit + wanted * elapsed, max(count, wanted * 0.02))
        due = int(credit)
        self._credit = credit - due
        if due == 0:
            return
        stamp = now_ms()
        subscribers, held = self._subscribers, self._held
        cursor = self._cursor
        for _ in range(due):
            idx = cursor
            cursor = idx + 1 if idx + 1 < count else 0
            if subscribers[idx] and idx not in held:
                self._publish(idx, self._walk(idx, stamp, now), now)
        self._cursor = cursor

    def _walk(self, idx: int, stamp: int, now: float) -> Quote:
        bias = self._bias[idx] + (self._rng.random() - 0.5) * 4e-5
        bid, bid_qty, ask, ask_qty = self.market.quote(idx, self._rng, bias=bias, now=now)
        return Quote(bid, bid_qty, ask, ask_qty, self._next_sequence(idx), stamp)

    def _next_sequence(self, idx: int) -> int:
        sequence = self.personality.next_sequence(self._sequence[idx], self._rng)
        self._sequence[idx] = sequence
        return sequence

    def _publish(self, idx: int, quote: Quote, now: float, *, record: bool = True) -> None:
        if record:
            self._last[idx] = quote
        subscribers = self._subscribers[idx]
        if not subscribers:
            return
        encoded: dict[str, bytes] = {}
        for session in tuple(subscribers):
            self._push_to(session, idx, quote, encoded, now)

    def _push_to(
        self, session: ClientSession, idx: int, quote: Quote, encoded: dict[str, bytes], now: float
    ) -> None:
        if session.backlogged(self.max_write_buffer):
            session.dirty.add(idx)  # coalesce: it gets the latest quote once it drains
            self.skipped_backpressure += 1
            return
        if session.dirty:
            session.dirty.discard(idx)
        keys = session.channels[idx]
        for key in keys:
            frame = encoded.get(key)
            if frame is None:
                frame = self.personality.encode_push(key, self._symbols[idx], quote)
                encoded[key] = frame
            session.transport.send(self.personality.push_type, frame)
        session.frames_sent += len(keys)
        session.last_push_at = now
        self.updates_sent += len(keys)

    def _flush_dirty(self, now: float) -> None:
        for session in self.sessions:
            if not session.dirty or session.backlogged(self.max_write_buffer):
                continue
            for idx in tuple(session.dirty):
                quote = self._last[idx]
                if quote is None or idx not in session.channels:
                    session.dirty.discard(idx)
                else:
                    self._push_to(session, idx, quote, {}, now)

    # ------------------------------------------------------------ public controls

    def _index(self, pair: Pair) -> int:
        try:
            return self.market.index(pair)
        except KeyError:
            raise KeyError(f"{pair} is not one of the simulator's pairs") from None

    def set_quote(
        self,
        pair: Pair,
        bid: str | None,
        bid_qty: str | None,
        ask: str | None,
        ask_qty: str | None,
        *,
        hold: bool = True,
    ) -> None:
        """Push this exact quote now; with ``hold`` the random walk leaves the pair alone.

        Strings go out verbatim. MEXC omits empty/None fields (proto3); Gate omits None fields
        and sends "" as "". During a stall the quote is delivered when the stall ends.
        """
        idx = self._index(pair)
        quote = Quote(bid, bid_qty, ask, ask_qty, self._next_sequence(idx), now_ms())
        if hold:
            self._held.add(idx)
        else:
            self._held.discard(idx)
        now = time.monotonic()
        if now < self._stalled_until:
            self._last[idx] = quote
            for session in self._subscribers[idx]:
                session.dirty.add(idx)
        else:
            self._publish(idx, quote, now)

    def release(self, pair: Pair) -> None:
        """Let the random walk move ``pair`` again."""
        self._held.discard(self._index(pair))

    def pause(self) -> None:
        """Stop random-walk pushes for all pairs (control messages are still answered)."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def disconnect_all(self) -> None:
        """Abort every client's TCP connection: no close frame, no flush."""
        log.info("simulator_disconnect_all", venue=self.name, sessions=len(self.sessions))
        for session in tuple(self.sessions):
            session.transport.disconnect(graceful=False)

    def stall(self, seconds: float) -> None:
        """Go silent for ``seconds``: no pushes, no replies, no pongs; TCP stays open."""
        self._stalled_until = time.monotonic() + seconds
        log.info("simulator_stall", venue=self.name, seconds=seconds)

    @property
    def stalled(self) -> bool:
        return time.monotonic() < self._stalled_until

    def send_garbage(self, count: int = 1) -> None:
        """Send ``count`` undecodable frames to every session (also during a stall)."""
        frames = self.personality.garbage_frames()
        for session in self.sessions:
            for k in range(count):
                msg_type, payload = frames[(self._garbage_cursor + k) % len(frames)]
                session.send_frame(msg_type, payload)
        self._garbage_cursor += count

    def send_out_of_order(self, pair: Pair) -> None:
        """Push a fresh-looking quote for ``pair`` whose sequence is below the last one sent."""
        idx = self._index(pair)
        sequence = max(1, self._sequence[idx] - self._rng.randint(1, 5))
        bid, bid_qty, ask, ask_qty = self.market.quote(idx, self._rng, bias=self._bias[idx])
        stale = Quote(bid, bid_qty, ask, ask_qty, sequence, now_ms())
        self._publish(idx, stale, time.monotonic(), record=False)

    def reject(self, pair: Pair) -> None:
        """Refuse future subscriptions of ``pair`` the venue's way."""
        self._rejected.add(self._index(pair))

    def send_upgrade(self) -> None:
        """Gate only: ask every client to reconnect (``"event":"upgrade"``)."""
        text = self.personality.upgrade_message()
        for session in self.sessions:
            session.send_text(text)

    def last_sent(self, pair: Pair) -> dict[str, Any] | None:
        """The last quote pushed (or held) for ``pair``; ``time_ms`` is the venue's event time
        (MEXC ``sendTime``, Gate ``t``)."""
        quote = self._last[self._index(pair)]
        return None if quote is None else quote.as_dict()

    @property
    def subscription_count(self) -> int:
        return sum(len(session.subscriptions) for session in self.sessions)

    async def wait_for_subscriptions(self, n: int, timeout: float = 5.0) -> None:
        await self._wait_until(lambda: self.subscription_count >= n, timeout, f"{n} subscriptions")

    async def wait_for_sessions(self, n: int, timeout: float = 5.0) -> None:
        await self._wait_until(lambda: len(self.sessions) >= n, timeout, f"{n} sessions")

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()  # clear before checking so no change can slip between
            if predicate():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.name}: no {what} within {timeout} s (sessions={len(self.sessions)}, "
                    f"subscriptions={self.subscription_count})"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # ------------------------------------------------------------------ flood

    async def flood(
        self,
        frames: int | None = None,
        *,
        pairs: Sequence[Pair] | None = None,
        chunk: int = 4096,
    ) -> int:
        """Push book-ticker updates to every subscribed session as fast as it reads them.

        ``frames`` updates are generated round-robin over ``pairs`` (default: every pair some
        session subscribes to), with rising sequences, and encoded before sending starts, so
        the sending rate measures the client, not our encoder. ``frames=None`` keeps going in
        chunks of ``chunk`` (encoded between chunks) until :meth:`stop_flood`. A session gets
        the updates of the pairs it subscribes to; sending waits whenever its transport asks
        to pause writing. The random walk is paused meanwhile. Returns frames sent, summed
        over sessions.
        """
        if pairs is not None:
            indices = [self._index(pair) for pair in pairs]
        else:
            indices = [i for i, subscribers in enumerate(self._subscribers) if subscribers]
        if not indices:
            return 0
        self._flooding, self._flood_stop = True, False
        total = 0
        remaining = frames
        try:
            while not self._flood_stop and (remaining is None or remaining > 0):
                size = chunk if remaining is None else remaining
                total += await self._flood_send(self._flood_batch(indices, size))
                if remaining is not None:
                    remaining -= size
        finally:
            self._flooding = False
        return total

    def stop_flood(self) -> None:
        """End a running :meth:`flood` after the frame it is sending."""
        self._flood_stop = True

    def _flood_batch(self, indices: list[int], size: int) -> list[tuple[int, Quote]]:
        stamp, now = now_ms(), time.monotonic()
        batch: list[tuple[int, Quote]] = []
        for k in range(size):
            idx = indices[k % len(indices)]
            batch.append((idx, self._walk(idx, stamp, now)))
        for idx, quote in batch[-len(indices) :]:
            self._last[idx] = quote
        return batch

    async def _flood_send(self, batch: list[tuple[int, Quote]]) -> int:
        encode = self.personality.encode_push
        symbols = self._symbols
        jobs = []
        for session in tuple(self.sessions):
            channels = session.channels
            payloads = [
                encode(key, symbols[idx], quote)
                for idx, quote in batch
                for key in channels.get(idx, ())
            ]
            if payloads:
                jobs.append(self._drain_into(session, payloads))
        return sum(await asyncio.gather(*jobs))

    async def _drain_into(self, session: ClientSession, payloads: list[bytes]) -> int:
        send, msg_type = session.transport.send, self.personality.push_type
        sent = 0
        for payload in payloads:
            if session.write_paused:
                await session._writable.wait()
            if session.closed or self._flood_stop:
                break
            send(msg_type, payload)
            sent += 1
            if sent % _FLOOD_YIELD_EVERY == 0:
                await asyncio.sleep(0)
        session.frames_sent += sent
        session.last_push_at = time.monotonic()
        self.updates_sent += sent
        return sent
