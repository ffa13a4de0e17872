"""Cross-venue arbitrage opportunities, tracked from one snapshot tick to the next.

Every ordered venue pair is evaluated at once on arrays shaped (buy venue, sell venue, pairs);
Python only loops over the few opportunities that open or close on a tick. Only
``Snapshot.usable`` quotes (live and two-sided) count. The tracker knows nothing of logs: it
returns what opened and closed, and its caller hands the records to the consumers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from data_collector.analytics.records import (
    FeeMissing,
    OpportunityClosed,
    OpportunityOpened,
    TickRecord,
)
from data_collector.cache import Snapshot
from data_collector.pairs import Pair


def _finite(value: float) -> float | None:
    """NaN (a missing quantity) becomes None."""
    return value if math.isfinite(value) else None


class OpportunityTracker:
    """Opens, follows (peak, ticks) and closes opportunities; the threshold is net of fees."""

    def __init__(self, *, fees: Mapping[str, float], arbitrage_threshold: float) -> None:
        self._fees = dict(fees)
        self._threshold = float(arbitrage_threshold)
        # laid out for one (venues, pairs) shape; see _layout
        self._venues: tuple[str, ...] = ()
        self._pairs: tuple[Pair, ...] = ()
        #: flat index into the (V, V, P) arrays -> when that opportunity opened
        self._opened_at: dict[int, datetime] = {}
        self._alloc(0, 0)

    @property
    def open_count(self) -> int:
        return len(self._opened_at)

    def update(self, snap: Snapshot, tick_time: datetime) -> list[TickRecord]:
        """Open, track and close opportunities on this snapshot; what changed, in order."""
        records: list[TickRecord] = []
        self._layout(snap, tick_time, records)
        qual = self._qualify(snap)
        changed = np.not_equal(qual, self._open, out=self._changed)
        if changed.any():
            for i in np.flatnonzero(changed).tolist():
                if qual.flat[i]:
                    self._peak.flat[i] = -math.inf
                    self._ticks.flat[i] = 0
                    self._opened_at[i] = tick_time
                    records.append(self._opened(snap, i, tick_time))
                else:
                    records.append(self._close(i, tick_time))
        np.maximum(self._peak, self._net, out=self._peak, where=qual)
        np.add(self._ticks, 1, out=self._ticks, where=qual)
        np.copyto(self._open, qual)
        return records

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
        # The pair or venue list changed: indexes no longer match, close what was open.
        records.extend(self._close(i, tick_time) for i in list(self._opened_at))
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

    def _opened(self, snap: Snapshot, i: int, tick_time: datetime) -> OpportunityOpened:
        a, b, p = self._unravel(i)
        return OpportunityOpened(
            pair=snap.pairs[p],
            buy_exchange=snap.venues[a],
            sell_exchange=snap.venues[b],
            opened_at=tick_time,
            buy_price=float(snap.ask[a, p]),
            sell_price=float(snap.bid[b, p]),
            size=_finite(float(np.fmin(snap.ask_qty[a, p], snap.bid_qty[b, p]))),
            gross_pct=float(self._gross.flat[i]) * 100.0,
            net_pct=float(self._net.flat[i]) * 100.0,
            buy_fee_pct=float(self._fee[a]) * 100.0,
            sell_fee_pct=float(self._fee[b]) * 100.0,
        )

    def _close(self, i: int, tick_time: datetime) -> OpportunityClosed:
        opened_at = self._opened_at.pop(i)
        a, b, p = self._unravel(i)
        return OpportunityClosed(
            pair=self._pairs[p],
            buy_exchange=self._venues[a],
            sell_exchange=self._venues[b],
            opened_at=opened_at,
            closed_at=tick_time,
            peak_net_pct=float(self._peak.flat[i]) * 100.0,
            ticks=int(self._ticks.flat[i]),
        )
