"""A replayed link answers its owner as the live link did: a live link is recorded against the
loopback server through reconnects and rotations, then its recording is replayed into the
same kind of owner, which must see the same frames, takeovers, connects and losses."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from data_collector.connection import ConnectionSettings, IntervalPing, Link
from data_collector.recording.reader import read_records, venue_files
from data_collector.recording.recorder import Recorder
from data_collector.replay.links import ReplayLink, ReplayLinks
from data_collector.replay.runner import Replayer, VirtualClock, Window
from tests.connection.loopback import FAST, Server
from tests.connection.loopback import Recorder as Owner
from tests.helpers import wait_until

Scenario = Callable[[Link, Owner, Server], Awaitable[None]]


async def record_then_replay(
    tmp_path: Path, server: Server, scenario: Scenario, settings: ConnectionSettings = FAST
) -> tuple[Link, Owner, ReplayLink, Owner]:
    recorder = Recorder(tmp_path, flush_every=0.05)
    await recorder.start()
    live = Owner()
    link = recorder.link_factory(
        "loop",
        "loop-0",
        server.url,
        settings,
        keepalive=IntervalPing(lambda _now: "ping", 0.2),
        lifetime=None,
        on_frame=live.on_frame,
        on_connected=live.on_connected,
        on_lost=live.on_lost,
        rng=random.Random(3),
    )
    link.start()
    try:
        await scenario(link, live, server)
    finally:
        await link.close()
        await recorder.close()
    replayed = Owner()
    links = ReplayLinks()
    rlink = links.make(
        "loop",
        "loop-0",
        server.url,
        settings,
        on_frame=replayed.on_frame,
        on_connected=replayed.on_connected,
        on_lost=replayed.on_lost,
    )
    records = read_records("loop", venue_files(tmp_path, "loop"))
    noop = lambda *_args: None  # noqa: E731 - no clock ticks in these recordings
    replayer = Replayer(
        records, links, [], clock=VirtualClock(), capture=noop, summarize=noop,
        window=Window(), speed=None,
    )  # fmt: skip
    await replayer.run()
    return link, live, rlink, replayed


def assert_same(link: Link, live: Owner, rlink: ReplayLink, replayed: Owner) -> None:
    assert replayed.frames == live.frames
    assert replayed.takeovers == live.takeovers
    assert replayed.connected == live.connected
    # the link's close at the end is no loss live; replayed, it ends the quotes' liveness
    assert replayed.lost == [*live.lost, "collector_stopped"]
    assert (rlink.reconnects, rlink.rotations) == (link.reconnects, link.rotations)
    assert rlink.stray_frames == link.stray_frames


async def test_a_reconnect_after_an_abrupt_drop(tmp_path: Path, server: Server) -> None:
    async def scenario(link: Link, live: Owner, srv: Server) -> None:
        srv.start_ticker()
        await wait_until(lambda: len(live.takeovers) == 1, what="first transport confirmed")
        first = srv.sessions[0].transport
        assert first is not None
        first.disconnect(graceful=False)
        await wait_until(lambda: len(live.takeovers) == 2, what="reconnected and confirmed")
        await wait_until(lambda: len(live.frames) > 40, what="pushes on the new transport")

    link, live, rlink, replayed = await record_then_replay(tmp_path, server, scenario)
    assert live.lost == ["disconnected"] and link.reconnects == 1
    assert_same(link, live, rlink, replayed)


async def test_a_requested_rotation_with_late_frames_of_the_old_transport(
    tmp_path: Path, server: Server
) -> None:
    async def scenario(link: Link, live: Owner, srv: Server) -> None:
        srv.start_ticker()
        await wait_until(lambda: live.takeovers, what="first transport confirmed")
        old = next(iter(link._all))
        link.request_rotation("upgrade")
        await wait_until(lambda: link.rotations == 1, what="rotation")
        old._deliver(b"late")  # a frame still buffered on the retired transport
        await wait_until(lambda: len(live.frames) > 60, what="pushes after the rotation")

    link, live, rlink, replayed = await record_then_replay(tmp_path, server, scenario)
    assert len(live.takeovers) == 2 and link.stray_frames == 1
    assert_same(link, live, rlink, replayed)


async def test_an_unconfirmed_replacement_promoted_on_timeout_then_lost(
    tmp_path: Path, server: Server
) -> None:
    settings = ConnectionSettings(
        silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=0.3, max_lifetime_override=0.3,
        reconnect_initial_delay=0.02, reconnect_max_delay=0.05,
    )  # fmt: skip

    async def scenario(link: Link, live: Owner, srv: Server) -> None:
        srv.ack_sessions = 1  # only the first session is ever acknowledged
        await wait_until(lambda: link.rotations >= 1, what="rotation on timeout")
        await wait_until(lambda: live.lost, what="the promoted one's subscribe timeout")

    link, live, rlink, replayed = await record_then_replay(tmp_path, server, scenario, settings)
    assert live.lost[0] == "subscribe_timeout"
    assert_same(link, live, rlink, replayed)
