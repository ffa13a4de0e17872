"""The rows a writer holds in memory: queued submissions, in order, plus the rows taken out for
a write or a spill ("busy") until that settles. Bounded by rows and by submissions; the
writer spills when :meth:`Backlog.over_bound` says so. Imports no database driver.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec

from db.tables import Encoder

#: chunks with more rows than this are encoded in a worker thread
THREAD_ENCODE_ROWS = 2_000


class Chunk(msgspec.Struct):
    """Rows already encoded as CSV (one line per row): a retried chunk keeps its bytes."""

    payload: bytes
    rows: int


Item = Sequence[Any] | Chunk


def _item_rows(item: Item) -> int:
    return item.rows if isinstance(item, Chunk) else len(item)


class Backlog:
    def __init__(self, encode: Encoder, max_rows: int, max_batches: int) -> None:
        self._encode_rows = encode
        self.max_rows = max_rows
        self.max_batches = max_batches
        self._items: deque[Item] = deque()
        self.pending_rows = 0
        #: taken off the queue: being written or spilled
        self.busy_rows = 0

    @property
    def rows(self) -> int:
        """Rows in memory not yet settled (queued or busy)."""
        return self.pending_rows + self.busy_rows

    def __bool__(self) -> bool:
        return bool(self._items)

    def append(self, rows: Sequence[Any]) -> None:
        self._items.append(rows)
        self.pending_rows += len(rows)

    def over_bound(self, divisor: int = 1) -> bool:
        return (
            self.pending_rows > self.max_rows // divisor
            or len(self._items) > self.max_batches // divisor
        )

    def settle(self, rows: int) -> None:
        """``rows`` busy rows are done with (stored, spilled or dropped)."""
        self.busy_rows -= rows

    def take(self, limit: int) -> list[Item]:
        """Up to ``limit`` rows from the head of the queue (at least one submission)."""
        items: list[Item] = []
        total = 0
        while self._items:
            item = self._items[0]
            n = _item_rows(item)
            if total and total + n > limit:
                break
            self._items.popleft()
            if n > limit and not isinstance(item, Chunk):  # one oversized submission
                self._items.appendleft(item[limit:])
                item, n = item[:limit], limit
            items.append(item)
            total += n
            self.pending_rows -= n
        self.busy_rows += total
        return items

    def discard(self) -> int:
        """Drop every queued row (when not even a spill file can keep them); returns how
        many."""
        rows = self.pending_rows
        self._items.clear()
        self.pending_rows = 0
        return rows

    def requeue(self, items: Sequence[Item]) -> None:
        """Put taken items back at the head of the queue, in their order."""
        for item in reversed(items):
            n = _item_rows(item)
            if n:
                self._items.appendleft(item)
                self.pending_rows += n
                self.busy_rows -= n

    async def take_encoded(self, limit: int) -> tuple[Chunk, list[str]]:
        """Take up to ``limit`` rows off the queue as one encoded chunk (counted busy) and the
        reasons of the malformed rows left out (already settled)."""
        items = self.take(limit)
        try:
            chunk, rejected = await self._encode(items)
        except BaseException:
            self.requeue(items)
            raise
        self.settle(len(rejected))  # dropped once, here: a requeued chunk is already encoded
        return chunk, rejected

    async def _encode(self, items: list[Item]) -> tuple[Chunk, list[str]]:
        parts: list[bytes] = []
        rows = 0
        rejected: list[str] = []
        raw = sum(len(i) for i in items if not isinstance(i, Chunk))
        in_thread = raw > THREAD_ENCODE_ROWS  # keep the event loop responsive
        for item in items:
            if isinstance(item, Chunk):
                payload, n, bad = item.payload, item.rows, []
            elif in_thread:
                payload, n, bad = await asyncio.to_thread(self._encode_rows, item)
            else:
                payload, n, bad = self._encode_rows(item)
            parts.append(payload)
            rows += n
            rejected.extend(bad)
        return Chunk(b"".join(parts), rows), rejected
