"""Article storage: one SQL schema over DB-API, with SQLite and PostgreSQL (psycopg 3) backends."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

#: The schema, one list of statements per version; a database at version N gets the lists after N, in order.
#: ``{id}`` is the backend's auto-increment primary key, ``{ref}`` the type of a column pointing at it.
#: Timestamps are ISO 8601 text, as the item carries them; booleans are BOOLEAN (0/1 in SQLite).
#: A step is a SQL statement or, where SQL differs between backends, a function of (storage, cursor).
MIGRATIONS: list[list[str | Callable[[Any, Any], None]]] = [
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
    [
        # Every stored state of an article's text: a new row when title, body or captions change, never an update.
        """CREATE TABLE article_versions (
            article_id {ref} NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            captions TEXT NOT NULL,
            fetched_at TEXT,
            stored_at TEXT NOT NULL,
            PRIMARY KEY (article_id, version)
        )""",
        # What the server said about a URL last time, for conditional requests on the next run.
        """CREATE TABLE fetch_state (
            url TEXT PRIMARY KEY,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT NOT NULL,
            fetched_at TEXT NOT NULL,
            checked_at TEXT NOT NULL,
            stored_at TEXT
        )""",
        """CREATE TABLE runs (
            id {id},
            crawl TEXT NOT NULL,
            spider TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            pages INTEGER NOT NULL DEFAULT 0,
            items INTEGER NOT NULL DEFAULT 0,
            new_articles INTEGER NOT NULL DEFAULT 0,
            changed_articles INTEGER NOT NULL DEFAULT 0,
            unchanged_articles INTEGER NOT NULL DEFAULT 0,
            not_modified INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            pid INTEGER
        )""",
        "CREATE INDEX runs_crawl_started ON runs (crawl, started_at)",
        # Articles stored before versions existed get their current text as version 1.
        lambda storage, cursor: storage._backfill_versions(cursor),
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
INSERT_VERSION = (
    "INSERT INTO article_versions (article_id, version, content_hash, title, body, captions, fetched_at, stored_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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


def captions(record: Mapping[str, Any]) -> list[str]:
    """The image captions of a record, in page order, an image without one as ""."""
    return [image.get("caption") or "" for image in record.get("images") or []]


def content_hash(record: Mapping[str, Any]) -> str:
    """sha256 over title, body and image captions: changes exactly when what a reader sees changes."""
    text = "\n".join([record.get("title") or "", record.get("body") or "", *captions(record)])
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


@dataclass
class SaveResult:
    """How the articles of one saved batch compare with what was stored before."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.new + self.changed + self.unchanged


@dataclass
class ArticleVersion:
    """One stored state of an article's text; version 1 is how it was first seen."""

    version: int
    content_hash: str
    title: str
    body: str
    captions: list[str]
    fetched_at: str | None
    stored_at: str


@dataclass
class FetchState:
    """What the server said about a URL on its last full (200) response, and when it was last asked."""

    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str
    fetched_at: str
    checked_at: str
    #: When the article read from that response was stored; None until it is (a crash in between, or not an article).
    stored_at: str | None


RUN_COUNTS = ("pages", "items", "new_articles", "changed_articles", "unchanged_articles", "not_modified", "errors")


@dataclass
class Run:
    """One crawl run as recorded in ``runs``; ``finished_at`` is None while it runs or when it died."""

    id: int
    crawl: str
    spider: str
    started_at: str
    finished_at: str | None
    status: str
    pages: int = 0
    items: int = 0
    new_articles: int = 0
    changed_articles: int = 0
    unchanged_articles: int = 0
    not_modified: int = 0
    errors: int = 0
    pid: int | None = None


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
        """A cursor inside one transaction: committed when the block ends, rolled back if it raises.

        The driver's errors come out as StorageError.
        """
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        # Every statement here is ours and holds no literal "?", so the swap is safe.
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def lock_schema(self, cursor: Any) -> None:
        """Hold off other processes migrating the same database until this transaction ends."""

    def migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Bring the schema to version ``target`` (the current one unless a test asks for an older one)."""
        with self.transaction() as cursor:
            self.lock_schema(cursor)
            cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            cursor.execute("SELECT MAX(version) FROM schema_version")
            current = cursor.fetchone()[0] or 0
            for version in range(current + 1, target + 1):
                for step in MIGRATIONS[version - 1]:
                    if callable(step):
                        step(self, cursor)
                    else:
                        cursor.execute(step.format(**self.column_types))
                cursor.execute(self.sql("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"), (version, utc_now()))

    def _backfill_versions(self, cursor: Any) -> None:
        cursor.execute("SELECT id, content_hash, title, body, fetched_at, first_seen FROM articles")
        articles = cursor.fetchall()
        cursor.execute("SELECT article_id, caption FROM images ORDER BY article_id, position")
        by_article: dict[int, list[str]] = {}
        for article_id, caption in cursor.fetchall():
            by_article.setdefault(article_id, []).append(caption or "")
        cursor.executemany(self.sql(INSERT_VERSION), [
            (article_id, 1, digest, title, body, json.dumps(by_article.get(article_id, []), ensure_ascii=False),
             fetched_at, first_seen)
            for article_id, digest, title, body, fetched_at, first_seen in articles
        ])

    def schema_version(self) -> int:
        with self.transaction() as cursor:
            cursor.execute("SELECT MAX(version) FROM schema_version")
            return cursor.fetchone()[0] or 0

    def save(self, records: Iterable[Mapping[str, Any]]) -> SaveResult:
        """Write article records (``dataclasses.asdict`` of items) in one transaction.

        An article seen for the first time, or whose title, body or captions changed, gets a new row in
        ``article_versions``; an unchanged one only has its ``last_seen`` and non-text fields refreshed.
        """
        records = list(records)
        result = SaveResult()
        try:
            with self.transaction() as cursor:
                keys = [article_url(record) for record in records]
                if len(set(keys)) == len(keys):
                    kinds = self._save_batch(cursor, records, keys)
                else:  # the same article twice in one batch: its versions must follow one another
                    kinds = [self._save_one(cursor, record) for record in records]
                for kind in kinds:
                    setattr(result, kind, getattr(result, kind) + 1)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"{type(exc).__name__}: {exc}") from exc
        return result

    def _select_in(self, cursor: Any, query: str, values: list[Any]) -> list[tuple]:
        """``query`` with ``IN (?, ...)`` for ``values``, in chunks SQLite's parameter limit allows."""
        rows: list[tuple] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            cursor.execute(self.sql(query.format(marks=", ".join("?" * len(chunk)))), chunk)
            rows.extend(cursor.fetchall())
        return rows

    def _save_batch(self, cursor: Any, records: list[Mapping[str, Any]], keys: list[str]) -> list[str]:
        """The same writes as ``_save_one``, a statement per table per batch instead of per record.

        Each statement is a round trip to PostgreSQL and a VM run in SQLite: a batch of 50 articles costs
        about ten statements here against some six hundred one record at a time.
        """
        before = dict(self._select_in(cursor, "SELECT article_url, content_hash FROM articles WHERE article_url IN ({marks})", keys))
        now = utc_now()
        digests, kinds, rows = [], [], []
        for key, record in zip(keys, records):
            digest = content_hash(record)
            seen = record.get("fetched_at") or now
            kinds.append("new" if key not in before else "unchanged" if before[key] == digest else "changed")
            digests.append(digest)
            row = {
                **{name: record.get(name) for name in ARTICLE_COLUMNS},
                "article_url": key,
                "ai_reported": bool(record.get("ai_reported")),
                "authors": json.dumps(list(record.get("authors") or []), ensure_ascii=False),
                "content_hash": digest,
                "first_seen": seen,
                "last_seen": seen,
            }
            rows.append([row[name] for name in ARTICLE_COLUMNS])
        cursor.executemany(self.sql(UPSERT_ARTICLE), rows)
        ids = dict(self._select_in(cursor, "SELECT article_url, id FROM articles WHERE article_url IN ({marks})", keys))
        article_ids = [ids[key] for key in keys]
        versioned = [i for i, kind in enumerate(kinds) if kind != "unchanged"]
        if versioned:
            latest = dict(self._select_in(
                cursor,
                "SELECT article_id, MAX(version) FROM article_versions WHERE article_id IN ({marks}) GROUP BY article_id",
                [article_ids[i] for i in versioned],
            ))
            cursor.executemany(self.sql(INSERT_VERSION), [
                (
                    article_ids[i], (latest.get(article_ids[i]) or 0) + 1, digests[i], records[i]["title"],
                    records[i]["body"], json.dumps(captions(records[i]), ensure_ascii=False),
                    records[i].get("fetched_at"), now,
                )
                for i in versioned
            ])
        # The pages these came from are now safe to ask for conditionally (see FetchState.stored_at).
        cursor.executemany(self.sql("UPDATE fetch_state SET stored_at = ? WHERE url = ?"), [(now, r.get("url")) for r in records])
        for table, (item_field, columns) in CHILD_ROWS.items():
            # Replacing the children keeps them exactly as on the latest visit, in page order.
            for start in range(0, len(article_ids), 500):
                chunk = article_ids[start : start + 500]
                cursor.execute(self.sql(f"DELETE FROM {table} WHERE article_id IN ({', '.join('?' * len(chunk))})"), chunk)
            children = [
                (article_id, position, *(bool(entry.get(c)) if c in BOOLEAN_COLUMNS else entry.get(c) for c in columns))
                for article_id, record in zip(article_ids, records)
                for position, entry in enumerate(record.get(item_field) or [])
            ]
            if children:
                cursor.executemany(self.sql(
                    f"INSERT INTO {table} (article_id, position, {', '.join(columns)}) "
                    f"VALUES (?, ?, {', '.join('?' * len(columns))})"
                ), children)
        return kinds

    def _save_one(self, cursor: Any, record: Mapping[str, Any]) -> str:
        key = article_url(record)
        seen = record.get("fetched_at") or utc_now()
        digest = content_hash(record)
        cursor.execute(self.sql("SELECT content_hash FROM articles WHERE article_url = ?"), (key,))
        before = cursor.fetchone()
        kind = "new" if before is None else "unchanged" if before[0] == digest else "changed"
        row = {
            **{name: record.get(name) for name in ARTICLE_COLUMNS},
            "article_url": key,
            "ai_reported": bool(record.get("ai_reported")),
            "authors": json.dumps(list(record.get("authors") or []), ensure_ascii=False),
            "content_hash": digest,
            "first_seen": seen,
            "last_seen": seen,
        }
        cursor.execute(self.sql(UPSERT_ARTICLE), [row[name] for name in ARTICLE_COLUMNS])
        cursor.execute(self.sql("SELECT id FROM articles WHERE article_url = ?"), (key,))
        article_id = cursor.fetchone()[0]
        if kind != "unchanged":
            cursor.execute(self.sql("SELECT MAX(version) FROM article_versions WHERE article_id = ?"), (article_id,))
            version = (cursor.fetchone()[0] or 0) + 1
            cursor.execute(self.sql(INSERT_VERSION), (
                article_id, version, digest, record["title"], record["body"],
                json.dumps(captions(record), ensure_ascii=False), record.get("fetched_at"), utc_now(),
            ))
        # The page this came from is now safe to ask for conditionally (see FetchState.stored_at).
        cursor.execute(self.sql("UPDATE fetch_state SET stored_at = ? WHERE url = ?"), (utc_now(), record.get("url")))
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
        return kind

    def versions(self, url: str) -> list[ArticleVersion]:
        """Every stored version of the article with this canonical (or fetched) URL, oldest first."""
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "SELECT v.version, v.content_hash, v.title, v.body, v.captions, v.fetched_at, v.stored_at "
                "FROM article_versions AS v JOIN articles AS a ON a.id = v.article_id "
                "WHERE a.article_url = ? ORDER BY v.version"), (url,))
            return [ArticleVersion(version, digest, title, body, json.loads(caps), fetched_at, stored_at)
                    for version, digest, title, body, caps, fetched_at, stored_at in cursor.fetchall()]

    def fetch_state(self, url: str) -> FetchState | None:
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "SELECT url, etag, last_modified, body_hash, fetched_at, checked_at, stored_at "
                "FROM fetch_state WHERE url = ?"), (url,))
            row = cursor.fetchone()
        return FetchState(*row) if row else None

    def record_fetch(self, url: str, etag: str | None, last_modified: str | None, body_hash: str) -> None:
        """A full response: its validators replace the old ones, and it counts as stored only once its article is."""
        now = utc_now()
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "INSERT INTO fetch_state (url, etag, last_modified, body_hash, fetched_at, checked_at, stored_at) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
                "last_modified = excluded.last_modified, fetched_at = excluded.fetched_at, "
                "checked_at = excluded.checked_at, "
                # The same bytes as last time keep their stored mark: nothing new needs storing.
                "stored_at = CASE WHEN fetch_state.body_hash = excluded.body_hash THEN fetch_state.stored_at END, "
                "body_hash = excluded.body_hash"), (url, etag, last_modified, body_hash, now, now))

    def record_not_modified(self, url: str) -> None:
        with self.transaction() as cursor:
            cursor.execute(self.sql("UPDATE fetch_state SET checked_at = ? WHERE url = ?"), (utc_now(), url))

    def start_run(self, crawl: str, spider: str, pid: int | None = None) -> int:
        with self.transaction() as cursor:
            # RETURNING: PostgreSQL and SQLite >= 3.35 both have it.
            cursor.execute(self.sql(
                "INSERT INTO runs (crawl, spider, started_at, status, pid) VALUES (?, ?, ?, ?, ?) RETURNING id"),
                (crawl, spider, utc_now(), "running", pid))
            return cursor.fetchone()[0]

    def finish_run(self, run_id: int, status: str, counts: Mapping[str, int]) -> None:
        values = [int(counts.get(name, 0)) for name in RUN_COUNTS]
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                f"UPDATE runs SET finished_at = ?, status = ?, {', '.join(f'{n} = ?' for n in RUN_COUNTS)} WHERE id = ?"),
                (utc_now(), status, *values, run_id))

    def abandon_runs(self, crawl: str) -> int:
        """Mark runs of ``crawl`` still "running" as "died"; call only while holding the crawl's lock."""
        with self.transaction() as cursor:
            cursor.execute(self.sql("UPDATE runs SET status = 'died' WHERE crawl = ? AND finished_at IS NULL"), (crawl,))
            return cursor.rowcount

    def runs(self, limit: int = 20, crawl: str | None = None) -> list[Run]:
        """The most recent runs first, of one crawl or of all."""
        columns = "id, crawl, spider, started_at, finished_at, status, " + ", ".join(RUN_COUNTS) + ", pid"
        where, params = ("WHERE crawl = ? ", (crawl,)) if crawl else ("", ())
        with self.transaction() as cursor:
            cursor.execute(self.sql(f"SELECT {columns} FROM runs {where}ORDER BY started_at DESC, id DESC LIMIT ?"),
                           (*params, limit))
            return [Run(*row) for row in cursor.fetchall()]

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
    path: Path | None = None
    """The database file; None for ``:memory:``."""
    file_id: tuple[int, int] | None = None

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
        storage = cls(connection, url)
        storage.path = None if path == ":memory:" else Path(path)
        storage.file_id = _file_id(storage.path) if storage.path is not None else None
        return storage

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        # An open connection goes on writing, without an error, into a database file that was deleted or replaced
        # under it: those rows would be lost with the old file. Refuse instead, so the batch is spooled and storage
        # reopened on the file now at the path.
        if self.path is not None and _file_id(self.path) != self.file_id:
            raise StorageError(f"the database file {self.path} was removed or replaced after it was opened")
        try:
            cursor = self.connection.cursor()
            # IMMEDIATE takes the write lock up front, so two crawls writing one file wait instead of failing mid-batch.
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"{type(exc).__name__}: {exc}") from exc
        try:
            yield cursor
            cursor.execute("COMMIT")
        except BaseException as exc:
            self.connection.rollback()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"{type(exc).__name__}: {exc}") from exc
            raise
        finally:
            cursor.close()


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, None when there is none."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


class PostgreSQLStorage(Storage):
    """``postgresql://user:password@host:port/dbname`` (libpq URI: ``?options=-csearch_path%3Dschema`` works too)."""

    scheme = "postgresql"
    placeholder = "%s"
    column_types = {"id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "ref": "BIGINT"}
    #: pg_advisory_xact_lock key: "newscrawl schema" (any constant unlikely to be used by another application).
    SCHEMA_LOCK = 0x6E657773

    @classmethod
    def connect(cls, url: str) -> PostgreSQLStorage:
        import psycopg  # only PostgreSQL users need the driver loaded

        try:
            # Autocommit outside transaction(): no transaction is left open between batches.
            connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {redact(url)}: {exc}") from exc
        return cls(connection, url)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        import psycopg

        try:
            with self.connection.transaction(), self.connection.cursor() as cursor:
                yield cursor
        except psycopg.Error as exc:
            # A lost connection lands here too; the caller reopens storage to go on.
            raise StorageError(f"{type(exc).__name__}: {exc}") from exc

    def lock_schema(self, cursor: Any) -> None:
        # Two crawls starting together would otherwise both create the tables; the second waits, then sees them.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self.SCHEMA_LOCK,))

    def close(self) -> None:
        if not self.connection.closed:
            self.connection.close()


def redact(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


#: URL scheme -> backend.
BACKENDS: dict[str, type[Storage]] = {"sqlite": SQLiteStorage, "postgresql": PostgreSQLStorage, "postgres": PostgreSQLStorage}


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
        raise StorageError(f"cannot prepare the schema of {redact(url)}: {exc}") from exc
    return storage
