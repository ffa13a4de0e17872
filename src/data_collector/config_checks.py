"""Checks on a decoded configuration: every number finite and in a range a careful user would
call sensible, names that exist, pairs that parse.

A value that is almost surely a mistake (``arbitrage_threshold: 5`` for 500 %,
``snapshot_interval: 0.001``) is refused with one :class:`ConfigError` line: the key, the
value and what is allowed. One a user may well mean but should know the cost of is a warning
(:func:`config_warnings`), which the CLI logs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from data_collector.config_schema import (
    ALERT_EVENTS,
    SUPPORTED_EXCHANGES,
    Config,
    ConfigError,
    default_exchanges,
)
from data_collector.pairs import Pair, parse_pair

DAY = 86_400


@dataclass(frozen=True)
class Allowed:
    """A closed (or half-open) range of finite numbers, described the way a user reads it."""

    low: float
    high: float
    unit: str  # "seconds", "fraction", "USD", ...
    high_open: bool = False
    whole: bool = False
    example: str = ""

    def admits(self, value: float) -> bool:
        if isinstance(value, bool) or not math.isfinite(value):
            return False
        if self.whole and value != int(value):
            return False
        below = value < self.high if self.high_open else value <= self.high
        return self.low <= value and below

    def describe(self) -> str:
        kind = f"a whole number of {self.unit}" if self.whole else self.unit
        if self.high_open:
            text = f"{kind} in [{_show(self.low)}, {_show(self.high)})"
        else:
            text = f"{kind} from {_show(self.low)} to {_show(self.high)}"
        return f"{text} ({self.example})" if self.example else text


def _fraction(example: str) -> Allowed:
    return Allowed(0, 1, "a fraction", high_open=True, example=example)


def _seconds(low: float, high: float, example: str = "") -> Allowed:
    return Allowed(low, high, "seconds", example=example)


#: every numeric setting outside ``exchanges``, by dotted key
RANGES: dict[str, Allowed] = {
    "data_collector.snapshot_interval": Allowed(
        1, 3600, "seconds", whole=True, example="snapshots are stamped on whole seconds"
    ),
    "data_collector.analytics_interval": _seconds(1, DAY, "and at least snapshot_interval"),
    "data_collector.analytics.arbitrage_threshold": _fraction("0.05 = 5 % net of fees"),
    "data_collector.analytics.volume_threshold": Allowed(0, 1e9, "USD"),
    "data_collector.analytics.spread_alert_threshold": _fraction("0.1 = 10 % of the mid price"),
    "data_collector.connection.silence_timeout": _seconds(1, 3600),
    "data_collector.connection.pong_timeout": _seconds(1, 600),
    "data_collector.connection.reconnect_initial_delay": _seconds(0.01, 60),
    "data_collector.connection.reconnect_max_delay": _seconds(0.01, 3600),
    "data_collector.connection.max_reconnects_per_minute": Allowed(1, 600, "attempts", whole=True),
    "data_collector.connection.rotation_margin": _seconds(0, DAY),
    "data_collector.connection.max_lifetime_override": _seconds(1, 7 * DAY, "or leave it out"),
    "data_collector.connection.subscribe_timeout": _seconds(1, 600),
    "data_collector.connection.pair_silence_timeout": _seconds(1, DAY),
    "database.port": Allowed(1, 65535, "a TCP port", whole=True),
    "database.buffer_max_rows": Allowed(
        0, 100_000_000, "rows", whole=True, example="0 = 15 minutes of snapshots"
    ),
    "database.retention_days": Allowed(
        0, 36_500, "days", whole=True, example="0 = keep everything"
    ),
    "archive.after_days": Allowed(
        0, 3650, "days", whole=True, example="2 = export a day once it is 3 days old"
    ),
    "monitoring.port": Allowed(0, 65535, "a TCP port", whole=True, example="0 picks a free port"),
    "alerts.min_net_pct": Allowed(0, 100, "percent", example="1.5 = 1.5 % net of fees"),
    "alerts.cooldown_s": _seconds(0, DAY, "0 = no cooldown"),
}
TAKER_FEE = Allowed(0, 0.1, "a fraction", high_open=True, example="0.002 = 0.2 %")
#: a threshold at or above this is allowed but almost never crossed
RARELY_CROSSED = 0.5


def validate(config: Config) -> None:
    """Raise :class:`ConfigError` on the first value that is not allowed. Fills in each
    configured venue's defaults (URL, taker fee) where the file leaves them out."""
    dc = config.data_collector
    for key, allowed in RANGES.items():
        check_range(key, _value(config, key), allowed)
    if dc.analytics_interval < dc.snapshot_interval:
        raise ConfigError(
            f"data_collector.analytics_interval: {_show(dc.analytics_interval)} is shorter than "
            f"snapshot_interval ({_show(dc.snapshot_interval)}); use snapshot_interval or more"
        )
    conn = dc.connection
    if conn.reconnect_max_delay < conn.reconnect_initial_delay:
        raise ConfigError(
            f"data_collector.connection.reconnect_max_delay: {_show(conn.reconnect_max_delay)} "
            f"is below reconnect_initial_delay ({_show(conn.reconnect_initial_delay)}); raise it"
        )
    if not dc.data_dir.strip():
        raise ConfigError("data_collector.data_dir: empty; name a directory, e.g. ./data")
    if config.record.enabled and not config.record.dir.strip():
        raise ConfigError("record.dir: empty; name a directory, e.g. ./recordings")
    if not config.archive.dir.strip():
        raise ConfigError('archive.dir: empty; name a directory, e.g. "<data_dir>/archive"')
    _check_exchanges(config)
    check_symbols(dc.symbols, key="data_collector.symbols")
    if config.database.dsn:
        _check_dsn(config.database.dsn)
    _check_alerts(config)


def check_range(key: str, value: float | None, allowed: Allowed) -> None:
    if value is not None and not allowed.admits(value):
        raise ConfigError(f"{key}: {_show(value)} is not allowed; use {allowed.describe()}")


def check_duration(seconds: float | None) -> None:
    """``--duration``: a finite number of seconds greater than 0 (or none: run until told)."""
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(
            f"--duration: {_show(seconds)} is not allowed; use a number of seconds greater "
            "than 0, or leave it out to run until SIGINT/SIGTERM"
        )


def split_symbols(text: str) -> list[str]:
    """``--symbols A,B``: comma-separated pairs; an empty entry is a typo, never skipped."""
    parts = [part.strip() for part in text.split(",")]
    for i, part in enumerate(parts):
        if not part:
            raise ConfigError(
                f"--symbols: {text!r} has an empty entry (number {i + 1}); separate pairs "
                "with single commas, e.g. BTC/USDT,ETH/USDT"
            )
    return parts


def check_symbols(symbols: list[str], *, key: str) -> None:
    if not symbols:
        raise ConfigError(f"{key}: empty; list pairs as BASE/QUOTE, e.g. BTC/USDT")
    seen: set[Pair] = set()
    for i, text in enumerate(symbols):
        where = key if key.startswith("--") else f"{key}[{i}]"
        try:
            pair = parse_pair(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if pair in seen:
            raise ConfigError(f"{where}: {text!r} is listed twice")
        seen.add(pair)


def config_warnings(config: Config) -> Iterator[tuple[str, str]]:
    """(key, message) for each allowed value that will probably not do what the user wants."""
    from data_collector.venues import VENUES

    dc = config.data_collector
    alerts = {
        "arbitrage_threshold": "arbitrage alerts",
        "spread_alert_threshold": "spread alerts",
    }
    for name, what in alerts.items():
        value = getattr(dc.analytics, name)
        if value >= RARELY_CROSSED:
            yield (
                f"data_collector.analytics.{name}",
                f"{_show(value)} means {value:.0%}: {what} will hardly ever fire "
                "(thresholds are fractions: 0.05 = 5 %)",
            )
    yield from _retention_warnings(config)
    for name in dc.exchanges:
        problem = VENUES[name].url_warning(config.exchanges[name].websocket_url)
        if problem:
            yield f"exchanges.{name}.websocket_url", problem
    silence = dc.connection.silence_timeout
    # the venue's ping period: ours (MEXC, Gate, OKX, Bybit) or the server's (Binance)
    slower = [
        f"{name} ({_show(VENUES[name].ping_interval)} s)"
        for name in dc.exchanges
        if silence < VENUES[name].ping_interval
    ]
    if slower:
        yield (
            "data_collector.connection.silence_timeout",
            f"{_show(silence)} s is shorter than the ping interval of {', '.join(slower)}: "
            "a connection whose pairs are quiet will be replaced again and again",
        )


def _retention_warnings(config: Config) -> Iterator[tuple[str, str]]:
    days, archive = config.database.retention_days, config.archive
    if not days:
        return
    if not archive.enabled:
        yield (
            "database.retention_days",
            f"{days} with archive.enabled false: snapshot days older than {days} days are "
            "dropped from PostgreSQL for good, without a copy",
        )
    elif days <= archive.after_days:
        yield (
            "database.retention_days",
            f"{days} is not more than archive.after_days ({archive.after_days}): days are "
            f"kept until they are archived, after {archive.after_days} days",
        )


def _value(config: Config, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _show(value: float) -> str:
    """A number as the user would write it: 5, 0.7, inf."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _check_dsn(dsn: str) -> None:
    """Catch a DSN asyncpg would refuse, without ever echoing its password."""
    parts = urlsplit(dsn)
    hint = "write postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"database.dsn: scheme {parts.scheme!r} is not postgresql://; {hint}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        raise ConfigError(f"database.dsn: the port is not a number in 1..65535; {hint}") from None


def _check_alerts(config: Config) -> None:
    alerts = config.alerts
    for i, event in enumerate(alerts.events):
        if event not in ALERT_EVENTS:
            raise ConfigError(
                f"alerts.events[{i}]: unknown event {event!r}; "
                f"use any of: {', '.join(ALERT_EVENTS)}"
            )
    if alerts.targets:
        from data_collector.alerts.targets import target_error  # loads apprise: only if needed

        for i, url in enumerate(alerts.targets):
            error = target_error(url)
            if error is not None:
                raise ConfigError(f"alerts.targets[{i}]: {error}")


def _check_exchanges(config: Config) -> None:
    allowed = ", ".join(SUPPORTED_EXCHANGES)
    names = config.data_collector.exchanges
    if not names:
        raise ConfigError(f"data_collector.exchanges: empty; list one or more of: {allowed}")
    for i, name in enumerate(names):
        if name not in SUPPORTED_EXCHANGES:
            raise ConfigError(
                f"data_collector.exchanges[{i}]: unsupported exchange {name!r}; "
                f"supported: {allowed}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"data_collector.exchanges: {names!r} lists an exchange twice")
    defaults = default_exchanges()
    for name, exchange in config.exchanges.items():
        if name not in SUPPORTED_EXCHANGES:
            raise ConfigError(f"exchanges.{name}: unsupported exchange; supported: {allowed}")
        if not exchange.websocket_url:
            exchange.websocket_url = defaults[name].websocket_url
        if exchange.taker_fee is None:
            exchange.taker_fee = defaults[name].taker_fee
        url = exchange.websocket_url
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(
                f"exchanges.{name}.websocket_url: {url!r} must start with wss:// or ws://"
            )
        check_range(f"exchanges.{name}.taker_fee", exchange.taker_fee, TAKER_FEE)
    for name in names:
        config.exchanges.setdefault(name, defaults[name])
