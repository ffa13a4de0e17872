"""Arbitrage, spread, volume and connection analytics over cache snapshots, reported as logs.

Every computation is vectorised with numpy over all pairs. Arbitrage is evaluated for every
ordered venue pair at once on arrays shaped (buy venue, sell venue, pairs); Python only loops
over the few opportunities that open or close on a tick, and over the few alerts a summary
emits.

Conventions:

* Thresholds are fractions (0.005 = 0.5 %); every ``*_pct`` log field is a percentage.
* Only ``Snapshot.usable`` quotes (live and two-sided) count anywhere.
* Prices in summary lines keep 8 significant digits (more when the integer part is longer),
  no exponent, and at least two decimals: ``149.75``, ``152.00``, ``65000.10``,
  ``0.00001234`` (see :func:`format_price`).
* The per-unit opportunity in the alert line is written ``$2.25`` for dollar-quoted pairs and
  ``0.0001 BTC`` otherwise.
* With more than two venues, a pair's cross-venue difference is its widest one
  (max mid - min mid) / mean mid over the venues where it is usable.
* ``connection_status.updates_per_min`` is ``None`` on the first summary of a venue (there is
  no earlier count to take a difference from) and when the counter went backwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import structlog

from data_collector.cache import Snapshot, VenueStats
from data_collector.pairs import Pair

#: quote currencies taken as US dollars one to one
USD_QUOTES = frozenset({"USDT", "USDC", "USD", "FDUSD", "BUSD", "DAI", "TUSD"})

_SIDES = ("bid", "ask")


def format_price(value: float) -> str:
    """A price for humans: 8 significant digits (never rounding the integer part), positional,
    at least two decimals."""
    if not math.isfinite(value):
        return "n/a"
    digits = 8
    if abs(value) >= 1.0:
        digits = max(digits, int(math.log10(abs(value))) + 3)
    text = np.format_float_positional(
        value, precision=digits, unique=True, fractional=False, trim="-"
    )
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def format_qty(value: float | None) -> str:
    """A quantity for humans: up to 8 significant digits, positional, no padding."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return np.format_float_positional(value, precision=8, unique=True, fractional=False, trim="-")


def _finite(value: float) -> float | None:
    """JSON-friendly: NaN (a missing quantity) becomes None."""
    return value if math.isfinite(value) else None


def _money(value: float, quote: str) -> str:
    if quote in USD_QUOTES:
        return f"${format_price(value)}"
    return f"{format_price(value)} {quote}"


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


def _pct(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}%"


class _Opening:
    """What an open opportunity needs to remember besides its peak and tick count."""

    __slots__ = ("opened_at",)

    def __init__(self, opened_at: datetime) -> None:
        self.opened_at = opened_at


class Analytics:
    """Turns snapshots into arbitrage alerts (every tick) and market summaries (on demand)."""

    def __init__(
        self,
        *,
        fees: Mapping[str, float],
        arbitrage_threshold: float,
        volume_threshold: float,
        spread_alert_threshold: float,
        logger: Any = None,
    ) -> None:
        self._fees = dict(fees)
        self._arbitrage_threshold = float(arbitrage_threshold)
        self._volume_threshold = float(volume_threshold)
        self._spread_alert_threshold = float(spread_alert_threshold)
        self._log = logger if logger is not None else structlog.get_logger(__name__)
        # arbitrage state, laid out for one (venues, pairs) shape; see _arb_layout
        self._arb_venues: tuple[str, ...] = ()
        self._arb_pairs: tuple[Pair, ...] = ()
        self._opening: dict[int, _Opening] = {}
        self._alloc_arb(0, 0)
        # summary state
        self._sum_venues: tuple[str, ...] | None = None
        self._sum_pairs: tuple[Pair, ...] = ()
        self._low = np.zeros((0, 0, 2), dtype=bool)
        self._usd_quote = np.zeros(0, dtype=bool)
        self._conv_cols = np.zeros(0, dtype=np.intp)
        self._conv_src = np.zeros(0, dtype=np.intp)
        self._last_updates: dict[str, tuple[int, int]] = {}

    @property
    def open_opportunities(self) -> int:
        return len(self._opening)

    # ------------------------------------------------------------------ arbitrage (per tick)

    def on_tick(self, snap: Snapshot, tick_time: datetime) -> None:
        """Open, track and close cross-venue opportunities on this snapshot."""
        self._arb_layout(snap, tick_time)
        qual = self._qualify(snap)
        changed = np.not_equal(qual, self._open, out=self._changed)
        if changed.any():
            for i in np.flatnonzero(changed).tolist():
                if qual.flat[i]:
                    self._peak.flat[i] = -math.inf
                    self._ticks.flat[i] = 0
                    self._opening[i] = _Opening(tick_time)
                    self._alert(snap, i)
                else:
                    self._close(i, tick_time)
        np.maximum(self._peak, self._net, out=self._peak, where=qual)
        np.add(self._ticks, 1, out=self._ticks, where=qual)
        np.copyto(self._open, qual)

    def _alloc_arb(self, venues: int, pairs: int) -> None:
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
        self._fee_buy = np.zeros(venues)
        self._fee_sell = np.zeros(venues)
        self._fee_pair = np.zeros((venues, venues, 1))

    def _arb_layout(self, snap: Snapshot, tick_time: datetime) -> None:
        """Lay the state out for this snapshot's venues and pairs (normally once)."""
        if snap.pairs is self._arb_pairs and snap.venues == self._arb_venues:
            return
        if snap.venues == self._arb_venues and snap.pairs == self._arb_pairs:
            self._arb_pairs = snap.pairs  # an equal tuple: keep the state, use the fast check
            return
        # The pair or venue list changed: indexes no longer match, close what was open.
        for i in list(self._opening):
            self._close(i, tick_time)
        self._arb_venues, self._arb_pairs = snap.venues, snap.pairs
        self._alloc_arb(len(snap.venues), len(snap.pairs))
        for v, venue in enumerate(snap.venues):
            fee = self._fees.get(venue)
            if fee is None:
                self._log.warning(
                    "analytics_fee_missing",
                    exchange=venue,
                    summary=f"[ANALYTICS] No taker fee configured for {venue.upper()}: using 0",
                )
                fee = 0.0
            self._fee_buy[v] = self._fee_sell[v] = fee
        self._fee_pair[:, :, 0] = self._fee_buy[:, None] + self._fee_sell[None, :]

    def _qualify(self, snap: Snapshot) -> np.ndarray:
        """Fill net (buy at venue a's ask, sell at venue b's bid) and the qualifying mask."""
        ask = snap.ask[:, None, :]
        bid = snap.bid[None, :, :]
        with np.errstate(invalid="ignore"):  # NaN prices of absent quotes simply fail the test
            np.subtract(bid, ask, out=self._diff)
            np.divide(self._diff, ask, out=self._gross)
            np.subtract(self._gross, self._fee_pair, out=self._net)
            np.greater_equal(self._net, self._arbitrage_threshold, out=self._qual)
        np.logical_and(self._qual, snap.usable[:, None, :], out=self._qual)
        np.logical_and(self._qual, snap.usable[None, :, :], out=self._qual)
        np.logical_and(self._qual, self._offdiag, out=self._qual)
        return self._qual

    def _unravel(self, i: int) -> tuple[int, int, int]:
        """(buy venue, sell venue, pair) of a flat index into the (V, V, P) arrays."""
        n_venues, n_pairs = len(self._arb_venues), len(self._arb_pairs)
        return i // (n_venues * n_pairs), (i // n_pairs) % n_venues, i % n_pairs

    def _alert(self, snap: Snapshot, i: int) -> None:
        a, b, p = self._unravel(i)
        pair = snap.pairs[p]
        buy_venue, sell_venue = snap.venues[a], snap.venues[b]
        buy, sell = float(snap.ask[a, p]), float(snap.bid[b, p])
        size = float(np.fmin(snap.ask_qty[a, p], snap.bid_qty[b, p]))
        gross_pct = float(self._gross.flat[i]) * 100.0
        net_pct = float(self._net.flat[i]) * 100.0
        self._log.warning(
            "arbitrage_alert",
            symbol=str(pair),
            buy_exchange=buy_venue,
            sell_exchange=sell_venue,
            buy_price=buy,
            sell_price=sell,
            opportunity=sell - buy,
            gross_pct=gross_pct,
            net_pct=net_pct,
            size=_finite(size),
            profit=_finite(size * (sell - buy)),
            buy_fee_pct=float(self._fee_buy[a]) * 100.0,
            sell_fee_pct=float(self._fee_sell[b]) * 100.0,
            summary=(
                f"[ANALYTICS] Arbitrage Alert: {pair} - buy {buy_venue.upper()} "
                f"{format_price(buy)}, sell {sell_venue.upper()} {format_price(sell)} "
                f"(Opportunity: {_money(sell - buy, pair.quote)}, {gross_pct:.2f}% gross, "
                f"{net_pct:.2f}% net, size {format_qty(_finite(size))})"
            ),
        )

    def _close(self, i: int, tick_time: datetime) -> None:
        opening = self._opening.pop(i)
        a, b, p = self._unravel(i)
        pair = self._arb_pairs[p]
        buy_venue, sell_venue = self._arb_venues[a], self._arb_venues[b]
        duration = (tick_time - opening.opened_at).total_seconds()
        peak_pct = float(self._peak.flat[i]) * 100.0
        self._log.info(
            "arbitrage_closed",
            symbol=str(pair),
            buy_exchange=buy_venue,
            sell_exchange=sell_venue,
            duration_s=duration,
            peak_net_pct=peak_pct,
            ticks=int(self._ticks.flat[i]),
            summary=(
                f"[ANALYTICS] Arbitrage Closed: {pair} - buy {buy_venue.upper()}, "
                f"sell {sell_venue.upper()} after {duration:.1f}s (peak {peak_pct:.2f}% net)"
            ),
        )

    # ------------------------------------------------------------------ summaries (per interval)

    def summarize(
        self,
        snap: Snapshot,
        stats: Mapping[str, VenueStats],
        connections: Mapping[str, tuple[int, int]],
        now_ns: int,
    ) -> None:
        """Log spread analysis and alerts, volume transitions, market health, connections."""
        self._summary_layout(snap)
        not_usable = ~snap.usable
        with np.errstate(invalid="ignore", divide="ignore"):
            mid = (snap.bid + snap.ask) * 0.5
            spread = (snap.ask - snap.bid) / mid
        mid[not_usable] = np.nan
        spread[not_usable] = np.nan
        self._log_spread_analysis(snap, spread, mid)
        self._log_spread_alerts(snap, spread)
        self._log_volume(snap, mid)
        self._log_market_health(snap, spread)
        self._log_connections(snap.venues, stats, connections, now_ns)

    def _summary_layout(self, snap: Snapshot) -> None:
        """Per pair: is the quote a dollar, or which X/USDT pair converts it (normally once)."""
        if snap.venues == self._sum_venues and (
            snap.pairs is self._sum_pairs or snap.pairs == self._sum_pairs
        ):
            self._sum_pairs = snap.pairs
            return
        self._sum_venues, self._sum_pairs = snap.venues, snap.pairs
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

    def _log_spread_analysis(self, snap: Snapshot, spread: np.ndarray, mid: np.ndarray) -> None:
        counts = snap.usable.sum(axis=1)
        sums = np.nansum(spread, axis=1)
        avg = {
            venue: (float(sums[v] / counts[v]) * 100.0 if counts[v] else None)
            for v, venue in enumerate(snap.venues)
        }
        max_spread = None
        if snap.usable.any():
            v, p = np.unravel_index(int(np.nanargmax(spread)), spread.shape)
            max_spread = {
                "symbol": str(snap.pairs[p]),
                "venue": snap.venues[v],
                "pct": float(spread[v, p]) * 100.0,
            }
        # With more than two venues the difference is the widest one: (max mid - min mid).
        multi = snap.usable.sum(axis=0) >= 2
        cross = None
        diff_all = np.full(len(snap.pairs), np.nan)
        if multi.any():
            m = mid[:, multi]
            diff = (np.nanmax(m, axis=0) - np.nanmin(m, axis=0)) / np.nanmean(m, axis=0)
            diff_all[multi] = diff
            cross = float(diff.mean()) * 100.0
        analysed = int(snap.usable.any(axis=0).sum())
        venues_text = ", ".join(f"{venue.upper()} {_pct(avg[venue])}" for venue in snap.venues)
        self._log.info(
            "spread_analysis",
            pairs=analysed,
            avg_spread_pct=avg,
            max_spread=max_spread,
            avg_cross_venue_diff_pct=cross,
            spreads=_per_pair_spreads(snap, spread, diff_all),
            summary=(
                f"[ANALYTICS] Spread Analysis: {analysed} pairs, "
                f"avg spread {venues_text}, avg cross-venue diff {_pct(cross)}"
            ),
        )

    def _log_spread_alerts(self, snap: Snapshot, spread: np.ndarray) -> None:
        with np.errstate(invalid="ignore"):
            wide = spread >= self._spread_alert_threshold
        for v, p in np.argwhere(wide).tolist():
            pair, venue = snap.pairs[p], snap.venues[v]
            pct = float(spread[v, p]) * 100.0
            bid, ask = float(snap.bid[v, p]), float(snap.ask[v, p])
            self._log.warning(
                "spread_alert",
                symbol=str(pair),
                exchange=venue,
                spread_pct=pct,
                bid=bid,
                ask=ask,
                summary=(
                    f"[ANALYTICS] Spread Alert: {pair} on {venue.upper()} - spread {pct:.3f}% "
                    f"(bid {format_price(bid)}, ask {format_price(ask)})"
                ),
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

    def _log_volume(self, snap: Snapshot, mid: np.ndarray) -> None:
        rate = self._usd_rate(mid)
        notional = np.stack((snap.bid * snap.bid_qty * rate, snap.ask * snap.ask_qty * rate), -1)
        valid = snap.usable[:, :, None] & ~np.isnan(notional)
        low_now = notional < self._volume_threshold
        changed = valid & (low_now != self._low)
        self._low[valid] = low_now[valid]
        for v, p, s in np.argwhere(changed).tolist():
            self._log_volume_change(snap, v, p, s, float(notional[v, p, s]), bool(low_now[v, p, s]))

    def _log_volume_change(
        self, snap: Snapshot, v: int, p: int, s: int, notional: float, low: bool
    ) -> None:
        pair, venue, side = snap.pairs[p], snap.venues[v], _SIDES[s]
        fields = {
            "symbol": str(pair),
            "exchange": venue,
            "side": side,
            "notional_usd": notional,
            "threshold_usd": self._volume_threshold,
        }
        where = f"{pair} on {venue.upper()} - {side} notional ${notional:,.2f}"
        if low:
            summary = f"[ANALYTICS] Volume Alert: {where} below ${self._volume_threshold:,.2f}"
            self._log.warning("volume_alert", **fields, summary=summary)
        else:
            self._log.info(
                "volume_recovered", **fields, summary=f"[ANALYTICS] Volume Recovered: {where}"
            )

    def _log_market_health(self, snap: Snapshot, spread: np.ndarray) -> None:
        live = int((snap.usable.sum(axis=0) >= 2).sum())
        total = len(snap.pairs)
        health = live / total * 100.0 if total else 0.0
        n = int(snap.usable.sum())
        avg = float(np.nansum(spread) / n) * 100.0 if n else None
        opened = self.open_opportunities
        self._log.info(
            "market_health",
            pairs_live=live,
            pairs_total=total,
            health_pct=health,
            avg_spread_pct=avg,
            open_opportunities=opened,
            summary=(
                f"[ANALYTICS] Market Health: {live}/{total} pairs live on 2+ venues "
                f"({health:.1f}%), avg spread {_pct(avg)}, {opened} open opportunities"
            ),
        )

    def _log_connections(
        self,
        venues: Sequence[str],
        stats: Mapping[str, VenueStats],
        connections: Mapping[str, tuple[int, int]],
        now_ns: int,
    ) -> None:
        for venue in dict.fromkeys([*venues, *stats, *connections]):
            st = stats.get(venue) or VenueStats()
            up, expected = connections.get(venue, (0, 0))
            rate = self._updates_per_min(venue, st.updates, now_ns)
            age = (now_ns - st.last_message_ns) / 1e9 if st.last_message_ns else None
            rate_text = "n/a" if rate is None else f"{rate:.0f}"
            age_text = "no message yet" if age is None else f"last message {age:.1f}s ago"
            self._log.info(
                "connection_status",
                exchange=venue,
                connections_up=up,
                connections_expected=expected,
                updates_per_min=rate,
                reconnects=st.reconnects,
                last_message_age_s=age,
                parse_errors=st.parse_errors,
                dropped=st.dropped_stale
                + st.dropped_crossed
                + st.dropped_invalid
                + st.dropped_unknown,
                summary=(
                    f"[CONNECTION] {venue.upper()}: {up}/{expected} connections up, "
                    f"{rate_text} updates/min, {st.reconnects} reconnects, {age_text}"
                ),
            )

    def _updates_per_min(self, venue: str, updates: int, now_ns: int) -> float | None:
        """Rate since the previous summary; None on the first one or after a counter reset."""
        previous = self._last_updates.get(venue)
        self._last_updates[venue] = (updates, now_ns)
        if previous is None:
            return None
        delta, elapsed_ns = updates - previous[0], now_ns - previous[1]
        if delta < 0 or elapsed_ns <= 0:
            return None
        return delta * 60e9 / elapsed_ns
