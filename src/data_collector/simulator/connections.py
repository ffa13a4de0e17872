"""The clients of one simulated venue: their connections, their frames, their subscriptions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest

from data_collector.simulator.book import VenueBook
from data_collector.simulator.session import ClientSession

log = structlog.get_logger(__name__)


def close_session(venue: str, session: ClientSession, reason: str) -> None:
    """Close ``session`` the way a venue drops a client: a close frame naming ``reason``."""
    log.info(
        "simulator_closing_session",
        venue=venue,
        reason=reason,
        summary=f"simulated {venue} closes a client connection ({reason})",
    )
    session.close(WSCloseCode.GOING_AWAY, reason)


class _Listener(WSListener):
    """Routes picows callbacks of one connection to its venue's Connections."""

    def __init__(self, connections: Connections, path: str) -> None:
        self._connections = connections
        self._path = path
        self._session: ClientSession | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._session = self._connections.connected(transport, self._path)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self._session is not None:
            self._connections.received(self._session, frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._session is not None:
            self._connections.disconnected(self._session)

    def pause_writing(self) -> None:
        if self._session is not None:
            self._session.pause_writing()

    def resume_writing(self) -> None:
        if self._session is not None:
            self._session.resume_writing()


class Connections:
    """Accepts a venue's clients, hands their frames to its personality and keeps the
    subscription table; it is the ``VenueControl`` the personality talks to.

    ``sessions`` is the venue's list of open sessions, shared with the push path and the fault
    controls; ``stalled_at(now)`` tells whether the venue plays dead (it hears, never answers).
    """

    def __init__(
        self,
        book: VenueBook,
        sessions: list[ClientSession],
        *,
        stalled_at: Callable[[float], bool],
    ) -> None:
        self.book = book
        self.personality = book.personality
        self.name = book.personality.name
        self.sessions = sessions
        self.total_connections = 0
        self.malformed_messages = 0
        self._stalled_at = stalled_at
        self._changed = asyncio.Event()

    def listener_for(self, request: WSUpgradeRequest) -> WSListener | None:
        """picows' listener factory: a listener for the venue's paths, None (404) otherwise."""
        target = request.path.decode("latin-1")
        path = target.partition("?")[0]
        return _Listener(self, target) if self.personality.accepts_path(path) else None

    # ------------------------------------------------------------ connection events

    def connected(self, transport: WSTransport, path: str) -> ClientSession:
        session = ClientSession(transport, time.monotonic(), path)
        self.sessions.append(session)
        self.total_connections += 1
        self.personality.on_connected(self, session)
        self._changed.set()
        log.debug("simulator_client_connected", venue=self.name, sessions=len(self.sessions))
        return session

    def disconnected(self, session: ClientSession) -> None:
        session.mark_closed()
        for idx in session.channels:
            self.book.subscribers[idx].discard(session)
        if session in self.sessions:
            self.sessions.remove(session)
        self._changed.set()
        log.debug("simulator_client_disconnected", venue=self.name, sessions=len(self.sessions))

    def received(self, session: ClientSession, frame: WSFrame) -> None:
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
            if not self._heeds(session, msg_type, now):
                return
            try:
                self.personality.on_text(self, session, text, now)
            except Exception:  # a bug in a personality must not kill the connection
                self.malformed_messages += 1
                log.exception(
                    "simulator_handler_failed",
                    venue=self.name,
                    summary=f"simulated {self.name} failed to handle a client message",
                )
        elif msg_type == WSMsgType.PING:
            if self._heeds(session, msg_type, now):
                session.transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.PONG:
            pings = self.personality.server_pings
            if pings is not None:
                pings.on_pong(session, frame.get_payload_as_bytes())
            self._heeds(session, msg_type, now)  # a pong counts against the message budget
        elif msg_type == WSMsgType.CLOSE:
            session.transport.send_close(frame.get_close_code())
            session.transport.disconnect()

    def _heeds(self, session: ClientSession, msg_type: WSMsgType, now: float) -> bool:
        """Whether the venue reacts to this client frame: not during a stall, and not from a
        session that just went over its message budget (the venue closes it)."""
        if self._stalled_at(now):
            return False
        limit = self.personality.inbound_limit
        if limit is not None and msg_type in limit.counts and limit.exceeded(session, now):
            self.close_session(session, "message_rate")
            return False
        return True

    # ------------------------------------------------------- VenueControl

    def count_malformed(self, reason: str) -> None:
        self.malformed_messages += 1
        log.info(
            "simulator_malformed_client_message",
            venue=self.name,
            reason=reason,
            summary=f"simulated {self.name} got a message it does not accept ({reason})",
        )

    def close_session(self, session: ClientSession, reason: str) -> None:
        close_session(self.name, session, reason)

    def pair_index(self, symbol: str) -> int | None:
        return self.book.pair_index(symbol)

    def symbol_of(self, idx: int) -> str:
        return self.book.symbols[idx]

    def is_rejected(self, idx: int) -> bool:
        return idx in self.book.rejected

    def subscribe(self, session: ClientSession, idx: int, key: str) -> None:
        """Record a subscription; a held pair's quote follows on the next push tick."""
        keys = session.channels.setdefault(idx, [])
        if key in keys:
            return
        keys.append(key)
        session.subscriptions.add(self.book.symbols[idx])
        session.unsubscribed_since = None
        self.book.subscribers[idx].add(session)
        if idx in self.book.held and self.book.last[idx] is not None:
            session.dirty.add(idx)  # the walk will not push it, so replay it once
        self._changed.set()

    def unsubscribe(self, session: ClientSession, idx: int, key: str) -> None:
        keys = session.channels.get(idx)
        if not keys or key not in keys:
            return
        keys.remove(key)
        if not keys:
            del session.channels[idx]
            session.subscriptions.discard(self.book.symbols[idx])
            session.dirty.discard(idx)
            self.book.subscribers[idx].discard(session)
        if not session.channels:
            session.unsubscribed_since = time.monotonic()
        self._changed.set()

    # ------------------------------------------------------------ waiting

    @property
    def subscription_count(self) -> int:
        return sum(len(session.subscriptions) for session in self.sessions)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Return once ``predicate()`` holds, rechecked on every connection or subscription
        change; TimeoutError after ``timeout`` seconds."""
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
