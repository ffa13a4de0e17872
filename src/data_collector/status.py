"""``--status``: effective configuration (secrets redacted), the database and its contents, and
a running collector's health. Never connects to the venues; returns within a few seconds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import yaml

from data_collector import __version__
from data_collector.config import Config
from data_collector.database_target import database_target
from data_collector.datadir_lock import running_holder
from data_collector.storage_status import archive_lines, partition_lines
from data_collector.wording import noun_for, plural

REDACTED = "***"
DB_TIMEOUT = 3.0
HEALTH_TIMEOUT = 1.5
#: the values of "status" in our /health answer
HEALTH_STATES = ("ok", "degraded", "unhealthy")


def redacted_config(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced."""
    from data_collector.alerts.targets import describe_target
    from db.dsn import redact_dsn

    data = msgspec.to_builtins(config)
    db = data["database"]
    db["dsn"] = redact_dsn(db["dsn"]) if db["dsn"] else ""
    if db["password"]:
        db["password"] = REDACTED
    for exchange in data["exchanges"].values():
        for key in ("api_key", "api_secret"):
            if exchange.get(key):
                exchange[key] = REDACTED
    data["alerts"]["targets"] = [describe_target(url) for url in config.alerts.targets]
    return data


async def print_status(config: Config, *, config_path: str | Path = "config.yaml") -> int:
    print(f"cex-arb-collector {__version__} status")
    print(f"\nConfiguration ({config_path}, secrets redacted):")
    print(_indent(yaml.safe_dump(redacted_config(config), sort_keys=False)))
    for line in await _database_lines(config):
        print(line)
    for line in await asyncio.to_thread(_spill_lines, config):
        print(line)
    for line in await asyncio.to_thread(archive_lines, config):
        print(line)
    for line in await _collector_lines(config):
        print(line)
    return 0


async def _database_lines(config: Config) -> list[str]:
    from db.status import database_status

    lines = ["Database:"]
    with database_target(config) as target:
        lines.append(f"  in use:      {target.label}")
        if target.dsn is None:
            lines.append(
                "  state:       not initialised yet (created on the collector's first run)"
            )
            return lines
        status = await database_status(target.dsn, timeout=DB_TIMEOUT)
    if not status.reachable:
        lines.append(f"  reachable:   no ({status.error})")
        return lines
    lines.append("  reachable:   yes")
    lines.append(f"  migrations:  {', '.join(status.migrations_applied) or 'none applied yet'}")
    lines.append(f"  rows:        {status.total_rows if status.total_rows is not None else 0}")
    lines.append(f"  latest snapshot: {_when(status.latest_timestamp)}")
    for exchange, (rows, latest) in sorted(status.per_exchange.items()):
        lines.append(
            f"    {exchange:<8} {rows:>12} {noun_for(rows, 'row')}, latest {_when(latest)}"
        )
    return lines + partition_lines(status.partitions)


def _spill_lines(config: Config) -> list[str]:
    """Rows waiting on disk: this database's (loaded by the next run) and any other's (kept)."""
    from db.spill_targets import inventory, target_of_dsn, target_of_embedded

    dsn = config.database_dsn()
    current = target_of_dsn(dsn) if dsn else target_of_embedded(config.embedded_pgdata)
    found = inventory(config.data_dir / "spill", current)
    lines = [
        "Spill files:",
        f"  this database spills to {found.root / current.id}/<table>/ ({current.label})",
    ]
    if not found.groups:
        return [*lines, "  none waiting"]
    for group in found.groups:
        where = (
            f"{plural(group.files, 'file')}, {plural(group.rows or 0, 'row')} in {group.directory}"
        )
        if group.target is None:
            lines.append(f"  database unknown (older layout): {where}; not loaded, see README")
        elif group.current:
            lines.append(f"  this database ({group.target.label}), {group.table}: {where}")
        else:
            lines.append(
                f"  another database ({group.target.label}), {group.table}: {where}; "
                "kept, not loaded by this configuration"
            )
    return lines


async def _collector_lines(config: Config) -> list[str]:
    """The collector holding the data directory, as its lock file records it (the lock is
    never taken), and the /health of the collector it names (else the configured one)."""
    holder = running_holder(config.data_dir)
    lines = ["Running collector:"]
    if holder is None:
        lines.append(f"  none holds {config.data_dir}")
    else:
        lines.append(f"  holds {config.data_dir}: {holder.describe()}")
    url = holder.monitoring_url if holder is not None else None
    if url is None and config.monitoring.enabled:
        url = config.monitoring.url
    if url is not None:
        lines += await _health_lines(url)
    return lines


async def _health_lines(url: str) -> list[str]:
    import aiohttp

    url = f"{url}/health"
    try:
        timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            body = await resp.text()
            kind = resp.content_type
    except (aiohttp.ClientError, TimeoutError, OSError):
        return [f"  not answering at {url} (no collector running with monitoring here)"]
    health = _our_health(body)
    if health is None:
        return [
            f"  {url}: another program answers there (HTTP {resp.status}, {kind}), not this "
            "collector; if one should be running, give monitoring.port a free port"
        ]
    return [
        f"  {url}: HTTP {resp.status}, {health['status']}",
        _indent(json.dumps(health, indent=2)),
    ]


def _our_health(body: str) -> dict[str, Any] | None:
    """The body parsed if it has the shape of our /health answer (monitoring.health)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if (
        isinstance(data, dict)
        and data.get("status") in HEALTH_STATES
        and isinstance(data.get("venues"), dict)
        and isinstance(data.get("database"), dict)
        and "last_snapshot" in data
    ):
        return data
    return None


def _when(value: object) -> str:
    return "none" if value is None else str(value)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.rstrip().splitlines())


__all__ = ["print_status", "redacted_config"]
