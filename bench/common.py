"""Shared helpers of the orchestrator: paths, statistics, the ccxt venv, system facts."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PROJECT_PY = sys.executable
CCXT_VENV = BENCH_DIR / ".venv-ccxt"
CCXT_PY = CCXT_VENV / "bin" / "python"
REQUIREMENTS_CCXT = BENCH_DIR / "requirements-ccxt.txt"
PROJECT_LIBS = ("picows", "msgspec", "protobuf", "numpy", "uvloop", "asyncpg", "structlog")
CCXT_LIBS = ("ccxt", "protobuf", "websockets", "aiohttp", "uvloop", "matplotlib")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentiles(samples: Sequence[float] | np.ndarray) -> dict[str, float]:
    """p50, p99 and max of ``samples`` (NaN when empty)."""
    arr = np.asarray(samples, dtype=float)
    if arr.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    p50, p99 = np.percentile(arr, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(arr.max())}


def median_of(runs: Sequence[dict[str, float]], key: str) -> float:
    return median([run[key] for run in runs if key in run])


@dataclass
class CaseResult:
    """One table of RESULTS.md plus the figures the quick summary line needs."""

    title: str
    description: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    #: a picture shown below the table in a full run (path relative to bench/), and its alt text
    image: str = ""
    image_alt: str = ""


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the ccxt virtual environment -----------------------------------------------------------


def _venv_is_complete() -> bool:
    if not CCXT_PY.exists():
        return False
    probe = "import ccxt.pro, websockets, google.protobuf, matplotlib"
    return subprocess.run([str(CCXT_PY), "-c", probe], capture_output=True).returncode == 0


def ensure_ccxt_venv(log: callable) -> tuple[bool, str]:  # type: ignore[valid-type]
    """Create ``bench/.venv-ccxt`` on first use. Returns (available, reason if not)."""
    if _venv_is_complete():
        return True, ""
    log(f"creating {CCXT_VENV.relative_to(REPO)} (ccxt, protobuf 5, websockets, matplotlib)")
    shutil.rmtree(CCXT_VENV, ignore_errors=True)
    steps = [
        [PROJECT_PY, "-m", "venv", str(CCXT_VENV)],
        [str(CCXT_PY), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS_CCXT)],
    ]
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{' '.join(argv[:3])}: {exc}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            return False, f"{' '.join(argv[:4])} failed: {tail[0]}"
    if not _venv_is_complete():
        return False, "the venv was created but ccxt.pro/websockets/matplotlib do not import"
    return True, ""


# --- system facts ---------------------------------------------------------------------------


class LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds while the bench runs: the
    machine's 2 cores are shared, so every case says how busy they were meanwhile."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            await asyncio.sleep(self.every)

    def mark(self) -> int:
        return len(self.samples)

    def describe(self, since: int = 0) -> str:
        """The load average since ``mark()`` returned ``since``: median and range."""
        values = self.samples[since:] or [os.getloadavg()[0]]
        return (
            f"load average (1 min, on {os.cpu_count()} cores) meanwhile: median "
            f"{median(values):.1f}, {min(values):.1f}–{max(values):.1f}"
        )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def project_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PROJECT_LIBS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return versions


def ccxt_versions() -> dict[str, str]:
    if not CCXT_PY.exists():
        return {}
    code = (
        "import json, platform; from importlib import metadata as m\n"
        f"names = {CCXT_LIBS!r}\n"
        "out = {'python': platform.python_version()}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = '-'\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(CCXT_PY), "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {}
    import json

    return json.loads(done.stdout)


def system_facts() -> dict[str, str]:
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
    }
