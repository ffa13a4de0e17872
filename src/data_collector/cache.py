"""The latest-quote cache: one slot per (venue, pair) in preallocated numpy arrays.

The feed handlers call :meth:`QuoteCache.apply` once per decoded update (O(1), no allocation
beyond the update itself, whose exact strings are kept by reference). The scheduler and the
analytics read :meth:`QuoteCache.snapshot`, a consistent copy taken between two event-loop
steps, so no update can be half-applied in it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import msgspec
import numpy as np

from data_collector.pairs import Pair
from data_collector.venues.base import QuoteUpdate


class Outcome(IntEnum):
    ACCEPTED = 0
    STALE = 1  # sequence not newer than the last accepted one
    CROSSED = 2  # bid above ask on one venue
    INVALID = 3  # non-positive or unreadable price
    UNKNOWN_SYMBOL = 4


class VenueStats(msgspec.Struct):
    """Counters of one venue, cumulative since start."""

    frames: int = 0
    updates: int = 0
    parse_errors: int = 0
    dropped_stale: int = 0
    dropped_crossed: int = 0
    dropped_invalid: int = 0
    dropped_unknown: int = 0
    reconnects: int = 0
    last_message_ns: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.ACCEPTED:
            self.updates += 1
        elif outcome is Outcome.STALE:
            self.dropped_stale += 1
        elif outcome is Outcome.CROSSED:
            self.dropped_crossed += 1
        elif outcome is Outcome.INVALID:
            self.dropped_invalid += 1
        else:
            self.dropped_unknown += 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent copy of the cache. Arrays are shaped (venues, pairs)."""

    venues: tuple[str, ...]
    pairs: tuple[Pair, ...]
    bid: np.ndarray
    bid_qty: np.ndarray
    ask: np.ndarray
    ask_qty: np.ndarray
    exchange_time_ms: np.ndarray
    receive_time_ns: np.ndarray
    #: live (its connection is up and it was refreshed since) and two-sided
    usable: np.ndarray
    #: the QuoteUpdate that set each slot (exact strings), flat index venue * len(pairs) + pair
    quotes: list[QuoteUpdate | None]

    def quote(self, venue_index: int, pair_index: int) -> QuoteUpdate | None:
        return self.quotes[venue_index * len(self.pairs) + pair_index]


def _price(text: str | None) -> float:
    """float of a venue decimal string; NaN when the side is missing."""
    if text is None:
        return math.nan
    return float(text)


class QuoteCache:
    """Latest top of book per (venue, pair)."""

    def __init__(self, venues: Sequence[str], pairs: Sequence[Pair]) -> None:
        self.venues = tuple(venues)
        self.pairs = tuple(pairs)
        self.venue_index = {name: i for i, name in enumerate(self.venues)}
        self.pair_index = {pair: i for i, pair in enumerate(self.pairs)}
        shape = (len(self.venues), len(self.pairs))
        self.bid = np.full(shape, np.nan)
        self.bid_qty = np.full(shape, np.nan)
        self.ask = np.full(shape, np.nan)
        self.ask_qty = np.full(shape, np.nan)
        self.exchange_time_ms = np.zeros(shape, dtype=np.int64)
        self.receive_time_ns = np.zeros(shape, dtype=np.int64)
        self.sequence = np.full(shape, -1, dtype=np.int64)
        self.live = np.zeros(shape, dtype=bool)
        self._quotes: list[QuoteUpdate | None] = [None] * (shape[0] * shape[1])
        self.stats = {name: VenueStats() for name in self.venues}

    def apply(self, v: int, p: int, q: QuoteUpdate, receive_ns: int) -> Outcome:
        """Store ``q`` for (venue v, pair p) unless it is stale, crossed or invalid."""
        seq = q.sequence
        if seq >= 0 and seq <= self.sequence[v, p]:
            return Outcome.STALE
        try:
            bid = _price(q.bid_price)
            ask = _price(q.ask_price)
            bid_qty = _price(q.bid_qty)
            ask_qty = _price(q.ask_qty)
        except ValueError:
            return Outcome.INVALID
        if bid <= 0.0 or ask <= 0.0 or bid_qty < 0.0 or ask_qty < 0.0:
            return Outcome.INVALID
        if math.isinf(bid) or math.isinf(ask):
            return Outcome.INVALID
        if bid > ask:
            return Outcome.CROSSED
        self.bid[v, p] = bid
        self.ask[v, p] = ask
        self.bid_qty[v, p] = bid_qty
        self.ask_qty[v, p] = ask_qty
        self.exchange_time_ms[v, p] = q.exchange_time_ms
        self.receive_time_ns[v, p] = receive_ns
        if seq >= 0:
            self.sequence[v, p] = seq
        self.live[v, p] = True
        self._quotes[v * len(self.pairs) + p] = q
        return Outcome.ACCEPTED

    def mark_not_live(self, v: int, pair_indexes: Iterable[int]) -> None:
        """A connection carrying these pairs was lost: keep the quotes but stop trusting them
        until a fresh update arrives. The venue may restart its sequence on the new
        connection, so forget the last sequence too."""
        idx = list(pair_indexes)
        self.live[v, idx] = False
        self.sequence[v, idx] = -1

    def snapshot(self) -> Snapshot:
        usable = self.live & ~np.isnan(self.bid) & ~np.isnan(self.ask)
        return Snapshot(
            venues=self.venues,
            pairs=self.pairs,
            bid=self.bid.copy(),
            bid_qty=self.bid_qty.copy(),
            ask=self.ask.copy(),
            ask_qty=self.ask_qty.copy(),
            exchange_time_ms=self.exchange_time_ms.copy(),
            receive_time_ns=self.receive_time_ns.copy(),
            usable=usable,
            quotes=list(self._quotes),
        )


def now_ns() -> int:
    return time.time_ns()
