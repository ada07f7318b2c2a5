"""Article storage: one SQL schema over DB-API, with a SQLite backend and room for PostgreSQL beside it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

#: The schema, one list of statements per version; a database at version N gets the lists after N, in order.
#: ``{id}`` is the backend's auto-increment primary key, ``{ref}`` the type of a column pointing at it.
#: Timestamps are ISO 8601 text, as the item carries them; booleans are BOOLEAN (0/1 in SQLite).
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE articles (
            id {id},
            article_url TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            canonical_url TEXT,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            language TEXT,
            published_at TEXT,
            modified_at TEXT,
            site_name TEXT,
            ai_reported BOOLEAN NOT NULL,
            social_summary TEXT,
            authors TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            fetched_at TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        )""",
        """CREATE TABLE images (
            article_id {ref} NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            src TEXT NOT NULL,
            alt TEXT,
            caption TEXT,
            credit TEXT,
            ai_generated BOOLEAN NOT NULL,
            disclosure TEXT,
            PRIMARY KEY (article_id, position)
        )""",
        """CREATE TABLE boilerplate (
            article_id {ref} NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (article_id, position)
        )""",
        """CREATE TABLE related_links (
            article_id {ref} NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            summary TEXT,
            ai_reported BOOLEAN NOT NULL,
            PRIMARY KEY (article_id, position)
        )""",
        "CREATE INDEX boilerplate_kind ON boilerplate (kind)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

ARTICLE_COLUMNS = (
    "article_url", "url", "canonical_url", "title", "body", "language", "published_at", "modified_at", "site_name",
    "ai_reported", "social_summary", "authors", "content_hash", "fetched_at", "first_seen", "last_seen",
)
# On a second visit everything is refreshed except when the article was first seen.
UPSERT_ARTICLE = (
    f"INSERT INTO articles ({', '.join(ARTICLE_COLUMNS)}) VALUES ({', '.join('?' * len(ARTICLE_COLUMNS))}) "
    "ON CONFLICT (article_url) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in ARTICLE_COLUMNS if name not in ("article_url", "first_seen"))
)
CHILD_ROWS: dict[str, tuple[str, tuple[str, ...]]] = {
    # table: (item field, columns taken from each entry)
    "images": ("images", ("src", "alt", "caption", "credit", "ai_generated", "disclosure")),
    "boilerplate": ("boilerplate", ("kind", "text")),
    "related_links": ("related", ("url", "title", "summary", "ai_reported")),
}
BOOLEAN_COLUMNS = {"ai_reported", "ai_generated"}


class StorageError(Exception):
    """A write or a connection failed; the batch was rolled back as a whole."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def article_url(record: Mapping[str, Any]) -> str:
    """The article's identity: its canonical URL when the page declares one, else the URL fetched."""
    return record.get("canonical_url") or record["url"]


def content_hash(record: Mapping[str, Any]) -> str:
    """sha256 over title, body and image captions: changes exactly when what a reader sees changes."""
    captions = [image.get("caption") or "" for image in record.get("images") or []]
    text = "\n".join([record.get("title") or "", record.get("body") or "", *captions])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class StoredSummary:
    """What a database holds, for `scrapy stored`."""

    articles: int = 0
    images: int = 0
    captions: int = 0
    ai_images: int = 0
    related_links: int = 0
    boilerplate_by_kind: dict[str, int] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)


class Storage:
    """The schema and every query, written once in portable SQL with ``?`` placeholders.

    A backend subclass says how to connect, its placeholder style and key types, and how to run a transaction.
    """

    scheme: ClassVar[str]
    placeholder: ClassVar[str] = "?"
    column_types: ClassVar[dict[str, str]] = {"id": "INTEGER PRIMARY KEY", "ref": "INTEGER"}

    def __init__(self, connection: Any, url: str):
        self.connection = connection
        self.url = url

    @classmethod
    def connect(cls, url: str) -> Storage:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: committed when the block ends, rolled back if it raises."""
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        # Every statement here is ours and holds no literal "?", so the swap is safe.
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def migrate(self) -> None:
        with self.transaction() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            cursor.execute("SELECT MAX(version) FROM schema_version")
            current = cursor.fetchone()[0] or 0
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    cursor.execute(statement.format(**self.column_types))
                cursor.execute(self.sql("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"), (version, utc_now()))

    def schema_version(self) -> int:
        with self.transaction() as cursor:
            cursor.execute("SELECT MAX(version) FROM schema_version")
            return cursor.fetchone()[0] or 0

    def save(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Write article records (``dataclasses.asdict`` of items) in one transaction; returns how many."""
        records = list(records)
        try:
            with self.transaction() as cursor:
                for record in records:
                    self._save_one(cursor, record)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"{type(exc).__name__}: {exc}") from exc
        return len(records)

    def _save_one(self, cursor: Any, record: Mapping[str, Any]) -> None:
        key = article_url(record)
        seen = record.get("fetched_at") or utc_now()
        row = {
            **{name: record.get(name) for name in ARTICLE_COLUMNS},
            "article_url": key,
            "ai_reported": bool(record.get("ai_reported")),
            "authors": json.dumps(list(record.get("authors") or []), ensure_ascii=False),
            "content_hash": content_hash(record),
            "first_seen": seen,
            "last_seen": seen,
        }
        cursor.execute(self.sql(UPSERT_ARTICLE), [row[name] for name in ARTICLE_COLUMNS])
        cursor.execute(self.sql("SELECT id FROM articles WHERE article_url = ?"), (key,))
        article_id = cursor.fetchone()[0]
        for table, (item_field, columns) in CHILD_ROWS.items():
            # Replacing the children keeps them exactly as on the latest visit, in page order.
            cursor.execute(self.sql(f"DELETE FROM {table} WHERE article_id = ?"), (article_id,))
            entries = record.get(item_field) or []
            if not entries:
                continue
            statement = self.sql(
                f"INSERT INTO {table} (article_id, position, {', '.join(columns)}) "
                f"VALUES (?, ?, {', '.join('?' * len(columns))})"
            )
            cursor.executemany(statement, [
                (article_id, position, *(bool(entry.get(c)) if c in BOOLEAN_COLUMNS else entry.get(c) for c in columns))
                for position, entry in enumerate(entries)
            ])

    def summary(self) -> StoredSummary:
        with self.transaction() as cursor:
            def count(query: str) -> int:
                cursor.execute(query)
                return cursor.fetchone()[0] or 0

            summary = StoredSummary(
                articles=count("SELECT COUNT(*) FROM articles"),
                images=count("SELECT COUNT(*) FROM images"),
                captions=count("SELECT COUNT(*) FROM images WHERE caption IS NOT NULL"),
                ai_images=count("SELECT COUNT(*) FROM images WHERE ai_generated"),
                related_links=count("SELECT COUNT(*) FROM related_links"),
            )
            cursor.execute("SELECT kind, COUNT(*) FROM boilerplate GROUP BY kind ORDER BY COUNT(*) DESC, kind")
            summary.boilerplate_by_kind = {kind: n for kind, n in cursor.fetchall()}
            cursor.execute("SELECT title FROM articles ORDER BY title")
            summary.titles = [title for (title,) in cursor.fetchall()]
        return summary

    def close(self) -> None:
        self.connection.close()


class SQLiteStorage(Storage):
    """``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3`` (``sqlite:///:memory:`` too)."""

    scheme = "sqlite"

    @classmethod
    def connect(cls, url: str) -> SQLiteStorage:
        prefix = "sqlite:///"
        if not url.startswith(prefix) or url == prefix:
            raise ValueError(f"a SQLite database URL looks like sqlite:///data/newscrawl.sqlite3, got {url!r}")
        path = url[len(prefix):]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: transactions are opened explicitly in transaction(), DDL included.
            connection = sqlite3.connect(path, isolation_level=None, timeout=30)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {url}: {exc}") from exc
        return cls(connection, url)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        cursor = self.connection.cursor()
        # IMMEDIATE takes the write lock up front, so two crawls writing one file wait instead of failing mid-batch.
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            self.connection.rollback()
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()


#: URL scheme -> backend. A PostgreSQL backend registers "postgresql" here (see README, "Storage").
BACKENDS: dict[str, type[Storage]] = {"sqlite": SQLiteStorage}


def open_storage(url: str) -> Storage:
    """A connected storage for a database URL, its schema migrated to the current version."""
    scheme = url.partition(":")[0].lower()
    backend = BACKENDS.get(scheme)
    if backend is None:
        raise ValueError(f"no storage backend for {url!r}; known: {', '.join(sorted(BACKENDS))}")
    storage = backend.connect(url)
    try:
        storage.migrate()
    except Exception as exc:
        storage.close()
        raise StorageError(f"cannot prepare the schema of {url}: {exc}") from exc
    return storage
