"""Real `scrapy crawl article` runs over the test site, judged from the server's own request log and the stored rows."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.site_server import SiteServer, serve_directory

from .conftest import FIXTURE_SITE, ROOT

MANIFEST = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
ARTICLES = set(MANIFEST["articles"])
ALIASES = set(MANIFEST["duplicates"])
MAY_FETCH = set(MANIFEST["crawl"]["may_fetch"])
SITEMAP_FILES = {MANIFEST["sitemaps"]["index"], MANIFEST["sitemaps"]["articles"], MANIFEST["sitemaps"]["news"]}
STATS_DUMP = re.compile(r"Dumping Scrapy stats:\n(\{.*?\})\n", re.DOTALL)


@dataclass
class Crawl:
    items: list[dict[str, Any]]
    log: str
    stats: dict[str, Any]
    fetched: list[str]
    """GET paths (with query) in the order the server received them."""
    stored: list[str]
    """article_url of every row in the articles table."""

    def fetch_counts(self) -> Counter[str]:
        return Counter(self.fetched)

    def item_paths(self) -> list[str]:
        return [urlsplit(item["canonical_url"] or item["url"]).path for item in self.items]


def crawl(site: SiteServer, tmp_path: Path, *args: str) -> Crawl:
    """Run the spider in a subprocess against the site; only this run's requests are in ``fetched``."""
    site.clear_requests()
    out, database = tmp_path / "out.jsonl", tmp_path / "news.sqlite3"
    command = [
        sys.executable, "-m", "scrapy", "crawl", "article", *args, "-O", str(out),
        "-s", f"NEWSCRAWL_DATABASE_URL=sqlite:///{database}", "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
        # Only a local server answers: no politeness delays needed.
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text("utf-8").splitlines() if line.strip()]
    match = STATS_DUMP.search(done.stderr)
    assert match, "no stats dump in the log"
    # The dump is a pprint of plain values, apart from datetimes that literal_eval cannot read and no test needs.
    stats = ast.literal_eval(re.sub(r"datetime\.datetime\([^)]*\)", "None", match.group(1)))
    with closing(sqlite3.connect(database)) as connection:
        stored = [row[0] for row in connection.execute("SELECT article_url FROM articles")]
    return Crawl(items, done.stderr, stats, site.paths(), stored)


@pytest.fixture(scope="module")
def site():
    with serve_directory(FIXTURE_SITE / "www") as server:
        yield server


def assert_articles_stored_once_under_canonical(result: Crawl, site: SiteServer, expected: set[str]) -> None:
    assert sorted(result.item_paths()) == sorted(expected)
    assert all(item["canonical_url"] == site.url + urlsplit(item["canonical_url"]).path for item in result.items)
    assert sorted(result.stored) == sorted(site.url + path for path in expected)


def test_crawl_from_the_entry_reaches_every_article_once_and_nothing_it_should_not(site, tmp_path: Path) -> None:
    result = crawl(site, tmp_path, "-a", f"url={site.url}{MANIFEST['entry']}", "-a", f"depth={MANIFEST['max_depth']}")
    counts = result.fetch_counts()

    # Each article exactly once, whatever tracking parameters, fragments or cycles led to it.
    assert {path: counts[path] for path in ARTICLES} == dict.fromkeys(ARTICLES, 1)
    # Nothing else but robots.txt and what the manifest allows (aliases, the calendar's first page, the broken link),
    # each of those at most once; no query string survived canonicalisation.
    assert set(counts) - ARTICLES - {"/robots.txt"} <= MAY_FETCH
    assert all(counts[path] == 1 for path in MAY_FETCH & set(counts))
    assert not any("?" in path or "#" in path for path in counts)
    # robots.txt, off-site, traps.
    assert not any(path.startswith(tuple(MANIFEST["crawl"]["must_not_fetch_prefixes"])) for path in counts)
    assert not any(path.startswith("/sv/privat/") for path in counts)
    assert result.stats["robotstxt/forbidden"] == 1 and result.stats["newscrawl/links/refused/robots"] == 1
    assert result.stats["offsite/filtered"] == 1 and result.stats["newscrawl/links/refused/offsite"] == 1
    assert "other-site.example" not in "".join(counts) and "DNSLookupError" not in result.log
    # The calendar: its first month is linked from an article; no month after it is requested.
    assert not any(path.startswith("/sv/kalender/") and path != MANIFEST["traps"]["calendar"]["entry"] for path in counts)
    # Session-id and repeating-segment aliases are refused as traps, each kind logged once.
    assert result.stats["newscrawl/links/refused/trap/session_id"] == 1
    assert result.stats["newscrawl/links/refused/trap/repeating_segments"] == 1
    assert result.log.count("Refused a link into a crawler trap (session_id)") == 1
    assert result.log.count("Refused a link into a crawler trap (repeating_segments)") == 1
    # The broken link was requested once, answered 404, and the crawl went on.
    [broken] = [b["href"] for b in MANIFEST["traps"]["broken"]]
    assert counts[broken] == 1 and result.stats["httperror/response_ignored_status_count/404"] == 1

    # Every article stored once under its canonical URL; the AMP alias was fetched but not stored again.
    assert_articles_stored_once_under_canonical(result, site, ARTICLES)
    assert counts[MANIFEST["traps"]["amphtml"]["href"]] == 1
    assert result.stats["newscrawl/duplicates/canonical"] == 1
    assert re.search(r"Crawl finished \(finished\): \d+ pages fetched, 48 articles yielded, 48 stored, "
                     r"1 duplicate articles skipped, \d+ duplicate links not refetched; links refused: "
                     r"offsite 1, robots 1, trap 2, depth \d+, cap 0", result.log)


def test_depth_bounds_the_crawl_and_counts_the_links_left(site, tmp_path: Path) -> None:
    result = crawl(site, tmp_path, "-a", f"url={site.url}{MANIFEST['entry']}", "-a", "depth=1")
    by_depth = MANIFEST["reachable_from_entry_by_depth"]
    expected = set(by_depth["0"]) | set(by_depth["1"])
    assert set(result.fetched) - {"/robots.txt"} == expected
    assert all(count == 1 for count in result.fetch_counts().values())
    assert_articles_stored_once_under_canonical(result, site, expected)
    assert result.stats["newscrawl/links/refused/depth"] >= len(by_depth["2"])


@pytest.mark.parametrize("given", [MANIFEST["sitemaps"]["index"], "/"], ids=["sitemap-index", "site-root"])
def test_crawl_from_the_sitemaps_fetches_each_listed_article_once_at_depth_zero(site, tmp_path: Path, given: str) -> None:
    result = crawl(site, tmp_path, "-a", f"sitemap={site.url}{given}", "-a", "depth=0")
    counts = result.fetch_counts()
    # The index, its two sitemaps (the news sitemap repeats 20 of the articles) and each article once; the site
    # root is read through the Sitemap: line of robots.txt.
    assert set(counts) - {"/robots.txt"} == ARTICLES | SITEMAP_FILES
    assert all(counts[path] == 1 for path in ARTICLES | SITEMAP_FILES)
    assert_articles_stored_once_under_canonical(result, site, ARTICLES)
    assert result.stats["newscrawl/discovery/sitemap/urls"] == len(ARTICLES) + len(MANIFEST["newest_20"])


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_crawl_from_a_feed_fetches_its_entries_once(site, tmp_path: Path, kind: str) -> None:
    feed = MANIFEST["feeds"][kind]
    result = crawl(site, tmp_path, "-a", f"feed={site.url}{feed}", "-a", "depth=0")
    counts = result.fetch_counts()
    newest = set(MANIFEST["newest_20"])
    assert set(counts) - {"/robots.txt"} == newest | {feed}
    assert all(counts[path] == 1 for path in newest)
    assert_articles_stored_once_under_canonical(result, site, newest)


def test_discovered_articles_follow_related_links_up_to_depth(site, tmp_path: Path) -> None:
    result = crawl(site, tmp_path, "-a", f"feed={site.url}{MANIFEST['feeds']['rss']}", "-a", "depth=1")
    newest = set(MANIFEST["newest_20"])
    one_hop = {url for path in newest for url in MANIFEST["related_graph"][path]}
    one_hop_articles = {urlsplit(url).path for url in one_hop if urlsplit(url).path in ARTICLES}
    counts = result.fetch_counts()
    assert newest | one_hop_articles <= set(counts)
    assert {path: counts[path] for path in ARTICLES & set(counts)} == dict.fromkeys(ARTICLES & set(counts), 1)
    assert len(result.items) == len(ARTICLES & set(counts))


def test_per_domain_cap_and_max_pages_bound_the_crawl(site, tmp_path: Path) -> None:
    capped = crawl(site, tmp_path / "cap", "-a", f"sitemap={site.url}{MANIFEST['sitemaps']['articles']}",
                   "-a", "depth=0", "-s", "NEWSCRAWL_MAX_PAGES_PER_DOMAIN=10")
    pages = [path for path in capped.fetched if path != "/robots.txt"]
    assert len(pages) == 10
    assert capped.stats["newscrawl/links/refused/cap"] == len(ARTICLES) + 1 - 10
    assert capped.log.count("Reached NEWSCRAWL_MAX_PAGES_PER_DOMAIN=10 for 127.0.0.1") == 1

    limited = crawl(site, tmp_path / "max", "-a", f"sitemap={site.url}{MANIFEST['sitemaps']['articles']}",
                    "-a", "depth=0", "-a", "max_pages=5", "-s", "CONCURRENT_REQUESTS=1")
    assert limited.stats["finish_reason"] == "closespider_pagecount"
    # robots.txt, the sitemap and three articles.  Requests already handed to the downloader still finish (up to
    # CONCURRENT_REQUESTS of them), so with one at a time at most one more goes out.
    assert 5 <= len(limited.fetched) <= 6
