"""What the feeds are not doing, said plainly: silent pairs, venues out of reach, and the
start-up subscription count.

:class:`FeedWatch` runs off the hot path (a small task, about once a second) and reads what the
feeds record anyway (the cache's last-seen times, each link's state):

- **Silent pairs.** A venue may acknowledge a subscription and never quote it (Binance does for
  an unknown symbol). A pair without an accepted update or a repeat for
  ``pair_silence_timeout`` seconds, while its connection delivers other pairs, logs one
  ``pair_silent`` warning, and one ``pair_resumed`` when it quotes again. A pair that never
  quoted counts from when its connection started carrying it.
- **Venues out of reach.** While a venue's links fail to connect, one calm
  ``waiting_for_venue`` line per venue every :data:`WAITING_LOG_EVERY` seconds (the first one
  that long after the link's own ``connection_failed`` warning): the attempt, the time to the
  next one and the last error; ``venue_reachable`` once it is back.

:func:`log_subscriptions` words the start-up line: "Subscribed to 38 of 40 ..." and what is
missing where, as a warning, when not every channel is subscribed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import structlog

from data_collector.alerts.events import AlertSink, PairSilent
from data_collector.feeds import LinkFeed, VenueFeed
from data_collector.manager import FeedManager
from data_collector.wording import plural

#: seconds between two "waiting for" lines of one venue
WAITING_LOG_EVERY = 30.0
#: longest pause between two checks
CHECK_EVERY = 1.0


class FeedWatch:
    """Silent pairs and unreachable venues of one :class:`FeedManager`."""

    def __init__(
        self,
        manager: FeedManager,
        pair_silence_timeout: float,
        *,
        waiting_every: float = WAITING_LOG_EVERY,
        clock_ns: Callable[[], int] = time.time_ns,
        logger: Any = None,
    ) -> None:
        self._manager = manager
        self._waiting_every = waiting_every
        self._timeout_ns = int(pair_silence_timeout * 1e9)
        self._period = min(CHECK_EVERY, pair_silence_timeout / 4)
        self._clock_ns = clock_ns
        self._log = logger if logger is not None else structlog.get_logger(__name__)
        #: (venue index, pair index) of a silent pair -> (its last-seen time when it was
        #: found silent, the time (ns) its silence counts from)
        self._silent: dict[tuple[int, int], tuple[int, int]] = {}
        #: venue -> monotonic time of its last "waiting for" line
        self._waiting_logged: dict[str, float] = {}
        #: also told of each pair that goes silent (the collector's alerts, when configured)
        self.alerts: AlertSink | None = None

    def silent_pairs(self) -> dict[str, list[str]]:
        """venue -> venue symbols now silent (sorted); every venue of the manager is a key."""
        feeds = self._manager.venue_feeds
        by_index = {vf.v: vf for vf in feeds.values()}
        out: dict[str, list[str]] = {name: [] for name in feeds}
        for v, p in self._silent:
            vf = by_index[v]
            out[vf.name].append(vf.symbol_of[p])
        return {name: sorted(symbols) for name, symbols in out.items()}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            self.check()

    def check(self) -> None:
        now_ns = self._clock_ns()
        last_seen = self._manager.cache.last_seen_ns()
        if self._silent:
            self._check_resumed(last_seen)
        for vf in self._manager.venue_feeds.values():
            for feed in vf.links:
                self._check_link(vf, feed, last_seen[vf.v], now_ns)
            self._check_reachable(vf)

    # --- silent pairs -----------------------------------------------------------------------

    def _check_resumed(self, last_seen: np.ndarray) -> None:
        feeds = self._manager.venue_feeds
        by_index = {vf.v: vf for vf in feeds.values()}
        carried = {(vf.v, p) for vf in feeds.values() for f in vf.links for p in f.pair_indexes}
        for (v, p), (seen, since) in list(self._silent.items()):
            if (v, p) not in carried:  # rejected since, or its link retired: not silent
                del self._silent[v, p]
            elif (last := int(last_seen[v, p])) > seen:
                del self._silent[v, p]
                self._resumed(by_index[v], p, (last - since) / 1e9)

    def _check_link(self, vf: VenueFeed, feed: LinkFeed, seen: np.ndarray, now_ns: int) -> None:
        since_ns = feed.carrying_since_ns
        if not since_ns or not feed.pair_indexes:
            return
        seen_here = seen[feed.pair_indexes]
        if not (now_ns - seen_here < self._timeout_ns).any():
            return  # nothing flows on this link: not a pair's silence, the link's
        quiet = now_ns - np.maximum(seen_here, since_ns) >= self._timeout_ns
        for i in np.flatnonzero(quiet).tolist():
            p = feed.pair_indexes[i]
            if (vf.v, p) not in self._silent:
                last = int(seen_here[i])
                since = max(last, since_ns)
                self._silent[vf.v, p] = (last, since)
                self._went_silent(vf, p, (now_ns - since) / 1e9, last == 0)

    def _went_silent(self, vf: VenueFeed, p: int, silent_s: float, never: bool) -> None:
        symbol = vf.symbol_of[p]
        pair = str(self._manager.cache.pairs[p])
        what = "has not quoted since it was subscribed" if never else "stopped quoting"
        self._log.warning(
            "pair_silent",
            exchange=vf.name,
            symbol=symbol,
            pair=pair,
            silent_s=round(silent_s, 1),
            summary=f"{vf.venue.display_name}: {symbol} {what} {silent_s:.0f} s ago while "
            "its connection delivers other pairs",
        )
        if self.alerts is not None:
            self.alerts.publish(PairSilent(vf.name, pair, round(silent_s, 1)))

    def _resumed(self, vf: VenueFeed, p: int, silent_s: float) -> None:
        symbol = vf.symbol_of[p]
        self._log.info(
            "pair_resumed",
            exchange=vf.name,
            symbol=symbol,
            pair=str(self._manager.cache.pairs[p]),
            silent_s=round(silent_s, 1),
            summary=f"{vf.venue.display_name}: {symbol} quotes again",
        )

    # --- venues out of reach ----------------------------------------------------------------

    def _check_reachable(self, vf: VenueFeed) -> None:
        links = [f.link for f in vf.links if f.link is not None]
        failing = [link for link in links if not link.is_up and link.attempts.failure_streak]
        now = time.monotonic()
        if not failing:
            if vf.name in self._waiting_logged and all(link.is_up for link in links):
                del self._waiting_logged[vf.name]
                self._log.info(
                    "venue_reachable",
                    exchange=vf.name,
                    summary=f"{vf.venue.display_name} reachable again",
                )
            return
        last = self._waiting_logged.get(vf.name)
        if last is None:  # the link's connection_failed warning just told; go on in a while
            self._waiting_logged[vf.name] = now
            return
        if now - last < self._waiting_every:
            return
        self._waiting_logged[vf.name] = now
        worst = max(failing, key=lambda link: link.attempts.failure_streak)
        waits = [n for link in failing if (n := link.next_attempt_in) is not None]
        next_in = min(waits) if len(waits) == len(failing) else None  # else one tries now
        down = f"{len(failing)} of {len(links)} connections" if len(links) > 1 else "unreachable"
        when = "trying again now" if next_in is None else f"next in {next_in:.0f} s"
        self._log.warning(
            "waiting_for_venue",
            exchange=vf.name,
            connections_failing=len(failing),
            connections=len(links),
            attempt=worst.attempts.failure_streak,
            next_attempt_s=None if next_in is None else round(next_in, 1),
            error=worst.attempts.last_failure,
            summary=f"Waiting for venues: {vf.venue.display_name} {down} (attempt "
            f"{worst.attempts.failure_streak}, {when}: {worst.attempts.last_failure})",
        )


def log_subscriptions(manager: FeedManager, logger: Any = None) -> None:
    """The start-up line: how many book-ticker channels are subscribed of how many, and per
    venue what is missing and why (a warning unless every channel is subscribed or rejected)."""
    logger = logger if logger is not None else structlog.get_logger(__name__)
    expected = subscribed = rejected = 0
    missing: dict[str, str] = {}
    #: why -> "venue count" of the venues missing channels for that reason
    by_reason: dict[str, list[str]] = {}
    for vf in manager.venue_feeds.values():
        venue_subscribed = sum(len(f.symbols) for f in vf.links if f.subscribed)
        expected += len(vf.pair_of)
        subscribed += venue_subscribed
        rejected += len(vf.rejected)
        lacking = len(vf.pair_of) - venue_subscribed - len(vf.rejected)
        if lacking > 0:
            why = _why_missing(vf)
            missing[vf.name] = f"{lacking} ({why})"
            by_reason.setdefault(why, []).append(f"{vf.name} {lacking}")
    text = f"Subscribed to {subscribed} of {plural(expected, 'book ticker channel')}"
    if rejected:
        text += f", {rejected} rejected"
    if missing:  # one reason shared by several venues is said once
        text += "; missing: " + "; ".join(
            f"{', '.join(venues)} ({why})" for why, venues in by_reason.items()
        )
    level = logger.warning if missing else logger.info
    level(
        "subscriptions_ready",
        channels=subscribed,
        expected=expected,
        rejected=rejected,
        missing=missing,
        summary=text,
    )


def _why_missing(vf: VenueFeed) -> str:
    links = [f.link for f in vf.links if f.link is not None]
    failures = [
        link.attempts.last_failure
        for link in links
        if not link.is_up and link.attempts.last_failure
    ]
    if failures:
        return f"unreachable: {failures[0]}"
    if not all(link.is_up for link in links):
        return "not connected"
    return "no subscribe acknowledgement"
