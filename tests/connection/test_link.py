"""Link behaviour against a tiny picows server on loopback: subscribe, reconnect backoff and
its per-minute cap, rotation (scheduled or requested) without a gap, takeover reporting, crash
recovery, clean close. The watchdog's timeouts are in test_keepalive.py."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs

from data_collector.connection import ConnectionSettings, Link
from tests.connection.loopback import (
    STORM,
    Recorder,
    Server,
    make_link,
    missing_pushes,
)
from tests.helpers import wait_until


async def test_subscribes_delivers_frames_and_pings(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    link.start()
    try:
        await wait_until(lambda: len(rec.frames) >= 2, what="two acks")
        session = server.sessions[0]
        assert session.received[:2] == ["sub-a", "sub-b"]
        tid, data, receive_ns = rec.frames[0]
        assert tid == link.current_id and data == b"ack:sub-a"
        assert abs(receive_ns - time.time_ns()) < 2e9
        await wait_until(lambda: session.received.count("ping") >= 2, what="keepalive pings")
        assert link.is_up and rec.lost == []
    finally:
        await link.close()
    await wait_until(lambda: not server.open_sessions(), what="server sees the close")
    assert not link.is_up


async def test_reconnects_and_resubscribes_after_abrupt_drop(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    link.start()
    try:
        await wait_until(lambda: server.sessions and server.sessions[0].subscribed)
        first = link.current_id
        assert server.sessions[0].transport is not None
        server.sessions[0].transport.disconnect(graceful=False)
        await wait_until(lambda: len(server.sessions) == 2 and server.sessions[1].subscribed)
        assert server.sessions[1].received[:2] == ["sub-a", "sub-b"]
        assert rec.lost == ["disconnected"]
        assert link.reconnects == 1
        await wait_until(lambda: link.is_up and link.current_id != first)
    finally:
        await link.close()


async def test_attempts_per_minute_cap_stops_a_reconnect_storm(server: Server) -> None:
    server.mode = "drop"
    rec = Recorder()
    link = make_link(server.url, rec, STORM)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(
                lambda: any(e["event"] == "reconnect_throttled" for e in logs), what="throttle"
            )
            assert len(server.sessions) == 4
            throttled = next(e for e in logs if e["event"] == "reconnect_throttled")
            assert 50.0 < throttled["wait"] <= 60.0
            scheduled = [e for e in logs if e["event"] == "reconnect_scheduled"]
            assert all(0.0 <= e["delay"] <= 0.005 for e in scheduled)
            assert [e["attempt"] for e in scheduled] == list(range(1, len(scheduled) + 1))
        finally:
            await link.close()
    assert len(server.sessions) == 4


async def test_rotation_overlaps_and_loses_nothing(server: Server) -> None:
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=1.0, pong_timeout=0.5, max_lifetime_override=0.4)
    link = make_link(server.url, rec, settings)
    server.start_ticker()
    link.start()
    try:
        await wait_until(lambda: link.rotations >= 2, what="two rotations")
        last = server.pushed
        await wait_until(lambda: any(d == str(last).encode() for _t, d, _n in rec.frames))
    finally:
        await link.close()
    assert len(server.sessions) >= 3
    assert all(s.overlapped for s in server.sessions[1:])  # replacement up before old closed
    assert rec.lost == []  # an orderly rotation is not a loss
    assert len({tid for tid, _d, _n in rec.frames}) >= 3
    missing = missing_pushes(rec, last)
    assert not missing, f"lost pushes during rotation: {missing[:10]}"


async def test_requested_rotation_is_make_before_break(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    server.start_ticker()
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: len(rec.takeovers) == 1, what="first transport confirmed")
            first = link.current_id
            assert rec.takeovers == [first]
            link.request_rotation("upgrade")
            await wait_until(lambda: link.rotations == 1, what="rotation")
            second = link.current_id
            assert second != first and rec.takeovers == [first, second]
            await wait_until(lambda: not server.sessions[0].open, what="old session closed")
            last = server.pushed
            await wait_until(lambda: any(d == str(last).encode() for _t, d, _n in rec.frames))
        finally:
            await link.close()
    assert server.sessions[1].overlapped  # the new one was subscribed before the old closed
    assert rec.lost == [] and link.reconnects == 0
    assert not any(e["event"] == "reconnect_scheduled" for e in logs)  # no backoff
    assert not missing_pushes(rec, last)
    assert link.transport_ready(second) is False  # a repeated confirmation is no takeover


async def test_late_frames_of_a_retired_transport_are_dropped(server: Server) -> None:
    rec = Recorder()
    link = make_link(server.url, rec)
    link.start()
    try:
        await wait_until(lambda: rec.takeovers, what="first transport confirmed")
        old = next(iter(link._all))  # the listener of the first transport
        link.request_rotation("test")
        await wait_until(lambda: link.rotations == 1, what="rotation")
        n = len(rec.frames)
        old._deliver(b"late")  # what picows would hand over if a frame was still buffered
        assert len(rec.frames) == n and link.stray_frames == 1
    finally:
        await link.close()


async def test_rotation_requested_of_the_replacement_retries_it(server: Server) -> None:
    server.ack_sessions = 1  # the replacement never confirms: it stays the replacement
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=2.0)
    link = make_link(server.url, rec, settings)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: rec.takeovers, what="first transport confirmed")
            link.request_rotation("upgrade")
            await wait_until(lambda: link.replacement_id, what="a replacement")
            link.request_rotation("upgrade", link.replacement_id)
            await wait_until(lambda: any(e["event"] == "rotation_failed" for e in logs))
            assert link.rotations == 0 and rec.lost == [] and link.is_up
        finally:
            await link.close()


class Crashing(Recorder):
    """An owner whose on_lost has a bug (raises) the first ``times`` times."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def on_lost(self, link: Link, reason: str) -> None:
        super().on_lost(link, reason)
        if len(self.lost) <= self.times:
            raise RuntimeError("bug in on_lost")


async def test_crashed_supervisor_is_logged_and_restarted(server: Server) -> None:
    rec = Crashing(times=1)
    link = make_link(server.url, rec)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: server.sessions and server.sessions[0].subscribed)
            assert server.sessions[0].transport is not None
            server.sessions[0].transport.disconnect(graceful=False)
            await wait_until(lambda: len(server.sessions) == 2 and server.sessions[1].subscribed)
            await wait_until(lambda: link.is_up, what="link up again")
        finally:
            await asyncio.wait_for(link.close(), 2.0)
    crashed = [e for e in logs if e["event"] == "link_crashed"]
    assert len(crashed) == 1 and crashed[0]["log_level"] == "error"
    assert isinstance(crashed[0]["exc_info"], RuntimeError)
    assert link.reconnects == 1


async def test_crash_restarts_obey_the_attempt_cap(server: Server) -> None:
    server.mode = "drop"
    rec = Crashing(times=1_000_000)
    link = make_link(server.url, rec, STORM)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(
                lambda: any(e["event"] == "reconnect_throttled" for e in logs), what="throttle"
            )
        finally:
            await link.close()
    assert len(server.sessions) == 4
    assert sum(e["event"] == "link_crashed" for e in logs) >= 3


async def test_close_while_connecting_to_a_dead_port() -> None:
    srv = Server()
    url = await srv.start()
    await srv.stop()  # nothing listens there any more: every attempt is refused
    rec = Recorder()
    link = make_link(url, rec)
    with capture_logs() as logs:
        link.start()
        await wait_until(lambda: any(e["event"] == "connection_failed" for e in logs))
        await asyncio.wait_for(link.close(), 2.0)
    assert rec.connected == 0 and not link.is_up


async def test_unready_replacement_takes_over_after_timeout(server: Server) -> None:
    server.ack_sessions = 1  # only the first session is ever acknowledged
    rec = Recorder()
    settings = ConnectionSettings(
        silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=0.3, max_lifetime_override=0.3
    )
    link = make_link(server.url, rec, settings)
    with capture_logs() as logs:
        link.start()
        try:
            await wait_until(lambda: link.rotations >= 1, what="rotation on timeout")
            rotated = next(e for e in logs if e["event"] == "connection_rotated")
            assert rotated["ready"] is False
            assert rec.lost == []  # the old one was closed in order, not lost
            # the unconfirmed transport now carries the pairs and gets its own deadline
            await wait_until(lambda: rec.lost, what="subscribe timeout after takeover")
            assert rec.lost == ["subscribe_timeout"]
        finally:
            await link.close()
