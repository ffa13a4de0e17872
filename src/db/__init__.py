"""PostgreSQL layer: schema migrations, the snapshot writer, status, embedded server."""

from db.dsn import build_dsn, redact_dsn, redact_text
from db.migrations import apply_migrations, default_migrations_dir
from db.pool import create_pool
from db.status import DatabaseStatus, database_status
from db.writer import SnapshotRow, SnapshotWriter, WriterStats

__all__ = [
    "DatabaseStatus",
    "SnapshotRow",
    "SnapshotWriter",
    "WriterStats",
    "apply_migrations",
    "build_dsn",
    "create_pool",
    "database_status",
    "default_migrations_dir",
    "redact_dsn",
    "redact_text",
]
