"""Real `scrapy crawl article` runs: against the test site on 127.0.0.1, from a file:// page, and replaying a fixture."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from newscrawl.saved_pages import SavedPage
from tests.support.site_server import serve_directory

from .conftest import FIXTURE_PAGES, FIXTURE_SITE, ROOT

MANIFEST = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
FIELDS = {"url", "canonical_url", "title", "body", "language", "published_at", "ai_reported", "images",
          "social_summary", "related", "boilerplate", "fetched_at"}


def crawl(tmp_path: Path, *args: str, database: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """Run the spider in a subprocess from the project root; returns the JSONL items and the log."""
    out = tmp_path / "out.jsonl"
    database = database or tmp_path / "news.sqlite3"
    command = [
        sys.executable, "-m", "scrapy", "crawl", "article", *args, "-O", str(out),
        "-s", f"NEWSCRAWL_DATABASE_URL=sqlite:///{database}", "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
        # Only a local server answers: no politeness delays needed.
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text("utf-8").splitlines() if line.strip()]
    return items, done.stderr


def table_counts(database: Path) -> dict[str, int]:
    with closing(sqlite3.connect(database)) as connection:
        return {table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("articles", "images", "related_links", "boilerplate")}


@pytest.fixture(scope="module")
def site():
    with serve_directory(FIXTURE_SITE / "www") as server:
        yield server


def test_crawl_of_the_site_from_the_entry_page(site, tmp_path: Path) -> None:
    entry = site.url + MANIFEST["entry"]
    items, log = crawl(tmp_path, "-a", f"url={entry}", "-a", "depth=1")
    database = tmp_path / "news.sqlite3"

    expected = set(MANIFEST["reachable_from_entry_by_depth"]["0"]) | set(MANIFEST["reachable_from_entry_by_depth"]["1"])
    paths = [urlsplit(item["canonical_url"] or item["url"]).path for item in items]
    assert sorted(paths) == sorted(expected)
    assert all(FIELDS <= item.keys() and item["title"] and item["body"] for item in items)
    [first] = [item for item in items if item["url"] == entry]
    assert first["title"] == MANIFEST["pages"][MANIFEST["entry"]]["title"]

    counts = table_counts(database)
    assert counts == {
        "articles": len(items),
        "images": sum(len(item["images"]) for item in items),
        "related_links": sum(len(item["related"]) for item in items),
        "boilerplate": sum(len(item["boilerplate"]) for item in items),
    }
    assert counts["images"] and counts["related_links"] and counts["boilerplate"]
    fetched = site.paths()
    assert "/robots.txt" in fetched
    assert not any(path.startswith(tuple(MANIFEST["robots_disallow"])) for path in fetched)

    # The same crawl again updates the rows it wrote instead of adding new ones.
    again, _ = crawl(tmp_path, "-a", f"url={entry}", "-a", "depth=1")
    assert len(again) == len(items)
    assert table_counts(database) == counts


def test_crawl_of_a_file_page_at_depth_zero(tmp_path: Path) -> None:
    page = SavedPage.from_folder(FIXTURE_PAGES / "seed-semantic-sv")
    file_url = (page.folder / "page.html").resolve().as_uri()
    items, _ = crawl(tmp_path, "-a", f"url={file_url}", "-a", "depth=0")
    [item] = items
    assert item["url"] == file_url
    assert item["title"] == page.expected()["title"]
    assert table_counts(tmp_path / "news.sqlite3")["articles"] == 1


def test_replayed_fixture_runs_under_its_real_url(tmp_path: Path) -> None:
    page = SavedPage.from_folder(FIXTURE_PAGES / "de-classsoup")
    items, log = crawl(tmp_path, "-a", f"url={page.url}", "-a", "depth=1", "-s", f"NEWSCRAWL_REPLAY_DIR={FIXTURE_PAGES}")
    [item] = items
    assert item["url"] == page.url
    assert item["title"] == page.expected()["title"]
    # robots.txt and the related articles, which are not saved, were answered from the replay, not the network.
    assert "'robotstxt/response_status_count/404': 1" in log
    assert "'newscrawl/replay/hit': 1" in log
    assert f"'newscrawl/replay/not_saved': {1 + len(item['related'])}" in log
    assert "DNSLookupError" not in log and "ConnectionRefused" not in log
