"""``run.py --report`` as a user runs it: the report alone on stdout, the exit codes, the
plot, against a real PostgreSQL holding the hand-built data set (tests/report_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_process import run_cli, write_config
from tests.pg import BackgroundLoop, PgDatabase
from tests.report_data import fill_known_data

WINDOW = ("--since", "2030-01-01T00:00:00Z", "--until", "2030-01-01T00:02:00Z")


@pytest.fixture
def known_config(tmp_path: Path, pg_database: PgDatabase, pg_loop: BackgroundLoop) -> Path:
    pg_loop.run(fill_known_data(pg_database.dsn))
    return write_config(
        tmp_path,
        "data_collector:\n  exchanges: [mexc, gateio]\n  symbols: [BTC/USDT, ETH/USDT]\n"
        f'database:\n  dsn: "{pg_database.dsn}"\nmonitoring: {{enabled: false}}\n',
    )


def report(config: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_cli("--config", str(config), "--report", *args, cwd=config.parent, env=env)


def test_the_report_goes_alone_to_stdout(known_config: Path) -> None:
    result = report(known_config, *WINDOW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Report from 2030-01-01 00:00:00Z to 2030-01-01 00:02:00Z")
    assert "Opportunities per pair and venue pair" in result.stdout
    assert "Report from" not in result.stderr


def test_json_and_csv(known_config: Path) -> None:
    doc = json.loads(report(known_config, *WINDOW, "--format", "json").stdout)
    assert doc["rows"] == 427 and doc["coverage_by_pair"] is None
    assert [c["exchange"] for c in doc["coverage"]] == ["gateio", "mexc"]
    detail = json.loads(report(known_config, *WINDOW, "--format", "json", "--detail").stdout)
    assert len(detail["coverage_by_pair"]) == 4
    text = report(known_config, *WINDOW, "--format", "csv").stdout
    assert text.startswith("# opportunities\nsymbol,buy_exchange,sell_exchange,count,")


def test_symbols_limit_the_report(known_config: Path) -> None:
    doc = json.loads(
        report(known_config, *WINDOW, "--format", "json", "--symbols", "ETH/USDT").stdout
    )
    assert doc["symbols"] == ["ETH/USDT"]
    assert {s["symbol"] for s in doc["spreads"]} == {"ETH/USDT"}
    assert [o["symbol"] for o in doc["opportunities"]] == ["ETH/USDT"]


def test_a_window_without_data_says_so_and_exits_0(known_config: Path) -> None:
    result = report(known_config, "--since", "1h")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No data from ") and result.stdout.count("\n") == 1


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        'database:\n  dsn: "postgresql://alice:s3cr3t-pw@127.0.0.1:1/market"\n'
        "monitoring: {enabled: false}\n",
    )
    result = report(config)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("cannot read the database (postgresql://alice:***@127.0.0.1:1/market)")
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert result.stdout == ""


def test_a_bad_window_is_one_line_and_exit_2(known_config: Path) -> None:
    result = report(known_config, "--since", "last tuesday")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("config error: --since: 'last tuesday' is neither a duration ago")


def test_report_flags_need_report(known_config: Path) -> None:
    result = run_cli("--config", str(known_config), "--detail", cwd=known_config.parent)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "config error: --detail only applies to --report; add --report or leave it out"
    )


def test_plot_without_matplotlib_says_how_to_install_it(known_config: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "no-matplotlib" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('matplotlib is not installed here')\n")
    result = report(
        known_config, "--plot", str(tmp_path / "r.png"), env={"PYTHONPATH": str(shadow.parent)}
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "--plot needs matplotlib" in line and "pip install" in line and "[report]" in line
    assert not (tmp_path / "r.png").exists()


def test_plot_writes_a_png(known_config: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (the [report] extra) is not installed")
    png = tmp_path / "report.png"
    result = report(known_config, *WINDOW, "--plot", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.stdout.startswith("Report from")
    assert "pair " not in result.stdout.split("Coverage")[1].splitlines()[1]  # no --detail


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("--until", "1h"), "config error: --until: only with --replay DIR or --report"),
        (("--report", "--replay", "."), "config error: --replay: cannot be combined with --report"),
    ],
)
def test_until_is_shared_with_replay_but_not_the_report(
    known_config: Path, args: tuple[str, ...], shown: str
) -> None:
    result = run_cli("--config", str(known_config), *args, cwd=known_config.parent)
    assert result.returncode == 2
    assert result.stderr.strip() == shown
