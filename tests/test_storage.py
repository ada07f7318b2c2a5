"""The storage layer: schema and migrations, one row per canonical URL, versions, fetch state and runs.

``StorageContract`` holds the tests every backend must pass; this module runs them on SQLite and
``tests/test_storage_postgres.py`` on a real PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from newscrawl.storage import (
    BACKENDS, SCHEMA_VERSION, SQLiteStorage, Storage, StorageError, content_hash, open_storage, redact,
)

TABLES = ("articles", "images", "boilerplate", "related_links", "article_versions", "fetch_state", "runs")


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "url": "https://nyheter.example/sv/artikel/a?ref=front",
        "canonical_url": "https://nyheter.example/sv/artikel/a",
        "title": "Envoy vows closer cooperation",
        "body": "First paragraph.\n\nSecond paragraph.",
        "language": "en",
        "published_at": "2025-11-19T08:00:00+09:00",
        "modified_at": None,
        "authors": ["Anna Berg"],
        "site_name": "Nyheter",
        "ai_reported": True,
        "images": [
            {"src": "https://nyheter.example/a.jpg", "alt": "A diplomat", "caption": "Kang in Washington.",
             "credit": None, "ai_generated": True, "disclosure": "Bild genererad av AI"},
            {"src": "https://nyheter.example/b.jpg", "alt": None, "caption": "The embassy.",
             "credit": "Foto: TT", "ai_generated": False, "disclosure": None},
        ],
        "social_summary": "People welcome the talks.",
        "related": [{"url": "https://nyheter.example/sv/artikel/b", "title": "B", "summary": None, "ai_reported": True}],
        "boilerplate": [{"kind": "cookie_banner", "text": "Vi använder cookies"}, {"kind": "ai_label", "text": "Rapporterad av AI"}],
        "fetched_at": "2025-11-20T10:00:00+00:00",
    }
    return base | changes


def rows(storage: Storage, query: str) -> list[tuple[Any, ...]]:
    """Rows of a query, as plain tuples (booleans are True/False on PostgreSQL, 1/0 on SQLite: equal in Python)."""
    with storage.transaction() as cursor:
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]


class StorageContract:
    """Tests for any backend; a subclass provides the ``url`` fixture (a fresh, empty database each test)."""

    @pytest.fixture
    def storage(self, url: str) -> Iterator[Storage]:
        storage = open_storage(url)
        yield storage
        storage.close()

    def test_open_creates_every_table_at_the_current_schema(self, storage: Storage) -> None:
        assert storage.schema_version() == SCHEMA_VERSION
        for table in TABLES:
            assert rows(storage, f"SELECT COUNT(*) FROM {table}") == [(0,)]

    def test_reopening_does_not_migrate_twice(self, storage: Storage, url: str) -> None:
        again = open_storage(url)
        again.close()
        assert rows(storage, "SELECT version FROM schema_version ORDER BY version") == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)]

    def test_an_old_schema_is_migrated_and_its_articles_get_a_first_version(self, url: str) -> None:
        storage = BACKENDS[url.partition(":")[0]].connect(url)
        try:
            storage.migrate(target=1)
            with storage.transaction() as cursor:  # an article as version 1 of the schema stored it
                cursor.execute(storage.sql(
                    "INSERT INTO articles (article_url, url, title, body, ai_reported, authors, content_hash, "
                    "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    ("https://x.example/a", "https://x.example/a", "T", "B", False, "[]", "h", "2025-01-01", "2025-01-01"))
                cursor.execute(storage.sql(
                    "INSERT INTO images (article_id, position, src, caption, ai_generated) "
                    "SELECT id, 0, 'https://x.example/i.jpg', 'Cap', ? FROM articles"), (True,))
            assert storage.schema_version() == 1
            storage.migrate()
            assert storage.schema_version() == SCHEMA_VERSION
            [version] = storage.versions("https://x.example/a")
            assert (version.version, version.title, version.body, version.captions) == (1, "T", "B", ["Cap"])
        finally:
            storage.close()

    def test_an_article_and_its_parts_land_in_their_tables(self, storage: Storage) -> None:
        assert storage.save([record()]).new == 1
        [(article_id, key, title, ai_reported, authors, digest)] = rows(
            storage, "SELECT id, article_url, title, ai_reported, authors, content_hash FROM articles")
        assert key == "https://nyheter.example/sv/artikel/a"
        assert (title, ai_reported, authors) == ("Envoy vows closer cooperation", 1, '["Anna Berg"]')
        assert digest == content_hash(record())
        assert rows(storage, "SELECT position, caption, ai_generated, disclosure FROM images ORDER BY position") == [
            (0, "Kang in Washington.", 1, "Bild genererad av AI"), (1, "The embassy.", 0, None)]
        assert rows(storage, "SELECT kind, text FROM boilerplate ORDER BY position") == [
            ("cookie_banner", "Vi använder cookies"), ("ai_label", "Rapporterad av AI")]
        assert rows(storage, "SELECT url, ai_reported FROM related_links") == [("https://nyheter.example/sv/artikel/b", 1)]
        assert {row[0] for row in rows(storage, "SELECT article_id FROM images")} == {article_id}

    def test_a_second_visit_updates_the_row_and_replaces_its_children(self, storage: Storage) -> None:
        storage.save([record()])
        second = record(url="https://nyheter.example/sv/artikel/a", title="Envoy vows even closer cooperation",
                        images=record()["images"][:1], fetched_at="2025-11-21T10:00:00+00:00")
        result = storage.save([second])
        assert (result.new, result.changed, result.unchanged) == (0, 1, 0)
        assert rows(storage, "SELECT COUNT(*) FROM articles") == [(1,)]
        [(title, first_seen, last_seen, digest)] = rows(
            storage, "SELECT title, first_seen, last_seen, content_hash FROM articles")
        assert title == "Envoy vows even closer cooperation"
        assert (first_seen, last_seen) == ("2025-11-20T10:00:00+00:00", "2025-11-21T10:00:00+00:00")
        assert digest == content_hash(second) != content_hash(record())
        assert rows(storage, "SELECT COUNT(*) FROM images") == [(1,)]
        assert rows(storage, "SELECT COUNT(*) FROM boilerplate") == [(2,)]

    def test_a_changed_article_keeps_its_old_version_and_an_unchanged_one_adds_none(self, storage: Storage) -> None:
        key = "https://nyheter.example/sv/artikel/a"
        assert storage.save([record()]).new == 1
        # Same text, other fields and a later visit: no new version.
        again = storage.save([record(social_summary="Other voices.", fetched_at="2025-11-21T10:00:00+00:00")])
        assert (again.new, again.changed, again.unchanged) == (0, 0, 1)
        assert [v.version for v in storage.versions(key)] == [1]
        # Only a caption changed: that is a new version, and the first one is still there as it was.
        images = [dict(record()["images"][0], caption="Kang in Seoul."), record()["images"][1]]
        changed = storage.save([record(images=images, fetched_at="2025-11-22T10:00:00+00:00")])
        assert changed.changed == 1
        first, second = storage.versions(key)
        assert (first.version, first.captions, first.fetched_at) == (
            1, ["Kang in Washington.", "The embassy."], "2025-11-20T10:00:00+00:00")
        assert (second.version, second.captions, second.fetched_at) == (
            2, ["Kang in Seoul.", "The embassy."], "2025-11-22T10:00:00+00:00")
        assert first.body == second.body and first.content_hash != second.content_hash
        assert rows(storage, "SELECT COUNT(*) FROM articles") == [(1,)]

    def test_saving_the_same_batch_twice_is_idempotent(self, storage: Storage) -> None:
        batch = [record(), record(canonical_url="https://nyheter.example/sv/artikel/c", title="C")]
        storage.save(batch)
        counts = [rows(storage, f"SELECT COUNT(*) FROM {table}") for table in TABLES]
        assert storage.save(batch).unchanged == 2
        assert [rows(storage, f"SELECT COUNT(*) FROM {table}") for table in TABLES] == counts

    def test_without_a_canonical_url_the_fetched_url_is_the_identity(self, storage: Storage) -> None:
        storage.save([record(canonical_url=None), record(canonical_url=None, url="https://nyheter.example/other")])
        assert rows(storage, "SELECT article_url FROM articles ORDER BY article_url") == [
            ("https://nyheter.example/other",), ("https://nyheter.example/sv/artikel/a?ref=front",)]

    def test_a_failing_record_rolls_back_the_whole_batch(self, storage: Storage) -> None:
        with pytest.raises(StorageError):
            storage.save([record(canonical_url="https://nyheter.example/ok"), record(title=None)])
        assert rows(storage, "SELECT COUNT(*) FROM articles") == [(0,)]
        assert rows(storage, "SELECT COUNT(*) FROM article_versions") == [(0,)]
        assert storage.save([record()]).new == 1  # the connection is usable after the rollback

    def test_summary_counts_what_is_stored(self, storage: Storage) -> None:
        storage.save([record(), record(canonical_url="https://nyheter.example/sv/artikel/c", title="C", images=[])])
        summary = storage.summary()
        assert (summary.articles, summary.images, summary.captions, summary.ai_images, summary.related_links) == (
            2, 2, 2, 1, 2)
        assert summary.boilerplate_by_kind == {"ai_label": 2, "cookie_banner": 2}
        assert summary.titles == ["C", "Envoy vows closer cooperation"]

    def test_fetch_state_is_stored_only_once_its_article_is(self, storage: Storage) -> None:
        page = record()["url"]
        assert storage.fetch_state(page) is None
        storage.record_fetch(page, '"v1"', "Wed, 19 Nov 2025 08:00:00 GMT", "hash1")
        state = storage.fetch_state(page)
        assert (state.etag, state.last_modified, state.body_hash, state.stored_at) == (
            '"v1"', "Wed, 19 Nov 2025 08:00:00 GMT", "hash1", None)
        storage.save([record()])  # the article read from that response
        assert storage.fetch_state(page).stored_at is not None
        # The same bytes again keep the mark; other bytes need their article stored again first.
        storage.record_fetch(page, '"v1"', None, "hash1")
        assert storage.fetch_state(page).stored_at is not None
        storage.record_fetch(page, '"v2"', None, "hash2")
        assert (storage.fetch_state(page).etag, storage.fetch_state(page).stored_at) == ('"v2"', None)
        storage.record_not_modified(page)
        assert storage.fetch_state(page).checked_at >= storage.fetch_state(page).fetched_at

    def test_runs_are_recorded_and_listed_newest_first(self, storage: Storage) -> None:
        first = storage.start_run("nyheter", "article", pid=11)
        storage.finish_run(first, "finished", {"pages": 5, "items": 4, "new_articles": 4, "errors": 1})
        second = storage.start_run("nyheter", "article", pid=12)
        other = storage.start_run("other", "article")
        assert [run.id for run in storage.runs(crawl="nyheter")] == [second, first]
        assert len(storage.runs(limit=2)) == 2
        done = storage.runs(crawl="nyheter")[1]
        assert (done.status, done.pages, done.items, done.new_articles, done.errors, done.pid) == (
            "finished", 5, 4, 4, 1, 11)
        assert done.finished_at is not None
        # A run left "running" by a dead process is marked so once its crawl's lock is held again.
        assert storage.abandon_runs("nyheter") == 1
        assert [run.status for run in storage.runs(crawl="nyheter")] == ["died", "finished"]
        assert storage.runs(crawl="other")[0].id == other


class TestSQLiteStorage(StorageContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'news.sqlite3'}"

    def test_open_creates_the_directory_in_wal_mode(self, storage: Storage, tmp_path: Path) -> None:
        path = tmp_path / "nested" / "dir" / "news.sqlite3"
        assert path.exists()
        with closing(sqlite3.connect(path)) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchall() == [("wal",)]


def test_placeholders_follow_the_backend_paramstyle() -> None:
    class Pyformat(Storage):
        placeholder = "%s"

    assert Pyformat(None, "x://").sql("SELECT id FROM articles WHERE article_url = ? AND url = ?") == (
        "SELECT id FROM articles WHERE article_url = %s AND url = %s")
    assert SQLiteStorage(None, "sqlite://").sql("a = ?") == "a = ?"


@pytest.mark.parametrize("url", ["mysql://localhost/news", "sqlite://relative.db", "sqlite:///"])
def test_unusable_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        open_storage(url)


def test_log_lines_never_show_the_database_password() -> None:
    assert redact("postgresql://news:s3cret@127.0.0.1:5432/db") == "postgresql://news:***@127.0.0.1:5432/db"
    assert redact("sqlite:///data/x.sqlite3") == "sqlite:///data/x.sqlite3"
