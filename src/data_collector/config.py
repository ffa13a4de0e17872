"""Configuration: ``config.yaml`` -> ``${VAR}`` substitution -> typed msgspec Structs -> paths
-> checks.

The schema lives in :mod:`data_collector.config_schema`, loading in
:mod:`data_collector.config_loading`, the checks in :mod:`data_collector.config_checks`; this
module runs them in order and is what the rest of the program imports. Every problem is one
:class:`ConfigError` line naming the key, the value and what is allowed; the CLI prints it and
exits with code 2.
"""

from __future__ import annotations

import os
from pathlib import Path

from data_collector.config_checks import (
    check_duration,
    check_symbols,
    config_warnings,
    split_symbols,
    validate,
)
from data_collector.config_loading import decode, read_yaml, resolve_paths, substitute_env
from data_collector.config_schema import (
    DEFAULT_SYMBOLS,
    DEFAULT_TAKER_FEES,
    SUPPORTED_EXCHANGES,
    AnalyticsConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    DataCollectorConfig,
    ExchangeConfig,
    MonitoringConfig,
    RecordConfig,
)

DEFAULT_CONFIG_PATH = "config.yaml"


def load_config(
    path: str | Path | None = None,
    *,
    env: dict[str, str] | None = None,
    symbols_override: str | None = None,
) -> Config:
    """Read, substitute, decode and validate the configuration file.

    Relative paths in it (``data_collector.data_dir``, also when left at its default
    ``./data``) are made absolute against the file's own directory.
    """
    env = dict(os.environ) if env is None else env
    path = Path(path if path is not None else DEFAULT_CONFIG_PATH)
    raw = substitute_env(read_yaml(path), env)
    config = decode(raw)
    if symbols_override is not None:
        symbols = split_symbols(symbols_override)
        check_symbols(symbols, key="--symbols")
        config.data_collector.symbols = symbols
    validate(config)
    resolve_paths(config, path.absolute().parent)
    return config


__all__ = [
    "DEFAULT_SYMBOLS",
    "DEFAULT_TAKER_FEES",
    "SUPPORTED_EXCHANGES",
    "AnalyticsConfig",
    "Config",
    "ConfigError",
    "DataCollectorConfig",
    "DatabaseConfig",
    "ExchangeConfig",
    "MonitoringConfig",
    "RecordConfig",
    "check_duration",
    "config_warnings",
    "load_config",
    "substitute_env",
    "validate",
]
