"""The machine's own latency floor for case 2: plain TCP on loopback, no WebSocket, no parsing.

    python -m bench.floor send --rate 20000 --seconds 8       (prints its port, then waits)
    python -m bench.floor recv --port P --out lat.npy

The sender mimics the simulator's push loop: every 10 ms a burst of rate/100 messages, one
``send()`` each with ~10 µs of busy work between them (the simulator spends about that making a
frame), each carrying its ``time.time_ns()``. The receiver, a blocking ``recv`` loop, stamps
each message on arrival. Whatever this shows is the scheduler's and the loopback's share,
which no client can beat on this machine.
"""

from __future__ import annotations

import argparse
import socket
import struct
import time

import numpy as np

from bench.proto import emit

SIZE = 128
_STAMP = struct.Struct("<q")


def send(rate: float, seconds: float) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    emit({"port": server.getsockname()[1]})
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    burst = max(1, round(rate / 100))
    pad = b"x" * (SIZE - _STAMP.size)
    deadline = time.monotonic() + seconds
    next_tick = time.monotonic()
    while time.monotonic() < deadline:
        for _ in range(burst):
            conn.send(_STAMP.pack(time.time_ns()) + pad)
            spin = time.perf_counter() + 10e-6
            while time.perf_counter() < spin:
                pass
        next_tick += 0.01
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    conn.close()
    server.close()


def recv(port: int, out: str) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sent: list[int] = []
    got: list[int] = []
    pending = b""
    while True:
        data = sock.recv(1 << 16)
        if not data:
            break
        now = time.time_ns()
        pending += data
        whole = len(pending) // SIZE * SIZE
        for off in range(0, whole, SIZE):
            sent.append(_STAMP.unpack_from(pending, off)[0])
            got.append(now)
        pending = pending[whole:]
    np.savez(out, send=np.asarray(sent, dtype=np.int64), done=np.asarray(got, dtype=np.int64))
    emit({"messages": len(sent)})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("mode", choices=("send", "recv"))
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", default="floor.npz")
    ns = parser.parse_args()
    if ns.mode == "send":
        send(ns.rate, ns.seconds)
    else:
        recv(ns.port, ns.out)
