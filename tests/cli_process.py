"""Helpers for tests that run ``run.py`` as a real process: configs, ports, /health."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
RUN_PY = str(REPO / "run.py")
#: the collector must be gone this long after SIGTERM (its own budget is 10 s)
SHUTDOWN_BUDGET = 12.0


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without DATABASE_URL (a config names its database itself)."""
    full = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full.update(env or {})
    return full


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, RUN_PY, *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(
    *args: str,
    cwd: Path,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, RUN_PY, *args], cwd=cwd, env=cli_env(env), stdout=stdout, stderr=stderr
    )


def write_config(directory: Path, body: str, name: str = "config.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_health(port: int) -> dict[str, Any] | None:
    """The collector's /health body on ``port``, or None while nothing answers."""
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503 still carries the body
        return json.loads(exc.read())
    except (OSError, ValueError):
        return None


def stop(proc: subprocess.Popen[bytes], timeout: float = SHUTDOWN_BUDGET) -> int:
    """SIGTERM, then the exit code within ``timeout`` (SIGKILL and fail the test otherwise)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"still running {timeout} s after SIGTERM") from None


@contextmanager
def reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Kill ``proc`` on the way out if the test left it running (a failed assertion)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
