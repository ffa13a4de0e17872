"""Market summaries over one snapshot: spreads, spread alerts, volume transitions, health.

Vectorised with numpy over all pairs; Python only loops over the few alerts a summary finds.
Only ``Snapshot.usable`` quotes (live and two-sided) count. With more than two venues, a pair's
cross-venue difference is its widest one: (max mid - min mid) / mean mid over the venues where
it is usable. Thresholds are fractions (0.1 = 10 %).
"""

from __future__ import annotations

import numpy as np

from data_collector.analytics.records import (
    MarketHealth,
    SpreadAlert,
    SpreadAnalysis,
    Summary,
    VolumeChange,
    WidestSpread,
)
from data_collector.cache import Snapshot
from data_collector.pairs import USD_QUOTES, Pair

_SIDES = ("bid", "ask")


def _per_pair_spreads(
    snap: Snapshot, spread: np.ndarray, diff: np.ndarray
) -> dict[str, dict[str, float | None]]:
    """{symbol: {venue: spread %, ..., "diff_pct": cross-venue mid difference %}} for every
    pair usable somewhere; None where a venue has no usable quote."""
    pct = np.where(snap.usable, spread * 100.0, np.nan).T.tolist()  # (pairs, venues)
    diff_pct = (diff * 100.0).tolist()
    out: dict[str, dict[str, float | None]] = {}
    for p in np.flatnonzero(snap.usable.any(axis=0)).tolist():
        row: dict[str, float | None] = {
            venue: (None if value != value else value)  # NaN -> None
            for venue, value in zip(snap.venues, pct[p], strict=True)
        }
        row["diff_pct"] = None if diff_pct[p] != diff_pct[p] else diff_pct[p]
        out[str(snap.pairs[p])] = row
    return out


class MarketSummaries:
    """Summarises snapshots on demand; remembers which book sides were below the volume
    threshold, so a volume change is reported once, on the transition."""

    def __init__(self, *, volume_threshold: float, spread_alert_threshold: float) -> None:
        self._volume_threshold = float(volume_threshold)
        self._spread_alert_threshold = float(spread_alert_threshold)
        self._venues: tuple[str, ...] | None = None
        self._pairs: tuple[Pair, ...] = ()
        self._low = np.zeros((0, 0, 2), dtype=bool)
        self._usd_quote = np.zeros(0, dtype=bool)
        self._conv_cols = np.zeros(0, dtype=np.intp)
        self._conv_src = np.zeros(0, dtype=np.intp)

    def summarize(self, snap: Snapshot, open_opportunities: int) -> Summary:
        self._layout(snap)
        not_usable = ~snap.usable
        with np.errstate(invalid="ignore", divide="ignore"):
            mid = (snap.bid + snap.ask) * 0.5
            spread = (snap.ask - snap.bid) / mid
        mid[not_usable] = np.nan
        spread[not_usable] = np.nan
        return Summary(
            spread_analysis=self._spread_analysis(snap, spread, mid),
            spread_alerts=self._spread_alerts(snap, spread),
            volume_changes=self._volume_changes(snap, mid),
            market_health=self._market_health(snap, spread, open_opportunities),
        )

    def _layout(self, snap: Snapshot) -> None:
        """Per pair: is the quote a dollar, or which X/USDT pair converts it (normally once)."""
        if snap.venues == self._venues and (snap.pairs is self._pairs or snap.pairs == self._pairs):
            self._pairs = snap.pairs
            return
        self._venues, self._pairs = snap.venues, snap.pairs
        self._low = np.zeros((len(snap.venues), len(snap.pairs), 2), dtype=bool)
        index = {pair: p for p, pair in enumerate(snap.pairs)}
        usd = [pair.quote in USD_QUOTES for pair in snap.pairs]
        conv = [
            (p, index.get(Pair(pair.quote, "USDT"), -1))
            for p, pair in enumerate(snap.pairs)
            if not usd[p]
        ]
        conv = [(p, src) for p, src in conv if src >= 0]
        self._usd_quote = np.array(usd, dtype=bool)
        self._conv_cols = np.array([p for p, _ in conv], dtype=np.intp)
        self._conv_src = np.array([src for _, src in conv], dtype=np.intp)

    def _spread_analysis(
        self, snap: Snapshot, spread: np.ndarray, mid: np.ndarray
    ) -> SpreadAnalysis:
        counts = snap.usable.sum(axis=1)
        sums = np.nansum(spread, axis=1)
        avg = {
            venue: (float(sums[v] / counts[v]) * 100.0 if counts[v] else None)
            for v, venue in enumerate(snap.venues)
        }
        widest = None
        if snap.usable.any():
            v, p = np.unravel_index(int(np.nanargmax(spread)), spread.shape)
            widest = WidestSpread(snap.pairs[p], snap.venues[v], float(spread[v, p]) * 100.0)
        multi = snap.usable.sum(axis=0) >= 2
        cross = None
        diff_all = np.full(len(snap.pairs), np.nan)
        if multi.any():
            m = mid[:, multi]
            diff = (np.nanmax(m, axis=0) - np.nanmin(m, axis=0)) / np.nanmean(m, axis=0)
            diff_all[multi] = diff
            cross = float(diff.mean()) * 100.0
        return SpreadAnalysis(
            pairs=int(snap.usable.any(axis=0).sum()),
            avg_spread_pct=avg,
            widest=widest,
            avg_cross_venue_diff_pct=cross,
            spreads=_per_pair_spreads(snap, spread, diff_all),
        )

    def _spread_alerts(self, snap: Snapshot, spread: np.ndarray) -> tuple[SpreadAlert, ...]:
        with np.errstate(invalid="ignore"):
            wide = spread >= self._spread_alert_threshold
        return tuple(
            SpreadAlert(
                pair=snap.pairs[p],
                exchange=snap.venues[v],
                spread_pct=float(spread[v, p]) * 100.0,
                bid=float(snap.bid[v, p]),
                ask=float(snap.ask[v, p]),
            )
            for v, p in np.argwhere(wide).tolist()
        )

    def _usd_rate(self, mid: np.ndarray) -> np.ndarray:
        """Dollars per unit of each pair's quote currency, per venue; NaN when unknown.

        A non-dollar quote X converts at X/USDT's mid on the same venue, else at its mean mid
        over the venues where it is usable.
        """
        rate = np.full(mid.shape, np.nan)
        rate[:, self._usd_quote] = 1.0
        if self._conv_cols.size:
            m = mid[:, self._conv_src]
            live = ~np.isnan(m)
            with np.errstate(invalid="ignore", divide="ignore"):
                fallback = np.nansum(m, axis=0) / live.sum(axis=0)
            rate[:, self._conv_cols] = np.where(live, m, fallback[None, :])
        return rate

    def _volume_changes(self, snap: Snapshot, mid: np.ndarray) -> tuple[VolumeChange, ...]:
        rate = self._usd_rate(mid)
        notional = np.stack((snap.bid * snap.bid_qty * rate, snap.ask * snap.ask_qty * rate), -1)
        valid = snap.usable[:, :, None] & ~np.isnan(notional)
        low_now = notional < self._volume_threshold
        changed = valid & (low_now != self._low)
        self._low[valid] = low_now[valid]
        return tuple(
            VolumeChange(
                pair=snap.pairs[p],
                exchange=snap.venues[v],
                side=_SIDES[s],
                notional_usd=float(notional[v, p, s]),
                threshold_usd=self._volume_threshold,
                low=bool(low_now[v, p, s]),
            )
            for v, p, s in np.argwhere(changed).tolist()
        )

    @staticmethod
    def _market_health(snap: Snapshot, spread: np.ndarray, open_opportunities: int) -> MarketHealth:
        live = int((snap.usable.sum(axis=0) >= 2).sum())
        total = len(snap.pairs)
        n = int(snap.usable.sum())
        return MarketHealth(
            pairs_live=live,
            pairs_total=total,
            health_pct=live / total * 100.0 if total else 0.0,
            avg_spread_pct=float(np.nansum(spread) / n) * 100.0 if n else None,
            open_opportunities=open_opportunities,
        )
