"""Incremental crawls, as real `scrapy crawl` runs against a test site that answers conditional requests.

Each test runs on SQLite and, when NEWSCRAWL_TEST_POSTGRES_URL is set (always in CI), on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from newscrawl.storage import open_storage
from tests.support.conditional_server import serve_conditional
from tests.support.postgres import SERVER_URL, SKIP_REASON, fresh_schema

from .conftest import FIXTURE_SITE, ROOT

MANIFEST = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
DEPTH_1 = sorted(set(MANIFEST["reachable_from_entry_by_depth"]["1"]) - {MANIFEST["entry"]})
TABLES = ("articles", "article_versions", "images", "related_links", "boilerplate", "fetch_state")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not SERVER_URL, reason=SKIP_REASON))])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'news.sqlite3'}"
    else:
        with fresh_schema() as url:
            yield url


@pytest.fixture
def site(tmp_path: Path):
    """A copy of the test site (so a test may change pages) behind a server that honours conditional requests."""
    root = tmp_path / "www"
    shutil.copytree(FIXTURE_SITE / "www", root)
    with serve_conditional(root) as server:
        yield server


def crawl(tmp_path: Path, database_url: str, *args: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One `scrapy crawl article` run; returns its items and the newscrawl/* counters of its stats dump."""
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable, "-m", "scrapy", "crawl", "article", *args, "-O", str(out),
        "-s", f"NEWSCRAWL_DATABASE_URL={database_url}", "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text("utf-8").splitlines() if line.strip()]
    stats = {name: int(value) for name, value in re.findall(r"'(newscrawl/[a-z_/]+)': (\d+)", done.stderr)}
    return items, stats


def counts(database_url: str) -> dict[str, int]:
    storage = open_storage(database_url)
    try:
        with storage.transaction() as cursor:
            result = {}
            for table in TABLES:
                cursor.execute(f"SELECT COUNT(*) FROM {table}")
                result[table] = cursor.fetchone()[0]
            return result
    finally:
        storage.close()


def conditional_paths(site) -> set[str]:
    return {path for method, path, headers in site.requests if "If-None-Match" in headers or "If-Modified-Since" in headers}


def test_a_second_run_asks_conditionally_stores_nothing_new_and_a_changed_page_gets_a_version(
        site, tmp_path: Path, database_url: str) -> None:
    entry = site.url + MANIFEST["entry"]
    args = ("-a", f"url={entry}", "-a", "depth=1")

    items, stats = crawl(tmp_path, database_url, *args)
    assert sorted(urlsplit(item["url"]).path for item in items) == sorted([MANIFEST["entry"], *DEPTH_1])
    assert stats["newscrawl/articles/new"] == len(items)
    assert "newscrawl/http/not_modified" not in stats and not conditional_paths(site)
    after_first = counts(database_url)
    assert after_first["article_versions"] == after_first["articles"] == len(items)

    # Nothing changed: every followed article is asked with its validators and answers 304; the entry page
    # (a start page, always fetched in full) is read again and found unchanged. No row is added anywhere.
    site.clear_requests()
    again, stats = crawl(tmp_path, database_url, *args)
    assert conditional_paths(site) == set(DEPTH_1)
    assert stats["newscrawl/http/not_modified"] == len(DEPTH_1)
    assert stats["newscrawl/articles/unchanged"] == 1 and [item["url"] for item in again] == [entry]
    assert stats.get("newscrawl/articles/new", 0) == stats.get("newscrawl/articles/changed", 0) == 0
    assert counts(database_url) == after_first

    # One article's body changes on the site: exactly that article gets a second version; the first is kept.
    changed_path = DEPTH_1[0]
    page = site.root / (changed_path.lstrip("/") + ".html")
    html = page.read_text("utf-8")
    [before] = [item for item in items if urlsplit(item["url"]).path == changed_path]
    opening = "<p>" + before["body"].split("\n\n")[0][:40]
    assert opening in html, "the test needs the body's first words verbatim in a <p> of the page"
    page.write_text(html.replace(opening, "<p>UPPDATERAD. " + opening[3:], 1), "utf-8")

    site.clear_requests()
    third, stats = crawl(tmp_path, database_url, *args)
    assert conditional_paths(site) == set(DEPTH_1)
    assert stats["newscrawl/http/not_modified"] == len(DEPTH_1) - 1
    assert stats["newscrawl/articles/changed"] == 1 and stats["newscrawl/articles/unchanged"] == 1
    assert {urlsplit(item["url"]).path for item in third} == {MANIFEST["entry"], changed_path}
    storage = open_storage(database_url)
    try:
        old, new = storage.versions(before["canonical_url"] or before["url"])
        runs = storage.runs(crawl="article")
    finally:
        storage.close()
    assert (old.version, new.version) == (1, 2)
    assert old.body == before["body"] and new.body.startswith("UPPDATERAD. ")
    assert counts(database_url) == after_first | {"article_versions": after_first["article_versions"] + 1}

    # Each run is recorded with what it did, newest first.
    assert [(run.status, run.new_articles, run.changed_articles, run.unchanged_articles, run.not_modified)
            for run in runs] == [
        ("finished", 0, 1, 1, len(DEPTH_1) - 1),
        ("finished", 0, 0, 1, len(DEPTH_1)),
        ("finished", len(items), 0, 0, 0),
    ]


def test_revisit_after_skips_pages_asked_recently(site, tmp_path: Path, database_url: str) -> None:
    entry = site.url + MANIFEST["entry"]
    args = ("-a", f"url={entry}", "-a", "depth=1")
    crawl(tmp_path, database_url, *args)
    site.clear_requests()
    _, stats = crawl(tmp_path, database_url, *args, "-s", "NEWSCRAWL_REVISIT_AFTER=3600")
    assert stats["newscrawl/http/revisit_skipped"] == len(DEPTH_1)
    assert set(site.paths()) & set(DEPTH_1) == set()
    assert MANIFEST["entry"] in site.paths()


def test_a_page_whose_article_was_never_stored_is_fetched_in_full(site, tmp_path: Path, database_url: str) -> None:
    # As after a run killed between reading pages and writing their batch: validators known, articles not stored.
    entry = site.url + MANIFEST["entry"]
    crawl(tmp_path, database_url, "-a", f"url={entry}", "-a", "depth=1", "-s", "ITEM_PIPELINES={}")
    assert counts(database_url)["articles"] == 0 and counts(database_url)["fetch_state"] == 1 + len(DEPTH_1)
    site.clear_requests()
    items, stats = crawl(tmp_path, database_url, "-a", f"url={entry}", "-a", "depth=1")
    assert not conditional_paths(site)
    assert stats["newscrawl/articles/new"] == len(items) == 1 + len(DEPTH_1)


def slow_crawl(tmp_path: Path, database_url: str, entry: str) -> subprocess.Popen:
    """A crawl that takes seconds (one request at a time, half a second apart), writing batches of 3 items."""
    command = [
        sys.executable, "-m", "scrapy", "crawl", "article", "-a", f"url={entry}", "-a", "depth=1",
        "-s", f"NEWSCRAWL_DATABASE_URL={database_url}", "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "-s", "DOWNLOAD_DELAY=0.5",
        "-s", "NEWSCRAWL_STORAGE_BATCH_SIZE=3",
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_pages(database_url: str, pages: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if counts(database_url)["fetch_state"] >= pages:
                return
        except Exception:  # the crawl has not created the schema yet
            pass
        time.sleep(0.05)


def test_a_killed_crawl_loses_and_doubles_nothing(site, tmp_path: Path, database_url: str) -> None:
    entry = site.url + MANIFEST["entry"]
    crawl_process = slow_crawl(tmp_path, database_url, entry)
    try:
        # Kill it outright once it has read a few pages (and so has written a batch and holds a partial one).
        wait_for_pages(database_url, 5)
        crawl_process.send_signal(signal.SIGKILL)
        crawl_process.wait(30)
    finally:
        crawl_process.kill()
    killed = counts(database_url)
    assert 0 < killed["articles"] < 1 + len(DEPTH_1), killed  # it really died mid-crawl

    items, stats = crawl(tmp_path, database_url, "-a", f"url={entry}", "-a", "depth=1")
    after = counts(database_url)
    assert after["articles"] == after["article_versions"] == 1 + len(DEPTH_1)
    # Stored before the kill: asked conditionally (304) or, for the start page, found unchanged; the rest: new.
    assert stats.get("newscrawl/articles/new", 0) == 1 + len(DEPTH_1) - killed["articles"]
    assert stats.get("newscrawl/http/not_modified", 0) + stats.get("newscrawl/articles/unchanged", 0) == killed["articles"]


def test_a_crawl_stopped_with_sigterm_stores_what_it_read_and_the_next_run_completes_it(
        site, tmp_path: Path, database_url: str) -> None:
    entry = site.url + MANIFEST["entry"]
    crawl_process = slow_crawl(tmp_path, database_url, entry)
    try:
        wait_for_pages(database_url, 4)
        crawl_process.send_signal(signal.SIGTERM)  # Scrapy closes the spider: the pipeline writes its partial batch
        crawl_process.wait(60)
    finally:
        crawl_process.kill()
    stopped = counts(database_url)
    storage = open_storage(database_url)
    try:
        [run] = storage.runs()
        stored_pages = sum(1 for url in [entry, *(site.url + path for path in DEPTH_1)]
                           if (state := storage.fetch_state(url)) is not None and state.stored_at is not None)
    finally:
        storage.close()
    assert run.status == "shutdown" and run.items == stopped["articles"]
    # Requests already handed to the downloader finish during the shutdown; whatever was read is stored.
    assert 0 < stopped["articles"] <= 1 + len(DEPTH_1)
    assert stored_pages == stopped["articles"]

    items, stats = crawl(tmp_path, database_url, "-a", f"url={entry}", "-a", "depth=1")
    after = counts(database_url)
    assert after["articles"] == after["article_versions"] == 1 + len(DEPTH_1)
    assert stats.get("newscrawl/articles/new", 0) == 1 + len(DEPTH_1) - stopped["articles"]


def test_a_feed_is_read_in_full_every_run_and_its_articles_conditionally(site, tmp_path: Path, database_url: str) -> None:
    feed = site.url + MANIFEST["feeds"]["rss"]
    args = ("-a", f"feed={feed}", "-a", "depth=0")
    items, stats = crawl(tmp_path, database_url, *args)
    assert stats["newscrawl/articles/new"] == len(items) > 0
    site.clear_requests()
    again, stats = crawl(tmp_path, database_url, *args)
    fetched_in_full = {path for method, path, headers in site.requests
                       if method == "GET" and "If-None-Match" not in headers and "If-Modified-Since" not in headers}
    assert MANIFEST["feeds"]["rss"] in fetched_in_full
    assert stats["newscrawl/http/not_modified"] == len(items) and again == []
    assert stats.get("newscrawl/articles/new", 0) == 0


@pytest.mark.parametrize("status", ["running", "died", "shutdown"])
def test_after_a_run_that_did_not_finish_every_page_is_fetched_in_full(site, tmp_path: Path, status: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'news.sqlite3'}"
    entry = site.url + MANIFEST["entry"]
    args = ("-a", f"url={entry}", "-a", "depth=1")
    items, _ = crawl(tmp_path, database_url, *args)
    # A later run that ended without finishing its queue: killed (still "running", or marked "died") or stopped.
    storage = open_storage(database_url)
    try:
        run = storage.start_run("article", "article", pid=999999)
        if status != "running":
            storage.finish_run(run, status, {})
    finally:
        storage.close()

    site.clear_requests()
    again, stats = crawl(tmp_path, database_url, *args)
    assert stats["newscrawl/incremental/after_interrupted_run"] == 1
    assert not conditional_paths(site) and "newscrawl/http/not_modified" not in stats
    assert len(again) == len(items) and stats["newscrawl/articles/unchanged"] == len(items)

    # That run finished: the next asks conditionally again.
    site.clear_requests()
    _, stats = crawl(tmp_path, database_url, *args)
    assert conditional_paths(site) == set(DEPTH_1) and "newscrawl/incremental/after_interrupted_run" not in stats
