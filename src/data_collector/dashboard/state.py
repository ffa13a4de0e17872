"""One state of the dashboard, built from the collector's memory only (never the database).

The quote matrix (pairs x venues: bid and ask exactly as the venue wrote them, spread, and
whether the quote is live, stale or not live), the best net cross-venue opportunity per pair,
the open and recently closed opportunities, and each venue's connections, frames/s and quote
age. Vectorised over the snapshot's arrays, so a 2,000-pair state costs milliseconds, and
built once per tick however many viewers there are (see :mod:`data_collector.dashboard.feed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np

from data_collector.cache import Snapshot
from data_collector.dashboard.board import OpportunityBoard
from data_collector.monitoring.sources import CollectorStatus

#: quote states in the matrix
LIVE, STALE, NOT_LIVE = 0, 1, 2


class StateBuilder:
    """Builds states; remembers the previous frame counts for frames/s."""

    def __init__(
        self,
        board: OpportunityBoard,
        fees: Mapping[str, float],
        *,
        threshold: float,
        stale_after_s: float,
    ) -> None:
        self.board = board
        self.fees = dict(fees)
        self.threshold_pct = threshold * 100.0
        self.stale_after_s = stale_after_s
        self._frames: dict[str, tuple[int, int]] = {}

    def build(
        self, snap: Snapshot, tick_time: datetime, tick: int, status: CollectorStatus
    ) -> dict[str, Any]:
        """The state of snapshot number ``tick``, taken at ``tick_time``."""
        now_s = status.now_ns / 1e9
        return {
            "time": tick_time.isoformat(),
            "tick": tick,
            "threshold_pct": self.threshold_pct,
            "venues": self._venues(snap, status, now_s),
            "exchanges": list(snap.venues),
            "pairs": [str(p) for p in snap.pairs],
            "matrix": _matrix(snap, now_s, self.stale_after_s),
            "best": _best(snap, np.array([self.fees.get(v, 0.0) for v in snap.venues])),
            "open": self._open(tick_time),
            "closed": [
                {
                    "symbol": str(r.pair),
                    "buy": r.buy_exchange,
                    "sell": r.sell_exchange,
                    "closed_at": r.closed_at.isoformat(),
                    "duration_s": r.duration_s,
                    "peak_net_pct": round(r.peak_net_pct, 4),
                }
                for r in self.board.recently_closed
            ],
        }

    def _open(self, tick_time: datetime) -> list[dict[str, Any]]:
        rows = sorted(self.board.open.values(), key=lambda r: -r.net_pct)
        return [
            {
                "symbol": str(r.pair),
                "buy": r.buy_exchange,
                "sell": r.sell_exchange,
                "opened_at": r.opened_at.isoformat(),
                "age_s": (tick_time - r.opened_at).total_seconds(),
                "buy_price": r.buy_price,
                "sell_price": r.sell_price,
                "size": r.size,
                "gross_pct": round(r.gross_pct, 4),
                "net_pct": round(r.net_pct, 4),
            }
            for r in rows
        ]

    def _venues(self, snap: Snapshot, status: CollectorStatus, now_s: float) -> list[Any]:
        venues = []
        with np.errstate(invalid="ignore"):
            ages = now_s - snap.receive_time_ns / 1e9
        for v, name in enumerate(snap.venues):
            vs = status.venues.get(name)
            if vs is None:
                continue
            frames, last_ns = vs.stats.frames, vs.stats.last_message_ns
            previous = self._frames.get(name)
            self._frames[name] = (frames, status.now_ns)
            rate = None
            if previous is not None and status.now_ns > previous[1]:
                rate = round(max(frames - previous[0], 0) * 1e9 / (status.now_ns - previous[1]), 1)
            live_ages = ages[v][snap.usable[v]]
            venues.append(
                {
                    "name": name,
                    "up": vs.connections_up,
                    "expected": vs.connections_expected,
                    "frames_per_s": rate,
                    "last_message_age_s": round(now_s - last_ns / 1e9, 3) if last_ns else None,
                    "quote_age_s": round(float(np.median(live_ages)), 3)
                    if live_ages.size
                    else None,
                    "live_quotes": int(snap.usable[v].sum()),
                }
            )
        return venues


def _matrix(snap: Snapshot, now_s: float, stale_after_s: float) -> list[list[Any]]:
    """Per pair, per venue: None (no quote yet) or [bid, ask, spread %, state]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = (snap.bid + snap.ask) / 2
        spread = np.round((snap.ask - snap.bid) / mid * 100.0, 4)
        stale = now_s - snap.receive_time_ns / 1e9 > stale_after_s
    states = np.where(snap.usable, np.where(stale, STALE, LIVE), NOT_LIVE).tolist()
    spreads = np.where(np.isfinite(spread), spread, np.nan).tolist()
    n_venues, n_pairs = len(snap.venues), len(snap.pairs)
    quotes = snap.quotes
    rows: list[list[Any]] = []
    for p in range(n_pairs):
        row: list[Any] = []
        for v in range(n_venues):
            q = quotes[v * n_pairs + p]
            if q is None:
                row.append(None)
                continue
            s = spreads[v][p]
            row.append([q.bid_price, q.ask_price, None if s != s else s, states[v][p]])
        rows.append(row)
    return rows


def _best(snap: Snapshot, fees: np.ndarray) -> list[Any]:
    """Per pair: the best [buy venue, sell venue, gross %, net %] over usable quotes (venues
    as indexes into ``exchanges``), or None.

    Net of both taker fees, as the opportunity tracker counts it: buy at one venue's ask,
    sell at another's bid.
    """
    n_venues = len(snap.venues)
    if n_venues < 2:
        return [None] * len(snap.pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        gross = (snap.bid[None, :, :] - snap.ask[:, None, :]) / snap.ask[:, None, :]
    net = gross - (fees[:, None] + fees[None, :])[:, :, None]
    other_venue = ~np.eye(n_venues, dtype=bool)[..., None]
    ok = snap.usable[:, None, :] & snap.usable[None, :, :] & other_venue
    net = np.where(ok, net, -np.inf).reshape(n_venues * n_venues, -1)
    choice = np.argmax(net, axis=0)
    columns = np.arange(net.shape[1])
    best_net = net[choice, columns]
    best_gross = gross.reshape(n_venues * n_venues, -1)[choice, columns]
    out: list[Any] = []
    for c, n, g in zip(choice.tolist(), best_net.tolist(), best_gross.tolist(), strict=True):
        if n == -np.inf:
            out.append(None)
        else:
            out.append([c // n_venues, c % n_venues, round(g * 100, 4), round(n * 100, 4)])
    return out
