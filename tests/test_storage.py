"""The SQLite storage layer: schema and migrations, one row per canonical URL, child rows replaced on re-visit."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from newscrawl.storage import SCHEMA_VERSION, SQLiteStorage, Storage, StorageError, content_hash, open_storage


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


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(query).fetchall()


@pytest.fixture
def db(tmp_path: Path):
    path = tmp_path / "nested" / "dir" / "news.sqlite3"
    storage = open_storage(f"sqlite:///{path}")
    yield storage, path
    storage.close()


def test_open_creates_the_directory_in_wal_mode_at_the_current_schema(db) -> None:
    storage, path = db
    assert path.exists()
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert storage.schema_version() == SCHEMA_VERSION
    tables = {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"articles", "images", "boilerplate", "related_links", "schema_version"} <= tables


def test_reopening_does_not_migrate_twice(db) -> None:
    storage, path = db
    again = open_storage(f"sqlite:///{path}")
    again.close()
    assert rows(path, "SELECT COUNT(*) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_an_article_and_its_parts_land_in_their_tables(db) -> None:
    storage, path = db
    assert storage.save([record()]) == 1
    [(article_id, key, title, ai_reported, authors, digest)] = rows(
        path, "SELECT id, article_url, title, ai_reported, authors, content_hash FROM articles")
    assert key == "https://nyheter.example/sv/artikel/a"
    assert (title, ai_reported, authors) == ("Envoy vows closer cooperation", 1, '["Anna Berg"]')
    assert digest == content_hash(record())
    assert rows(path, "SELECT position, caption, ai_generated, disclosure FROM images ORDER BY position") == [
        (0, "Kang in Washington.", 1, "Bild genererad av AI"), (1, "The embassy.", 0, None)]
    assert rows(path, "SELECT kind, text FROM boilerplate ORDER BY position") == [
        ("cookie_banner", "Vi använder cookies"), ("ai_label", "Rapporterad av AI")]
    assert rows(path, "SELECT url, ai_reported FROM related_links") == [("https://nyheter.example/sv/artikel/b", 1)]
    assert {row[0] for row in rows(path, "SELECT article_id FROM images")} == {article_id}


def test_a_second_visit_updates_the_row_and_replaces_its_children(db) -> None:
    storage, path = db
    storage.save([record()])
    second = record(url="https://nyheter.example/sv/artikel/a", title="Envoy vows even closer cooperation",
                    images=record()["images"][:1], fetched_at="2025-11-21T10:00:00+00:00")
    storage.save([second])
    assert rows(path, "SELECT COUNT(*) FROM articles") == [(1,)]
    [(title, first_seen, last_seen, digest)] = rows(path, "SELECT title, first_seen, last_seen, content_hash FROM articles")
    assert title == "Envoy vows even closer cooperation"
    assert (first_seen, last_seen) == ("2025-11-20T10:00:00+00:00", "2025-11-21T10:00:00+00:00")
    assert digest == content_hash(second) != content_hash(record())
    assert rows(path, "SELECT COUNT(*) FROM images") == [(1,)]
    assert rows(path, "SELECT COUNT(*) FROM boilerplate") == [(2,)]


def test_without_a_canonical_url_the_fetched_url_is_the_identity(db) -> None:
    storage, path = db
    storage.save([record(canonical_url=None), record(canonical_url=None, url="https://nyheter.example/other")])
    assert rows(path, "SELECT article_url FROM articles ORDER BY article_url") == [
        ("https://nyheter.example/other",), ("https://nyheter.example/sv/artikel/a?ref=front",)]


def test_a_failing_record_rolls_back_the_whole_batch(db) -> None:
    storage, path = db
    with pytest.raises(StorageError):
        storage.save([record(canonical_url="https://nyheter.example/ok"), record(title=None)])
    assert rows(path, "SELECT COUNT(*) FROM articles") == [(0,)]


def test_summary_counts_what_is_stored(db) -> None:
    storage, _ = db
    storage.save([record(), record(canonical_url="https://nyheter.example/sv/artikel/c", title="C", images=[])])
    summary = storage.summary()
    assert (summary.articles, summary.images, summary.captions, summary.ai_images, summary.related_links) == (2, 2, 2, 1, 2)
    assert summary.boilerplate_by_kind == {"ai_label": 2, "cookie_banner": 2}
    assert summary.titles == ["C", "Envoy vows closer cooperation"]


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
