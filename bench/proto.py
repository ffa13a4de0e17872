"""The line protocol between the bench orchestrator and its child processes (stdlib only).

Children run in two interpreters (the project's venv and ``bench/.venv-ccxt``), so this module
imports nothing outside the standard library. A child prints ``@@BENCH {json}`` lines on stdout
(anything else there is ignored: a library printing to stdout cannot confuse the protocol) and
reads one JSON command per line on stdin; each command gets exactly one reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

MARK = "@@BENCH "
#: replies to a command must come within this (a wedged child must not hang the bench)
DEFAULT_TIMEOUT = 120.0


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: bounds of the sleep between two looks at a client's update count (see wait_for_count)
POLL_MIN = 0.001
POLL_MAX = 0.05


async def wait_for_count(count: Callable[[], int], target: int, timeout: float) -> None:
    """Return once ``count()`` reaches ``target`` (or ``timeout`` seconds passed).

    Every look costs the measured process a wake-up (tens of microseconds of CPU, charged to
    the client under test), so the wait sleeps half the time the count should still take at
    the rate seen so far, between POLL_MIN and POLL_MAX: about a dozen looks per flood
    instead of one every few milliseconds, and the end still noticed within POLL_MIN or so.
    """
    loop = asyncio.get_running_loop()
    start, start_count = loop.time(), count()
    deadline = start + timeout
    while (now_count := count()) < target and (now := loop.time()) < deadline:
        rate = (now_count - start_count) / max(now - start, 1e-9)
        due = (target - now_count) / rate if rate > 0 else POLL_MAX
        await asyncio.sleep(min(POLL_MAX, max(POLL_MIN, due / 2)))


# --- child side ---------------------------------------------------------------------------


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


async def serve(handler: Handler) -> None:
    """Answer commands from stdin until ``{"cmd": "quit"}`` or EOF.

    The handler's return value is the reply; ``None`` ends the loop after replying ``{}``.
    Commands are handled one at a time, in order.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        command = json.loads(line)
        if command.get("cmd") == "quit":
            emit({"ok": True})
            return
        try:
            reply = await handler(command)
        except Exception as exc:  # report it to the orchestrator instead of dying silently
            emit({"error": f"{type(exc).__name__}: {exc}"})
            continue
        emit(reply if reply is not None else {})


# --- parent side --------------------------------------------------------------------------


class ChildError(RuntimeError):
    """A child process died, timed out or reported an error."""


class Child:
    """One child process speaking the protocol; create it with :meth:`spawn`."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, stderr_path: str) -> None:
        self.name = name
        self.proc = proc
        self.stderr_path = stderr_path

    @classmethod
    async def spawn(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        cwd: str,
        stderr_path: str,
        env: dict[str, str] | None = None,
    ) -> Child:
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        with open(stderr_path, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=full_env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                limit=1 << 24,
            )
        return cls(name, proc, stderr_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def recv(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """The next protocol line from the child."""
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ChildError(f"{self.name}: no reply within {timeout:.0f} s{self._tail()}")
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not line:
                await self.proc.wait()
                raise ChildError(
                    f"{self.name}: exited with code {self.proc.returncode}{self._tail()}"
                )
            text = line.decode(errors="replace")
            if text.startswith(MARK):
                reply = json.loads(text[len(MARK) :])
                if "error" in reply:
                    raise ChildError(f"{self.name}: {reply['error']}{self._tail()}")
                return reply

    async def request(self, command: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.recv(timeout)

    async def close(self, timeout: float = 15.0) -> None:
        """Ask the child to quit; kill it (this pid only) if it does not."""
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.request({"cmd": "quit"}, timeout=timeout)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def _tail(self, lines: int = 15) -> str:
        try:
            with open(self.stderr_path, errors="replace") as f:
                tail = f.read().splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n  stderr: " + "\n  ".join(tail)) if tail else ""
