"""The command line as a user runs it: run.py in a subprocess."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_collector.venues import VENUES
from tests.cli_process import (
    RUN_PY,
    cli_env,
    free_port,
    get_health,
    reaped,
    run_cli,
    start_cli,
    stop,
    write_config,
)
from tests.helpers import wait_until


def test_help_lists_every_flag(tmp_path: Path) -> None:
    out = run_cli("--help", cwd=tmp_path).stdout
    flags = ("--config", "--status", "--dry-run", "--symbols", "--log-level", "--log-format")
    flags += ("--archive", "--query", "--format")
    for flag in (*flags, "--record", "--replay", "--from", "--until", "--speed"):
        assert flag in out
    words = " ".join(out.split())  # argparse wraps the description
    assert all(venue.display_name in words for venue in VENUES.values())


def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "data_collector:\n  snapshot_interval: -1\n")
    result = run_cli("--config", str(cfg), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "data_collector.snapshot_interval" in lines[0] and "-1" in lines[0]


def test_status_redacts_secrets_and_reports_an_unreachable_database(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        'database:\n  dsn: "postgresql://alice:s3cr3t-pw@127.0.0.1:1/market"\n'
        'exchanges:\n  mexc:\n    api_key: "${MEXC_API_KEY:}"\n'
        "monitoring:\n  port: 1\n",
    )
    started = time.monotonic()
    result = run_cli(
        "--config", str(cfg), "--status", cwd=tmp_path, env={"MEXC_API_KEY": "k3y-xyz"}
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    out = result.stdout + result.stderr
    assert "s3cr3t-pw" not in out and "k3y-xyz" not in out
    assert "postgresql://alice:***@127.0.0.1:1/market" in out
    assert "reachable:   no" in out
    assert "snapshot_interval: 1" in out  # the effective configuration is printed


def test_status_on_a_fresh_directory_does_not_create_a_database(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "monitoring:\n  port: 1\n")
    result = run_cli("--config", str(cfg), "--status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not initialised yet" in result.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_dry_run_never_touches_the_database(tmp_path: Path) -> None:
    # A DSN that would fail at once if anything tried it, and an embedded default that would
    # leave ./data/postgres behind: neither may be touched.
    cfg = write_config(
        tmp_path,
        'database:\n  dsn: "postgresql://nobody:pw@127.0.0.1:1/none"\n'
        "monitoring:\n  enabled: false\n",
    )
    result = run_cli(
        "--config", str(cfg), "--dry-run", "--simulate", "--duration", "3.5",
        "--symbols", "BTC/USDT,ETH/USDT", "--log-format", "json",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert all("event" in e and "level" in e for e in events)
    names = [e["event"] for e in events]
    assert "snapshot" in names
    assert not any(n.startswith(("database", "writer", "migration")) for n in names)
    assert not (tmp_path / "data").exists()
    snapshots = [e for e in events if e["event"] == "snapshot"]
    # 2 pairs x every venue (the default list: all of them), captured all the same
    assert max(e["rows"] for e in snapshots) == 2 * len(VENUES)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("--duration", "-5"), "--duration: -5 is not allowed"),
        (("--duration", "0"), "--duration: 0 is not allowed"),
        (("--duration", "nan"), "--duration: nan is not allowed"),
        (("--symbols", "BTC/USDT,,ETH/USDT"), "--symbols: 'BTC/USDT,,ETH/USDT' has an empty entry"),
        (("--from", "now-1h"), "--from: only with --replay DIR"),
        (("--speed", "max"), "--speed: only with --replay DIR"),
        (("--replay", "."), "--replay: cannot be combined with --simulate"),
    ],
)
def test_mistaken_flags_exit_2_with_one_line(
    tmp_path: Path, args: tuple[str, ...], shown: str
) -> None:
    cfg = write_config(tmp_path, "monitoring: {enabled: false}\n")
    result = run_cli("--config", str(cfg), "--dry-run", "--simulate", *args, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"config error: {shown}"), line
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("--status", "--simulate"), "--simulate: only when collecting, not with --status"),
        (("--report", "--record", "rec"), "--record: only when collecting, not with --report"),
        (("--query", "SELECT 1", "--duration", "5"), "--duration: only when collecting, not with"),
        (("--test-alerts", "--record", "rec"), "--record: only when collecting, not with"),
    ],
)
def test_a_one_shot_command_refuses_the_flags_of_a_collection(
    tmp_path: Path, args: tuple[str, ...], shown: str
) -> None:
    cfg = write_config(tmp_path, "monitoring: {enabled: false}\n")
    result = run_cli("--config", str(cfg), *args, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"config error: {shown}"), line
    assert not (tmp_path / "rec").exists()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's tmp tree: as root, pgserver opens the embedded data
    directory's parents to its own user, and another pytest run on the machine closes
    /tmp/pytest-of-root again (see conftest.pg_server)."""
    path = Path(tempfile.mkdtemp(prefix="cex-arb-test-cli-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_one_collector_per_data_dir_from_any_working_directory(shared_dir: Path) -> None:
    port = free_port()
    config = write_config(
        shared_dir / "etc",
        "data_collector:\n  symbols: [BTC/USDT, ETH/USDT]\n  data_dir: ./data\n"
        f"monitoring: {{host: 127.0.0.1, port: {port}}}\n",
    )
    data_dir = shared_dir / "etc" / "data"  # next to the config file, wherever we run from
    elsewhere = shared_dir / "elsewhere"
    elsewhere.mkdir()
    with open(shared_dir / "first.log", "wb") as log:
        args = ("--config", str(config), "--simulate")
        with reaped(start_cli(*args, cwd=shared_dir, stdout=log, stderr=log)) as first:
            await wait_until(
                lambda: (get_health(port) or {}).get("last_snapshot"),
                60,
                interval=0.2,
                what="the first collector's first snapshot",
            )
            # the same config from another directory: the same data directory, refused
            second = run_cli(*args, cwd=elsewhere, timeout=30)
            status = run_cli("--config", str(config), "--status", cwd=elsewhere, timeout=30)
            assert stop(first) == 0
    assert not (elsewhere / "data").exists()
    assert (data_dir / "postgres" / "PG_VERSION").exists()

    assert second.returncode == 1, second.stdout + second.stderr
    [line] = (second.stdout + second.stderr).splitlines()
    assert f"data directory {data_dir} is in use by another collector (pid {first.pid}" in line
    assert "running since 20" in line and f"monitoring http://127.0.0.1:{port}" in line

    # --status: the report alone on stdout (the embedded server's log lines on stderr), the
    # running collector named from the lock file and its /health recognised as ours
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert f"holds {data_dir}: pid {first.pid}, running since 20" in out
    assert re.search(rf"http://127.0.0.1:{port}/health: HTTP (200, ok|503, unhealthy)", out)
    assert "embedded PostgreSQL running" not in out and "released" not in out
    assert "embedded PostgreSQL running" in status.stderr


def drop_root_powers() -> None:
    """In the child, before exec: without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, root too
    obeys file permissions (as ``setpriv --bounding-set=-dac_override,-dac_read_search``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_missing_or_unreadable_replay_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "monitoring: {enabled: false}\n")
    missing = run_cli("--config", str(cfg), "--replay", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    [line] = missing.stderr.splitlines()
    assert (
        line == f"config error: --replay: {tmp_path / 'nope'} does not exist; name a "
        "directory made by --record"
    )
    locked = tmp_path / "locked"
    (locked / "mexc").mkdir(parents=True)
    locked.chmod(0)
    try:
        unreadable = subprocess.run(
            [sys.executable, RUN_PY, "--config", str(cfg), "--replay", str(locked)],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=drop_root_powers if os.geteuid() == 0 else None,
        )
    finally:
        locked.chmod(0o755)
    assert unreadable.returncode == 2, unreadable.stderr
    [line] = unreadable.stderr.splitlines()
    assert line.startswith(f"config error: --replay: {locked}")
    assert "cannot be read (Permission denied); check its permissions" in line


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_simulated_run_is_recorded_then_replayed_at_full_speed(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "monitoring: {enabled: false}\n")
    common = ("--config", str(cfg), "--dry-run", "--symbols", "BTC/USDT,ETH/USDT")
    common += ("--log-format", "json")
    home = {"HOME": str(tmp_path / "home")}  # --record=~/rec: no shell expands that ~
    live = run_cli(
        *common, "--simulate", "--record=~/rec", "--duration", "3.5", cwd=tmp_path, env=home
    )
    assert live.returncode == 0, live.stderr[-2000:]
    recorded = [json.loads(line) for line in live.stdout.splitlines()]
    [closed] = [e for e in recorded if e["event"] == "recording_closed"]
    rec = tmp_path / "home" / "rec"
    assert closed["dir"] == str(rec) and closed["records"] > 0
    assert sorted(p.name for p in rec.iterdir()) == sorted(VENUES)
    replay = run_cli(*common, "--replay=~/rec", "--speed", "max", cwd=tmp_path, env=home)
    assert replay.returncode == 0, replay.stderr[-2000:]
    replayed = [json.loads(line) for line in replay.stdout.splitlines()]
    [finished] = [e for e in replayed if e["event"] == "replay_finished"]
    assert finished["frames"] > 0
    ticks = [e["tick_time"] for e in recorded if e["event"] == "snapshot"]
    assert [e["tick_time"] for e in replayed if e["event"] == "snapshot"] == ticks
    assert finished["snapshots"] == len(ticks)
