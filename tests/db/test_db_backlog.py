"""The writer's in-memory backlog: order, bounds, splitting, requeueing, malformed rows."""

from __future__ import annotations

from datetime import UTC, datetime

from db.backlog import THREAD_ENCODE_ROWS, Backlog
from db.rows import encode_rows

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def rows(n: int, tag: str = "C") -> list[tuple]:
    return [("mexc", f"{tag}{i}", "USDT", "1", "2", "3", "4", T0, None) for i in range(n)]


def bases(payload: bytes) -> list[str]:
    return [line.split(b",")[1].decode() for line in payload.splitlines()]


async def test_chunks_keep_submission_order_and_split_an_oversized_submission() -> None:
    backlog = Backlog(encode_rows, max_rows=100, max_batches=10)
    backlog.append(rows(3, "A"))
    backlog.append(rows(5, "B"))
    chunk, rejected = await backlog.take_encoded(4)
    assert (chunk.rows, rejected) == (3, [])  # whole submissions while they fit
    assert (backlog.pending_rows, backlog.busy_rows, backlog.rows) == (5, 3, 8)
    backlog.settle(chunk.rows)
    chunk, _ = await backlog.take_encoded(4)  # one submission larger than the limit
    assert bases(chunk.payload) == ["B0", "B1", "B2", "B3"]
    assert backlog.pending_rows == 1


async def test_a_requeued_chunk_goes_back_to_the_head_already_encoded() -> None:
    backlog = Backlog(encode_rows, max_rows=100, max_batches=10)
    backlog.append(rows(2, "A"))
    backlog.append(rows(2, "B"))
    chunk, _ = await backlog.take_encoded(2)
    backlog.append(rows(1, "C"))
    backlog.requeue([chunk])
    assert (backlog.pending_rows, backlog.busy_rows) == (5, 0)
    again, _ = await backlog.take_encoded(100)
    assert again.rows == 5 and again.payload.startswith(chunk.payload)
    assert bases(again.payload) == ["A0", "A1", "B0", "B1", "C0"]


async def test_malformed_rows_are_left_out_and_settled() -> None:
    backlog = Backlog(encode_rows, max_rows=100, max_batches=10)
    backlog.append([*rows(2), ("short",)])
    chunk, rejected = await backlog.take_encoded(100)
    assert chunk.rows == 2 and len(rejected) == 1
    assert backlog.busy_rows == 2  # the malformed row is no longer held


async def test_large_chunks_are_encoded_exactly_in_a_worker_thread() -> None:
    big = rows(THREAD_ENCODE_ROWS + 1)
    backlog = Backlog(encode_rows, max_rows=10**6, max_batches=10)
    backlog.append(big)
    chunk, _ = await backlog.take_encoded(10**6)
    assert chunk.payload == encode_rows(big)[0]


def test_bounded_by_rows_and_by_submissions() -> None:
    by_rows = Backlog(encode_rows, max_rows=10, max_batches=100)
    by_rows.append(rows(10))
    assert not by_rows.over_bound()
    by_rows.append(rows(1))
    assert by_rows.over_bound() and by_rows.over_bound(divisor=2)
    by_batches = Backlog(encode_rows, max_rows=1000, max_batches=4)
    for _ in range(3):
        by_batches.append(rows(1))
    assert not by_batches.over_bound() and by_batches.over_bound(divisor=2)
    by_batches.append(rows(1))
    by_batches.append(rows(1))
    assert by_batches.over_bound()
