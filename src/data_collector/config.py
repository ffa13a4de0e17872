"""Configuration: ``config.yaml`` -> ``${VAR}`` substitution -> typed msgspec Structs -> checks.

Every problem is reported as one :class:`ConfigError` line naming the key, the value and what
is allowed; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml

from data_collector.connection import ConnectionSettings
from data_collector.pairs import Pair, parse_pair

SUPPORTED_EXCHANGES = ("mexc", "gateio")
DEFAULT_SYMBOLS = (
    "BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT",
    "ADA/USDT", "TRX/USDT", "LINK/USDT", "AVAX/USDT", "DOT/USDT",
    "LTC/USDT", "BCH/USDT", "UNI/USDT", "ATOM/USDT", "ETC/USDT",
    "FIL/USDT", "NEAR/USDT", "APT/USDT", "ARB/USDT", "OP/USDT",
)  # fmt: skip

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class ConfigError(Exception):
    """A configuration problem, worded for the person who has to fix it."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class AnalyticsConfig(_Strict):
    arbitrage_threshold: float = 0.05  # fraction: 0.05 = 5 % net of fees
    volume_threshold: float = 1000.0  # USD of top-of-book notional
    spread_alert_threshold: float = 0.1  # fraction of mid


class DataCollectorConfig(_Strict):
    enabled: bool = True
    snapshot_interval: float = 1.0
    analytics_interval: float = 10.0
    exchanges: list[str] = msgspec.field(default_factory=lambda: list(SUPPORTED_EXCHANGES))
    symbols: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    data_dir: str = "./data"
    analytics: AnalyticsConfig = msgspec.field(default_factory=AnalyticsConfig)
    connection: ConnectionSettings = msgspec.field(default_factory=ConnectionSettings)


class ExchangeConfig(_Strict):
    websocket_url: str = ""  # empty: the venue's public endpoint
    taker_fee: float | None = None  # None: the venue's default taker fee
    api_key: str = ""  # public market data needs none; never printed
    api_secret: str = ""


class DatabaseConfig(_Strict):
    dsn: str = ""
    host: str = ""
    port: int = 5432
    database: str = "postgres"
    user: str = "postgres"
    password: str = ""
    #: rows held in memory while PostgreSQL is unreachable before spilling to disk;
    #: 0 = 15 minutes of snapshots for the configured pairs
    buffer_max_rows: int = 0


class MonitoringConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108


#: taker fees of the default (lowest) tier, as fractions
DEFAULT_TAKER_FEES = {"mexc": 0.0005, "gateio": 0.002}


def _default_exchanges() -> dict[str, ExchangeConfig]:
    from data_collector.venues import VENUES

    return {
        name: ExchangeConfig(websocket_url=VENUES[name].default_url, taker_fee=fee)
        for name, fee in DEFAULT_TAKER_FEES.items()
    }


class Config(_Strict):
    data_collector: DataCollectorConfig = msgspec.field(default_factory=DataCollectorConfig)
    exchanges: dict[str, ExchangeConfig] = msgspec.field(default_factory=_default_exchanges)
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    monitoring: MonitoringConfig = msgspec.field(default_factory=MonitoringConfig)

    @property
    def pairs(self) -> list[Pair]:
        return [parse_pair(s) for s in self.data_collector.symbols]

    @property
    def data_dir(self) -> Path:
        return Path(self.data_collector.data_dir)

    @property
    def embedded_pgdata(self) -> Path:
        """Where the embedded PostgreSQL keeps its data when no database is configured."""
        return self.data_dir / "postgres"

    def database_dsn(self) -> str | None:
        """The configured database's DSN, or None for the embedded default."""
        db = self.database
        if db.dsn:
            return db.dsn
        if db.host:
            from db.dsn import build_dsn

            return build_dsn(db.host, db.port, db.database, db.user, db.password)
        return None


# --- loading ---------------------------------------------------------------------------


def substitute_env(value: Any, env: dict[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: substitute_env(v, env, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{path}: environment variable {name} is not set; set it, or write "
            f"${{{name}:default}} to give a default"
        )

    return _ENV_REF.sub(replace, value)


def load_config(
    path: str | Path | None = None,
    *,
    env: dict[str, str] | None = None,
    symbols_override: str | None = None,
) -> Config:
    """Read, substitute, decode and validate the configuration file."""
    env = dict(os.environ) if env is None else env
    raw = _read_yaml(Path(path) if path is not None else Path("config.yaml"))
    raw = substitute_env(raw, env)
    config = _decode(raw)
    if symbols_override is not None:
        symbols = [s for s in (part.strip() for part in symbols_override.split(",")) if s]
        config.data_collector.symbols = symbols
        _check_symbols(symbols, key="--symbols")
    validate(config)
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; pass --config PATH or run from the directory "
            "that holds config.yaml"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections at the top level")
    return raw


_LOC = re.compile(r" - at `\$(?P<loc>[^`]*)`$")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")


#: keys whose values are never echoed in an error message
SECRET_KEYS = frozenset({"password", "dsn", "api_key", "api_secret"})


def _decode(raw: dict[str, Any]) -> Config:
    raw = _secrets_as_strings(raw)
    exchanges = raw.get("exchanges")
    if isinstance(exchanges, dict):
        # decoded one by one so that an error names the venue (msgspec says "exchanges[...]")
        for name, block in exchanges.items():
            _convert(block, ExchangeConfig, raw, prefix=f"exchanges.{name}")
    return _convert(raw, Config, raw)


def _convert(value: Any, struct: type[Any], raw: dict[str, Any], prefix: str = "") -> Any:
    try:
        # strict=False: values from ${VAR} arrive as strings ("5432", "true").
        return msgspec.convert(value, struct, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), raw, prefix)) from None


def _secrets_as_strings(raw: dict[str, Any]) -> dict[str, Any]:
    """``password: 123456`` is a string to the user: YAML's int must not make it an error."""
    for section in [raw.get("database"), *((raw.get("exchanges") or {}).values())]:
        if isinstance(section, dict):
            for key in SECRET_KEYS & section.keys():
                if isinstance(section[key], int | float) and not isinstance(section[key], bool):
                    section[key] = str(section[key])
    return raw


def _explain(message: str, raw: dict[str, Any], prefix: str = "") -> str:
    loc_match = _LOC.search(message)
    loc = loc_match.group("loc") if loc_match else ""
    key = _join(prefix, _dotted(loc)) if prefix else _dotted(loc)
    problem = _LOC.sub("", message)
    unknown = _UNKNOWN.match(problem)
    if unknown:
        struct = _struct_at(key)
        full = _join(key, unknown.group("field"))
        allowed = ", ".join(struct.__struct_fields__) if struct else "see config.yaml"
        return f"{full}: unknown key; allowed keys here: {allowed}"
    value = _value_at(raw, f".{key}" if key else "")
    if key.rsplit(".", 1)[-1] in SECRET_KEYS:
        shown = " (value hidden: it is a secret)"
    else:
        shown = f" (value: {value!r})" if value is not _MISSING else ""
    return f"{key or 'config'}: {problem[0].lower()}{problem[1:]}{shown}"


_MISSING = object()


def _dotted(loc: str) -> str:
    return re.sub(r"^\.", "", loc.replace("[", ".[")).replace(".[", "[")


def _value_at(raw: Any, loc: str) -> Any:
    node = raw
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", loc):
        name, index = part
        try:
            node = node[name] if name else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node


def _struct_at(key: str) -> type[msgspec.Struct] | None:
    """The Struct that decodes the mapping at dotted ``key``, to list its allowed keys."""
    if re.fullmatch(r"exchanges\.[^.]+", key):
        return ExchangeConfig
    return {
        "": Config,
        "data_collector": DataCollectorConfig,
        "data_collector.analytics": AnalyticsConfig,
        "data_collector.connection": ConnectionSettings,
        "database": DatabaseConfig,
        "monitoring": MonitoringConfig,
    }.get(key)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- validation ------------------------------------------------------------------------


def validate(config: Config) -> None:
    dc = config.data_collector
    _positive("data_collector.snapshot_interval", dc.snapshot_interval)
    _positive("data_collector.analytics_interval", dc.analytics_interval)
    for name in ("arbitrage_threshold", "volume_threshold", "spread_alert_threshold"):
        _non_negative(f"data_collector.analytics.{name}", getattr(dc.analytics, name))
    _check_connection(dc.connection)
    _check_exchanges(config)
    _check_symbols(dc.symbols, key="data_collector.symbols")
    db = config.database
    if db.dsn:
        _check_dsn(db.dsn)
    if not 1 <= db.port <= 65535:
        raise ConfigError(f"database.port: {db.port} is not a TCP port; use 1..65535")
    if db.buffer_max_rows < 0:
        raise ConfigError(
            f"database.buffer_max_rows: {db.buffer_max_rows} is negative; use 0 (automatic) "
            "or a positive row count"
        )
    if not 0 <= config.monitoring.port <= 65535:
        raise ConfigError(
            f"monitoring.port: {config.monitoring.port} is not a TCP port; use 1..65535 "
            "(0 picks a free port)"
        )


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


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key}: {value!r} must be greater than 0 (seconds)")


def _non_negative(key: str, value: float) -> None:
    if not value >= 0:
        raise ConfigError(f"{key}: {value!r} must be 0 or greater")


def _check_connection(conn: ConnectionSettings) -> None:
    for name in (
        "silence_timeout",
        "pong_timeout",
        "reconnect_initial_delay",
        "reconnect_max_delay",
        "subscribe_timeout",
    ):
        _positive(f"data_collector.connection.{name}", getattr(conn, name))
    if conn.reconnect_max_delay < conn.reconnect_initial_delay:
        raise ConfigError(
            f"data_collector.connection.reconnect_max_delay: {conn.reconnect_max_delay!r} is "
            f"below reconnect_initial_delay ({conn.reconnect_initial_delay!r}); raise it"
        )
    if conn.max_reconnects_per_minute < 1:
        raise ConfigError(
            "data_collector.connection.max_reconnects_per_minute: "
            f"{conn.max_reconnects_per_minute!r} must be at least 1"
        )
    _non_negative("data_collector.connection.rotation_margin", conn.rotation_margin)
    if conn.max_lifetime_override is not None:
        _positive("data_collector.connection.max_lifetime_override", conn.max_lifetime_override)


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
    defaults = _default_exchanges()
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
        if not 0 <= exchange.taker_fee < 0.1:
            raise ConfigError(
                f"exchanges.{name}.taker_fee: {exchange.taker_fee!r} must be a fraction in "
                "[0, 0.1), e.g. 0.002 for 0.2 %"
            )
    for name in names:
        config.exchanges.setdefault(name, defaults[name])


def _check_symbols(symbols: list[str], *, key: str) -> None:
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
