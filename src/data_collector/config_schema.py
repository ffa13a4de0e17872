"""The configuration's schema: typed msgspec Structs with the shipped defaults.

Loading (``${VAR}`` substitution, decoding, paths) is in :mod:`data_collector.config_loading`,
the value checks in :mod:`data_collector.config_checks`; :mod:`data_collector.config` is the
entry point that runs them in order.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from data_collector.connection import ConnectionSettings
from data_collector.pairs import Pair, parse_pair
from data_collector.venues import VENUES

#: every registered venue, in registry order: the venue modules are the only list of them
SUPPORTED_EXCHANGES = tuple(VENUES)
DEFAULT_SYMBOLS = (
    "BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT",
    "ADA/USDT", "TRX/USDT", "LINK/USDT", "AVAX/USDT", "DOT/USDT",
    "LTC/USDT", "BCH/USDT", "UNI/USDT", "ATOM/USDT", "ETC/USDT",
    "FIL/USDT", "NEAR/USDT", "APT/USDT", "ARB/USDT", "OP/USDT",
)  # fmt: skip

#: keys whose values are never echoed in an error message
SECRET_KEYS = frozenset({"password", "dsn", "api_key", "api_secret"})
#: dotted keys whose values are secrets wherever they sit (lists of URLs with tokens)
SECRET_PREFIXES = ("alerts.targets",)


def is_secret_key(key: str) -> bool:
    """Whether the value at a dotted key (``database.password``, ``alerts.targets[0]``) is a
    secret that no message may echo."""
    return key.rsplit(".", 1)[-1] in SECRET_KEYS or key.startswith(SECRET_PREFIXES)


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
    #: relative paths in a config file are relative to that file's directory (see
    #: config_loading.resolve_paths); a Config built in code keeps them relative to the cwd
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
    #: days of snapshots kept in PostgreSQL; older daily partitions are dropped (after a
    #: verified export when the archive is enabled); 0 = keep everything
    retention_days: int = 0


#: the value of ``archive.dir`` that stands for ``data_collector.data_dir``
DATA_DIR_TOKEN = "<data_dir>"


class ArchiveConfig(_Strict):
    #: export completed days to Parquet (nightly, or ``run.py --archive``)
    enabled: bool = False
    #: relative to the config file's directory; ``<data_dir>`` is data_collector.data_dir
    dir: str = f"{DATA_DIR_TOKEN}/archive"
    #: a completed UTC day is exported once it is more than this many days old
    after_days: int = 2


class MonitoringConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"http://{host}:{self.port}"


def expand_data_dir(value: str, data_dir: str) -> str:
    """``<data_dir>/archive`` -> ``<the data directory>/archive``; other values unchanged."""
    if value == DATA_DIR_TOKEN or value.startswith(f"{DATA_DIR_TOKEN}/"):
        return data_dir + value[len(DATA_DIR_TOKEN) :]
    return value


#: the alert events, in the order they are listed by default
ALERT_EVENTS = ("arbitrage_alert", "arbitrage_closed", "venue_down", "venue_up", "pair_silent")


class AlertsConfig(_Strict):
    #: apprise URLs (tgram://, slack://, discord://, mailto://, json://, ...); they carry
    #: secrets, so they are never logged or printed beyond their scheme and host
    targets: list[str] = msgspec.field(default_factory=list)
    events: list[str] = msgspec.field(default_factory=lambda: list(ALERT_EVENTS))
    #: percent (1.5 = 1.5 %): arbitrage alerts below this net gain are not sent
    min_net_pct: float = 0.0
    #: the same pair and venue pair (or venue, or venue and pair) alerts again only after this
    cooldown_s: float = 60.0


#: taker fees of the default (lowest) tier, as fractions, as each venue module declares them
DEFAULT_TAKER_FEES = {name: venue.default_taker_fee for name, venue in VENUES.items()}


class RecordConfig(_Strict):
    """``--record``: every frame and connection event, to hourly zstd files under ``dir``."""

    enabled: bool = False
    dir: str = "./recordings"


def default_exchanges() -> dict[str, ExchangeConfig]:
    """Every registered venue with its public endpoint and default taker fee."""
    return {
        name: ExchangeConfig(websocket_url=venue.default_url, taker_fee=venue.default_taker_fee)
        for name, venue in VENUES.items()
    }


class Config(_Strict):
    data_collector: DataCollectorConfig = msgspec.field(default_factory=DataCollectorConfig)
    exchanges: dict[str, ExchangeConfig] = msgspec.field(default_factory=default_exchanges)
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    archive: ArchiveConfig = msgspec.field(default_factory=ArchiveConfig)
    monitoring: MonitoringConfig = msgspec.field(default_factory=MonitoringConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    record: RecordConfig = msgspec.field(default_factory=RecordConfig)

    @property
    def pairs(self) -> list[Pair]:
        return [parse_pair(s) for s in self.data_collector.symbols]

    @property
    def data_dir(self) -> Path:
        return Path(self.data_collector.data_dir)

    @property
    def archive_dir(self) -> Path:
        """``archive.dir`` with ``<data_dir>`` replaced by the data directory."""
        return Path(expand_data_dir(self.archive.dir, self.data_collector.data_dir))

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


#: the Struct decoding the mapping at each dotted key, to list its allowed keys
SECTIONS: dict[str, type[msgspec.Struct]] = {
    "": Config,
    "data_collector": DataCollectorConfig,
    "data_collector.analytics": AnalyticsConfig,
    "data_collector.connection": ConnectionSettings,
    "database": DatabaseConfig,
    "archive": ArchiveConfig,
    "monitoring": MonitoringConfig,
    "alerts": AlertsConfig,
    "record": RecordConfig,
}

#: dotted keys holding file-system paths (resolved against the config file's directory), in
#: this order: ``archive.dir`` may start with ``<data_dir>``
PATH_KEYS = ("data_collector.data_dir", "archive.dir", "record.dir")
