"""The recording file format (pure: bytes in, bytes out). The README documents it for readers
in other languages; keep the two in step.

A file ``<dir>/<venue>/<YYYY-MM-DD>/<HH>.rec.zst`` (UTC hour of the records' times) is a
sequence of *blocks*. Each block is a zstd skippable frame of 12 bytes (``BLOCK_MAGIC``,
size 12, ``b"CXRB"``, compressed size u32, raw size u32) followed by one ordinary zstd frame
(with a content checksum) of that compressed size. ``zstd -d`` skips the skippable frames, so
the whole file also decompresses with the stock tool into the raw stream.

The raw stream is one or more *segments* (a collector that restarts within the hour appends a
new one). A segment is a header, then records. All integers are little-endian.

Header: ``SEGMENT_MAGIC`` (8 bytes) | version u16 | length u16 of what follows |
started_ns i64 | flags u8 (``SEGMENT_FRESH``) | venue length u8 | venue (ASCII).

Record: size u32 (bytes after this field) | kind u8 | time_ns i64 | transport u32 |
flags u8 | link length u8 | link (ASCII) | payload (the rest). A size of ``MAX_RECORD_SIZE``
or more is no record: where a record would start, those 4 bytes begin a segment header.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

FILE_SUFFIX = ".rec.zst"
SEGMENT_MAGIC = b"CEXARBRC"
VERSION = 1
BLOCK_MAGIC = 0x184D2A5B  # a zstd skippable frame (0x184D2A50..0x184D2A5F)
BLOCK_TAG = b"CXRB"
#: a size field at or above this cannot be a record (the segment magic reads as ~1.1e9)
MAX_RECORD_SIZE = 1 << 24

# kinds
#: not a stored record: :func:`iter_records` reports each segment header as one
SEGMENT = 0
FRAME = 1  # flags: FLAG_BINARY, FLAG_STRAY; payload: the message exactly as received
OPENED = 2  # flags: FLAG_ROTATION, FLAG_RECONNECT
SENT = 3  # payload: a subscribe request (UTF-8)
PROMOTED = 4  # transport: the new one; payload: the old transport id (u32, 0: none)
LOST = 5  # payload: the reason (UTF-8)
CLOSED = 6  # payload: the reason (UTF-8)
LINK_STATE = 7  # transport: carrying one (0: none); payload: replacement id (u32, 0: none)
#: flags: CLOCK_SNAPSHOT or CLOCK_ANALYTICS; payload: boundary i64 ns, clock interval i64 ns
TICK = 8
#: not a stored record: the reader's note that a venue's recording stops here (its end, a
#: cut, or a restarted collector's fresh segment follows): no connection carries over
ENDED = 0xFF
KIND_NAMES = {
    SEGMENT: "segment",
    ENDED: "ended",
    FRAME: "frame",
    OPENED: "opened",
    SENT: "sent",
    PROMOTED: "promoted",
    LOST: "lost",
    CLOSED: "closed",
    LINK_STATE: "link_state",
    TICK: "tick",
}

FLAG_BINARY = 1  # FRAME: a binary message (else text)
FLAG_STRAY = 2  # FRAME: arrived on a retired transport, never delivered
FLAG_ROTATION = 1  # OPENED: a make-before-break replacement
FLAG_RECONNECT = 2  # OPENED: replaces a lost transport
CLOCK_SNAPSHOT = 0  # TICK: the snapshot scheduler captured the cache
CLOCK_ANALYTICS = 1  # TICK: the analytics summarised it
#: segment header flag: the first segment its recorder wrote (a collector started)
SEGMENT_FRESH = 1

#: size, kind, time_ns, transport, flags, link length
RECORD_HEAD = struct.Struct("<IBqIBB")
#: the record head without the size field: what ``size`` counts from
HEAD_AFTER_SIZE = RECORD_HEAD.size - 4
SEGMENT_HEAD = struct.Struct("<8sHHqBB")
_SEGMENT_FIXED = 12  # magic, version, length
BLOCK_HEAD = struct.Struct("<II4sII")
U32 = struct.Struct("<I")
I64 = struct.Struct("<q")
TICK_PAYLOAD = struct.Struct("<qq")


class Record(NamedTuple):
    """One decoded record; ``link`` is the link's name, ``payload`` the bytes after it."""

    time_ns: int
    kind: int
    transport: int
    flags: int
    link: str
    payload: bytes


class Damaged(ValueError):
    """The raw stream is not what this format says (a record cut short, a bad header)."""


def encode_record(
    kind: int, time_ns: int, transport: int, flags: int, link: bytes, payload: bytes
) -> bytes:
    size = HEAD_AFTER_SIZE + len(link) + len(payload)
    head = RECORD_HEAD.pack(size, kind, time_ns, transport, flags, len(link))
    return head + link + payload


def encode_segment_header(venue: str, started_ns: int, flags: int) -> bytes:
    name = venue.encode("ascii")
    rest = SEGMENT_HEAD.size - _SEGMENT_FIXED + len(name)
    return SEGMENT_HEAD.pack(SEGMENT_MAGIC, VERSION, rest, started_ns, flags, len(name)) + name


def encode_block_head(compressed_size: int, raw_size: int) -> bytes:
    return BLOCK_HEAD.pack(BLOCK_MAGIC, 12, BLOCK_TAG, compressed_size, raw_size)


#: how a block starts on disk; a reader that lost its place searches for it
BLOCK_SIGNATURE = encode_block_head(0, 0)[:12]


def decode_block_head(data: bytes) -> tuple[int, int] | None:
    """(compressed size, raw size), or None when ``data`` does not start a block."""
    magic, size, tag, compressed, raw = BLOCK_HEAD.unpack_from(data)
    if magic != BLOCK_MAGIC or size != 12 or tag != BLOCK_TAG:
        return None
    return compressed, raw


def decode_segment_header(raw: bytes, pos: int) -> tuple[Record, int]:
    """The header at ``pos`` as a ``SEGMENT``-kind record (time: when the segment was
    started; flags: the header's; payload: the venue), and the position after it."""
    if len(raw) - pos < SEGMENT_HEAD.size:
        raise Damaged("segment header cut short")
    magic, version, rest, started_ns, flags, name_len = SEGMENT_HEAD.unpack_from(raw, pos)
    if magic != SEGMENT_MAGIC:
        raise Damaged("no segment header where one must be")
    if version != VERSION:
        raise Damaged(f"format version {version}; this program reads version {VERSION}")
    start = pos + SEGMENT_HEAD.size
    end = pos + _SEGMENT_FIXED + rest  # ``rest`` lets a later version add fields at the end
    if end > len(raw):
        raise Damaged("segment header cut short")
    venue = raw[start : start + name_len]
    return Record(started_ns, SEGMENT, 0, flags, "", venue), end


def iter_records(raw: bytes, pos: int = 0) -> Iterator[Record]:
    """Every record of a raw stream, and each segment header as a ``SEGMENT``-kind record
    (see :func:`decode_segment_header`). Raises :class:`Damaged` at the first record that is
    cut short or malformed, after yielding the ones before it."""
    end = len(raw)
    unpack = RECORD_HEAD.unpack_from
    head_size = RECORD_HEAD.size
    new = tuple.__new__  # a Record without NamedTuple's keyword handling: this runs per record
    names: dict[bytes, str] = {}
    while pos < end:
        if end - pos < head_size:
            if end - pos >= 4 and U32.unpack_from(raw, pos)[0] >= MAX_RECORD_SIZE:
                raise Damaged("segment header cut short")
            raise Damaged("record cut short")
        size, kind, time_ns, transport, flags, link_len = unpack(raw, pos)
        if size >= MAX_RECORD_SIZE:
            header, pos = decode_segment_header(raw, pos)
            yield header
            continue
        stop = pos + 4 + size
        if size < HEAD_AFTER_SIZE + link_len:
            raise Damaged(f"record of {size} bytes cannot hold its {link_len}-byte link")
        if stop > end:
            raise Damaged("record cut short")
        link_end = pos + head_size + link_len
        key = raw[pos + head_size : link_end]
        link = names.get(key)
        if link is None:
            link = names[key] = key.decode("ascii", "replace")
        yield new(Record, (time_ns, kind, transport, flags, link, raw[link_end:stop]))
        pos = stop
