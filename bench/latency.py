"""Case 2: latency from the simulator's send to the cache update, at a steady frame rate.

The simulator and the client are separate processes on one machine; both stamp with
``time.time_ns()`` (CLOCK_REALTIME, one clock for every process). The simulator notes
(pair, sequence, ns) right before each frame is handed to its socket; the client's cache notes
(pair, sequence, ns) right after the update is stored (and the frame's receive stamp). The
two logs are joined on (pair, sequence). The measured span is split into windows; each window
gives p50/p99/max and the table shows the median over windows.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import numpy as np

from bench.common import PROJECT_PY, REPO, CaseResult, median, percentiles
from bench.proto import Child


@dataclass
class LatencySettings:
    pairs: int = 200
    rate: float = 20_000.0
    warmup_s: float = 1.0
    window_s: float = 3.0
    windows: int = 5


def _key(idx: np.ndarray, seq: np.ndarray) -> np.ndarray:
    return (idx.astype(np.int64) << 42) | (seq.astype(np.int64) & ((1 << 42) - 1))


def join(sends: dict[str, np.ndarray], cache: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Match every cache update with its send: arrays of send ns, receive ns, done ns."""
    s_key = _key(sends["idx"], sends["seq"])
    c_key = _key(cache["p"], cache["seq"])
    order = np.argsort(s_key, kind="stable")
    s_sorted = s_key[order]
    pos = np.searchsorted(s_sorted, c_key)
    pos = np.clip(pos, 0, len(s_sorted) - 1)
    found = s_sorted[pos] == c_key
    send_ns = sends["ns"][order][pos[found]]
    return {"send": send_ns, "recv": cache["recv"][found], "done": cache["done"][found]}


async def run_venue(venue: str, s: LatencySettings, tmp: str) -> dict[str, object]:
    sim_argv = [PROJECT_PY, "-m", "bench.simproc", "--venues", venue, "--pairs", str(s.pairs)]
    sim = await Child.spawn(
        f"sim/{venue}",
        [*sim_argv, "--rate", "0"],
        cwd=str(REPO),
        stderr_path=f"{tmp}/lat-sim-{venue}.err",
    )
    client = None
    try:
        url = (await sim.recv(timeout=30))["urls"][venue]
        argv = [PROJECT_PY, "-m", "bench.client_ours", "--venue", venue, "--url", url]
        argv += ["--pairs", str(s.pairs), "--record"]
        client = await Child.spawn(
            f"ours/{venue}", argv, cwd=str(REPO), stderr_path=f"{tmp}/lat-client-{venue}.err"
        )
        await client.recv(timeout=60)
        await client.request({"cmd": "wait_subscribed", "timeout": 30})
        await sim.request({"cmd": "record_sends", "venue": venue})
        await sim.request({"cmd": "set_rate", "venue": venue, "rate": s.rate / s.pairs})
        await asyncio.sleep(s.warmup_s)
        before = await client.request({"cmd": "count"})
        await client.request({"cmd": "record", "on": True})
        await asyncio.sleep(s.window_s * s.windows)
        await client.request({"cmd": "record", "on": False})
        after = await client.request({"cmd": "count"})
        await sim.request({"cmd": "set_rate", "venue": venue, "rate": 0})
        count = await client.request({"cmd": "count"})
        await sim.request({"cmd": "dump_sends", "venue": venue, "path": f"{tmp}/sends-{venue}.npz"})
        await client.request({"cmd": "dump", "path": f"{tmp}/cache-{venue}.npz"})
    finally:
        if client is not None:
            await client.close()
        await sim.close()
    sends = dict(np.load(f"{tmp}/sends-{venue}.npz"))
    cache = dict(np.load(f"{tmp}/cache-{venue}.npz"))
    joined = join(sends, cache)
    cpu_pct = (after["cpu"] - before["cpu"]) / (s.window_s * s.windows) * 100
    per_frame_us = (
        (after["cpu"] - before["cpu"]) / max(after["updates"] - before["updates"], 1) * 1e6
    )
    return _windows(joined, len(cache["done"]), s) | {
        "parse_errors": count["parse_errors"],
        "cpu_pct": cpu_pct,
        "cpu_us_per_frame": per_frame_us,
    }


async def run_floor(s: LatencySettings, tmp: str) -> dict[str, object]:
    """The same burst pattern over plain loopback TCP into a blocking recv loop."""
    seconds = s.warmup_s + s.window_s * s.windows + 0.5
    argv = [PROJECT_PY, "-m", "bench.floor", "send", "--rate", str(s.rate)]
    sender = await Child.spawn(
        "floor/send",
        [*argv, "--seconds", str(seconds)],
        cwd=str(REPO),
        stderr_path=f"{tmp}/floor-send.err",
    )
    port = (await sender.recv(timeout=30))["port"]
    out = f"{tmp}/floor.npz"
    argv = [PROJECT_PY, "-m", "bench.floor", "recv", "--port", str(port), "--out", out]
    receiver = await Child.spawn(
        "floor/recv", argv, cwd=str(REPO), stderr_path=f"{tmp}/floor-recv.err"
    )
    try:
        await receiver.recv(timeout=seconds + 30)
    finally:
        await receiver.close(timeout=5)
        await sender.close(timeout=5)
    data = dict(np.load(out))
    start = int(data["send"][0]) + int(s.warmup_s * 1e9) if data["send"].size else 0
    keep = data["send"] >= start
    j = {"send": data["send"][keep], "recv": data["done"][keep], "done": data["done"][keep]}
    return _windows(j, int(keep.sum()), s)


def _windows(j: dict[str, np.ndarray], recorded: int, s: LatencySettings) -> dict[str, object]:
    send, recv, done = j["send"], j["recv"], j["done"]
    total = (done - send) / 1e3  # microseconds
    wire = (recv - send) / 1e3
    handle = (done - recv) / 1e3
    t0 = send.min() if send.size else 0
    edges = t0 + np.arange(s.windows + 1) * int(s.window_s * 1e9)
    per: list[dict[str, float]] = []
    for a, b in itertools.pairwise(edges):
        mask = (send >= a) & (send < b)
        if mask.sum() < 100:
            continue
        row = {f"total_{k}": v for k, v in percentiles(total[mask]).items()}
        row |= {f"wire_{k}": v for k, v in percentiles(wire[mask]).items()}
        row |= {f"handle_{k}": v for k, v in percentiles(handle[mask]).items()}
        row["rate"] = mask.sum() / s.window_s
        per.append(row)
    out: dict[str, object] = {k: median([w[k] for w in per]) for k in (per[0] if per else {})}
    out["matched"] = int(send.size)
    out["recorded"] = recorded
    out["windows"] = len(per)
    return out


def _row(label: str, r: dict[str, object]) -> list[str]:
    def f(key: str) -> str:
        value = r.get(key)
        return "-" if value is None else f"{value:,.0f}"

    return [
        label,
        f("rate"),
        f("total_p50"),
        f("total_p99"),
        f("total_max"),
        f"{f('wire_p50')} / {f('wire_p99')}",
        f"{f('handle_p50')} / {f('handle_p99')}",
        f"{r['matched']:,}/{r['recorded']:,}",
        "-"
        if "cpu_pct" not in r
        else f"{r['cpu_pct']:.0f} % ({r['cpu_us_per_frame']:.1f} µs/frame)",
    ]


async def run_case(s: LatencySettings, tmp: str, log) -> CaseResult:
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    for venue in ("gateio", "mexc"):
        log(f"case 2: {venue} at {s.rate:,.0f} frames/s")
        r = await run_venue(venue, s, tmp)
        figures[f"p99_{venue}"] = float(r.get("total_p99", float("nan")))  # type: ignore[arg-type]
        rows.append(_row(f"{venue}: this project", r))
    log("case 2: loopback floor")
    floor = await run_floor(s, tmp)
    floor = {k: v for k, v in floor.items() if not str(k).startswith(("wire", "handle"))}
    figures["p99_floor"] = float(floor.get("total_p99", float("nan")))  # type: ignore[arg-type]
    rows.append(_row("floor: plain TCP, blocking recv()", floor))
    notes = [
        f"{s.pairs} pairs, {s.rate:,.0f} frames/s in total (the simulator's random walk at "
        f"{s.rate / s.pairs:.0f} updates/s per pair, pushed every 10 ms as in the simulator's "
        f"push loop, so frames leave in bursts of ~{s.rate / 100:.0f}). {s.windows} windows of "
        f"{s.window_s:g} s after {s.warmup_s:g} s of warm-up; figures are medians over windows.",
        "Send stamp: right before the simulator hands the frame to picows (which send()s it "
        "at once). Cache stamp: "
        "right after QuoteCache.apply stored it (a QuoteCache subclass adds the stamp; the "
        "project's code is unchanged). Both processes read time.time_ns() (CLOCK_REALTIME), "
        "the same clock on one machine. 'wire' is send -> picows frame callback, 'handle' is "
        "callback -> stored (parse + route + apply).",
        "Floor: the same burst pattern (rate/100 messages every 10 ms, one send() each, ~10 µs "
        "apart) over plain loopback TCP into a blocking recv() loop in Python, stamped on "
        "arrival (bench/floor.py): the share of the kernel and the scheduler on this machine, "
        "which no client can beat.",
    ]
    return CaseResult(
        title="2. Latency: simulator send -> cache update (microseconds)",
        description="",
        headers=[
            "client",
            "frames/s",
            "p50 µs",
            "p99 µs",
            "max µs",
            "wire p50/p99 µs",
            "handle p50/p99 µs",
            "matched/updates",
            "client CPU",
        ],
        rows=rows,
        notes=notes,
        figures=figures,
    )
