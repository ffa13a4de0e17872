"""Configuration: substitution, decoding, and one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_collector.config import ConfigError, config_warnings, load_config
from data_collector.pairs import Pair, parse_pair
from data_collector.venues import VENUES

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_shipped_config_has_the_documented_defaults() -> None:
    config = load_config(REPO / "config.yaml", env={})
    dc = config.data_collector
    assert dc.enabled is True
    assert dc.snapshot_interval == 1
    assert dc.analytics_interval == 10
    assert dc.exchanges == ["mexc", "gateio", "binance", "okx", "bybit"]
    assert set(dc.exchanges) == set(VENUES)  # every registered venue
    assert len(config.pairs) == 20
    assert len(set(config.pairs)) == 20
    assert dc.analytics.arbitrage_threshold == 0.05
    assert dc.analytics.volume_threshold == 1000
    assert dc.analytics.spread_alert_threshold == 0.1
    assert config.exchanges["mexc"].websocket_url == "wss://wbs-api.mexc.com/ws"
    assert config.exchanges["mexc"].taker_fee == 0.0005
    assert config.exchanges["gateio"].websocket_url == "wss://api.gateio.ws/ws/v4/"
    assert config.exchanges["gateio"].taker_fee == 0.002
    for name, venue in VENUES.items():  # the file writes out each venue module's defaults
        assert config.exchanges[name].websocket_url == venue.default_url
        assert config.exchanges[name].taker_fee == venue.default_taker_fee
    assert config.database.dsn == ""
    assert config.database.host == ""
    assert config.monitoring.port == 9108
    assert config.data_collector.data_dir == str(REPO / "data")  # next to the file
    assert config.record.enabled is False
    assert config.record.dir == str(REPO / "recordings")
    assert config.database.retention_days == 0
    assert config.archive.enabled is False and config.archive.after_days == 2
    assert config.archive.dir == str(REPO / "data" / "archive")
    assert config.archive_dir == REPO / "data" / "archive"


def test_env_substitution_with_and_without_defaults() -> None:
    env = {
        "DATABASE_URL": "postgresql://u:secret@db:5433/x",
        "POSTGRES_PORT": "6543",
        "MEXC_API_KEY": "k",
    }
    config = load_config(REPO / "config.yaml", env=env)
    assert config.database.dsn == "postgresql://u:secret@db:5433/x"
    assert config.database.port == 6543  # a string from the environment, typed by the schema
    assert config.database.user == "postgres"  # ${POSTGRES_USER:postgres}
    assert config.exchanges["mexc"].api_key == "k"
    assert config.exchanges["gateio"].api_key == ""


def test_unset_variable_without_default_names_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'database:\n  dsn: "${NO_SUCH_VAR}"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "database.dsn" in str(err.value)
    assert "NO_SUCH_VAR" in str(err.value)


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("data_collector: {snapshot_interval: 0}", "data_collector.snapshot_interval", "1 to"),
        ("data_collector: {analytics_interval: -5}", "data_collector.analytics_interval", "-5"),
        (
            "data_collector: {analytics: {arbitrage_threshold: -0.1}}",
            "data_collector.analytics.arbitrage_threshold",
            "[0, 1)",
        ),
        ("data_collector: {snapshot_interval: fast}", "data_collector.snapshot_interval", "fast"),
        ("data_collector: {exchanges: [mexc, kraken]}", "data_collector.exchanges[1]", "kraken"),
        (
            "data_collector: {symbols: [BTC/USDT, BTCUSDT]}",
            "data_collector.symbols[1]",
            "BASE/QUOTE",
        ),
        ("data_collector: {symbols: [BTC/USDT, btc_usdt]}", "data_collector.symbols[1]", "twice"),
        ("data_collector: {colour: red}", "data_collector.colour", "allowed keys"),
        ("database: {passwd: x}", "database.passwd", "password"),
        ("exchanges: {mexc: {taker_fee: 0.5}}", "exchanges.mexc.taker_fee", "fraction"),
        ("exchanges: {mexc: {websocket_url: http://x}}", "exchanges.mexc.websocket_url", "wss://"),
        ("exchanges: {kraken: {taker_fee: 0.001}}", "exchanges.kraken", "supported"),
        ("database: {port: 70000}", "database.port", "70000"),
        ("monitoring: {enabled: maybe}", "monitoring.enabled", "maybe"),
    ],
)
def test_bad_values_name_the_key_the_value_and_the_rule(
    tmp_path: Path, text: str, key: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={})
    message = str(err.value)
    assert message.startswith(key), message
    assert hint in message
    assert "\n" not in message


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        load_config(write(tmp_path, "a: 1\n  b: [\n"), env={})


def test_partial_exchange_block_takes_the_venue_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "exchanges: {mexc: {taker_fee: 0.001}}"), env={})
    assert config.exchanges["mexc"].websocket_url == "wss://wbs-api.mexc.com/ws"
    assert config.exchanges["mexc"].taker_fee == 0.001
    assert config.exchanges["gateio"].taker_fee == 0.002


def test_every_registered_venue_is_configurable_with_its_module_defaults(tmp_path: Path) -> None:
    names = ", ".join(VENUES)
    config = load_config(write(tmp_path, f"data_collector: {{exchanges: [{names}]}}"), env={})
    assert config.data_collector.exchanges == list(VENUES)
    for name, venue in VENUES.items():
        assert config.exchanges[name].websocket_url == venue.default_url
        assert config.exchanges[name].taker_fee == venue.default_taker_fee
    # left out, the list of venues is every registered one
    assert load_config(write(tmp_path, "{}"), env={}).data_collector.exchanges == list(VENUES)


def test_an_unknown_venue_is_refused_naming_every_registered_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "data_collector: {exchanges: [kraken]}"), env={})
    assert all(name in str(err.value) for name in VENUES)


def test_pair_silence_timeout_is_a_bounded_setting(tmp_path: Path) -> None:
    text = "data_collector: {connection: {pair_silence_timeout: %s}}"
    config = load_config(write(tmp_path, text % 30), env={})
    assert config.data_collector.connection.pair_silence_timeout == 30
    assert (
        load_config(write(tmp_path, "{}"), env={}).data_collector.connection.pair_silence_timeout
        == 120
    )
    with pytest.raises(ConfigError, match=r"^data_collector\.connection\.pair_silence_timeout: 0 "):
        load_config(write(tmp_path, text % 0), env={})


def test_symbols_override(tmp_path: Path) -> None:
    config = load_config(REPO / "config.yaml", env={}, symbols_override="SOL_USDT, eth/usdt")
    assert config.pairs == [Pair("SOL", "USDT"), Pair("ETH", "USDT")]
    with pytest.raises(ConfigError, match=r"^--symbols: malformed pair 'SOLUSDT'"):
        load_config(REPO / "config.yaml", env={}, symbols_override="SOLUSDT")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BTC/USDT", Pair("BTC", "USDT")),
        ("eth_usdt", Pair("ETH", "USDT")),
        (" 1000SATS/USDT ", Pair("1000SATS", "USDT")),
    ],
)
def test_parse_pair_accepts_both_forms(text: str, expected: Pair) -> None:
    assert parse_pair(text) == expected
    assert str(parse_pair(text)) == f"{expected.base}/{expected.quote}"


@pytest.mark.parametrize(
    "text", ["BTCUSDT", "BTC/", "/USDT", "BTC-USDT", "BTC/USDT/X", "", "BT C/USDT"]
)
def test_parse_pair_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        parse_pair(text)


def test_secret_values_are_never_echoed_and_numeric_passwords_are_strings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "database: {password: 987654321}"), env={})
    assert config.database.password == "987654321"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "exchanges: {mexc: {api_key: [s3cr3t]}}"), env={})
    assert str(err.value).startswith("exchanges.mexc.api_key:")
    assert "s3cr3t" not in str(err.value) and "hidden" in str(err.value)


def test_errors_inside_an_exchange_block_name_the_venue(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^exchanges\.gateio\.taker_fee: .*'cheap'"):
        load_config(write(tmp_path, "exchanges: {gateio: {taker_fee: cheap}}"), env={})


@pytest.mark.parametrize(
    ("dsn", "hint"),
    [
        ("postgresql://u:pw@db:notaport/x", "port"),
        ("mysql://u:pw@db:3306/x", "scheme"),
    ],
)
def test_malformed_dsn_is_a_config_error_without_the_password(
    tmp_path: Path, dsn: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f'database: {{dsn: "{dsn}"}}'), env={})
    assert str(err.value).startswith("database.dsn:") and hint in str(err.value)
    assert "pw" not in str(err.value)


def _yaml_for(key: str, value: str) -> str:
    """``a.b.c`` = value as a YAML flow mapping: ``a: {b: {c: value}}``."""
    text = value
    for part in reversed(key.split(".")):
        text = f"{{{part}: {text}}}"
    return text[1:-1]


def _numeric_keys() -> list[str]:
    """Every int/float setting of the schema, found from the Structs themselves (not from the
    checks' table), so a new numeric key without a range fails here."""
    import msgspec

    from data_collector.config_schema import Config, ExchangeConfig

    def walk(struct: type, prefix: str) -> list[str]:
        keys = []
        for field in msgspec.structs.fields(struct):
            key = f"{prefix}{field.encode_name}"
            kind = field.type
            if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
                keys += walk(kind, f"{key}.")
            elif {float, int} & set(getattr(kind, "__args__", (kind,))):
                keys.append(key)
        return keys

    return walk(Config, "") + walk(ExchangeConfig, "exchanges.mexc.")


NUMERIC_KEYS = _numeric_keys()


def test_the_schema_has_the_numeric_keys_this_file_expects() -> None:
    assert "data_collector.snapshot_interval" in NUMERIC_KEYS
    assert "data_collector.connection.max_lifetime_override" in NUMERIC_KEYS
    assert "exchanges.mexc.taker_fee" in NUMERIC_KEYS
    assert "monitoring.port" in NUMERIC_KEYS
    assert len(NUMERIC_KEYS) >= 17


@pytest.mark.parametrize("key", NUMERIC_KEYS)
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1000000000000"])
def test_every_numeric_setting_is_finite_and_bounded(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, _yaml_for(key, value)), env={})
    message = str(err.value)
    assert message.startswith(f"{key}: "), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "key", "shown", "allowed"),
    [
        ("data_collector: {snapshot_interval: .inf}", "snapshot_interval", "inf", "whole number"),
        ("data_collector: {snapshot_interval: 0.001}", "snapshot_interval", "0.001", "1 to 3600"),
        ("data_collector: {snapshot_interval: 0.7}", "snapshot_interval", "0.7", "whole number"),
        ("data_collector: {analytics: {arbitrage_threshold: 5}}", "arbitrage", "5", "0.05 = 5 %"),
        ("data_collector: {analytics: {spread_alert_threshold: 10}}", "spread", "10", "[0, 1)"),
        ("data_collector: {analytics_interval: 0.5}", "analytics_interval", "0.5", "at least"),
        (
            "data_collector: {snapshot_interval: 10, analytics_interval: 5}",
            "analytics_interval",
            "5",
            "snapshot_interval (10)",
        ),
        ("data_collector: {connection: {pong_timeout: 86400}}", "pong_timeout", "86400", "600"),
        ("data_collector: {connection: {reconnect_max_delay: 1e300}}", "max_delay", "1e+300", ""),
        ("database: {buffer_max_rows: -1}", "database.buffer_max_rows", "-1", "0 = 15 minutes"),
        ("monitoring: {port: 70000}", "monitoring.port", "70000", "0 picks a free port"),
        ("exchanges: {gateio: {taker_fee: .nan}}", "exchanges.gateio.taker_fee", "nan", "0.2 %"),
        ('data_collector: {data_dir: ""}', "data_collector.data_dir", "empty", "./data"),
        ('record: {enabled: true, dir: " "}', "record.dir", "empty", "./recordings"),
        ("database: {retention_days: 1.5}", "database.retention_days", "1.5", "expected `int`"),
        ("database: {retention_days: -1}", "database.retention_days", "-1", "keep everything"),
        ("archive: {after_days: 4000}", "archive.after_days", "4000", "0 to 3650"),
        ('archive: {dir: " "}', "archive.dir", "empty", "<data_dir>/archive"),
    ],
)
def test_values_that_are_almost_surely_mistakes_are_refused(
    tmp_path: Path, text: str, key: str, shown: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={})
    message = str(err.value)
    first = message.split(":", 1)[0]
    assert key in first and f": {shown}" in message and allowed in message, message


@pytest.mark.parametrize("symbols", ["BTC/USDT,,ETH/USDT", "BTC/USDT,", ",BTC/USDT", " , "])
def test_an_empty_entry_in_the_symbols_override_is_refused(symbols: str) -> None:
    with pytest.raises(ConfigError, match=r"^--symbols: .*empty entry"):
        load_config(REPO / "config.yaml", env={}, symbols_override=symbols)


def test_allowed_but_doubtful_values_give_warnings(tmp_path: Path) -> None:
    assert list(config_warnings(load_config(REPO / "config.yaml", env={}))) == []
    config = load_config(
        write(
            tmp_path,
            "data_collector: {analytics: {arbitrage_threshold: 0.6}, "
            "connection: {silence_timeout: 10}}",
        ),
        env={},
    )
    warnings = dict(config_warnings(config))
    assert "60%" in warnings["data_collector.analytics.arbitrage_threshold"]
    silence = warnings["data_collector.connection.silence_timeout"]
    assert "shorter than the ping interval of " in silence and "mexc (15 s)" in silence
    assert all(f"{name} (" in silence for name in VENUES if VENUES[name].ping_interval > 10)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("wss://ws.okx.com:8443/ws/v5/public", True),
        ("wss://wsaws.okx.com:8443/ws/v5/public", True),
        ("wss://ws.okx.com/ws/v5/public", False),
        ("ws://127.0.0.1:8443/ws/v5/public", False),  # a local endpoint may use any port
    ],
)
def test_the_retired_okx_port_is_a_warning(tmp_path: Path, url: str, warned: bool) -> None:
    text = f'data_collector: {{exchanges: [okx]}}\nexchanges: {{okx: {{websocket_url: "{url}"}}}}'
    warnings = dict(config_warnings(load_config(write(tmp_path, text), env={})))
    message = warnings.get("exchanges.okx.websocket_url", "")
    assert ("port 8443" in message and "wss://ws.okx.com/ws/v5/public" in message) is warned


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("database: {retention_days: 30}", "dropped from PostgreSQL for good, without a copy"),
        (
            "database: {retention_days: 2}\narchive: {enabled: true, after_days: 3}",
            "kept until they are archived, after 3 days",
        ),
    ],
)
def test_retention_that_deletes_without_a_copy_is_a_warning(
    tmp_path: Path, text: str, warning: str
) -> None:
    warnings = dict(config_warnings(load_config(write(tmp_path, text), env={})))
    assert warning in warnings["database.retention_days"]
    archived = "database: {retention_days: 30}\narchive: {enabled: true}"
    assert list(config_warnings(load_config(write(tmp_path, archived), env={}))) == []


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc" / "collector"
    config_dir.mkdir(parents=True)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    cases = {
        'data_collector: {data_dir: "./data"}': config_dir / "data",
        'data_collector: {data_dir: "../shared/data"}': tmp_path / "etc" / "shared" / "data",
        "data_collector: {enabled: true}": config_dir / "data",  # the default ./data too
        f'data_collector: {{data_dir: "{tmp_path / "abs"}"}}': tmp_path / "abs",
        'data_collector: {data_dir: "~/cex-data"}': Path.home() / "cex-data",
    }
    for text, expected in cases.items():
        (config_dir / "config.yaml").write_text(text)
        # the config named by a relative path from yet another directory
        relative = Path("..") / ".." / "etc" / "collector" / "config.yaml"
        config = load_config(relative, env={})
        assert config.data_dir == expected, text
        assert config.embedded_pgdata == expected / "postgres"
        assert config.archive_dir == expected / "archive"  # the default <data_dir>/archive
    archives = {
        'archive: {dir: "./parquet"}': config_dir / "parquet",
        'archive: {dir: "<data_dir>/cold"}': config_dir / "data" / "cold",
        f'archive: {{dir: "{tmp_path / "abs"}"}}': tmp_path / "abs",
    }
    for text, expected in archives.items():
        (config_dir / "config.yaml").write_text(text)
        config = load_config(Path("..") / ".." / "etc" / "collector" / "config.yaml", env={})
        assert config.archive_dir == expected, text


def test_the_recording_directory_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text('record: {enabled: true, dir: "../rec"}')
    config = load_config(config_dir / "config.yaml", env={})
    assert config.record.enabled and config.record.dir == str(tmp_path / "rec")
    with pytest.raises(ConfigError, match=r"^record.speed: unknown key; allowed keys here: "):
        load_config(write(tmp_path, "record: {speed: max}"), env={})
