"""Each alert record worded as one short, readable message, and bursts as one digest.

Pure functions: the same record always gives the same :class:`Alert`. Titles name what
happened, bodies give the numbers a reader acts on (symbol, venues, prices, gross/net %, size;
duration on close; venue and reason for venue events). ``line`` is the one-line form a digest
lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_collector.alerts.events import AlertRecord, PairSilent, VenueDown, VenueUp
from data_collector.analytics.formatting import (
    format_amount,
    format_money,
    format_price,
    format_qty,
)
from data_collector.analytics.records import OpportunityClosed, OpportunityOpened
from data_collector.wording import plural

#: apprise's notify types, as plain strings, least to most severe
SEVERITY = ("info", "success", "warning", "failure")
#: a digest lists at most this many alerts, then says how many more there were
DIGEST_LINES = 20


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to send."""

    #: the event name (``arbitrage_alert``, ``venue_down``, ...)
    event: str
    #: what the cooldown is counted per: the same pair and venue pair, venue, or venue and pair
    key: tuple[str, ...]
    title: str
    body: str
    #: the whole alert on one line, for digests
    line: str
    #: apprise notify type: info, success, warning or failure
    kind: str = "info"
    #: how many alerts this message carries (more than one for a digest)
    count: int = 1


def word(record: AlertRecord) -> Alert:
    """The message for one record."""
    match record:
        case OpportunityOpened():
            return _opened(record)
        case OpportunityClosed():
            return _closed(record)
        case VenueDown():
            return _venue_down(record)
        case VenueUp():
            return _venue_up(record)
        case PairSilent():
            return _pair_silent(record)
    raise TypeError(f"not an alert record: {type(record).__name__}")


def opportunity_key(symbol: str, buy: str, sell: str) -> tuple[str, ...]:
    return ("arbitrage", symbol, buy, sell)


def _opened(r: OpportunityOpened) -> Alert:
    symbol, buy, sell = str(r.pair), r.buy_exchange.upper(), r.sell_exchange.upper()
    prices = f"buy {buy} {format_price(r.buy_price)}, sell {sell} {format_price(r.sell_price)}"
    pcts = f"{r.gross_pct:.2f}% gross, {r.net_pct:.2f}% net"
    size = f"size {format_qty(r.size)} {r.pair.base}" if r.size is not None else "size unknown"
    profit = f"net profit {format_amount(r.net_profit, r.pair.quote)}"
    return Alert(
        event="arbitrage_alert",
        key=opportunity_key(symbol, r.buy_exchange, r.sell_exchange),
        title=f"Arbitrage {symbol}: {r.net_pct:.2f}% net",
        body=(
            f"{symbol}: {prices}\n{pcts} of fees, {size}: {profit} "
            f"(gap {format_money(r.opportunity, r.pair.quote)} per unit)\n"
            f"opened {r.opened_at:%Y-%m-%d %H:%M:%S} UTC"
        ),
        line=f"{symbol}: {prices}, {pcts}, {size}, {profit}",
        kind="warning",
    )


def _closed(r: OpportunityClosed) -> Alert:
    symbol, buy, sell = str(r.pair), r.buy_exchange.upper(), r.sell_exchange.upper()
    took = format_duration(r.duration_s)
    return Alert(
        event="arbitrage_closed",
        key=opportunity_key(symbol, r.buy_exchange, r.sell_exchange),
        title=f"Closed {symbol}: buy {buy}, sell {sell} after {took}",
        body=(
            f"{symbol}: buy {buy}, sell {sell} closed after {took} "
            f"({plural(r.ticks, 'tick')}), peak {r.peak_net_pct:.2f}% net"
        ),
        line=f"{symbol}: buy {buy}, sell {sell} closed after {took}, "
        f"peak {r.peak_net_pct:.2f}% net",
        kind="info",
    )


def _venue_down(r: VenueDown) -> Alert:
    venue = r.exchange.upper()
    state = f"{r.connections_up}/{plural(r.connections_expected, 'connection')} up"
    return Alert(
        event="venue_down",
        key=("venue", r.exchange),
        title=f"{venue} down",
        body=f"{venue}: {state} ({r.reason}); its quotes are not stored until it is back",
        line=f"{venue} down: {state} ({r.reason})",
        kind="failure",
    )


def _venue_up(r: VenueUp) -> Alert:
    venue = r.exchange.upper()
    took = format_duration(r.down_s)
    return Alert(
        event="venue_up",
        key=("venue", r.exchange),
        title=f"{venue} up again",
        body=f"{venue}: every connection is up again after {took} down",
        line=f"{venue} up again after {took}",
        kind="success",
    )


def _pair_silent(r: PairSilent) -> Alert:
    venue = r.exchange.upper()
    took = format_duration(r.silent_s)
    return Alert(
        event="pair_silent",
        key=("pair", r.exchange, r.symbol),
        title=f"{r.symbol} silent on {venue}",
        body=f"{r.symbol} on {venue}: no update for {took} while the connection is up",
        line=f"{r.symbol} silent on {venue} for {took}",
        kind="warning",
    )


def digest(alerts: list[Alert]) -> Alert:
    """One message carrying a burst of alerts, most severe kind first."""
    count = sum(a.count for a in alerts)
    lines = [a.line for a in alerts[:DIGEST_LINES]]
    if len(alerts) > DIGEST_LINES:
        lines.append(f"... and {len(alerts) - DIGEST_LINES} more")
    events = sorted({a.event for a in alerts})
    return Alert(
        event="digest",
        key=("digest",),
        title=f"{plural(count, 'alert')} ({', '.join(events)})",
        body="\n".join(lines),
        line=plural(count, "alert"),
        kind=max((a.kind for a in alerts), key=SEVERITY.index),
        count=count,
    )


def probe_message() -> Alert:
    """What ``--test-alerts`` sends."""
    text = "Test message from cex-arb-collector: alerts reach this target."
    return Alert(event="test", key=("test",), title="cex-arb-collector test", body=text, line=text)


def format_duration(seconds: float) -> str:
    """``6.0s``, ``2m05s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
