"""The replay loop: pacing at a finite speed (the warm-up before --from at full speed), ticks
only inside the window, records of links this configuration lacks skipped with one warning."""

from __future__ import annotations

import time

from data_collector.connection import ConnectionSettings
from data_collector.recording.format import CLOCK_SNAPSHOT, FRAME, Record
from data_collector.replay.links import ReplayLinks
from data_collector.replay.runner import Replayer, VirtualClock, Window
from data_collector.replay.ticks import Grid
from tests.helpers import Log, events

S = 10**9
T0 = 1_800_000_000 * S


class Owner:
    def __init__(self) -> None:
        self.frames: list[tuple[bytes, int]] = []

    def on_frame(self, _link: object, _tid: int, data: bytes, receive_ns: int) -> None:
        self.frames.append((data, receive_ns))

    def on_connected(self, _link: object) -> list[str]:
        return []

    def on_lost(self, _link: object, _reason: str) -> None:
        pass


def setup(
    records: list[Record], window: Window, speed: float | None
) -> tuple[Replayer, Owner, list[float], VirtualClock]:
    links, owner, captured, clock = ReplayLinks(), Owner(), [], VirtualClock()
    links.make(
        "mexc",
        "mexc-0",
        "ws://unused",
        ConnectionSettings(),
        on_frame=owner.on_frame,
        on_connected=owner.on_connected,
        on_lost=owner.on_lost,
    )

    def capture(boundary_s: float) -> None:
        assert clock.time() >= boundary_s  # the virtual clock is at or past the boundary
        captured.append(boundary_s)

    replayer = Replayer(
        iter(records), links, [Grid(CLOCK_SNAPSHOT, S)], clock=clock, capture=capture,
        summarize=lambda: None, window=window, speed=speed,
    )  # fmt: skip
    return replayer, owner, captured, clock


def frames(start_s: float, end_s: float, step_s: float, link: str = "mexc-0") -> list[Record]:
    n = round((end_s - start_s) / step_s)
    return [
        Record(T0 + round((start_s + i * step_s) * S), FRAME, 1, 0, link, b"%d" % i)
        for i in range(n)
    ]


async def test_a_finite_speed_paces_the_recording_after_a_warm_up_at_full_speed() -> None:
    records = frames(0, 10, 0.01)  # 10 s recorded; the window starts 1 s before the end
    replayer, owner, captured, _clock = setup(records, Window(from_ns=T0 + 9 * S), speed=4)
    started = time.monotonic()
    report = await replayer.run()
    took = time.monotonic() - started
    assert took >= 0.99 / 4 * 0.95  # the last second at 4x
    assert took < 9 / 4  # the nine seconds before the window were not paced
    assert len(owner.frames) == report.frames == 1000
    assert captured == [T0 / S + 9]  # the ticks before the window capture nothing
    assert report.first_ns == T0 + 9 * S


async def test_until_ends_the_ticks_and_the_replay() -> None:
    records = frames(0, 10, 0.5)
    replayer, owner, captured, _clock = setup(
        records, Window(from_ns=T0 + 2 * S, until_ns=T0 + 4 * S), speed=None
    )
    await replayer.run()
    assert captured == [T0 / S + 2, T0 / S + 3, T0 / S + 4]
    assert owner.frames[-1][1] <= T0 + 5 * S  # read one interval past until, no more


async def test_records_of_a_link_this_configuration_lacks_are_skipped_once_said(
    logs: Log,
) -> None:
    records = sorted(frames(0, 1, 0.1) + frames(0, 1, 0.1, link="mexc-1"))
    replayer, owner, _captured, _clock = setup(records, Window(), speed=None)
    report = await replayer.run()
    assert len(owner.frames) == report.frames == 10
    (warning,) = events(logs, "replay_link_unknown")
    assert warning["link"] == "mexc-1"
