"""The unified WebSocket manager: every venue's links, frames routed into the quote cache.

Each venue's pairs are sharded over as many :class:`~data_collector.connection.Link` objects
as its ``max_subscriptions_per_connection`` needs (balanced: 35 MEXC pairs -> 18 + 17). Each
link is opened with the venue's declared keepalive style, control-message budget and
connection lifetime; a venue's links share its connection-attempt budget (``connect_budget``).
Its callbacks (frame routing, subscription bookkeeping) are a
:class:`~data_collector.feeds.LinkFeed`.

Links are built by a :data:`LinkFactory`: live ones by default, tapped ones for a recording
(:mod:`data_collector.recording`), ones that play a recording back for a replay
(:mod:`data_collector.replay`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from data_collector.cache import QuoteCache
from data_collector.connection import ConnectionSettings, Link, keepalive_for
from data_collector.connection.backoff import ConnectGate
from data_collector.feeds import LinkFeed, VenueFeed
from data_collector.pairs import Pair
from data_collector.venues.base import Venue
from data_collector.wording import plural

log = structlog.get_logger(__name__)

#: ``factory(venue, name, url, settings, **callbacks_and_options) -> Link``
LinkFactory = Callable[..., Link]


def live_link(venue: str, name: str, url: str, settings: ConnectionSettings, **kw: Any) -> Link:
    """The default :data:`LinkFactory`: a live link."""
    return Link(name, url, settings, **kw)


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
        self._feeds: dict[str, VenueFeed] = {}
        #: venue -> the connection-attempt budget its links share (venues without one: absent)
        self._connect_gates: dict[str, ConnectGate] = {}
        for name, (venue, url) in venues.items():
            if venue.connect_budget is not None:
                self._connect_gates[name] = ConnectGate(venue.connect_budget)
            pair_of = {venue.symbol(p): cache.pair_index[p] for p in pairs}
            vf = VenueFeed(name, venue, url, cache.venue_index[name], pair_of, cache.stats[name])
            self._feeds[name] = vf
        self._retiring: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def venue_feeds(self) -> Mapping[str, VenueFeed]:
        """venue -> its feed (links, counters, rejected pairs), for reports off the hot path."""
        return self._feeds

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
                summary=f"{vf.name}: {plural(len(vf.pair_of), 'pair')} over "
                f"{plural(len(chunks), 'connection')}",
            )

    def _open_link(self, vf: VenueFeed, name: str, symbols: list[str]) -> None:
        feed = LinkFeed(vf, self.cache, symbols, self._retire)
        venue = vf.venue
        link = self._make_link(
            vf.name,
            name,
            vf.url,
            self.settings,
            keepalive=keepalive_for(venue.keepalive, venue.ping_message, venue.ping_interval),
            lifetime=venue.max_connection_lifetime,
            on_frame=feed.on_frame,
            on_connected=feed.on_connected,
            on_lost=feed.on_lost,
            budget=venue.control_budget,
            counters=vf.stats,
            connect_gate=self._connect_gates.get(vf.name),
        )
        feed.link = link
        vf.links.append(feed)
        link.start()

    def _retire(self, feed: LinkFeed) -> None:
        """Every pair of this link was rejected: close it rather than hold an empty one."""
        vf = feed.vf
        if feed in vf.links:
            vf.links.remove(feed)
        if feed.link is not None:
            log.warning(
                "link_closed_no_pairs",
                exchange=vf.name,
                link=feed.link.name,
                summary=f"{vf.name}: {feed.link.name} closed, the venue rejected all its pairs",
            )
            task = asyncio.get_running_loop().create_task(feed.link.close())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def stop(self) -> None:
        links = [f.link for vf in self._feeds.values() for f in vf.links if f.link is not None]
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        closed = plural(len(links), "connection")
        log.info("feeds_stopped", links=len(links), summary=f"Feeds stopped: {closed} closed")

    def connections(self) -> dict[str, tuple[int, int]]:
        """venue -> (links up, links expected)."""
        return {
            name: (sum(1 for f in vf.links if f.link is not None and f.link.is_up), len(vf.links))
            for name, vf in self._feeds.items()
        }

    def lost_reason(self, venue: str) -> str | None:
        """Why a link of ``venue`` last lost its connection; None if none did."""
        feed = self._feeds.get(venue)
        return feed.last_lost if feed is not None else None

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
