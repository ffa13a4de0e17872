"""Case 1: ingest throughput, frames decoded into the client's cache per CPU-second.

For each venue and each client (this project, ccxt.pro, the naive floor) a fresh simulator
process (deterministic: every one floods the same quotes, checked by a CRC) and a fresh client
process start; after a warm-up flood, each repetition arms the client (it notes its CPU time
and update count), floods ``frames`` pre-encoded frames as fast as the client reads them, and
waits until the client has decoded every one; the client reads its CPU time the moment the last
one is in. The simulator's CPU never counts. Afterwards the client's total must equal the
frames sent and its cached last quotes must equal the simulator's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.common import CCXT_PY, PROJECT_PY, REPO, CaseResult, median
from bench.proto import Child, ChildError
from data_collector.simulator import pairs_for

CLIENTS = ("ours", "ccxt", "naive")
LABELS = {
    ("gateio", "ours"): "this project (picows + msgspec, FeedManager + QuoteCache)",
    ("mexc", "ours"): "this project (picows + protobuf 7 upb, FeedManager + QuoteCache)",
    ("gateio", "ccxt"): "ccxt.pro {ccxt} watch_bids_asks (aiohttp)",
    ("mexc", "ccxt"): "ccxt.pro {ccxt} watch_ticker (aiohttp, protobuf 5)",
    ("gateio", "naive"): "naive floor: websockets + json.loads",
    ("mexc", "naive"): "naive floor: websockets + protobuf 5 MessageToDict",
}
MEXC_SHARD = 30


@dataclass
class IngestSettings:
    pairs: int = 100
    warmup_frames: int = 5_000
    frames: int = 50_000
    reps: int = 5
    clients: tuple[str, ...] = CLIENTS


@dataclass
class ClientRun:
    venue: str
    client: str
    rates: list[float] = field(default_factory=list)
    wall_rates: list[float] = field(default_factory=list)
    decoded: int = 0
    sent: int = 0
    complete: bool = True
    quotes_match: bool = False
    digest: str = ""
    rss_mb: float = float("nan")
    error: str = ""

    @property
    def rate(self) -> float:
        return median(self.rates) if self.rates else float("nan")


def venue_symbol(venue: str, base: str, quote: str) -> str:
    return f"{base}_{quote}" if venue == "gateio" else f"{base}{quote}"


def _same_price(ours: Any, sim: Any) -> bool:
    if ours is None or sim is None:
        return False
    if isinstance(ours, float):  # ccxt converts to float
        return math.isclose(ours, float(sim), rel_tol=0, abs_tol=0)
    return str(ours) == str(sim)


async def _spawn_client(kind: str, venue: str, url: str, s: IngestSettings, tmp: str) -> Child:
    err = f"{tmp}/client-{venue}-{kind}.err"
    if kind == "ours":
        argv = [PROJECT_PY, "-m", "bench.client_ours", "--venue", venue, "--url", url]
        argv += ["--pairs", str(s.pairs)]
    else:
        symbols = ",".join(venue_symbol(venue, p.base, p.quote) for p in pairs_for(s.pairs))
        argv = [str(CCXT_PY), "-m", "bench.client_ext", "--kind", kind, "--venue", venue]
        argv += ["--url", url, "--symbols", symbols, "--shard", str(MEXC_SHARD)]
    child = await Child.spawn(f"{kind}/{venue}", argv, cwd=str(REPO), stderr_path=err)
    await child.recv(timeout=60)
    return child


async def run_client(venue: str, kind: str, s: IngestSettings, tmp: str) -> ClientRun:
    run = ClientRun(venue, kind)
    sim_argv = [PROJECT_PY, "-m", "bench.simproc", "--venues", venue, "--pairs", str(s.pairs)]
    sim_argv += ["--rate", "0", "--deterministic"]
    sim = await Child.spawn(
        f"sim/{venue}", sim_argv, cwd=str(REPO), stderr_path=f"{tmp}/sim-{venue}-{kind}.err"
    )
    client: Child | None = None
    try:
        url = (await sim.recv(timeout=30))["urls"][venue]
        client = await _spawn_client(kind, venue, url, s, tmp)
        await sim.request({"cmd": "wait_subs", "venue": venue, "n": s.pairs, "timeout": 30})
        if kind == "ours":
            await client.request({"cmd": "wait_subscribed", "timeout": 30})
        await _flood(sim, client, venue, s.warmup_frames)
        for _ in range(s.reps):
            result = await _flood(sim, client, venue, s.frames)
            run.complete &= bool(result["complete"])
            run.rates.append(result["frames"] / max(result["cpu"], 1e-9))
            run.wall_rates.append(result["frames"] / max(result["wall"], 1e-9))
        await _verify(sim, client, venue, kind, s, run)
    except ChildError as exc:
        run.error = str(exc).splitlines()[0][:200]
    finally:
        if client is not None:
            await client.close()
        await sim.close()
    return run


async def _flood(sim: Child, client: Child, venue: str, frames: int) -> dict[str, Any]:
    await client.request({"cmd": "arm"})
    sent = (await sim.request({"cmd": "flood", "venue": venue, "frames": frames}))["sent"]
    return await client.request({"cmd": "await", "n": sent, "timeout": 120}, timeout=150)


async def _verify(
    sim: Child, client: Child, venue: str, kind: str, s: IngestSettings, run: ClientRun
) -> None:
    stats = await sim.request({"cmd": "stats", "venue": venue})
    count = await client.request({"cmd": "count"})
    run.sent, run.decoded, run.digest = stats["updates_sent"], count["updates"], stats["digest"]
    run.rss_mb = count.get("rss_mb", float("nan"))
    sample = sorted({0, 1, 2, s.pairs // 2, s.pairs - 1})
    sim_last = (await sim.request({"cmd": "last", "venue": venue, "pairs": sample}))["quotes"]
    pairs = pairs_for(s.pairs)
    if kind == "ours":
        mine = (await client.request({"cmd": "sample", "pairs": list(sample)}))["quotes"]
        keyed = {str(i): mine[str(i)] for i in sample}
    else:
        symbols = [venue_symbol(venue, pairs[i].base, pairs[i].quote) for i in sample]
        mine = (await client.request({"cmd": "sample", "symbols": symbols}))["quotes"]
        keyed = {str(i): mine[sym] for i, sym in zip(sample, symbols, strict=True)}
    run.quotes_match = all(
        keyed[k] is not None
        and _same_price(keyed[k]["bid"], sim_last[k]["bid"])
        and _same_price(keyed[k]["ask"], sim_last[k]["ask"])
        for k in keyed
    )


async def run_case(
    s: IngestSettings, tmp: str, ccxt_ok: bool, ccxt_reason: str, versions: dict[str, str], log
) -> CaseResult:
    runs: dict[tuple[str, str], ClientRun] = {}
    for venue in ("gateio", "mexc"):
        for kind in s.clients:
            if kind != "ours" and not ccxt_ok:
                runs[venue, kind] = ClientRun(venue, kind, error=f"unavailable: {ccxt_reason}")
                continue
            log(f"case 1: {venue} / {kind}")
            runs[venue, kind] = await run_client(venue, kind, s, tmp)
            r = runs[venue, kind]
            log(f"  {r.rate:,.0f} frames/CPU-s {r.error}")
    return _table(s, runs, versions)


def _table(
    s: IngestSettings, runs: dict[tuple[str, str], ClientRun], versions: dict[str, str]
) -> CaseResult:
    rows: list[list[str]] = []
    figures: dict[str, float] = {}
    digests_equal = True
    for venue in ("gateio", "mexc"):
        ours = runs.get((venue, "ours"))
        ccxt = runs.get((venue, "ccxt"))
        ratio = ours.rate / ccxt.rate if ours and ccxt and ccxt.rates else float("nan")
        figures[f"ratio_{venue}"] = ratio
        figures[f"ours_{venue}"] = ours.rate if ours else float("nan")
        digests = {r.digest for (v, _), r in runs.items() if v == venue and r.digest}
        digests_equal &= len(digests) <= 1
        for kind in s.clients:
            r = runs.get((venue, kind))
            if r is None:
                continue
            label = LABELS[venue, kind].format(ccxt=versions.get("ccxt", "")).replace("  ", " ")
            if r.error:
                rows.append([venue, label, r.error, "", "", "", "", ""])
                continue
            spread = f"{min(r.rates):,.0f}–{max(r.rates):,.0f}"
            check = f"{r.decoded:,}/{r.sent:,}" + ("" if r.decoded == r.sent else " MISMATCH")
            vs = (
                "1.0"
                if kind == "ccxt"
                else f"{r.rate / ccxt.rate:.1f}x"
                if ccxt and ccxt.rates
                else "-"
            )
            rows.append(
                [
                    venue,
                    label,
                    f"{r.rate:,.0f}",
                    spread,
                    f"{median(r.wall_rates):,.0f}",
                    check,
                    "yes" if r.quotes_match else "NO",
                    vs,
                ]
            )
    notes = [
        f"{s.pairs} pairs; {s.reps} repetitions of {s.frames:,} frames after a "
        f"{s.warmup_frames:,}-frame warm-up; figures are medians over the repetitions "
        "(min–max shown). CPU is the client process's user+system time (getrusage), from "
        "arming to the moment its last update was decoded; the simulator runs in another "
        "process and its CPU never counts.",
        "Every client runs on uvloop. MEXC pairs are split over connections of at most 30 "
        "subscriptions (the venue's cap) for every client alike; ccxt keeps one connection "
        "per exchange instance, so it gets one instance per connection.",
        "Same frames: each client gets a fresh deterministic simulator; the CRC32 of the "
        f"flooded quotes was {'identical' if digests_equal else 'NOT identical'} across "
        "the clients of a venue.",
        "The project's client reads about as fast as the simulator can write, so how many "
        "frames each read returns, and with it the cost per frame, varies more from run to "
        "run than for the slower clients, which always find a full socket buffer.",
        "'decoded/sent' compares the client's update count with the simulator's frames sent "
        "since start; 'last quote ok' compares the client's cached bid/ask of 5 pairs with the "
        "last quote the simulator sent.",
    ]
    return CaseResult(
        title="1. Ingest throughput (frames decoded into the cache per CPU-second)",
        description="",
        headers=[
            "venue",
            "client",
            "frames/CPU-s",
            "min–max",
            "wall frames/s",
            "decoded/sent",
            "last quote ok",
            "vs ccxt",
        ],
        rows=rows,
        notes=notes,
        figures=figures,
    )
