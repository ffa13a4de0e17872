"""Case 7: what 20 open dashboards cost the collector.

    python -m bench.dashboard [--pairs 20,500] [--viewers 20] [--window 10] [--reps 3] [--write]

Runs ``run.py --dry-run`` (the whole collector, no database) against the venue simulator in
a process of its own, and alternates windows with no viewer and with ``--viewers``
Server-Sent Events streams of the dashboard open (aiohttp clients in this process, reading
every frame). The collector
process's CPU (user + system, psutil) is compared between the two kinds of window; tick
lateness comes from its ``snapshot`` log lines. ``--write`` puts the table into
bench/RESULTS.md as section 7 (the full ``python -m bench`` run does too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psutil

from bench.common import BENCH_DIR, REPO, CaseResult, median, percentiles
from data_collector.simulator import pairs_for

TITLE = "7. Dashboard: CPU the collector spends on open dashboards"


@dataclass(frozen=True)
class DashboardSettings:
    pairs: tuple[int, ...] = (20, 500)
    viewers: int = 20
    window_s: float = 10.0
    reps: int = 3


@dataclass
class Window:
    viewers: int
    start: float
    end: float
    cpu_s: float
    frames: int = 0
    bytes: int = 0
    lateness_ms: list[float] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen([sys.executable, *args], stdout=log_file, stderr=log_file)


def _start_collector(pairs: int, folder: Path) -> tuple[list[subprocess.Popen[bytes]], int, Path]:
    """The simulator (its own process: its CPU is not the collector's) and the collector."""
    port, mexc, gate = _free_port(), _free_port(), _free_port()
    sim_args = ["-m", "data_collector.simulator", "--pairs", str(pairs)]
    sim_args += ["--mexc-port", str(mexc), "--gate-port", str(gate), "--log-level", "warning"]
    simulator = _start(sim_args, folder / f"simulator-{pairs}.log")
    symbols = ", ".join(f'"{p}"' for p in pairs_for(pairs))
    config = folder / f"config-{pairs}.yaml"
    config.write_text(
        f"data_collector:\n  symbols: [{symbols}]\n  data_dir: {folder / 'data'}\n"
        f'exchanges:\n  mexc: {{websocket_url: "ws://127.0.0.1:{mexc}/ws"}}\n'
        f'  gateio: {{websocket_url: "ws://127.0.0.1:{gate}/ws/v4/"}}\n'
        f"monitoring: {{port: {port}}}\n"
    )
    log_path = folder / f"collector-{pairs}.log"
    args = [str(REPO / "run.py"), "--config", str(config), "--dry-run", "--log-format", "json"]
    return [simulator, _start(args, log_path)], port, log_path


async def _wait_ready(session: aiohttp.ClientSession, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{url}/dashboard/state") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the collector did not serve {url}/dashboard/state in {timeout} s")


async def _viewer(session: aiohttp.ClientSession, url: str, window: Window) -> None:
    async with session.get(f"{url}/dashboard/events") as resp:
        async for line in resp.content:
            if line.startswith(b"data: "):
                window.frames += 1
                window.bytes += len(line)


async def _measure(
    session: aiohttp.ClientSession, url: str, proc: psutil.Process, viewers: int, span: float
) -> Window:
    window = Window(viewers, 0, 0, 0)
    tasks = [asyncio.create_task(_viewer(session, url, window)) for _ in range(viewers)]
    await asyncio.sleep(2.0 if viewers else 0.5)  # streams open and settled
    window.frames = window.bytes = 0
    before, window.start = proc.cpu_times(), time.time()
    await asyncio.sleep(span)
    after, window.end = proc.cpu_times(), time.time()
    window.cpu_s = (after.user + after.system) - (before.user + before.system)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return window


def _lateness_ms(log_path: Path, window: Window) -> list[float]:
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"event":"snapshot"' not in line:
            continue
        event = json.loads(line)
        stamp = time.mktime(time.strptime(event["tick_time"][:19], "%Y-%m-%dT%H:%M:%S"))
        stamp -= time.timezone  # tick_time is UTC
        if window.start <= stamp <= window.end:
            out.append(float(event["lateness_ms"]))
    return out


async def measure_size(
    pairs: int, s: DashboardSettings, folder: Path, log: Callable[[str], None]
) -> list[Window]:
    procs, port, log_path = _start_collector(pairs, folder)
    url = f"http://127.0.0.1:{port}"
    windows: list[Window] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
            await _wait_ready(session, url)
            await asyncio.sleep(2.0)
            ps = psutil.Process(procs[1].pid)
            for rep in range(s.reps):
                for viewers in (0, s.viewers):
                    log(f"case 7: {pairs} pairs, {viewers} viewers, run {rep + 1}/{s.reps}")
                    windows.append(await _measure(session, url, ps, viewers, s.window_s))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(15)
    for w in windows:
        w.lateness_ms = _lateness_ms(log_path, w)
    return windows


def _row(pairs: int, viewers: int, windows: list[Window]) -> list[str]:
    mine = [w for w in windows if w.viewers == viewers]
    cpu = median([100 * w.cpu_s / (w.end - w.start) for w in mine])
    late = percentiles([x for w in mine for x in w.lateness_ms])
    rate = median([w.frames / (w.end - w.start) / max(viewers, 1) for w in mine])
    size = median([w.bytes / w.frames for w in mine if w.frames]) if viewers else float("nan")
    return [
        f"{pairs:,}",
        str(viewers),
        f"{cpu:.1f}",
        "–" if not viewers else f"{rate:.2f}",
        "–" if not viewers else f"{size / 1024:,.1f}",
        f"{late['p50']:.2f} / {late['p99']:.2f}",
    ]


async def run_case(s: DashboardSettings, tmp: str, log: Callable[[str], None]) -> CaseResult:
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    for pairs in s.pairs:
        folder = Path(tmp) / f"dashboard-{pairs}"
        folder.mkdir(parents=True, exist_ok=True)
        windows = await measure_size(pairs, s, folder, log)
        quiet, watched = _row(pairs, 0, windows), _row(pairs, s.viewers, windows)
        added = float(watched[2]) - float(quiet[2])
        figures[f"added_cpu_pct_{pairs}"] = added
        rows += [[*quiet, ""], [*watched, f"{added:+.1f}"]]
    return CaseResult(
        title=TITLE,
        description="",
        headers=[
            "pairs",
            "viewers",
            "collector CPU, % of one core",
            "frames/s per viewer",
            "frame, KiB",
            "tick lateness p50 / p99, ms",
            "added by the viewers, % of one core",
        ],
        rows=rows,
        notes=[
            "The collector runs as `run.py --dry-run` against `python -m data_collector."
            "simulator` in another process (5 updates/s per pair and venue, not counted): the "
            "same load in every window.",
            f"Windows of {s.window_s:.0f} s alternate without a viewer and with {s.viewers} "
            "open Server-Sent Events streams of the dashboard, each reading every frame; "
            f"medians over {s.reps} window(s) of each kind. The viewers run in the bench "
            "process (their CPU, and any browser's rendering, is not counted).",
            "The state is built once per tick whatever the number of viewers, and the same "
            "bytes are written to each stream.",
            f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.dashboard`.",
        ],
        figures=figures,
    )


def write_section(result: CaseResult, results: Path = BENCH_DIR / "RESULTS.md") -> None:
    """Put this case's section into RESULTS.md, replacing an earlier one."""
    from bench.__main__ import markdown_table

    section = [f"## {result.title}", "", markdown_table(result.headers, result.rows), ""]
    section += [f"- {note}" for note in result.notes] + [""]
    text = results.read_text()
    start = text.find(f"## {TITLE.split()[0]} ")
    if start < 0:
        results.write_text(text.rstrip("\n") + "\n\n" + "\n".join(section))
        return
    # the section ends where the next one (or the storage section's marker) begins
    ends = [i for i in (text.find("\n## ", start + 1), text.find("\n<!-- ", start + 1)) if i >= 0]
    rest = text[min(ends) + 1 :] if ends else ""
    results.write_text(text[:start] + "\n".join(section) + ("\n" + rest if rest else ""))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--pairs", default="20,500", help="comma-separated pair counts")
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    settings = DashboardSettings(
        tuple(int(n) for n in args.pairs.split(",")), args.viewers, args.window, args.reps
    )
    with tempfile.TemporaryDirectory(prefix="cex-bench-dashboard-") as tmp:
        result = asyncio.run(run_case(settings, tmp, lambda m: print(f"[bench] {m}", flush=True)))
    from bench.__main__ import markdown_table

    print(markdown_table(result.headers, result.rows))
    if args.write:
        write_section(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
