"""The data directory lock, between real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_collector.datadir_lock import (
    LOCK_FILE,
    DataDirBusy,
    DataDirLock,
    read_holder,
    running_holder,
)

#: a second process trying the lock: prints what happened as one JSON line
TRY_LOCK = """
import json, sys
from pathlib import Path
from data_collector.datadir_lock import DataDirBusy, DataDirLock
try:
    lock = DataDirLock.acquire(Path(sys.argv[1]), monitoring_url="http://127.0.0.1:1")
except DataDirBusy as exc:
    print(json.dumps({"busy": str(exc), "holder_pid": exc.holder and exc.holder.pid}))
else:
    print(json.dumps({"acquired": lock.holder.pid}), flush=True)
    if len(sys.argv) > 2:  # hold it until killed
        sys.stdin.read()
"""


def try_lock(data_dir: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return json.loads(out)


def test_a_second_process_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with DataDirLock.acquire(data_dir, monitoring_url="http://127.0.0.1:9108") as lock:
        assert lock.holder.pid == os.getpid()
        answer = try_lock(data_dir)
        assert answer["holder_pid"] == os.getpid()
        message = str(answer["busy"])
        assert f"pid {os.getpid()}" in message and lock.holder.started in message
        assert "http://127.0.0.1:9108" in message and str(data_dir) in message
        assert running_holder(data_dir) == lock.holder
    # released: the next process gets it, and no stale holder is left for --status
    assert read_holder(data_dir) is None
    assert "acquired" in try_lock(data_dir)
    assert (data_dir / LOCK_FILE).exists()  # never deleted (see the module's docstring)


def test_a_killed_holder_frees_the_directory_and_is_not_reported(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", TRY_LOCK, str(data_dir), "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert json.loads(holder.stdout.readline()) == {"acquired": holder.pid}
        assert running_holder(data_dir) is not None
        with pytest.raises(DataDirBusy, match=f"pid {holder.pid}"):
            DataDirLock.acquire(data_dir)
    finally:
        holder.kill()
        holder.wait()
    # SIGKILL left its record behind, but the kernel dropped the lock
    recorded = read_holder(data_dir)
    assert recorded is not None and recorded.pid == holder.pid
    assert running_holder(data_dir) is None
    with DataDirLock.acquire(data_dir) as lock:
        assert lock.holder.pid == os.getpid()
