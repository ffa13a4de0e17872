"""The watchdog of a transport against the loopback server: application pings by the
keepalive style, pong deadline, silence, subscribe deadline."""

from __future__ import annotations

import time

from data_collector.connection import (
    ConnectionSettings,
    IdlePing,
    IntervalPing,
    NoPing,
    keepalive_for,
)
from data_collector.venues.base import Keepalive as KeepaliveStyle
from tests.connection.loopback import FAST, Recorder, Server, make_link
from tests.helpers import wait_until


def test_interval_ping_is_due_every_interval_but_within_the_gap() -> None:
    ping = IntervalPing(lambda now: f"ping {now:.0f}", 15.0)
    assert ping.next_ping(100.0, last_frame=140.0, max_gap=30.0) == 115.0  # traffic is no matter
    assert ping.next_ping(100.0, last_frame=0.0, max_gap=5.0) == 105.0
    assert ping.ping_message(1545404023.4) == "ping 1545404023"


async def test_silent_server_is_detected_and_replaced(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    link = make_link(server.url, rec)
    t0 = time.monotonic()
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="stall detection")
        # ping after 0.2 s, no answer within pong_timeout 0.5 s
        assert rec.lost[0] == "pong_timeout"
        assert time.monotonic() - t0 < FAST.silence_timeout + 0.5
        await wait_until(lambda: len(server.sessions) >= 2, what="reconnect")
    finally:
        await link.close()


async def test_silence_timeout_without_pings(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    # the pong deadline (5 s) lies beyond the silence deadline (1 s): silence must fire first
    settings = ConnectionSettings(silence_timeout=1.0, pong_timeout=5.0)
    link = make_link(server.url, rec, settings, ping=60.0)
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="silence detection")
        assert rec.lost[0] == "silence"
        # a quiet link pings at least twice per silence period, whatever the venue's interval
        assert server.sessions[0].received.count("ping") >= 1
    finally:
        await link.close()


async def test_a_style_without_pings_sends_none_and_watches_silence(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=0.5, pong_timeout=0.3)
    link = make_link(server.url, rec, settings, keepalive=NoPing())
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="silence detection")
        assert rec.lost[0] == "silence"
        assert server.sessions[0].received == ["sub-a", "sub-b"]
    finally:
        await link.close()


async def test_unconfirmed_transport_is_replaced_after_subscribe_timeout(server: Server) -> None:
    server.ack_sessions = 0  # pings answered, subscriptions silently ignored
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=0.4)
    link = make_link(server.url, rec, settings)
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="subscribe timeout")
        assert rec.lost[0] == "subscribe_timeout"
        await wait_until(lambda: len(server.sessions) >= 2, what="a fresh attempt")
    finally:
        await link.close()


def test_idle_ping_is_due_after_quiet_only() -> None:
    ping = IdlePing(lambda _now: "ping", 20.0)
    assert ping.next_ping(100.0, last_frame=110.0, max_gap=30.0) == 130.0  # traffic defers it
    assert ping.next_ping(100.0, last_frame=90.0, max_gap=30.0) == 120.0
    assert ping.next_ping(100.0, last_frame=110.0, max_gap=5.0) == 115.0


def test_keepalive_for_builds_the_declared_style() -> None:
    def message(_now: float) -> str:
        return "ping"

    assert isinstance(keepalive_for(KeepaliveStyle.PING_INTERVAL, message, 15.0), IntervalPing)
    idle = keepalive_for(KeepaliveStyle.PING_WHEN_IDLE, message, 20.0)
    assert isinstance(idle, IdlePing) and idle.ping_message(0.0) == "ping"
    server_pings = keepalive_for(KeepaliveStyle.SERVER_PINGS, lambda _now: None, 20.0)
    assert server_pings.next_ping(0.0, 0.0, 1.0) == float("inf")


async def test_idle_style_sends_no_ping_while_frames_flow(server: Server) -> None:
    server.start_ticker(0.01)
    rec = Recorder()
    link = make_link(server.url, rec, keepalive=IdlePing(lambda _now: "ping", 0.15))
    link.start()
    try:
        await wait_until(lambda: rec.takeovers, what="subscribed")
        # 0.6 s of pushes, four idle periods' worth
        await wait_until(lambda: len(rec.frames) >= 60, what="frames flowing")
        assert "ping" not in server.sessions[0].received
    finally:
        await link.close()
    quiet = Recorder()
    link = make_link(server.url, quiet, keepalive=IdlePing(lambda _now: "ping", 0.15))
    server.mode = "silent"  # no pushes reach this one: it pings once idle
    link.start()
    try:
        await wait_until(lambda: "ping" in server.sessions[-1].received, what="a ping when idle")
    finally:
        await link.close()


async def test_server_pings_are_answered_with_their_payload_and_keep_a_link_alive(
    server: Server,
) -> None:
    """Binance's style: no application ping; the server's protocol pings are activity (the
    link outlives three silence timeouts without any other frame) and each gets its pong."""
    server.mode = "silent"
    server.start_pinging(0.1)
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=0.4, pong_timeout=0.3, subscribe_timeout=5.0)
    link = make_link(server.url, rec, settings, keepalive=NoPing())
    link.start()
    try:
        await wait_until(lambda: server.sessions, what="connected")
        session = server.sessions[0]
        await wait_until(lambda: len(session.pongs) >= 12, timeout=5.0, what="1.2 s of pongs")
        assert rec.lost == [] and len(server.sessions) == 1
        first = int(session.pongs[0][1:])
        assert session.pongs[:12] == [f"p{first + i}".encode() for i in range(12)]
        assert link.pings_answered >= 12
        assert "ping" not in session.received
    finally:
        await link.close()
