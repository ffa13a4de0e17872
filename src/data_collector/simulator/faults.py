"""Fault injection: what tests and demos make a simulated venue do on purpose."""

from __future__ import annotations

import asyncio
import time

import structlog

from data_collector.pairs import Pair
from data_collector.simulator.book import VenueBook
from data_collector.simulator.connections import close_session
from data_collector.simulator.push import Pusher
from data_collector.simulator.session import ClientSession
from data_collector.wording import plural

log = structlog.get_logger(__name__)


class Faults:
    """The fault controls of one venue, and the pause / stall state the push loop obeys."""

    def __init__(self, book: VenueBook, pusher: Pusher, sessions: list[ClientSession]) -> None:
        self.book = book
        self.pusher = pusher
        #: the venue's open sessions (the server's list)
        self.sessions = sessions
        self.name = book.personality.name
        #: random-walk pushes are off (control messages are still answered)
        self.paused = False
        self._stalled_until = 0.0
        self._garbage_cursor = 0
        #: closes scheduled by restart notices, by notice number
        self._pending_closes: dict[int, asyncio.TimerHandle] = {}
        self._notices = 0

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
        idx = self.book.index(pair)
        quote = self.book.exact(idx, bid, bid_qty, ask, ask_qty)
        if hold:
            self.book.held.add(idx)
        else:
            self.book.held.discard(idx)
        now = time.monotonic()
        if self.stalled_at(now):
            self.pusher.hold_back(idx, quote)
        else:
            self.pusher.publish(idx, quote, now)

    def release(self, pair: Pair) -> None:
        """Let the random walk move ``pair`` again."""
        self.book.held.discard(self.book.index(pair))

    def pause(self) -> None:
        """Stop random-walk pushes for all pairs (control messages are still answered)."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def disconnect_all(self) -> None:
        """Abort every client's TCP connection: no close frame, no flush."""
        log.info(
            "simulator_disconnect_all",
            venue=self.name,
            sessions=len(self.sessions),
            summary=f"simulated {self.name} drops {plural(len(self.sessions), 'connection')}",
        )
        for session in tuple(self.sessions):
            session.transport.disconnect(graceful=False)

    def stall(self, seconds: float) -> None:
        """Go silent for ``seconds``: no pushes, no replies, no pongs; TCP stays open."""
        self._stalled_until = time.monotonic() + seconds
        log.info(
            "simulator_stall",
            venue=self.name,
            seconds=seconds,
            summary=f"simulated {self.name} goes silent for {seconds:g} s",
        )

    def stalled_at(self, now: float) -> bool:
        return now < self._stalled_until

    @property
    def stalled(self) -> bool:
        return self.stalled_at(time.monotonic())

    def send_garbage(self, count: int = 1) -> None:
        """Send ``count`` undecodable frames to every session (also during a stall)."""
        frames = self.book.personality.garbage_frames()
        for session in self.sessions:
            for k in range(count):
                msg_type, payload = frames[(self._garbage_cursor + k) % len(frames)]
                session.send_frame(msg_type, payload)
        self._garbage_cursor += count

    def send_out_of_order(self, pair: Pair) -> None:
        """Push a fresh-looking quote for ``pair`` whose sequence is below the last one sent."""
        idx = self.book.index(pair)
        self.pusher.publish(idx, self.book.stale(idx), time.monotonic(), record=False)

    def reject(self, pair: Pair) -> None:
        """Refuse future subscriptions of ``pair`` the venue's way."""
        self.book.rejected.add(self.book.index(pair))

    def send_restart_notice(self, close_after: float | None = None) -> int:
        """Send every session the venue's planned-restart notice (Gate: ``"event":"upgrade"``);
        with ``close_after``, close those sessions (reason ``restart``) that many seconds
        later, as a venue does once the notice period ends. Returns the sessions notified."""
        notified = tuple(self.sessions)
        for session in notified:
            session.send_text(self.book.personality.restart_notice(session))
        log.info(
            "simulator_restart_notice",
            venue=self.name,
            sessions=len(notified),
            summary=f"simulated {self.name} announces a restart to "
            f"{plural(len(notified), 'connection')}",
        )
        if close_after is not None and notified:
            self._notices += 1
            self._pending_closes[self._notices] = asyncio.get_running_loop().call_later(
                close_after, self._close_notified, self._notices, notified
            )
        return len(notified)

    def _close_notified(self, notice: int, notified: tuple[ClientSession, ...]) -> None:
        del self._pending_closes[notice]
        for session in notified:
            if not session.closed:
                close_session(self.name, session, "restart")

    def cancel_pending(self) -> None:
        """Forget scheduled closes (the server is stopping and closes everything itself)."""
        for handle in self._pending_closes.values():
            handle.cancel()
        self._pending_closes.clear()
