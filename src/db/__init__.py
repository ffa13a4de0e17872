"""PostgreSQL layer: schema migrations, table writers, status, embedded server.

Importing this package imports no database driver: ``db.rows``, ``db.tables``, ``db.spill``
and ``db.writer_health`` are driver-free and used by domain code; the modules that talk to
PostgreSQL (``db.writer``, ``db.staged_copy``, ``db.pool``, ``db.migrations``, ``db.status``)
are imported by name where they are needed.
"""
