"""One transport against the loopback server: fragmented messages, a peer's close, an owner's
bug in the frame callback."""

from __future__ import annotations

from picows import WSCloseCode, WSMsgType, WSTransport
from structlog.testing import capture_logs

from data_collector.connection import Link
from tests.connection.loopback import Recorder, Server, make_link
from tests.helpers import wait_until


async def _subscribed(server: Server, rec: Recorder) -> tuple[Link, WSTransport]:
    """A started link, once subscribed, and the server's side of its connection."""
    link = make_link(server.url, rec)
    link.start()
    await wait_until(lambda: rec.takeovers, what="subscribed")
    peer = server.sessions[0].transport
    assert peer is not None
    return link, peer


async def test_fragmented_message_is_delivered_whole(server: Server) -> None:
    rec = Recorder()
    link, peer = await _subscribed(server, rec)
    try:
        peer.send(WSMsgType.CONTINUATION, b"orphan")  # no start to attach to: dropped
        peer.send(WSMsgType.BINARY, b"frag-", fin=False)
        peer.send(WSMsgType.CONTINUATION, b"men", fin=False)
        peer.send(WSMsgType.CONTINUATION, b"ted")
        peer.send(WSMsgType.TEXT, b"after")
        await wait_until(lambda: rec.frames[-1][1] == b"after", what="the frame after")
        data = [d for _t, d, _n in rec.frames if not d.startswith(b"ack:") and d != b"pong"]
        assert data == [b"frag-mented", b"after"]
    finally:
        await link.close()


async def test_close_by_peer_is_a_loss_with_its_code(server: Server) -> None:
    rec = Recorder()
    link, peer = await _subscribed(server, rec)
    try:
        peer.send_close(WSCloseCode.GOING_AWAY)
        await wait_until(lambda: rec.lost, what="the loss")
        assert rec.lost == ["closed_by_peer:1001"]
        await wait_until(lambda: len(rec.takeovers) == 2, what="subscribed again")
    finally:
        await link.close()


class Buggy(Recorder):
    """An owner whose frame callback raises on one payload."""

    def on_frame(self, link: Link, tid: int, data: bytes, receive_ns: int) -> None:
        if data == b"boom":
            raise RuntimeError("bug in on_frame")
        super().on_frame(link, tid, data, receive_ns)


async def test_owner_bug_in_frame_callback_is_logged_not_fatal(server: Server) -> None:
    rec = Buggy()
    link, peer = await _subscribed(server, rec)
    try:
        with capture_logs() as logs:
            peer.send(WSMsgType.TEXT, b"boom")
            peer.send(WSMsgType.TEXT, b"after")
            await wait_until(lambda: rec.frames[-1][1] == b"after", what="the frame after")
        failed = [e for e in logs if e["event"] == "frame_handler_failed"]
        assert len(failed) == 1 and failed[0]["link"] == "test-0"
        assert link.is_up and rec.lost == []
    finally:
        await link.close()
