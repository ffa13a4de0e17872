"""The latest-quote cache: one slot per (venue, pair) in preallocated numpy arrays.

The feed handlers call :meth:`QuoteCache.apply` once per decoded update (O(1), no allocation
beyond the update itself, whose exact strings are kept by reference). The scheduler and the
analytics read :meth:`QuoteCache.snapshot`, a consistent copy taken between two event-loop
steps, so no update can be half-applied in it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import msgspec
import numpy as np

from data_collector.pairs import Pair
from data_collector.venues.base import QuoteUpdate


class Outcome(IntEnum):
    ACCEPTED = 0
    STALE = 1  # sequence older than the last accepted one
    CROSSED = 2  # bid above ask on one venue
    INVALID = 3  # non-positive or unreadable price or size, or a price without its size
    #: the same sequence as the last accepted update: the venue re-sent an unchanged book
    #: (Bybit, every 3 s). Not stored again, but proof that the pair is alive.
    REPEAT = 4


class VenueStats(msgspec.Struct):
    """Counters of one venue, cumulative since start."""

    frames: int = 0
    updates: int = 0
    parse_errors: int = 0
    dropped_stale: int = 0
    dropped_crossed: int = 0
    dropped_invalid: int = 0
    dropped_unknown: int = 0
    #: updates that repeated the last accepted one (same sequence): alive, not out of order
    repeats: int = 0
    reconnects: int = 0
    #: connection attempts (first connects, reconnects, rotations) and the ones that failed
    connection_attempts: int = 0
    connection_failures: int = 0
    last_message_ns: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.ACCEPTED:
            self.updates += 1
        elif outcome is Outcome.REPEAT:
            self.repeats += 1
        elif outcome is Outcome.STALE:
            self.dropped_stale += 1
        elif outcome is Outcome.CROSSED:
            self.dropped_crossed += 1
        else:
            self.dropped_invalid += 1


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


# Module constants: cheaper than attribute look-ups on the hot path.
_NAN = math.nan
_INF = math.inf
#: first characters a size may start with: no sign, no "nan"/"inf"
_SIZE_START = frozenset("0123456789.")
_ACCEPTED, _STALE, _CROSSED, _INVALID, _REPEAT = (
    Outcome.ACCEPTED,
    Outcome.STALE,
    Outcome.CROSSED,
    Outcome.INVALID,
    Outcome.REPEAT,
)


def _flat_view(array: np.ndarray) -> memoryview:
    """A writable 1-D memoryview sharing ``array``'s (C-contiguous) memory."""
    return memoryview(array.reshape(-1))


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
        #: receive time of the last repeat (see Outcome.REPEAT); 0 before the first
        self.repeat_time_ns = np.zeros(shape, dtype=np.int64)
        self.live = np.zeros(shape, dtype=bool)
        self._quotes: list[QuoteUpdate | None] = [None] * (shape[0] * shape[1])
        #: the quote whose sizes bid_qty/ask_qty currently hold, per slot
        self._sized: list[QuoteUpdate | None] = [None] * (shape[0] * shape[1])
        # The hot path writes through flat memoryviews of the same buffers: a memoryview item
        # store costs about a third of a 2-D numpy scalar store.
        self._n_pairs = len(self.pairs)
        self._bid = _flat_view(self.bid)
        self._ask = _flat_view(self.ask)
        self._bid_qty = _flat_view(self.bid_qty)
        self._ask_qty = _flat_view(self.ask_qty)
        self._exchange_time_ms = _flat_view(self.exchange_time_ms)
        self._receive_time_ns = _flat_view(self.receive_time_ns)
        self._sequence = _flat_view(self.sequence)
        self._repeat_time_ns = _flat_view(self.repeat_time_ns)
        self._live = _flat_view(self.live)
        self.stats = {name: VenueStats() for name in self.venues}

    def apply(self, v: int, p: int, q: QuoteUpdate, receive_ns: int) -> Outcome:
        """Store ``q`` for (venue v, pair p) unless it is stale, a repeat, crossed or invalid.

        A sequence that is not newer is a repeat (the same one: only the pair's last-seen time
        is refreshed), a restart of the venue's numbering (stored all the same), or an update
        out of order (dropped).
        """
        i = v * self._n_pairs + p
        seq = q.sequence
        if seq >= 0 and seq <= (last := self._sequence[i]):  # the rare path: not newer
            if seq == last:
                self._repeat_time_ns[i] = receive_ns  # alive; the quote itself is unchanged
                return _REPEAT
            if not q.sequence_restart:
                return _STALE
        bp, bq, ap, aq = q.bid_price, q.bid_qty, q.ask_price, q.ask_qty
        if (bp is None) is not (bq is None) or (ap is None) is not (aq is None):
            return _INVALID  # a price without its size (or the reverse) cannot be stored
        # Sizes are only screened here (no sign, no nan/inf) and parsed once per snapshot in
        # _refresh_sizes: two float() calls less on every frame.
        if (bq is not None and bq[:1] not in _SIZE_START) or (
            aq is not None and aq[:1] not in _SIZE_START
        ):
            return _INVALID
        try:  # inlined: this runs once per frame
            bid = _NAN if bp is None else float(bp)
            ask = _NAN if ap is None else float(ap)
        except ValueError:
            return _INVALID
        # A present price must be finite and > 0; the range test is False for a "nan" the venue
        # wrote, so NaN only ever means a missing side.
        if (bp is not None and not 0.0 < bid < _INF) or (ap is not None and not 0.0 < ask < _INF):
            return _INVALID
        if bid > ask:
            return _CROSSED
        self._bid[i] = bid
        self._ask[i] = ask
        self._exchange_time_ms[i] = q.exchange_time_ms
        self._receive_time_ns[i] = receive_ns
        if seq >= 0:
            self._sequence[i] = seq
        self._live[i] = True
        self._quotes[i] = q
        return _ACCEPTED

    def last_seen_ns(self) -> np.ndarray:
        """Per (venue, pair): when the venue last proved the pair alive (an accepted update or
        a repeat of it), 0 if never."""
        return np.maximum(self.receive_time_ns, self.repeat_time_ns)

    def mark_not_live(self, v: int, pair_indexes: Iterable[int]) -> None:
        """A connection carrying these pairs was lost: keep the quotes but stop trusting them
        until a fresh update arrives. The venue may restart its sequence on the new
        connection, so forget the last sequence too."""
        idx = list(pair_indexes)
        self.live[v, idx] = False
        self.sequence[v, idx] = -1

    def reset_sequence(self, v: int, pair_indexes: Iterable[int]) -> None:
        """A new connection took these pairs over: the venue may number its updates afresh
        there, so accept the next update whatever its sequence (the quotes stay live)."""
        self.sequence[v, list(pair_indexes)] = -1

    def _refresh_sizes(self) -> None:
        """Parse the sizes of the quotes that changed since the last snapshot."""
        sized, bid_qty, ask_qty = self._sized, self._bid_qty, self._ask_qty
        for i, q in enumerate(self._quotes):
            if q is None or q is sized[i]:
                continue
            sized[i] = q
            try:
                bq = _NAN if q.bid_qty is None else float(q.bid_qty)
                aq = _NAN if q.ask_qty is None else float(q.ask_qty)
            except ValueError:  # passed the screen in apply() but is no number ("1.2.3")
                bq = aq = _NAN
            if not (q.bid_qty is None or 0.0 <= bq < _INF) or not (
                q.ask_qty is None or 0.0 <= aq < _INF
            ):
                self._live[i] = False  # unusable until the venue sends a readable quote
                self.stats[self.venues[i // self._n_pairs]].dropped_invalid += 1
            bid_qty[i] = bq
            ask_qty[i] = aq

    def snapshot(self) -> Snapshot:
        self._refresh_sizes()
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
