"""The unified WebSocket manager: every venue's links, frames routed into the quote cache.

Each venue's pairs are sharded over as many :class:`~data_collector.connection.Link` objects
as its ``max_subscriptions_per_connection`` needs (balanced: 35 MEXC pairs -> 18 + 17). Every
frame goes ``venue.parse`` -> cache/stats (hot path) or subscription bookkeeping (control).

Subscription bookkeeping per transport: a transport is *subscribed* once it got as many
acknowledgements as it sent subscribe messages, or once every symbol it asked for was named
as accepted (Gate's success ack may name no pair at all, MEXC's names every channel).
Rejected symbols are reported once and never subscribed again, not even after reconnects.
A venue may refuse a whole multi-pair request because of one bad pair: when all acks are in,
one of them rejected pairs and the accepted ones do not cover the rest, the rest is asked for
once more on that transport (Gate subscribes add pairs; a duplicate is harmless).

Whenever a transport takes a link's pairs over (first confirmation after a (re)connect, or a
rotation replacement), the pairs' last sequences are forgotten: a venue may number updates
afresh on a new connection. The link drops late frames of the transport it replaced.

Links are built by a :data:`LinkFactory`: live ones by default, tapped ones for a recording
(:mod:`data_collector.recording`), ones that play a recording back for a replay
(:mod:`data_collector.replay`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import structlog

from data_collector.cache import Outcome, QuoteCache, VenueStats
from data_collector.connection import ConnectionSettings, IntervalPing, Link
from data_collector.pairs import Pair
from data_collector.venues.base import (
    Malformed,
    ParseResult,
    QuoteUpdate,
    SubscribeResult,
    Upgrade,
    Venue,
    VenueError,
)

log = structlog.get_logger(__name__)

#: malformed frames logged per venue: the first this many, then every MALFORMED_LOG_EVERY-th
MALFORMED_LOG_FIRST = 10
MALFORMED_LOG_EVERY = 1000
PREVIEW_BYTES = 200
_ACCEPTED = Outcome.ACCEPTED


#: ``factory(venue, name, url, settings, **callbacks_and_options) -> Link``
LinkFactory = Callable[..., Link]


def live_link(venue: str, name: str, url: str, settings: ConnectionSettings, **kw: Any) -> Link:
    """The default :data:`LinkFactory`: a live link."""
    return Link(name, url, settings, **kw)


def preview(data: bytes) -> str:
    """At most PREVIEW_BYTES of a frame: as text when it is UTF-8, else as hex."""
    head = data[:PREVIEW_BYTES]
    try:
        return head.decode()
    except UnicodeDecodeError:
        return head.hex()


def shard(items: Sequence[str], cap: int | None) -> list[list[str]]:
    """Split ``items`` into the fewest near-equal chunks of at most ``cap`` items."""
    if not items:
        return []
    count = 1 if not cap else -(-len(items) // cap)
    size, extra = divmod(len(items), count)
    chunks, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        chunks.append(list(items[start:end]))
        start = end
    return chunks


class _Subs(msgspec.Struct):
    """Subscription progress of one transport."""

    sent: int
    acks: int = 0
    accepted: set[str] = msgspec.field(default_factory=set)
    done: bool = False
    #: an ack rejected pairs: once all acks are in, re-ask for what is not known accepted
    recheck: bool = False


class _VenueFeed:
    """State shared by the links of one venue."""

    def __init__(
        self, name: str, venue: Venue, url: str, v: int, pair_of: dict[str, int], stats: VenueStats
    ) -> None:
        self.name = name
        self.venue = venue
        self.url = url
        self.v = v
        self.pair_of = pair_of
        self.stats = stats
        self.rejected: dict[str, str] = {}
        self.links: list[_LinkFeed] = []


class _LinkFeed:
    """The callbacks of one link: hot-path frame routing and subscription bookkeeping."""

    def __init__(
        self, vf: _VenueFeed, cache: QuoteCache, symbols: list[str], manager: FeedManager
    ) -> None:
        self.vf = vf
        self.manager = manager
        self.symbols = symbols
        self.pair_indexes = [vf.pair_of[s] for s in symbols]
        self.link: Link | None = None
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
        elif isinstance(result, Upgrade):
            log.warning("venue_upgrade", exchange=self.vf.name, link=link.name, transport=tid)
            link.request_rotation("upgrade", tid)  # make-before-break: no gap
        elif isinstance(result, VenueError):
            log.warning(
                "venue_error", exchange=self.vf.name, link=link.name, message=result.message
            )
        # Pong and Ignored need nothing: any frame already fed the link's liveness watchdog.

    def _malformed(self, result: Malformed, data: bytes) -> None:
        stats = self._stats
        stats.parse_errors += 1
        n = stats.parse_errors
        if n <= MALFORMED_LOG_FIRST or n % MALFORMED_LOG_EVERY == 0:
            log.warning(
                "malformed_frame",
                exchange=self.vf.name,
                reason=result.reason,
                count=n,
                size=len(data),
                preview=preview(data),
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
            summary=f"{self.vf.name}: {link.name} subscribed to {len(self.symbols)} channels",
        )
        self._ready(link, tid)

    def _resubscribe(self, link: Link, tid: int, subs: _Subs) -> None:
        """A rejection may have sunk the whole request: ask once more for the pairs of this
        link not yet known accepted on this transport."""
        subs.recheck = False
        missing = [s for s in self.symbols if s not in subs.accepted]
        messages = self.vf.venue.subscribe_messages(missing, time.time())
        subs.sent += sum(link.send(m, tid) for m in messages)
        log.info(
            "resubscribing",
            exchange=self.vf.name,
            link=link.name,
            transport=tid,
            channels=len(missing),
            summary=f"{self.vf.name}: {link.name} asks again for {len(missing)} channels",
        )

    def _ready(self, link: Link, tid: int) -> None:
        """Confirm the transport to its link; when it took the pairs over, their sequences
        start afresh."""
        self._unready.discard(tid)
        if link.transport_ready(tid):
            self._reset_sequence(self._v, self.pair_indexes)

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
            self.manager._retire(self)
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
        self._subs[tid] = _Subs(sent=len(messages))
        self._unready.intersection_update(keep)
        self._unready.add(tid)
        return messages

    def on_lost(self, link: Link, reason: str) -> None:
        # Keep the quotes but stop trusting them; apply() makes each live again on its next
        # fresh update over the new connection.
        self._mark_not_live(self._v, self.pair_indexes)
        log.info(
            "quotes_not_live",
            exchange=self.vf.name,
            link=link.name,
            reason=reason,
            pairs=len(self.pair_indexes),
        )


class FeedManager:
    """Opens, watches and routes every venue's links for the configured pairs."""

    def __init__(
        self,
        cache: QuoteCache,
        venues: Mapping[str, tuple[Venue, str]],
        pairs: Sequence[Pair],
        settings: ConnectionSettings,
        *,
        links: LinkFactory = live_link,
    ) -> None:
        self.cache = cache
        self.settings = settings
        self._make_link = links
        self._feeds: dict[str, _VenueFeed] = {}
        for name, (venue, url) in venues.items():
            pair_of = {venue.symbol(p): cache.pair_index[p] for p in pairs}
            vf = _VenueFeed(name, venue, url, cache.venue_index[name], pair_of, cache.stats[name])
            self._feeds[name] = vf
        self._retiring: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def rejected(self) -> dict[str, dict[str, str]]:
        """venue -> symbol -> reason, for every pair a venue refused."""
        return {name: vf.rejected for name, vf in self._feeds.items()}

    async def start(self) -> None:
        """Open every venue's links (they connect and subscribe in the background)."""
        if self._started:
            return
        self._started = True
        for vf in self._feeds.values():
            cap = vf.venue.max_subscriptions_per_connection
            chunks = shard(list(vf.pair_of), cap)
            for i, symbols in enumerate(chunks):
                self._open_link(vf, f"{vf.name}-{i}", symbols)
            log.info(
                "venue_links",
                exchange=vf.name,
                links=len(chunks),
                pairs=len(vf.pair_of),
                url=vf.url,
            )

    def _open_link(self, vf: _VenueFeed, name: str, symbols: list[str]) -> None:
        feed = _LinkFeed(vf, self.cache, symbols, self)
        venue = vf.venue
        link = self._make_link(
            vf.name,
            name,
            vf.url,
            self.settings,
            keepalive=IntervalPing(venue.ping_message, venue.ping_interval),
            lifetime=venue.max_connection_lifetime,
            on_frame=feed.on_frame,
            on_connected=feed.on_connected,
            on_lost=feed.on_lost,
        )
        feed.link = link
        vf.links.append(feed)
        link.start()

    def _retire(self, feed: _LinkFeed) -> None:
        """Every pair of this link was rejected: close it rather than hold an empty one."""
        vf = feed.vf
        if feed in vf.links:
            vf.links.remove(feed)
        if feed.link is not None:
            log.warning("link_closed_no_pairs", exchange=vf.name, link=feed.link.name)
            task = asyncio.get_running_loop().create_task(feed.link.close())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def stop(self) -> None:
        links = [f.link for vf in self._feeds.values() for f in vf.links if f.link is not None]
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        log.info("feeds_stopped", links=len(links))

    def connections(self) -> dict[str, tuple[int, int]]:
        """venue -> (links up, links expected)."""
        return {
            name: (sum(1 for f in vf.links if f.link is not None and f.link.is_up), len(vf.links))
            for name, vf in self._feeds.items()
        }

    def subscribed_channels(self) -> int:
        """Channels acknowledged on the transports currently carrying them."""
        return sum(len(f.symbols) for vf in self._feeds.values() for f in vf.links if f.subscribed)

    def flowing(self) -> bool:
        """Every link is subscribed and every venue with a link delivered an accepted update."""
        return all(
            all(f.subscribed for f in vf.links) and (not vf.links or vf.stats.updates > 0)
            for vf in self._feeds.values()
        )

    async def wait_until_flowing(self, timeout: float) -> bool:
        """Wait until :meth:`flowing` (all links subscribed and quotes arriving from every
        venue); returns False when ``timeout`` passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.flowing():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True
