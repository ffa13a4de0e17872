"""Flood mode: book-ticker updates as fast as the clients read them (benchmarks, backpressure).

Updates are generated and encoded before sending starts, so the sending rate measures the
client, not our encoder; they are written to a corked socket (:class:`SocketCork`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Sequence

from data_collector.pairs import Pair
from data_collector.simulator.book import VenueBook
from data_collector.simulator.push import SendStats
from data_collector.simulator.session import ClientSession, Quote, now_ms

#: frames a flood sends before yielding to the event loop
_YIELD_EVERY = 1024
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)

#: called with each batch of generated updates, ``[(pair index, quote), ...]`` in sending order,
#: before any of it is encoded or sent (benchmarks fingerprint the quotes with it)
FloodObserver = Callable[[Sequence[tuple[int, Quote]]], None]


class Flood:
    """Runs one flood at a time over the venue's sessions (``sessions`` is the server's list)."""

    def __init__(self, book: VenueBook, stats: SendStats, sessions: list[ClientSession]) -> None:
        self.book = book
        self.stats = stats
        self.sessions = sessions
        self.observer: FloodObserver | None = None
        #: a flood is under way (the random walk pauses meanwhile)
        self.running = False
        self._stop = False

    async def run(
        self, frames: int | None = None, *, pairs: Sequence[Pair] | None = None, chunk: int = 4096
    ) -> int:
        """Push book-ticker updates to every subscribed session as fast as it reads them.

        ``frames`` updates are generated round-robin over ``pairs`` (default: every pair some
        session subscribes to), with rising sequences, and encoded before sending starts, so
        the sending rate measures the client, not our encoder. ``frames=None`` keeps going in
        chunks of ``chunk`` (encoded between chunks) until :meth:`stop`. A session gets the
        updates of the pairs it subscribes to; sending waits whenever its transport asks to
        pause writing. The random walk is paused meanwhile. Returns frames sent, summed over
        sessions.
        """
        if pairs is not None:
            indices = [self.book.index(pair) for pair in pairs]
        else:
            indices = self.book.subscribed()
        if not indices:
            return 0
        self.running, self._stop = True, False
        total = 0
        remaining = frames
        try:
            while not self._stop and (remaining is None or remaining > 0):
                size = chunk if remaining is None else remaining
                total += await self._send(self._batch(indices, size))
                if remaining is not None:
                    remaining -= size
        finally:
            self.running = False
        return total

    def stop(self) -> None:
        """End a running flood after the frame it is sending."""
        self._stop = True

    def _batch(self, indices: list[int], size: int) -> list[tuple[int, Quote]]:
        stamp, now = now_ms(), time.monotonic()
        walk = self.book.walk
        batch: list[tuple[int, Quote]] = []
        for k in range(size):
            idx = indices[k % len(indices)]
            batch.append((idx, walk(idx, stamp, now)))
        for idx, quote in batch[-len(indices) :]:
            self.book.last[idx] = quote
        if self.observer is not None:
            self.observer(batch)
        return batch

    async def _send(self, batch: list[tuple[int, Quote]]) -> int:
        encode = self.book.personality.encode_push
        symbols = self.book.symbols
        jobs = []
        for session in tuple(self.sessions):
            channels = session.channels
            payloads = [
                encode(key, symbols[idx], quote)
                for idx, quote in batch
                for key in channels.get(idx, ())
            ]
            if payloads:
                jobs.append(self._drain_into(session, payloads))
        return sum(await asyncio.gather(*jobs))

    async def _drain_into(self, session: ClientSession, payloads: list[bytes]) -> int:
        send, msg_type = session.transport.send, self.book.personality.push_type
        cork = SocketCork(session)
        sent = 0
        cork.hold()
        try:
            for payload in payloads:
                if session.write_paused:
                    cork.release()
                    await session.wait_writable()
                    cork.hold()
                if session.closed or self._stop:
                    break
                send(msg_type, payload)
                sent += 1
                if sent % _YIELD_EVERY == 0:
                    cork.release()
                    await asyncio.sleep(0)
                    cork.hold()
        finally:
            cork.release()
        session.frames_sent += sent
        session.last_push_at = time.monotonic()
        self.stats.updates_sent += sent
        return sent


class SocketCork:
    """TCP_CORK on a session's socket while a flood writes to it (Linux; a no-op elsewhere).

    Corked, the kernel holds each frame's write until a full segment is queued, so a flood
    leaves in full segments and every client reads it in large batches, whether it keeps up
    with the simulator or not: what a read costs per frame then depends on the client, not on
    the pace of the simulator's writes. Released before every yield and at the end, so nothing
    is held back once the flood pauses.
    """

    def __init__(self, session: ClientSession) -> None:
        extra = session.transport.underlying_transport.get_extra_info
        self._sock = extra("socket") if _TCP_CORK is not None else None

    def hold(self) -> None:
        self._set(1)

    def release(self) -> None:
        self._set(0)

    def _set(self, value: int) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):  # the client went away meanwhile
                self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, value)
