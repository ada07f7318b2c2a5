"""Real crawls of the hostile site on 127.0.0.1: no crash, nothing forbidden requested, good articles stored."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.hostile_server import HostileServer, serve_hostile

from .conftest import ROOT

#: Only the hostile site answers: no politeness waits, short timeouts, quick backoff; the hanging page outlasts 2 s.
FAST = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "DOWNLOAD_TIMEOUT": "2",
    "NEWSCRAWL_RETRY_BACKOFF_BASE": "0.1",
    "NEWSCRAWL_RETRY_MAX_DELAY": "30",
}
GOOD = {"/good/1", "/good/2", "/good/3", "/flaky/retry-after", "/bad-jsonld", "/null-bytes", "/script-title",
        "/charset-conflict"}
NEVER_STORED = {"/truncated", "/binary/png", "/binary/random", "/empty", "/no-title", "/bomb", "/hang", "/reset",
                "/status/500", "/status/503", "/status/429-long"}
GIVEN_UP = ["/status/500", "/status/503", "/status/429-long", "/reset", "/truncated", "/hang"]
FORBIDDEN_HOSTS = ("10.0.0.1", "169.254.169.254", "2130706433", "[::1]", "[::ffff:127.0.0.1]", "file:", "ftp:", "data:")


@pytest.fixture(scope="module")
def site():
    with serve_hostile() as server:
        yield server


def run(tmp_path: Path, command: list[str], settings: dict[str, str]) -> tuple[int, str]:
    options = [arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")]
    # Scrapy's CookiesMiddleware asks tldextract, which would fetch the Public Suffix List from the internet on first
    # use; an empty URL list makes it use the snapshot it ships with.
    env = {**os.environ, "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    done = subprocess.run([sys.executable, "-m", "scrapy", *command, *options], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def stats_of(log: str) -> dict[str, int]:
    dump = log.split("Dumping Scrapy stats:", 1)[1]
    return {key: int(value) for key, value in re.findall(r"'([^']+)': (\d+)[,}]", dump)}


def crawl_article(site: HostileServer, tmp_path: Path, path: str, depth: int, **extra: str) -> tuple[int, str, Path]:
    database = tmp_path / "news.sqlite3"
    settings = {**FAST, "NEWSCRAWL_DATABASE_URL": f"sqlite:///{database}", "NEWSCRAWL_SPOOL_DIR": str(tmp_path / "spool"),
                **extra}
    code, log = run(tmp_path, ["crawl", "article", "-a", f"url={site.url(path)}", "-a", f"depth={depth}"], settings)
    return code, log, database


def stored(database: Path) -> dict[str, tuple[str, str]]:
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT url, title, body FROM articles").fetchall()
    return {urlsplit(url).path: (title, body) for url, title, body in rows}


def test_article_crawl_of_the_hostile_site(site: HostileServer, tmp_path: Path) -> None:
    code, log, database = crawl_article(site, tmp_path, "/good/1", depth=1, NEWSCRAWL_HEALTH_MAX_ERROR_RATIO="0.25")
    stats = stats_of(log)

    # Ran to the end, said so, and the hostile site's failures (a third of all downloads) failed it: exit status 3.
    assert "Traceback" not in log, log[-4000:]
    assert "Health report: FAILED: error ratio" in log and "finish reason: finished" in log
    assert code == 3, log[-3000:]

    articles = stored(database)
    assert GOOD <= articles.keys(), sorted(articles)
    assert not NEVER_STORED & articles.keys()
    for title, body in articles.values():
        for bad in ("<", "\x00", "alert(", "javascript:"):
            assert bad not in title and bad not in body

    # Every request that reached a server reached this one, under its own name.
    assert {headers.get("Host") for _, _, headers in site.requests} == {f"127.0.0.1:{site.port}"}
    for line in log.splitlines():
        if any(host in line for host in FORBIDDEN_HOSTS) and "Enabled" not in line:
            assert "[newscrawl.downloadermiddlewares.ssrf]" in line or "[scrapy.downloadermiddlewares.offsite]" in line, line
    # The same host on another port passes the offsite filter: the SSRF guard stops it (and its robots.txt).
    assert stats["newscrawl/ssrf/refused/loopback"] >= 1
    assert f"127.0.0.1:{site.closed_port}" in log
    assert stats["offsite/filtered"] >= 1

    # Faults: retried, Retry-After honoured, each failure given up in exactly one ERROR line and no traceback.
    assert stats["newscrawl/retry/retry_after_honoured"] >= 1
    assert stats["newscrawl/retry/gave_up/retry_after_too_long"] == 1
    for path in GIVEN_UP:
        lines = [line for line in log.splitlines() if " ERROR: " in line and site.url(path) in line]
        assert len(lines) == 1 and "Gave up retrying" in lines[0], (path, lines)
    assert "Error downloading" not in log
    assert site.hits("/hang") == 3 and site.hits("/status/500") == 3  # RETRY_TIMES = 2

    # Redirects: the chain stops at REDIRECT_MAX_TIMES (5) hops, the loop at the duplicate filter.
    chain_steps = [int(path.rsplit("/", 1)[1]) for _, path, _ in site.requests if path.startswith("/redirect/chain/")]
    assert max(chain_steps) == 6
    assert site.hits("/redirect/loop-a") == 1 and site.hits("/redirect/loop-b") == 1

    # Size, bombs and content.
    assert "exceeded DOWNLOAD_MAXSIZE (16777216 B) during decompression" in log
    assert stats["newscrawl/content/refused/binary_magic"] == 1
    assert stats["newscrawl/content/refused/binary_control_bytes"] == 1
    assert stats["newscrawl/pages/not_article"] >= 2  # at least the empty page and the one without a title
    # The 50,000-level page was downloaded and read to a verdict (stored or counted as not an article).
    assert site.hits("/deep") == 1
    assert "/deep" in articles or re.search(r"Not an article \([^)]*\): \S+/deep", log)


def test_follow_everything_spider_is_stopped_by_the_guard_alone(site: HostileServer, tmp_path: Path) -> None:
    # No allowed_domains and every link followed; localhost on the site's port is allow-listed so that a redirect
    # across host names (127.0.0.1 -> localhost) really happens and its cookie handling can be seen.
    spider = ROOT / "tests" / "support" / "follow_all_spider.py"
    settings = {**FAST, "RETRY_TIMES": "0", "DEPTH_LIMIT": "2", "NEWSCRAWL_SSRF_ALLOWED_HOSTS": f"localhost:{site.port}"}
    start = len(site.requests)
    code, log = run(tmp_path, ["runspider", str(spider), "-a", f"url={site.url('/good/1')}"], settings)
    assert code == 0 and "Traceback" not in log, log[-4000:]
    stats = stats_of(log)

    assert stats["newscrawl/ssrf/refused/link_local"] >= 2  # the metadata link and the redirect to it
    assert stats["newscrawl/ssrf/refused/private"] >= 1  # 10.0.0.1
    assert stats["newscrawl/ssrf/refused/loopback"] >= 4  # [::1], 2130706433 (link and redirect), ::ffff:127.0.0.1, other port
    assert stats["newscrawl/ssrf/refused/scheme"] >= 3  # file:, ftp:, data:
    for line in log.splitlines():
        if any(host in line for host in FORBIDDEN_HOSTS):
            assert "[newscrawl.downloadermiddlewares.ssrf]" in line, line

    requests = site.requests[start:]
    assert {headers.get("Host") for _, _, headers in requests} == {f"127.0.0.1:{site.port}", f"localhost:{site.port}"}
    # The cookie set by 127.0.0.1 did not follow the redirect to localhost.
    echoes = [headers for _, path, headers in requests if path == "/cookie/echo"]
    assert echoes and all("Cookie" not in headers for headers in echoes)


def test_a_healthy_crawl_exits_zero(site: HostileServer, tmp_path: Path) -> None:
    code, log, database = crawl_article(site, tmp_path, "/good/2", depth=0, NEWSCRAWL_HEALTH_MAX_ERROR_RATIO="0",
                                        NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO="0", NEWSCRAWL_HEALTH_MIN_ITEMS="1")
    assert code == 0, log[-3000:]
    assert "Health report: OK" in log
    assert set(stored(database)) == {"/good/2"}
