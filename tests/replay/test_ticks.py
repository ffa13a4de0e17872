"""Where a replay's clocks tick among the recorded records."""

from __future__ import annotations

from data_collector.recording.format import (
    CLOCK_ANALYTICS,
    CLOCK_SNAPSHOT,
    FRAME,
    TICK,
    TICK_PAYLOAD,
    Record,
)
from data_collector.replay.ticks import Grid, Tick, TickPlacer

S = 10**9
MS = 10**6


def frame(t: int, name: str = "") -> Record:
    return Record(t, FRAME, 1, 0, "mexc-0", name.encode())


def marker(t: int, boundary: int, interval: int = S, clock: int = CLOCK_SNAPSHOT) -> Record:
    return Record(t, TICK, 0, clock, "", TICK_PAYLOAD.pack(boundary, interval))


def placed(records: list[Record], *grids: Grid) -> list[str]:
    """Ticks as ``T<boundary s>@<time ms>``, frames by name."""
    out = []
    for item in TickPlacer(iter(records), list(grids) or [Grid(CLOCK_SNAPSHOT, S)]):
        if isinstance(item, Tick):
            kind = "T" if item.clock == CLOCK_SNAPSHOT else "A"
            out.append(f"{kind}{item.boundary_ns / S:g}@{item.time_ns // MS}")
        else:
            out.append(item.payload.decode())
    return out


def test_without_recorded_ticks_each_boundary_comes_before_the_first_record_of_its_time() -> None:
    records = [frame(10 * S + 300 * MS, "a"), frame(11 * S, "b"), frame(13 * S + 1, "c")]
    # no tick at 10 s (the recording starts after it), one at 11 s before "b", 12 and 13 s
    assert placed(records) == ["a", "T11@11000", "b", "T12@12000", "T13@13000", "c"]


def test_a_recorded_tick_places_the_boundary_after_the_frames_the_live_run_had_applied() -> None:
    records = [
        frame(10 * S + 900 * MS, "a"),
        frame(11 * S + 1 * MS, "b"),  # after the boundary, but the live capture came later
        marker(11 * S + 2 * MS, 11 * S),
        marker(11 * S + 2 * MS, 11 * S),  # the other venue's copy
        frame(11 * S + 3 * MS, "c"),
    ]
    assert placed(records) == ["a", "b", "T11@11002", "c"]


def test_a_tick_the_live_run_missed_is_skipped_once_its_ticks_cover_the_clock() -> None:
    records = [
        frame(10 * S + 500 * MS, "a"),
        marker(11 * S + 1 * MS, 11 * S),
        frame(12 * S + 500 * MS, "b"),  # no tick recorded for 12 s: the live loop was blocked
        frame(13 * S + 500 * MS, "c"),
        marker(13 * S + 600 * MS, 13 * S),
        frame(14 * S + 500 * MS, "d"),  # the live run stopped ticking: shutdown
    ]
    assert placed(records) == ["a", "T11@11001", "b", "c", "T13@13600", "d"]


def test_the_first_boundary_is_the_one_just_before_the_recording_if_it_was_ticked() -> None:
    records = [frame(11 * S + 1 * MS, "a"), marker(11 * S + 2 * MS, 11 * S)]
    assert placed(records) == ["a", "T11@11002"]


def test_a_longer_replay_interval_ticks_at_the_recorded_ticks_it_shares() -> None:
    records = [frame(9 * S + 500 * MS, "a")]
    for s in range(10, 15):
        records += [marker(s * S + 1 * MS, s * S), frame(s * S + 500 * MS, f"f{s}")]
    got = placed(records, Grid(CLOCK_SNAPSHOT, 2 * S))
    assert got == ["a", "T10@10001", "f10", "f11", "T12@12001", "f12", "f13", "T14@14001", "f14"]


def test_a_shorter_replay_interval_fills_the_seconds_the_recording_never_ticked() -> None:
    records = [frame(9 * S + 500 * MS, "a")]
    for s in (10, 12):
        records += [marker(s * S + 1 * MS, s * S, 2 * S), frame(s * S + 500 * MS, f"f{s}")]
    records.append(frame(13 * S + 500 * MS, "z"))
    got = placed(records, Grid(CLOCK_SNAPSHOT, S))
    assert got == ["a", "T10@10001", "f10", "T11@11000", "T12@12001", "f12", "T13@13000", "z"]


def test_the_analytics_clock_ticks_half_an_interval_off_and_in_time_order() -> None:
    records = [frame(9 * S + 900 * MS, "a"), frame(12 * S + 700 * MS, "b")]
    grids = (Grid(CLOCK_SNAPSHOT, S), Grid(CLOCK_ANALYTICS, 2 * S, S // 2))
    got = placed(records, *grids)
    assert got == ["a", "T10@10000", "A10.5@10500", "T11@11000", "T12@12000", "A12.5@12500", "b"]


def test_recorded_analytics_ticks_place_the_summaries() -> None:
    half = S // 2
    records = [
        frame(10 * S + 100 * MS, "a"),
        marker(10 * S + 1 * MS, 10 * S),
        frame(10 * S + 501 * MS, "b"),
        marker(10 * S + 502 * MS, 10 * S + half, 2 * S, CLOCK_ANALYTICS),
        marker(11 * S + 1 * MS, 11 * S),
    ]
    grids = (Grid(CLOCK_SNAPSHOT, S), Grid(CLOCK_ANALYTICS, 2 * S, half))
    # "a" (10.1 s) precedes the 10 s tick recorded at 10.001 s: the stream is in time order
    assert placed(sorted(records), *grids) == ["T10@10001", "a", "b", "A10.5@10502", "T11@11001"]
