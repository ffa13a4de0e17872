"""DSN building and password redaction."""

from __future__ import annotations

import asyncpg
import pytest

from db.dsn import build_dsn, dsn_identity, redact_dsn, redact_text

SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u:s3cr3t-Pw@db.example:5432/cex", "postgresql://u:***@db.example:5432/cex"),
        ("postgres://u:s3cr3t-Pw@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        # an unencoded '@' in the password: hide everything up to the last '@'
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:s%40cret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://h/db?password=s3cr3t-Pw", "postgresql://h/db?password=***"),
        ("postgresql://h/db?password=p@ss&x=1", "postgresql://h/db?password=***&x=1"),
        (
            "postgresql://u@h/db?sslmode=require&PASSWORD=x",
            "postgresql://u@h/db?sslmode=require&PASSWORD=***",
        ),
        ("postgresql://u@h/db?sslpassword=k", "postgresql://u@h/db?sslpassword=***"),
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql://u:@/db?host=/tmp/sock", "postgresql://u:@/db?host=/tmp/sock"),
        ("host=h port=5432 password=s3cr3t-Pw user=u", "host=h port=5432 password=*** user=u"),
        ("host=h password = 'a b\\'c' user=u", "host=h password = *** user=u"),
        ("host=h user=u", "host=h user=u"),
    ],
)
def test_redact_dsn(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected


def test_redact_text_masks_dsn_and_bare_password() -> None:
    dsn = f"postgresql://u:{SECRET}@h/db"
    text = f"failed to connect to {dsn}; auth with {SECRET} rejected"
    out = redact_text(text, dsn)
    assert SECRET not in out
    assert "postgresql://u:***@h/db" in out


def test_redact_text_masks_decoded_password() -> None:
    dsn = "postgresql://u:a%2Fb%40c@h/db"
    assert "a/b@c" not in redact_text("password a/b@c was wrong", dsn)


def test_build_dsn_quotes_parts() -> None:
    dsn = build_dsn("db.example", 5433, "my db", "us@er", "p@ss:/w?#")
    assert dsn == "postgresql://us%40er:p%40ss%3A%2Fw%3F%23@db.example:5433/my%20db"
    assert "p@ss" not in redact_dsn(dsn) and "p%40ss" not in redact_dsn(dsn)
    assert build_dsn("::1", 5432, "d", "u") == "postgresql://u@[::1]:5432/d"
    assert build_dsn("/run/pg", 5432, "d", "u") == "postgresql://u@/d?host=%2Frun%2Fpg&port=5432"


async def test_build_dsn_connects_with_awkward_names(pg_server, pg_loop) -> None:
    """asyncpg parses what build_dsn writes: socket-dir host, spaces and symbols in the name."""
    name = "we ird/db?name%"
    pg_loop.run(_admin(pg_server.admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        conn = await asyncpg.connect(pg_server.dsn(name), timeout=5)
        try:
            assert await conn.fetchval("SELECT current_database()") == name
        finally:
            await conn.close()
    finally:
        pg_loop.run(_admin(pg_server.admin_dsn, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("dsn", "identity"),
    [
        ("postgresql://u:pw@DB.example:5433/cex", ("db.example", "5433", "cex", "u")),
        ("postgresql://u@db.example/cex", ("db.example", "5432", "cex", "u")),  # default port
        ("postgres://u@db.example", ("db.example", "5432", "u", "u")),  # database = user
        ("postgresql://u:p@ss@[::1]:6432/x", ("::1", "6432", "x", "u")),
        ("postgresql://u@/cex?host=/tmp/sock&port=5433", ("/tmp/sock", "5433", "cex", "u")),
        ("postgresql://h1:5432,h2:5433/cex?user=u", ("h1:5432,h2:5433", "5432", "cex", "u")),
        (
            "host=db.example port=5433 dbname=cex user=u password='a b'",
            ("db.example", "5433", "cex", "u"),
        ),
        ("host=db.example user=u", ("db.example", "5432", "u", "u")),
    ],
)
def test_dsn_identity(dsn: str, identity: tuple[str, str, str, str]) -> None:
    assert dsn_identity(dsn) == identity


def test_dsn_identity_ignores_the_password_and_the_spelling() -> None:
    same = {
        dsn_identity("postgresql://u:one@h:5432/db"),
        dsn_identity("postgresql://u:two@h/db?sslmode=require"),
        dsn_identity("host=h user=u dbname=db password=three"),
    }
    assert same == {("h", "5432", "db", "u")}
