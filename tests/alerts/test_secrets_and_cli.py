"""``--test-alerts`` exit codes, and no secret from a target URL anywhere in a run's output:
logs, errors, ``--status``, ``--test-alerts``, ``/metrics``, ``/health`` and the dashboard."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.alerts.helpers import Receiver, refused_url
from tests.cli_process import RUN_PY, cli_env, free_port, write_config
from tests.monitoring.helpers import get

SECRET = "Pl4nt3dS3cr3tXyz"


async def run_cli_async(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """run.py as a child process (the receivers keep serving meanwhile); (code, stdout+err)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        RUN_PY,
        *args,
        cwd=cwd,
        env=cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


def alerts_config(tmp_path: Path, targets: list[str], port: int = 0) -> Path:
    listed = ", ".join(f'"{t}"' for t in targets)
    return write_config(
        tmp_path,
        'data_collector:\n  symbols: ["BTC/USDT", "ETH/USDT"]\n'
        "  analytics: {arbitrage_threshold: 0}\n"  # fee-free venues: gaps open at once
        "exchanges:\n  mexc: {taker_fee: 0}\n  gateio: {taker_fee: 0}\n"
        f"monitoring: {{port: {port}}}\n"
        f"alerts: {{targets: [{listed}], cooldown_s: 0}}\n",
    )


@pytest.mark.slow
async def test_test_alerts_exits_0_when_every_target_took_it_and_1_otherwise(
    tmp_path: Path,
) -> None:
    async with Receiver() as receiver:
        cfg = alerts_config(tmp_path / "ok", [receiver.url()])
        code, out = await run_cli_async("--config", str(cfg), "--test-alerts", cwd=tmp_path)
        assert code == 0, out
        assert receiver.titles == ["cex-arb-collector test"]
        assert "json://127.0.0.1  ok" in out

        cfg = alerts_config(tmp_path / "bad", [receiver.url(), refused_url()])
        code, out = await run_cli_async("--config", str(cfg), "--test-alerts", cwd=tmp_path)
        assert code == 1, out
        assert "ok" in out and "FAILED" in out and "1 failed." in out

    cfg = write_config(tmp_path / "none", "monitoring: {port: 0}\n")
    code, out = await run_cli_async("--config", str(cfg), "--test-alerts", cwd=tmp_path)
    assert code == 1 and "No alert targets configured" in out


async def collect_until(
    proc: asyncio.subprocess.Process, out: list[str], marker: str, timeout: float
) -> None:
    """Read ``proc``'s stdout into ``out`` until a line holds ``marker`` (or the deadline)."""
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        while line := (await proc.stdout.readline()).decode():
            out.append(line)
            if marker in line:
                return


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_no_secret_from_a_target_url_appears_in_any_output(tmp_path: Path) -> None:
    port = free_port()
    async with Receiver() as receiver:
        targets = [
            receiver.url(path=f"hook/{SECRET}", userinfo=f"bot:{SECRET}"),
            refused_url(path=SECRET),
            f"tgram://123456789:{SECRET}/987654321",
        ]
        cfg = alerts_config(tmp_path, targets, port)
        args = ["--config", str(cfg), "--simulate", "--dry-run", "--duration", "60"]
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, RUN_PY, *args, "--log-level", "debug", "--log-format", "json"),
            cwd=tmp_path,
            env=cli_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        lines: list[str] = []
        # the refused target's failure is logged after its 3 attempts (2 s and 4 s apart)
        await collect_until(proc, lines, '"event":"alert_target_failed"', timeout=60)
        pages = [
            (await get(f"http://127.0.0.1:{port}{path}"))[1]
            for path in ("/metrics", "/health", "/dashboard/state", "/")
        ]
        proc.terminate()
        rest, err = await asyncio.wait_for(proc.communicate(), 20)
        run_out = "".join(lines) + rest.decode() + err.decode()
        _, status_out = await run_cli_async("--config", str(cfg), "--status", cwd=tmp_path)
        _, test_out = await run_cli_async("--config", str(cfg), "--test-alerts", cwd=tmp_path)
    assert proc.returncode == 0, run_out
    assert '"event":"alert_target_failed"' in run_out, run_out  # the failure path was logged
    assert receiver.paths[0] == f"/hook/{SECRET}"  # the secret was in use all along
    assert "json://127.0.0.1" in status_out and "tgram://***" in status_out
    assert "tgram://***" in test_out
    for name, text in [("run", run_out), ("--status", status_out), ("--test-alerts", test_out)]:
        assert SECRET not in text, f"the secret leaked into the {name} output"
    for text in pages:
        assert SECRET not in text


@pytest.mark.parametrize(
    "alerts",
    [
        f'{{targets: "json://host/{SECRET}"}}',  # a string, not a list
        f'{{targets: ["nosuchservice://{SECRET}@host/x"]}}',
        f'{{targets: ["json://host/{SECRET}"], events: ["arbitrage_opened"]}}',
    ],
)
async def test_a_bad_alerts_config_is_one_line_without_the_secret(
    tmp_path: Path, alerts: str
) -> None:
    cfg = write_config(tmp_path, f"alerts: {alerts}\n")
    code, out = await run_cli_async("--config", str(cfg), "--dry-run", cwd=tmp_path)
    assert code == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error: alerts."), out
    assert SECRET not in out
