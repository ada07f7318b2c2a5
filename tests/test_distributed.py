"""Distributed crawls: `scrapy crawl article` workers sharing one frontier in a real Redis, over the test site.

Workers are real `scrapy crawl` subprocesses writing to one database (PostgreSQL when NEWSCRAWL_TEST_POSTGRES_URL is
set, else SQLite); what was fetched is judged from the site server's own request log, what was stored from the rows.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import postgres
from tests.support.site_server import SiteServer, serve_directory

from .conftest import FIXTURE_SITE, ROOT

REDIS_URL = os.environ.get("NEWSCRAWL_TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="NEWSCRAWL_TEST_REDIS_URL is not set (`.ci/redis start` prints it; .ci/run sets it)")

MANIFEST = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
ARTICLES = set(MANIFEST["articles"])
SITEMAP_FILES = {MANIFEST["sitemaps"]["index"], MANIFEST["sitemaps"]["articles"], MANIFEST["sitemaps"]["news"]}
DEADLINE = 90  # seconds any one crawl in this module may take before the test fails


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


@dataclass
class Crawl:
    """One distributed crawl: its own key prefix in Redis, its database, its site server and its workers."""

    site: SiteServer
    database_url: str
    workdir: Path
    prefix: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:10]}")
    workers: list[subprocess.Popen] = field(default_factory=list)

    def settings(self, *extra: str) -> list[str]:
        pairs = [
            f"NEWSCRAWL_REDIS_URL={REDIS_URL}", f"NEWSCRAWL_REDIS_KEY_PREFIX={self.prefix}",
            f"NEWSCRAWL_DATABASE_URL={self.database_url}", f"NEWSCRAWL_SPOOL_DIR={self.workdir / 'spool'}",
            # The site is on 127.0.0.1, a start origin for the worker that reads the seed only.
            f"NEWSCRAWL_SSRF_ALLOWED_HOSTS=127.0.0.1:{self.site.port}",
            "AUTOTHROTTLE_ENABLED=False", "DOWNLOAD_DELAY=0",
            "NEWSCRAWL_REDIS_IDLE_TIMEOUT=2", "NEWSCRAWL_REDIS_LEASE_TIMEOUT=3", "NEWSCRAWL_REDIS_POLL_INTERVAL=0.2",
            # A worker may end up with no article of its own: that is not an unhealthy crawl.
            "NEWSCRAWL_HEALTH_MIN_ITEMS=", *extra,
        ]
        return [arg for pair in pairs for arg in ("-s", pair)]

    def scrapy(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)

    def seed(self, *urls: str) -> None:
        done = self.scrapy("seed", "article", *urls, *self.settings())
        assert done.returncode == 0, done.stderr[-2000:]

    def start_worker(self, *args: str) -> subprocess.Popen:
        with (self.workdir / f"worker-{len(self.workers)}.log").open("w") as log:
            worker = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "article", *self.settings(), *args],
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        self.workers.append(worker)
        return worker

    def log(self, index: int) -> str:
        return (self.workdir / f"worker-{index}.log").read_text("utf-8")

    def stat(self, index: int, name: str) -> int:
        """A counter from a worker's final stats dump (0 when absent)."""
        for line in self.log(index).split("Dumping Scrapy stats:", 1)[-1].splitlines():
            if line.strip().startswith(f"'{name}':"):
                return int(line.split(":", 1)[1].strip().rstrip(",}"))
        return 0

    def status(self):
        from newscrawl.distributed import FrontierKeys, frontier_status

        return frontier_status(redis_client(), FrontierKeys(self.prefix, "article"))

    def wait_for_workers(self, count: int) -> None:
        """Until `count` workers beat: seeds pushed then are shared by all of them, not taken by the first up."""
        deadline = time.monotonic() + 60
        while len(self.status().live_workers) < count:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(worker.poll() is None for worker in self.workers), self.log(0)[-3000:]
            time.sleep(0.1)

    def wait(self) -> list[int]:
        return [worker.wait(timeout=DEADLINE) for worker in self.workers]

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
        from newscrawl.distributed import FrontierKeys, clear_frontier

        server = redis_client()
        clear_frontier(server, FrontierKeys(self.prefix, "article"))
        for key in server.scan_iter(match=f"{self.prefix}:politeness:*"):
            server.delete(key)

    def stored(self) -> list[str]:
        """article_url of every row in the articles table."""
        if self.database_url.startswith("postgresql"):
            import psycopg

            with psycopg.connect(self.database_url) as connection:
                return [row[0] for row in connection.execute("SELECT article_url FROM articles")]
        with closing(sqlite3.connect(self.database_url.removeprefix("sqlite:///"))) as connection:
            return [row[0] for row in connection.execute("SELECT article_url FROM articles")]


@contextmanager
def database(tmp_path: Path) -> Iterator[str]:
    if postgres.SERVER_URL:
        with postgres.fresh_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'news.sqlite3'}"


@pytest.fixture
def crawl(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Crawl]:
    latency = getattr(request, "param", 0.0)
    with serve_directory(FIXTURE_SITE / "www", latency=latency) as site, database(tmp_path) as url:
        run = Crawl(site, url, tmp_path)
        try:
            yield run
        finally:
            run.stop()


def paths(urls: list[str]) -> list[str]:
    return [urlsplit(url).path for url in urls]


def assert_each_article_fetched_once_and_stored_once(run: Crawl, articles: set[str]) -> None:
    counts = Counter(run.site.paths())
    assert {path: counts[path] for path in articles} == dict.fromkeys(articles, 1)
    # Nothing but robots.txt (read by each worker for itself) was fetched twice.
    assert [path for path, n in counts.items() if n > 1 and path != "/robots.txt"] == []
    assert counts["/robots.txt"] <= len(run.workers)
    stored = run.stored()
    assert sorted(stored) == sorted(run.site.url + path for path in articles)


def test_two_workers_share_a_sitemap_crawl_fetching_and_storing_each_article_once(crawl: Crawl) -> None:
    for _ in range(2):
        crawl.start_worker("-a", "depth=1")
    crawl.wait_for_workers(2)
    crawl.seed(crawl.site.url + MANIFEST["sitemaps"]["index"])

    assert crawl.wait() == [0, 0]
    # The sitemaps listed every article and the related links led to the same ones again, across both workers.
    assert_each_article_fetched_once_and_stored_once(crawl, ARTICLES)
    assert SITEMAP_FILES <= set(crawl.site.paths())
    # Both took part, and links already queued were refused: by the shared hops map or the shared dupefilter.
    fetched = [crawl.stat(i, "response_received_count") for i in range(2)]
    assert all(n > 0 for n in fetched), fetched
    assert sum(crawl.stat(i, "newscrawl/duplicates/links") + crawl.stat(i, "dupefilter/filtered") for i in range(2)) > 0
    assert crawl.status().finished
    frontier = crawl.scrapy("frontier", "article", "--check", *crawl.settings())
    assert frontier.returncode == 0 and "finished: yes" in frontier.stdout


def test_three_workers_crawl_from_the_entry_page_following_links_across_workers(crawl: Crawl) -> None:
    # Exactly the depth that reaches every article: a page one worker reached by a longer path first still gets
    # the shorter distance another worker finds later (the spider's hops and links live in Redis).
    for _ in range(3):
        crawl.start_worker("-a", f"depth={MANIFEST['max_depth']}")
    crawl.wait_for_workers(3)
    crawl.seed(crawl.site.url + MANIFEST["entry"])

    assert crawl.wait() == [0, 0, 0]
    assert_each_article_fetched_once_and_stored_once(crawl, ARTICLES)
    counts = Counter(crawl.site.paths())
    assert set(counts) - ARTICLES - {"/robots.txt"} <= set(MANIFEST["crawl"]["may_fetch"])
    # robots.txt, offsite and trap policies hold on every worker (the seed's domain reached all of them).
    assert not any(path.startswith(tuple(MANIFEST["crawl"]["must_not_fetch_prefixes"])) for path in counts)
    assert sum(crawl.stat(i, "offsite/filtered") for i in range(3)) >= 1
    assert sum(1 for i in range(3) if crawl.stat(i, "response_received_count") > 0) >= 2


@pytest.mark.parametrize("crawl", [0.15], indirect=True)  # seconds each answer takes: the crawl lasts a while
def test_a_worker_killed_midway_loses_nothing_the_other_fetches_what_it_held(crawl: Crawl) -> None:
    doomed = crawl.start_worker("-a", "depth=0", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4")
    crawl.start_worker("-a", "depth=0", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4")
    crawl.wait_for_workers(2)
    crawl.seed(crawl.site.url + MANIFEST["sitemaps"]["articles"])

    # Midway: a dozen articles fetched, and the doomed worker holds requests it has not finished.
    doomed_id = None
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the crawl never reached its middle"
        status = crawl.status()
        doomed_id = next((w for w in status.in_flight if w.split(":")[1] == str(doomed.pid)), None)
        fetched = len(ARTICLES & set(crawl.site.paths()))
        if doomed_id and status.in_flight[doomed_id] and 12 <= fetched < len(ARTICLES) - 12:
            break
        time.sleep(0.02)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    killed_at = time.monotonic()
    # What it held when it died, read from its in-flight hash (frozen until a live worker reclaims it).
    from newscrawl.distributed import FrontierKeys

    held = redis_client().hkeys(FrontierKeys(crawl.prefix, "article").inflight(doomed_id))
    held_paths = {urlsplit(pickle.loads(member)["url"]).path for member in held}
    assert held_paths, "the worker held nothing when killed"

    assert crawl.workers[1].wait(timeout=DEADLINE) == 0
    counts = Counter(crawl.site.paths())
    # Every article fetched and stored; only what the killed worker held can have been fetched twice.
    assert ARTICLES <= set(counts)
    assert {path for path, n in counts.items() if n > 1} - {"/robots.txt"} <= held_paths
    assert sorted(crawl.stored()) == sorted(crawl.site.url + path for path in ARTICLES)
    # The survivor took the held requests back after the lease ran out, and fetched them then.
    assert crawl.stat(1, "newscrawl/distributed/reclaimed") == len(held)
    late = {path for at, path in crawl.site.timed_paths() if at > killed_at}
    assert held_paths & ARTICLES <= late
    assert crawl.status().finished


@pytest.mark.parametrize("crawl", [0.15], indirect=True)
def test_a_worker_stopped_with_ctrl_c_finishes_what_it_holds(crawl: Crawl) -> None:
    stopped = crawl.start_worker("-a", "depth=0", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4")
    crawl.start_worker("-a", "depth=0", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4")
    crawl.wait_for_workers(2)
    crawl.seed(crawl.site.url + MANIFEST["sitemaps"]["articles"])
    deadline = time.monotonic() + 60
    while len(ARTICLES & set(crawl.site.paths())) < 12:
        assert time.monotonic() < deadline, "the crawl never reached its middle"
        time.sleep(0.02)
    stopped.send_signal(signal.SIGINT)
    assert stopped.wait(timeout=DEADLINE) == 0
    assert crawl.workers[1].wait(timeout=DEADLINE) == 0
    # A graceful stop is no crash: nothing was left for the lease to give back, nothing fetched twice or lost.
    assert_each_article_fetched_once_and_stored_once(crawl, ARTICLES)
    assert crawl.stat(1, "newscrawl/distributed/reclaimed") == 0
    assert "'finish_reason': 'shutdown'" in crawl.log(0)


def min_gap(times: list[float]) -> float:
    ordered = sorted(times)
    return min(b - a for a, b in zip(ordered, ordered[1:]))


def min_span(times: list[float], requests: int = 5) -> float:
    """The shortest time in which the site received `requests` requests in a row."""
    ordered = sorted(times)
    return min(b - a for a, b in zip(ordered, ordered[requests - 1:]))


def test_download_delay_holds_across_workers(crawl: Crawl) -> None:
    delay = 0.25
    polite = ["-s", f"DOWNLOAD_DELAY={delay}", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False", "-a", "depth=0"]
    for _ in range(2):
        crawl.start_worker(*polite)
    crawl.wait_for_workers(2)
    crawl.seed(crawl.site.url + MANIFEST["feeds"]["rss"])
    assert crawl.wait() == [0, 0]

    timed = crawl.site.timed_paths()
    newest = set(MANIFEST["newest_20"])
    assert newest <= {path for _, path in timed}
    assert all(crawl.stat(i, "response_received_count") > 1 for i in range(2))
    # Two workers, one site: its requests still come DOWNLOAD_DELAY apart, as from one worker.  The turn is taken in
    # Redis just before a request goes out; a worker busy for a moment then (parsing a page) may send it a little
    # late, so a gap may fall short of the delay by that much, never to two workers' rate: five requests in a row
    # take four delays, give or take that.
    times = [at for at, _ in timed]
    assert min_gap(times) >= delay * 0.5
    assert min_span(times) >= 4 * delay * 0.8
    assert sum(crawl.stat(i, "newscrawl/distributed/politeness_waits") for i in range(2)) > 0


def test_without_shared_politeness_two_workers_hit_a_site_twice_as_often(crawl: Crawl) -> None:
    """The control of the test above: the same crawl with each worker keeping only its own delay."""
    delay = 0.25
    polite = ["-s", f"DOWNLOAD_DELAY={delay}", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False", "-a", "depth=0",
              "-s", "NEWSCRAWL_REDIS_POLITENESS=False"]
    for _ in range(2):
        crawl.start_worker(*polite)
    crawl.wait_for_workers(2)
    crawl.seed(crawl.site.url + MANIFEST["feeds"]["rss"])
    assert crawl.wait() == [0, 0]
    assert all(crawl.stat(i, "response_received_count") > 1 for i in range(2))
    times = [at for at, _ in crawl.site.timed_paths()]
    assert min_gap(times) < delay * 0.5 and min_span(times) < 4 * delay * 0.8


def test_an_idle_worker_waits_for_seeds_then_crawls_them(crawl: Crawl) -> None:
    worker = crawl.start_worker("-a", "depth=0", "-s", "NEWSCRAWL_REDIS_IDLE_TIMEOUT=0")
    crawl.wait_for_workers(1)
    time.sleep(3)  # longer than the idle timeout the other tests use: this worker has none
    assert worker.poll() is None and crawl.site.paths() == []
    feed = MANIFEST["feeds"]["atom"]
    crawl.seed(crawl.site.url + feed)
    deadline = time.monotonic() + 60
    while not set(MANIFEST["newest_20"]) <= set(crawl.site.paths()) or not crawl.status().finished:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.1)
    assert worker.poll() is None  # still waiting for more
    assert sorted(paths(crawl.stored())) == sorted(MANIFEST["newest_20"])


def test_a_workers_own_start_goes_through_the_shared_queue(crawl: Crawl) -> None:
    """`scrapy crawl article -a url=...` as a worker: its start and its domain are shared like a seed's."""
    crawl.start_worker("-a", "depth=0")
    crawl.wait_for_workers(1)
    crawl.start_worker("-a", f"sitemap={crawl.site.url}{MANIFEST['sitemaps']['news']}", "-a", "depth=0")
    assert crawl.wait() == [0, 0]
    newest = set(MANIFEST["newest_20"])
    assert_each_article_fetched_once_and_stored_once(crawl, newest)
    from newscrawl.distributed import FrontierKeys

    assert redis_client().smembers(FrontierKeys(crawl.prefix, "article").domains) == {b"127.0.0.1"}
    # Every request, the -a start too, was taken from the shared queue (which worker took it is up to timing).
    assert sum(crawl.stat(i, "scheduler/dequeued/redis") for i in range(2)) == len(newest) + 1


def test_seed_and_frontier_commands(crawl: Crawl) -> None:
    sitemap, feed = crawl.site.url + MANIFEST["sitemaps"]["news"], crawl.site.url + MANIFEST["feeds"]["rss"]
    done = crawl.scrapy("seed", "article", sitemap, "-a", f"feed={feed}", *crawl.settings())
    assert done.returncode == 0 and "Pushed 2 start(s)" in done.stdout
    from newscrawl.distributed import FrontierKeys, read_seed

    keys = FrontierKeys(crawl.prefix, "article")
    server = redis_client()
    assert [read_seed(entry) for entry in server.lrange(keys.seeds, 0, -1)] == [(sitemap, "auto"), (feed, "feed")]
    assert server.smembers(keys.domains) == {b"127.0.0.1"}
    frontier = crawl.scrapy("frontier", "article", "--check", *crawl.settings())
    assert frontier.returncode == 4 and "seeds waiting            2" in frontier.stdout
    cleared = crawl.scrapy("frontier", "article", "--clear", *crawl.settings())
    assert cleared.returncode == 0 and server.llen(keys.seeds) == 0

    bad = crawl.scrapy("seed", "article", "ftp://example.com/x", *crawl.settings())
    assert bad.returncode == 2 and "not an http(s) or file:// URL" in bad.stderr
    unset = crawl.scrapy("seed", "article", sitemap, "-s", "NEWSCRAWL_REDIS_URL=")
    assert unset.returncode == 2 and "NEWSCRAWL_REDIS_URL is not set" in unset.stderr


def test_the_dupefilter_is_shared_and_keyed_on_the_canonical_url() -> None:
    from scrapy import Request
    from scrapy.utils.test import get_crawler

    from newscrawl import settings as project
    from newscrawl.distributed import CanonicalDupeFilter
    from newscrawl.spiders.article import ArticleSpider

    prefix = f"test-{uuid.uuid4().hex[:10]}"
    settings = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    settings.update(NEWSCRAWL_REDIS_URL=REDIS_URL, NEWSCRAWL_REDIS_KEY_PREFIX=prefix)
    filters = []
    for _ in range(2):  # two workers
        crawler = get_crawler(ArticleSpider, settings_dict=settings)
        assert crawler.settings["SCHEDULER"] == "newscrawl.distributed.LeasedScheduler"
        filters.append(CanonicalDupeFilter.from_spider(ArticleSpider.from_crawler(crawler)))
    try:
        assert not filters[0].request_seen(Request("https://Site.example/a?utm_source=x#top"))
        assert filters[1].request_seen(Request("https://site.example/a"))
        assert not filters[1].request_seen(Request("https://site.example/b"))
    finally:
        redis_client().delete(filters[0].key)


def test_without_a_redis_url_the_crawl_is_plain_scrapy() -> None:
    from scrapy.utils.test import get_crawler

    from newscrawl import settings as project
    from newscrawl.spiders.article import ArticleSpider

    settings = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    settings["NEWSCRAWL_REDIS_URL"] = ""
    crawler = get_crawler(ArticleSpider, settings_dict=settings)
    assert "distributed" not in crawler.settings["SCHEDULER"]
    assert "newscrawl.distributed.RedisSeeds" not in crawler.settings.getdict("EXTENSIONS")
    with pytest.raises(ValueError, match="give a start"):
        ArticleSpider.from_crawler(crawler)


def test_the_throughput_benchmark_runs_and_prints_its_ratio() -> None:
    """At a tiny size: that it runs and checks its crawls, not how fast (benchmarks/README.md has the figures)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "distributed.py"), "--pages", "12",
                           "--latency", "0.05", "--redis", REDIS_URL], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "2 workers: 12 pages" in done.stdout and "fetched twice 0, stored 12" in done.stdout
    assert re.search(r"^RATIO distributed: two workers/one pages per second = [0-9.]+ ", done.stdout, re.M)
