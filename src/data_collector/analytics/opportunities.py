"""Cross-venue arbitrage opportunities, tracked from one snapshot tick to the next.

Every ordered venue pair is evaluated at once on arrays shaped (buy venue, sell venue, pairs);
Python only loops over the few opportunities that open, close or reach a new peak on a tick
(the peak keeps the venues' exact price strings). Only ``Snapshot.usable`` quotes (live and
two-sided) count. The tracker knows nothing of logs: it returns what opened and closed, and its
caller hands the records to the consumers.

An opportunity closes as ``converged`` when both quotes are still usable but no longer clear
the threshold, ``stale`` when either quote stopped being usable (or left the snapshot), and
``shutdown`` when :meth:`OpportunityTracker.close_all` ends it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from data_collector.analytics.records import (
    CONVERGED,
    STALE,
    CloseReason,
    FeeMissing,
    OpenOpportunity,
    OpportunityClosed,
    OpportunityOpened,
    OpportunityQuote,
    TickRecord,
)
from data_collector.cache import Snapshot
from data_collector.pairs import Pair


def _finite(value: float) -> float | None:
    """NaN (a missing quantity) becomes None."""
    return value if math.isfinite(value) else None


class _Open:
    """What the tracker remembers of one open opportunity beyond its arrays."""

    __slots__ = ("open_net_pct", "opened_at", "peak")

    def __init__(self, opened_at: datetime, peak: OpportunityQuote) -> None:
        self.opened_at = opened_at
        self.open_net_pct = peak.net_pct
        self.peak = peak


class OpportunityTracker:
    """Opens, follows (peak, ticks) and closes opportunities; the threshold is net of fees."""

    def __init__(self, *, fees: Mapping[str, float], arbitrage_threshold: float) -> None:
        self._fees = dict(fees)
        self._threshold = float(arbitrage_threshold)
        # laid out for one (venues, pairs) shape; see _layout
        self._venues: tuple[str, ...] = ()
        self._pairs: tuple[Pair, ...] = ()
        #: flat index into the (V, V, P) arrays -> that open opportunity
        self._opened: dict[int, _Open] = {}
        #: the latest tick seen: every open opportunity was open on it
        self._last_tick: datetime | None = None
        self._alloc(0, 0)

    @property
    def open_count(self) -> int:
        return len(self._opened)

    def update(self, snap: Snapshot, tick_time: datetime) -> list[TickRecord]:
        """Open, track and close opportunities on this snapshot; what changed, in order
        (closings first)."""
        records: list[TickRecord] = []
        self._layout(snap, tick_time, records)
        qual = self._qualify(snap)
        changed = np.not_equal(qual, self._open, out=self._changed)
        opening: list[int] = []
        if changed.any():
            for i in np.flatnonzero(changed).tolist():
                if qual.flat[i]:
                    self._peak.flat[i] = -math.inf
                    self._ticks.flat[i] = 0
                    opening.append(i)
                else:
                    records.append(self._close(i, tick_time, self._reason(snap, i)))
        self._track_peaks(snap, qual, tick_time, opening)
        records.extend(self._opened_record(snap, i) for i in opening)
        np.add(self._ticks, 1, out=self._ticks, where=qual)
        np.copyto(self._open, qual)
        self._last_tick = tick_time
        return records

    def close_all(self, closed_at: datetime, reason: CloseReason) -> list[OpportunityClosed]:
        """Close every open opportunity (at shutdown); the tracker starts afresh."""
        records = [self._close(i, closed_at, reason) for i in list(self._opened)]
        self._open.fill(False)
        return records

    def open_opportunities(self) -> tuple[OpenOpportunity, ...]:
        """The opportunities open as of the latest tick."""
        last = self._last_tick
        if last is None:
            return ()
        out = []
        for i, state in self._opened.items():
            a, b, p = self._unravel(i)
            out.append(
                OpenOpportunity(
                    pair=self._pairs[p],
                    buy_exchange=self._venues[a],
                    sell_exchange=self._venues[b],
                    opened_at=state.opened_at,
                    open_net_pct=state.open_net_pct,
                    peak=state.peak,
                    ticks=int(self._ticks.flat[i]),
                    last_seen_at=last,
                )
            )
        return tuple(out)

    def _track_peaks(
        self, snap: Snapshot, qual: np.ndarray, tick_time: datetime, opening: list[int]
    ) -> None:
        """Raise the peaks that this tick beats (a new opportunity's first tick always does),
        keeping the exact strings of the peak tick."""
        improved = np.greater(self._net, self._peak, out=self._improved)
        np.logical_and(improved, qual, out=improved)
        if not improved.any():
            return
        np.copyto(self._peak, self._net, where=improved)
        new = set(opening)
        for i in np.flatnonzero(improved).tolist():
            quote = self._quote(snap, i, tick_time)
            if i in new:
                self._opened[i] = _Open(tick_time, quote)
            else:
                self._opened[i].peak = quote

    def _alloc(self, venues: int, pairs: int) -> None:
        """Preallocate the per-tick work arrays so a tick allocates next to nothing."""
        shape = (venues, venues, pairs)
        self._diff = np.empty(shape)
        self._gross = np.empty(shape)
        self._net = np.empty(shape)
        self._qual = np.zeros(shape, dtype=bool)
        self._changed = np.zeros(shape, dtype=bool)
        self._open = np.zeros(shape, dtype=bool)
        self._peak = np.full(shape, -math.inf)
        self._improved = np.zeros(shape, dtype=bool)
        self._ticks = np.zeros(shape, dtype=np.int64)
        self._offdiag = ~np.eye(venues, dtype=bool)[:, :, None]
        self._fee = np.zeros(venues)
        self._fee_pair = np.zeros((venues, venues, 1))

    def _layout(self, snap: Snapshot, tick_time: datetime, records: list[TickRecord]) -> None:
        """Lay the state out for this snapshot's venues and pairs (normally once)."""
        if snap.pairs is self._pairs and snap.venues == self._venues:
            return
        if snap.venues == self._venues and snap.pairs == self._pairs:
            self._pairs = snap.pairs  # an equal tuple: keep the state, use the fast check
            return
        # The pair or venue list changed: indexes no longer match, close what was open (its
        # quotes are no longer in the snapshot).
        records.extend(self._close(i, tick_time, STALE) for i in list(self._opened))
        self._venues, self._pairs = snap.venues, snap.pairs
        self._alloc(len(snap.venues), len(snap.pairs))
        for v, venue in enumerate(snap.venues):
            fee = self._fees.get(venue)
            if fee is None:
                records.append(FeeMissing(venue))
                fee = 0.0
            self._fee[v] = fee
        self._fee_pair[:, :, 0] = self._fee[:, None] + self._fee[None, :]

    def _qualify(self, snap: Snapshot) -> np.ndarray:
        """Fill net (buy at venue a's ask, sell at venue b's bid) and the qualifying mask."""
        ask = snap.ask[:, None, :]
        bid = snap.bid[None, :, :]
        with np.errstate(invalid="ignore"):  # NaN prices of absent quotes simply fail the test
            np.subtract(bid, ask, out=self._diff)
            np.divide(self._diff, ask, out=self._gross)
            np.subtract(self._gross, self._fee_pair, out=self._net)
            np.greater_equal(self._net, self._threshold, out=self._qual)
        np.logical_and(self._qual, snap.usable[:, None, :], out=self._qual)
        np.logical_and(self._qual, snap.usable[None, :, :], out=self._qual)
        np.logical_and(self._qual, self._offdiag, out=self._qual)
        return self._qual

    def _unravel(self, i: int) -> tuple[int, int, int]:
        """(buy venue, sell venue, pair) of a flat index into the (V, V, P) arrays."""
        n_venues, n_pairs = len(self._venues), len(self._pairs)
        return i // (n_venues * n_pairs), (i // n_pairs) % n_venues, i % n_pairs

    def _reason(self, snap: Snapshot, i: int) -> CloseReason:
        """converged while both quotes are usable, stale once either is not."""
        a, b, p = self._unravel(i)
        return CONVERGED if snap.usable[a, p] and snap.usable[b, p] else STALE

    def _quote(self, snap: Snapshot, i: int, tick_time: datetime) -> OpportunityQuote:
        """Both legs of opportunity ``i`` on this tick, with the venues' exact strings."""
        a, b, p = self._unravel(i)
        n_pairs = len(self._pairs)
        buy, sell = snap.quotes[a * n_pairs + p], snap.quotes[b * n_pairs + p]
        assert buy is not None and sell is not None  # usable implies a stored quote
        ask_qty, bid_qty = float(snap.ask_qty[a, p]), float(snap.bid_qty[b, p])
        # the smaller size, or the only one known (np.fmin, as the opened record's size)
        size = buy.ask_qty if math.isnan(bid_qty) or ask_qty <= bid_qty else sell.bid_qty
        size_value = _finite(float(np.fmin(ask_qty, bid_qty)))
        # each taker fee charged on its own leg, as OpportunityOpened.net_profit
        bought = float(snap.ask[a, p]) * (1.0 + self._fee[a])
        sold = float(snap.bid[b, p]) * (1.0 - self._fee[b])
        return OpportunityQuote(
            at=tick_time,
            buy_price=buy.ask_price,  # type: ignore[arg-type]  # two-sided: not None
            sell_price=sell.bid_price,  # type: ignore[arg-type]
            size=size if size_value is not None else None,
            gross_pct=float(self._gross.flat[i]) * 100.0,
            net_pct=float(self._net.flat[i]) * 100.0,
            profit=None if size_value is None else size_value * (sold - bought),
        )

    def _opened_record(self, snap: Snapshot, i: int) -> OpportunityOpened:
        a, b, p = self._unravel(i)
        state = self._opened[i]
        return OpportunityOpened(
            pair=snap.pairs[p],
            buy_exchange=snap.venues[a],
            sell_exchange=snap.venues[b],
            opened_at=state.opened_at,
            buy_price=float(snap.ask[a, p]),
            sell_price=float(snap.bid[b, p]),
            size=_finite(float(np.fmin(snap.ask_qty[a, p], snap.bid_qty[b, p]))),
            gross_pct=float(self._gross.flat[i]) * 100.0,
            net_pct=float(self._net.flat[i]) * 100.0,
            buy_fee_pct=float(self._fee[a]) * 100.0,
            sell_fee_pct=float(self._fee[b]) * 100.0,
            quote=state.peak,
        )

    def _close(self, i: int, closed_at: datetime, reason: CloseReason) -> OpportunityClosed:
        state = self._opened.pop(i)
        a, b, p = self._unravel(i)
        return OpportunityClosed(
            pair=self._pairs[p],
            buy_exchange=self._venues[a],
            sell_exchange=self._venues[b],
            opened_at=state.opened_at,
            closed_at=closed_at,
            peak_net_pct=state.peak.net_pct,
            ticks=int(self._ticks.flat[i]),
            reason=reason,
            open_net_pct=state.open_net_pct,
            peak=state.peak,
            last_seen_at=self._last_tick or state.opened_at,
        )
