"""A fresh, empty PostgreSQL schema per test on the server of NEWSCRAWL_TEST_POSTGRES_URL (see .ci/postgres)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

SERVER_URL = os.environ.get("NEWSCRAWL_TEST_POSTGRES_URL", "")
SKIP_REASON = "NEWSCRAWL_TEST_POSTGRES_URL is not set (`.ci/postgres start` prints it; .ci/run sets it)"


def schema_url(schema: str) -> str:
    """The server URL with every connection's search_path set to one schema, which then acts as its own database."""
    separator = "&" if "?" in SERVER_URL else "?"
    return f"{SERVER_URL}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A database URL whose tables live in a new schema, dropped with everything in it afterwards."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(schema)
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
