"""The push path: the random walk, publishing a quote to its subscribers, and backpressure.

Backpressure: a session whose transport asked us to pause writing (or whose write buffer is over
``max_write_buffer``) gets no new frames; the pairs it missed are remembered and their latest
quote is sent once it drains, so a slow client costs memory per pair, never per update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from data_collector.simulator.book import VenueBook
from data_collector.simulator.session import ClientSession, Quote, now_ms

#: ``(session, pair index, quote)``, called right before each book-ticker frame of a push is
#: handed to the session's transport (not for floods: see ``flood.FloodObserver``)
PushObserver = Callable[[ClientSession, int, Quote], None]


@dataclass(slots=True)
class SendStats:
    #: book-ticker frames handed to transports, pushes and floods alike
    updates_sent: int = 0
    #: pushes withheld from a backlogged session (its pair is sent once it drains)
    skipped_backpressure: int = 0


class Pusher:
    """Sends book-ticker updates to the sessions subscribed to them."""

    def __init__(
        self, book: VenueBook, stats: SendStats, *, rate_hz: float, max_write_buffer: int
    ) -> None:
        self.book = book
        self.stats = stats
        #: per-pair update rate of the random walk (settable at any time)
        self.rate_hz = rate_hz
        self.max_write_buffer = max_write_buffer
        self.observer: PushObserver | None = None
        self._encode = book.personality.encode_push
        self._push_type = book.personality.push_type
        self._credit = 0.0
        self._cursor = 0

    def idle(self) -> None:
        """Nothing is due while the walk is paused, stalled or flooding: drop the credit."""
        self._credit = 0.0

    def random_walk(self, now: float, elapsed: float) -> None:
        """Move ``rate_hz`` x ``elapsed`` pairs round-robin and push each to its subscribers."""
        count = len(self.book)
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
        subscribers, held = self.book.subscribers, self.book.held
        walk, publish = self.book.walk, self.publish
        cursor = self._cursor
        for _ in range(due):
            idx = cursor
            cursor = idx + 1 if idx + 1 < count else 0
            if subscribers[idx] and idx not in held:
                publish(idx, walk(idx, stamp, now), now)
        self._cursor = cursor

    def publish(self, idx: int, quote: Quote, now: float, *, record: bool = True) -> None:
        """Send ``quote`` to every subscriber of pair ``idx``; ``record`` makes it the pair's
        last quote (an out-of-order fault is sent but not recorded)."""
        if record:
            self.book.last[idx] = quote
        subscribers = self.book.subscribers[idx]
        if not subscribers:
            return
        encoded: dict[str, bytes] = {}
        for session in tuple(subscribers):
            self._push_to(session, idx, quote, encoded, now)

    def hold_back(self, idx: int, quote: Quote) -> None:
        """Make ``quote`` the pair's last one but send it only once pushes flow again."""
        self.book.last[idx] = quote
        for session in self.book.subscribers[idx]:
            session.dirty.add(idx)

    def _push_to(
        self, session: ClientSession, idx: int, quote: Quote, encoded: dict[str, bytes], now: float
    ) -> None:
        if session.backlogged(self.max_write_buffer):
            session.dirty.add(idx)  # coalesce: it gets the latest quote once it drains
            self.stats.skipped_backpressure += 1
            return
        if session.dirty:
            session.dirty.discard(idx)
        keys = session.channels[idx]
        observer = self.observer
        for key in keys:
            frame = encoded.get(key)
            if frame is None:
                frame = self._encode(key, self.book.symbols[idx], quote)
                encoded[key] = frame
            if observer is not None:
                observer(session, idx, quote)
            session.transport.send(self._push_type, frame)
        session.frames_sent += len(keys)
        session.last_push_at = now
        self.stats.updates_sent += len(keys)

    def flush_dirty(self, sessions: Iterable[ClientSession], now: float) -> None:
        """Send the pairs backlogged sessions missed, now that they drained."""
        last = self.book.last
        for session in sessions:
            if not session.dirty or session.backlogged(self.max_write_buffer):
                continue
            for idx in tuple(session.dirty):
                quote = last[idx]
                if quote is None or idx not in session.channels:
                    session.dirty.discard(idx)
                else:
                    self._push_to(session, idx, quote, {}, now)
