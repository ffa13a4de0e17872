"""Case 8: recording (``--record``) and replay (``--replay --speed max``).

    python -m bench.recording [--quick]     # this case alone; updates its RESULTS.md section

CPU cost: a simulator process floods one venue at ``rate`` frames/s; a fresh client process
(the project's feed stack, :mod:`bench.client_ours`) reads it with the links untapped, then
another with the collector's recorder tapping them; each notes its CPU time (every thread,
the recorder's worker included) over the same window, alternating which goes first. Bytes per
frame: the files the recording client left, over the frames it received; the files are read
back and must hold every one of them. Replay: ``run.py --replay DIR --speed max --dry-run``
on that recording (parsers, cache, snapshots every recorded second, analytics; no database),
its frames per wall-clock second as ``replay_finished`` reports them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, PROJECT_PY, REPO, CaseResult, markdown_table, median
from bench.proto import Child
from data_collector.recording.format import FRAME
from data_collector.recording.reader import read_records, venue_files
from data_collector.simulator import pairs_for

TITLE = "9. Recording and replay"
RESULTS = BENCH_DIR / "RESULTS.md"


@dataclass
class RecordingSettings:
    pairs: int = 200
    rate: float = 20_000.0
    warmup_s: float = 1.0
    window_s: float = 3.0
    reps: int = 7
    venues: tuple[str, ...] = ("gateio", "mexc")


QUICK = RecordingSettings(window_s=2.0, reps=1)
#: replays of the recording; the median run is reported
REPLAYS = 3


async def client_run(
    venue: str, url: str, s: RecordingSettings, sim: Child, tmp: str, recording: Path | None
) -> dict[str, float]:
    """One client's CPU per frame over the window, and what its recording holds."""
    argv = [PROJECT_PY, "-m", "bench.client_ours", "--venue", venue, "--url", url]
    argv += ["--pairs", str(s.pairs)]
    if recording is not None:
        argv += ["--recording-dir", str(recording)]
    name = f"rec-{venue}-{'on' if recording else 'off'}"
    client = await Child.spawn(name, argv, cwd=str(REPO), stderr_path=f"{tmp}/{name}.err")
    try:
        await client.recv(timeout=60)
        await client.request({"cmd": "wait_subscribed", "timeout": 30})
        await sim.request({"cmd": "set_rate", "venue": venue, "rate": s.rate / s.pairs})
        await asyncio.sleep(s.warmup_s)
        before = await client.request({"cmd": "count"})
        await asyncio.sleep(s.window_s)
        after = await client.request({"cmd": "count"})
        await sim.request({"cmd": "set_rate", "venue": venue, "rate": 0})
        frames = after["frames"] - before["frames"]
        out = {
            "us_per_frame": (after["cpu"] - before["cpu"]) / max(frames, 1) * 1e6,
            "cpu_pct": (after["cpu"] - before["cpu"]) / s.window_s * 100,
            "rate": frames / s.window_s,
        }
        if recording is not None:
            await asyncio.sleep(0.3)  # the last frames in flight
            total = (await client.request({"cmd": "count"}))["frames"]
            closed = await client.request({"cmd": "close_recording"})
            out |= {"frames": total, "bytes": closed["bytes"], "records": closed["records"]}
        return out
    finally:
        await client.close()


def read_back(recording: Path, venue: str) -> tuple[int, int]:
    """(frames the files hold, their raw bytes before compression)."""
    frames = raw = 0
    for record in read_records(venue, venue_files(recording, venue)):
        if record.kind == FRAME:
            frames += 1
            raw += 19 + len(record.link) + len(record.payload)
    return frames, raw


def replay(recording: Path, venue: str, s: RecordingSettings, tmp: str) -> dict[str, Any]:
    """``run.py --replay`` at full speed, dry run; its ``replay_finished`` line."""
    config = Path(tmp) / f"replay-{venue}.yaml"
    symbols = ", ".join(f'"{p}"' for p in pairs_for(s.pairs))
    config.write_text(
        f'data_collector: {{exchanges: ["{venue}"], symbols: [{symbols}], '
        f'data_dir: "{tmp}/data"}}\nmonitoring: {{enabled: false}}\n'
    )
    argv = [PROJECT_PY, "run.py", "--config", str(config), "--replay", str(recording)]
    argv += ["--speed", "max", "--dry-run", "--log-format", "json"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in lines if e.get("event") == "replay_finished"]
    if done.returncode != 0 or not finished:
        raise RuntimeError(f"replay failed ({done.returncode}): {done.stderr[-1000:]}")
    return finished[0]


async def run_venue(venue: str, s: RecordingSettings, tmp: str, log: Any) -> dict[str, Any]:
    argv = [PROJECT_PY, "-m", "bench.simproc", "--venues", venue, "--pairs", str(s.pairs)]
    sim = await Child.spawn(
        f"sim/{venue}", [*argv, "--rate", "0"], cwd=str(REPO), stderr_path=f"{tmp}/rsim.err"
    )
    off: list[dict[str, float]] = []
    on: list[dict[str, float]] = []
    recording = Path(tmp) / f"rec-{venue}"
    try:
        url = (await sim.recv(timeout=30))["urls"][venue]
        for rep in range(s.reps):
            for mode in ("off", "on") if rep % 2 == 0 else ("on", "off"):
                log(f"case 9: {venue} rep {rep + 1}/{s.reps}, recording {mode}")
                if mode == "on":
                    target = recording if rep == 0 else Path(tmp) / f"rec-{venue}-{rep}"
                    on.append(await client_run(venue, url, s, sim, tmp, target))
                    on[-1]["dir"] = str(target)  # type: ignore[assignment]
                else:
                    off.append(await client_run(venue, url, s, sim, tmp, None))
    finally:
        await sim.close()
    held, raw = read_back(recording, venue)
    first = on[0]
    if held != first["frames"]:
        raise RuntimeError(f"{venue}: the recording holds {held} frames of {first['frames']}")
    log(f"case 9: {venue} replay at --speed max, {REPLAYS} times")
    runs = [replay(recording, venue, s, tmp) for _ in range(REPLAYS)]
    replayed = sorted(runs, key=lambda r: r["frames_per_s"])[REPLAYS // 2]  # the median run
    paired = [b["us_per_frame"] / a["us_per_frame"] - 1 for a, b in zip(off, on, strict=True)]
    return {
        "cost_pct": median(paired) * 100,
        "cost_range": (min(paired) * 100, max(paired) * 100),
        "off_us": median([r["us_per_frame"] for r in off]),
        "on_us": median([r["us_per_frame"] for r in on]),
        "off_cpu": median([r["cpu_pct"] for r in off]),
        "on_cpu": median([r["cpu_pct"] for r in on]),
        "rate": median([r["rate"] for r in off + on]),
        "bytes_per_frame": first["bytes"] / first["frames"],
        "raw_per_frame": raw / held,
        "frames": held,
        "replay_frames": replayed["frames"],
        "replay_fps": replayed["frames_per_s"],
        "replay_snapshots": replayed["snapshots"],
    }


async def run_case(s: RecordingSettings, tmp: str, log: Any) -> CaseResult:
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    for venue in s.venues:
        r = await run_venue(venue, s, tmp, log)
        cost = r["cost_pct"]
        figures |= {
            f"cost_pct_{venue}": cost,
            f"bytes_per_frame_{venue}": r["bytes_per_frame"],
            f"replay_fps_{venue}": float(r["replay_fps"]),
        }
        rows.append(
            [
                venue,
                f"{r['rate']:,.0f}",
                f"{r['off_us']:.1f} ({r['off_cpu']:.0f} %)",
                f"{r['on_us']:.1f} ({r['on_cpu']:.0f} %)",
                f"{cost:+.1f} % ({r['cost_range'][0]:+.0f}..{r['cost_range'][1]:+.0f} %)",
                f"{r['bytes_per_frame']:.1f} ({r['raw_per_frame'] / r['bytes_per_frame']:.1f}x)",
                f"{r['replay_fps']:,.0f}",
                f"{r['replay_frames']:,} / {r['replay_snapshots']}",
            ]
        )
    notes = [
        f"{s.pairs} pairs of one venue, {s.rate:,.0f} frames/s asked of the simulator (its "
        f"random walk at {s.rate / s.pairs:.0f} updates/s per pair, pushed every 10 ms; "
        "'frames/s' is what the client received, less when the machine's cores are busy "
        "elsewhere: the cost is compared per frame); each figure "
        f"is the median of {s.reps} fresh client processes per mode, measured over "
        f"{s.window_s:g} s after {s.warmup_s:g} s of warm-up, alternating which mode goes first.",
        "CPU is the client process's user + system time (getrusage: every thread, so the "
        "recorder's worker thread, which encodes and compresses, counts); the simulator's "
        "never does. 'cost' is the median over the repetitions of each one's CPU per frame "
        "with the recording over without (each pair run back to back, so drift in what else "
        "the machine does cancels out).",
        "Bytes per frame: the recording's files over the frames received (connection events "
        "included, a handful); in brackets the compression, raw record bytes over file bytes. "
        "The files were read back: they hold every frame the client received.",
        "Replay: python run.py --replay DIR --speed max --dry-run on the first recording "
        "(warm-up included): venue parser, cache, a snapshot every recorded second, analytics "
        "summaries, the log lines; no database (case 3 measures the writer). Frames per "
        f"wall-clock second as replay_finished reports them, the median of {REPLAYS} replays; "
        "the replay runs on one core.",
    ]
    return CaseResult(
        title=TITLE,
        description="",
        headers=[
            "venue",
            "frames/s",
            "µs/frame (CPU) not recording",
            "µs/frame (CPU) recording",
            "cost (min..max)",
            "bytes/frame on disk",
            "replay frames/s at max",
            "replayed frames / snapshots",
        ],
        rows=rows,
        notes=notes,
        figures=figures,
    )


def section(result: CaseResult) -> str:
    """This case's section of RESULTS.md (the last one: after the storage case's)."""
    stamp = f"Measured by `python -m bench.recording` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    lines = [f"## {result.title}", "", stamp, "", markdown_table(result.headers, result.rows), ""]
    lines += [f"- {note}" for note in result.notes] + [""]
    return "\n".join(lines)


def update_results(result: CaseResult, path: Path = RESULTS) -> None:
    """Replace (or append) this case's section of RESULTS.md, leaving the others alone."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^## {re.escape(TITLE)}\n.*?(?=^## |^<!-- |\Z)", re.S | re.M)
    body = section(result)
    text = pattern.sub(body, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + body
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recording")
    parser.add_argument("--quick", action="store_true", help="one short run per mode")
    args = parser.parse_args()
    settings = QUICK if args.quick else RecordingSettings()

    def log(message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
        result = asyncio.run(run_case(settings, tmp, log))
    print(markdown_table(result.headers, result.rows))
    if not args.quick:
        update_results(result)
        log(f"updated {RESULTS.relative_to(REPO)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
