"""The feeds of one venue and of each of its links: hot-path frame routing into the quote
cache, and the subscription bookkeeping of every transport.

Subscription bookkeeping per transport: a transport is *subscribed* once it got as many
acknowledgements as it sent subscribe messages (as it asked for symbols, where the venue
answers each symbol: OKX), or once every symbol it asked for was named as accepted (Gate's
success ack may name no pair at all, MEXC's names every channel).
Rejected symbols are reported once and never subscribed again, not even after reconnects.
A venue may refuse a whole multi-pair request because of one bad pair: when all acks are in,
one of them rejected pairs and the accepted ones do not cover the rest, the rest is asked for
once more on that transport (Gate subscribes add pairs; a duplicate is harmless).

Whenever a transport takes a link's pairs over (first confirmation after a (re)connect, or a
rotation replacement), the pairs' last sequences are forgotten: a venue may number updates
afresh on a new connection. The link drops late frames of the transport it replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import structlog

from data_collector.cache import Outcome, QuoteCache, VenueStats
from data_collector.connection import Link
from data_collector.venues.base import (
    Malformed,
    ParseResult,
    QuoteUpdate,
    RestartNotice,
    SubscribeResult,
    Venue,
    VenueError,
)
from data_collector.wording import plural

log = structlog.get_logger("data_collector.manager")

#: malformed frames logged per venue: the first this many, then every MALFORMED_LOG_EVERY-th
MALFORMED_LOG_FIRST = 10
MALFORMED_LOG_EVERY = 1000
PREVIEW_BYTES = 200
_ACCEPTED = Outcome.ACCEPTED


def preview(data: bytes) -> str:
    """At most PREVIEW_BYTES of a frame: as text when it is UTF-8, else as hex."""
    head = data[:PREVIEW_BYTES]
    try:
        return head.decode()
    except UnicodeDecodeError:
        return head.hex()


class _Subs(msgspec.Struct):
    """Subscription progress of one transport."""

    sent: int
    acks: int = 0
    accepted: set[str] = msgspec.field(default_factory=set)
    done: bool = False
    #: an ack rejected pairs: once all acks are in, re-ask for what is not known accepted
    recheck: bool = False


class VenueFeed:
    """State shared by the links of one venue."""

    def __init__(
        self, name: str, venue: Venue, url: str, v: int, pair_of: dict[str, int], stats: VenueStats
    ) -> None:
        self.name = name
        self.venue = venue
        self.url = url
        self.v = v
        self.pair_of = pair_of
        #: pair index -> the venue's symbol
        self.symbol_of = {p: symbol for symbol, p in pair_of.items()}
        self.stats = stats
        self.rejected: dict[str, str] = {}
        self.links: list[LinkFeed] = []
        #: why a link of this venue last lost its connection (None: none lost yet)
        self.last_lost: str | None = None


class LinkFeed:
    """The callbacks of one link: hot-path frame routing and subscription bookkeeping."""

    def __init__(
        self,
        vf: VenueFeed,
        cache: QuoteCache,
        symbols: list[str],
        on_empty: Callable[[LinkFeed], None],
    ) -> None:
        self.vf = vf
        self._on_empty = on_empty
        self.symbols = symbols
        self.pair_indexes = [vf.pair_of[s] for s in symbols]
        self.link: Link | None = None
        #: wall-clock ns since which a transport carries the pairs without a gap (rotations
        #: included); 0 while none does. Silence of a pair that never quoted counts from here.
        self.carrying_since_ns = 0
        self._subs: dict[int, _Subs] = {}
        self._seen_reconnects = 0
        # transports not yet confirmed to their link (by a complete ack or a first quote)
        self._unready: set[int] = set()
        # hot-path locals
        self._parse = vf.venue.parse
        self._apply = cache.apply
        self._mark_not_live = cache.mark_not_live
        self._reset_sequence = cache.reset_sequence
        self._stats = vf.stats
        self._pair_of = vf.pair_of
        self._v = vf.v

    @property
    def subscribed(self) -> bool:
        """The transport carrying the pairs has acknowledged its subscriptions."""
        link = self.link
        subs = self._subs.get(link.current_id) if link is not None else None
        return subs is not None and subs.done

    # --- hot path -------------------------------------------------------------------------

    def on_frame(self, link: Link, tid: int, data: bytes, receive_ns: int) -> None:
        result = self._parse(data)
        stats = self._stats
        stats.frames += 1
        stats.last_message_ns = receive_ns
        if type(result) is QuoteUpdate:
            if tid in self._unready:  # before apply: a takeover resets the sequences
                self._ready(link, tid)
            p = self._pair_of.get(result.symbol)
            if p is None:
                stats.dropped_unknown += 1
                return
            outcome = self._apply(self._v, p, result, receive_ns)
            if outcome is _ACCEPTED:  # the common case, without the method call
                stats.updates += 1
            else:
                stats.count(outcome)
            return
        self._control(link, tid, result, data)

    # --- control frames -------------------------------------------------------------------

    def _control(self, link: Link, tid: int, result: ParseResult, data: bytes) -> None:
        if isinstance(result, SubscribeResult):
            self._on_ack(link, tid, result)
        elif isinstance(result, Malformed):
            self._malformed(result, data)
        elif isinstance(result, RestartNotice):
            log.warning(
                "venue_restart_notice",
                exchange=self.vf.name,
                link=link.name,
                transport=tid,
                reason=result.reason,
                summary=f"{self.vf.name}: {link.name} will be closed by the venue "
                f"({result.reason}): moving to a new connection",
            )
            link.request_rotation(result.reason, tid)  # make-before-break: no gap
        elif isinstance(result, VenueError):
            log.warning(
                "venue_error",
                exchange=self.vf.name,
                link=link.name,
                message=result.message,
                summary=f"{self.vf.name}: {link.name} got an error from the venue: "
                f"{result.message}",
            )
        # Pong and Ignored need nothing: any frame already fed the link's liveness watchdog.

    def _malformed(self, result: Malformed, data: bytes) -> None:
        stats = self._stats
        stats.parse_errors += 1
        n = stats.parse_errors
        if n <= MALFORMED_LOG_FIRST or n % MALFORMED_LOG_EVERY == 0:
            head = preview(data)
            log.warning(
                "malformed_frame",
                exchange=self.vf.name,
                reason=result.reason,
                count=n,
                size=len(data),
                preview=head,
                summary=f"{self.vf.name}: malformed frame #{n} ({result.reason}, "
                f"{plural(len(data), 'byte')}): {head!r}",
            )

    def _on_ack(self, link: Link, tid: int, result: SubscribeResult) -> None:
        subs = self._subs.get(tid)
        if subs is None:  # an ack on a transport we no longer track (rotated out)
            return
        subs.acks += 1
        subs.accepted.update(result.accepted)
        dropped = [s for s in result.rejected if self._reject(s, result.reason)]
        if dropped:
            subs.recheck = True  # only on progress: resends end when the symbols do
        if subs.done or not self.symbols:
            return
        if not subs.accepted.issuperset(self.symbols):
            if subs.acks < subs.sent:
                return  # more acks to come
            if subs.recheck:
                self._resubscribe(link, tid, subs)
                return
        subs.done = True
        log.info(
            "subscribed",
            exchange=self.vf.name,
            link=link.name,
            transport=tid,
            channels=len(self.symbols),
            rotation=tid == link.replacement_id,
            summary=f"{self.vf.name}: {link.name} subscribed to "
            f"{plural(len(self.symbols), 'channel')}",
        )
        self._ready(link, tid)

    def _resubscribe(self, link: Link, tid: int, subs: _Subs) -> None:
        """A rejection may have sunk the whole request: ask once more for the pairs of this
        link not yet known accepted on this transport."""
        subs.recheck = False
        missing = [s for s in self.symbols if s not in subs.accepted]
        messages = self.vf.venue.subscribe_messages(missing, time.time())
        subs.sent += self._answers_due(missing, link.send_subscriptions(messages, tid))
        log.info(
            "resubscribing",
            exchange=self.vf.name,
            link=link.name,
            transport=tid,
            channels=len(missing),
            summary=f"{self.vf.name}: {link.name} asks again for {plural(len(missing), 'channel')}",
        )

    def _answers_due(self, symbols: list[str], messages: int) -> int:
        """Acknowledgements to expect for ``messages`` subscribe messages asking for
        ``symbols``: one per message, or one per symbol where the venue answers each."""
        if self.vf.venue.acks_each_symbol and messages:
            return len(symbols)
        return messages

    def _ready(self, link: Link, tid: int) -> None:
        """Confirm the transport to its link; when it took the pairs over, their sequences
        start afresh."""
        self._unready.discard(tid)
        if link.transport_ready(tid):
            self._reset_sequence(self._v, self.pair_indexes)
            if not self.carrying_since_ns:
                self.carrying_since_ns = time.time_ns()

    def _reject(self, symbol: str, reason: str) -> bool:
        """Drop ``symbol`` from this link for good; False when it was not (or no longer) ours."""
        if symbol not in self.symbols:
            return False
        vf = self.vf
        vf.rejected[symbol] = reason
        i = self.symbols.index(symbol)
        del self.symbols[i]
        del self.pair_indexes[i]
        log.error(
            "subscription_rejected",
            exchange=vf.name,
            symbol=symbol,
            reason=reason,
            summary=f"{vf.name} rejected {symbol}: {reason} (not subscribed again)",
        )
        if not self.symbols:
            self._on_empty(self)
        return True

    # --- link callbacks -------------------------------------------------------------------

    def on_connected(self, link: Link) -> list[str]:
        tid = link.latest_id
        keep = (link.current_id, link.replacement_id)
        self._subs = {t: s for t, s in self._subs.items() if t in keep}
        if link.reconnects != self._seen_reconnects:
            self._stats.reconnects += link.reconnects - self._seen_reconnects
            self._seen_reconnects = link.reconnects
        messages = self.vf.venue.subscribe_messages(self.symbols, time.time())
        self._subs[tid] = _Subs(sent=self._answers_due(self.symbols, len(messages)))
        self._unready.intersection_update(keep)
        self._unready.add(tid)
        return messages

    def on_lost(self, link: Link, reason: str) -> None:
        # Keep the quotes but stop trusting them; apply() makes each live again on its next
        # fresh update over the new connection.
        self.carrying_since_ns = 0
        self._mark_not_live(self._v, self.pair_indexes)
        self.vf.last_lost = reason
        log.info(
            "quotes_not_live",
            exchange=self.vf.name,
            link=link.name,
            reason=reason,
            pairs=len(self.pair_indexes),
            summary=f"{self.vf.name}: {plural(len(self.pair_indexes), 'pair')} not live (not "
            f"stored) until {link.name} quotes them again ({reason})",
        )
