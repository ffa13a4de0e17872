"""The record layout: what is encoded decodes to the same records, a cut is found."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_collector.recording.format import (
    BLOCK_SIGNATURE,
    FRAME,
    SEGMENT,
    SEGMENT_FRESH,
    SEGMENT_HEAD,
    TICK,
    Damaged,
    Record,
    decode_block_head,
    encode_block_head,
    encode_record,
    encode_segment_header,
    iter_records,
)

records = st.builds(
    Record,
    time_ns=st.integers(0, 2**62),
    kind=st.integers(1, 8),
    transport=st.integers(0, 2**32 - 1),
    flags=st.integers(0, 255),
    link=st.text("abcdefghijklmnopqrstuvwxyz-0123456789", max_size=40),
    payload=st.binary(max_size=300),
)


def encode(record: Record) -> bytes:
    link = record.link.encode()
    return encode_record(
        record.kind, record.time_ns, record.transport, record.flags, link, record.payload
    )


@given(st.lists(records, max_size=20), st.lists(records, max_size=20))
def test_records_and_segment_headers_decode_to_what_was_encoded(
    first: list[Record], second: list[Record]
) -> None:
    raw = encode_segment_header("gateio", 5, SEGMENT_FRESH) + b"".join(map(encode, first))
    raw += encode_segment_header("gateio", 7, 0) + b"".join(map(encode, second))
    decoded = list(iter_records(raw))
    headers = [r for r in decoded if r.kind == SEGMENT]
    assert [(h.time_ns, h.flags, h.payload) for h in headers] == [
        (5, SEGMENT_FRESH, b"gateio"),
        (7, 0, b"gateio"),
    ]
    assert [r for r in decoded if r.kind != SEGMENT] == first + second


def test_a_record_cut_anywhere_yields_the_ones_before_then_says_so() -> None:
    whole = [Record(10 + i, FRAME, 3, 1, "mexc-0", bytes([i]) * 40) for i in range(3)]
    raw = encode_segment_header("mexc", 1, SEGMENT_FRESH) + b"".join(map(encode, whole))
    last_start = len(raw) - len(encode(whole[-1]))
    for cut in range(last_start + 1, len(raw)):
        got: list[Record] = []
        with pytest.raises(Damaged, match="cut short"):
            got.extend(r for r in iter_records(raw[:cut]) if r.kind != SEGMENT)
        assert got == whole[:2]


def test_a_header_of_another_version_is_refused_by_name() -> None:
    header = bytearray(encode_segment_header("mexc", 1, 0))
    header[8:10] = (2).to_bytes(2, "little")
    with pytest.raises(Damaged, match="format version 2"):
        list(iter_records(bytes(header)))


def test_a_header_can_grow_fields_a_reader_of_version_1_skips() -> None:
    header = bytearray(encode_segment_header("mexc", 1, 0))
    rest = int.from_bytes(header[10:12], "little")
    header[10:12] = (rest + 4).to_bytes(2, "little")
    tick = Record(9, TICK, 0, 0, "", b"x" * 16)
    raw = bytes(header) + b"new!" + encode(tick)
    assert list(iter_records(raw))[1:] == [tick]
    assert SEGMENT_HEAD.size == 22


def test_block_heads_are_zstd_skippable_frames_carrying_both_sizes() -> None:
    head = encode_block_head(1234, 56789)
    assert head[:4] == bytes.fromhex("5b2a4d18")  # 0x184D2A5B little-endian: skippable
    assert int.from_bytes(head[4:8], "little") == 12
    assert decode_block_head(head) == (1234, 56789)
    assert head.startswith(BLOCK_SIGNATURE)
    assert decode_block_head(b"\x28\xb5\x2f\xfd" + bytes(16)) is None  # a bare zstd frame
