"""Crawl benchmark: pages/second of ``scrapy crawl article`` (extraction and SQLite storage included) against a null spider.

    .venv/bin/python benchmarks/crawl.py [--pages 5000] [--rounds 2]

Both crawls run as ``scrapy`` subprocesses from the repository root, so both get newscrawl's project
settings, with the same overrides: AutoThrottle off, no download delay, the same concurrency, robots.txt
obeyed (one request each). They crawl the same generated site (``benchmarks/sitegen.py``) served on
127.0.0.1 by a server process of its own. The null spider is defined here: it follows every link on the
same host and does nothing else, so it is the cost of Scrapy itself plus the server. Rates come from the
crawl's own ``elapsed_time_seconds`` (spider open to close), so interpreter start-up does not count.
Rounds alternate the order of the two crawls; the best of each counts.

This module is also the null spider's file (``scrapy runspider benchmarks/crawl.py``) and holds the
helpers ``benchmarks/memory.py`` uses to run a crawl and read its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import scrapy
from scrapy import signals

REPO = Path(__file__).resolve().parent.parent
GOAL = 0.8  # newscrawl's pages/second at least this share of the null spider's
# The same for both crawls: what differs between them is only the spider and what it does with a page.
COMMON_SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "ROBOTSTXT_OBEY": "True",
    "LOG_LEVEL": "INFO",
    "CLOSESPIDER_TIMEOUT": "3600",
    # The whole generated site is the crawl being measured: no per-host page cap (newscrawl's default is 5,000).
    "NEWSCRAWL_MAX_PAGES_PER_DOMAIN": "0",
}


def project_extensions() -> dict:
    """newscrawl's EXTENSIONS plus the stats writer: ``-s EXTENSIONS=...`` replaces the project's dict."""
    sys.path.insert(0, str(REPO))
    from newscrawl import settings as project

    return {**getattr(project, "EXTENSIONS", {}), "benchmarks.crawl.StatsToFile": 0}


class NullSpider(scrapy.Spider):
    """Follows every link to the start page's host; parses nothing else, yields no items."""

    name = "null"

    def __init__(self, url: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.start_urls = [url]
        self.allowed_domains = [urlsplit(url).hostname]

    def parse(self, response):
        host = urlsplit(response.url).netloc
        for href in response.xpath("//a/@href").getall():
            url = response.urljoin(href)
            if urlsplit(url).netloc == host:
                yield scrapy.Request(url, callback=self.parse)


class StatsToFile:
    """Writes the crawl's stats as JSON to ``BENCHMARK_STATS_FILE`` when the engine stops."""

    def __init__(self, path: str, crawler):
        self.path = path
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        path = crawler.settings.get("BENCHMARK_STATS_FILE")
        if not path:
            from scrapy.exceptions import NotConfigured

            raise NotConfigured("BENCHMARK_STATS_FILE is not set")
        extension = cls(path, crawler)
        # engine_stopped comes after every spider_closed handler, so elapsed_time_seconds is set by then.
        crawler.signals.connect(extension.engine_stopped, signal=signals.engine_stopped)
        return extension

    def engine_stopped(self):
        stats = dict(self.crawler.stats.get_stats())
        Path(self.path).write_text(json.dumps(stats, default=str, indent=1), "utf-8")


@dataclass
class CrawlResult:
    kind: str
    pages: int
    items: int
    stored: int
    elapsed: float  # seconds, spider open to close
    wall: float  # seconds, process start to exit
    max_rss_mb: float
    server_cpu: float
    stats: dict

    @property
    def rate(self) -> float:
        return self.pages / max(self.elapsed, 1e-9)


def crawl_command(kind: str, start_url: str, workdir: Path) -> list[str]:
    settings = dict(
        COMMON_SETTINGS,
        EXTENSIONS=json.dumps(project_extensions()),
        BENCHMARK_STATS_FILE=str(workdir / "stats.json"),
    )
    if kind == "newscrawl":
        settings["NEWSCRAWL_DATABASE_URL"] = f"sqlite:///{workdir / 'newscrawl.sqlite3'}"
        settings["NEWSCRAWL_SPOOL_DIR"] = str(workdir / "spool")
        # The spider's own hop limit; far more hops than the site has pages, so the whole site is reached.
        head = ["crawl", "article", "-a", f"url={start_url}", "-a", "depth=1000000000"]
    elif kind == "null":
        settings["NEWSCRAWL_DATABASE_URL"] = ""
        head = ["runspider", str(Path(__file__).resolve()), "-a", f"url={start_url}"]
    else:
        raise ValueError(kind)
    command = [sys.executable, "-m", "scrapy", *head]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def run_crawl(kind: str, served, workdir: Path) -> CrawlResult:
    """One crawl of the served site in a scrapy subprocess; its peak RSS read from wait4() for that process."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    log_path = workdir / "crawl.log"
    cpu_before = served.cpu_seconds()
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            crawl_command(kind, served.start_url, workdir), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    server_cpu = served.cpu_seconds() - cpu_before
    stats_path = workdir / "stats.json"
    if process.returncode != 0 or not stats_path.exists():
        tail = log_path.read_text("utf-8", "replace")[-4000:]
        raise RuntimeError(f"{kind} crawl failed (exit {process.returncode}); log tail:\n{tail}")
    stats = json.loads(stats_path.read_text("utf-8"))
    stored = 0
    database = workdir / "newscrawl.sqlite3"
    if database.exists():
        with sqlite3.connect(database) as connection:
            stored = connection.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        connection.close()
    return CrawlResult(
        kind=kind,
        pages=int(stats.get("response_received_count", 0)),
        items=int(stats.get("item_scraped_count", 0)),
        stored=stored,
        elapsed=float(stats.get("elapsed_time_seconds", wall)),
        wall=wall,
        max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        server_cpu=server_cpu,
        stats=stats,
    )


def describe(result: CrawlResult) -> str:
    return (
        f"  {result.kind:<10} {result.rate:8.1f} pages/s  {result.pages:6d} pages in {result.elapsed:6.1f} s "
        f"(wall {result.wall:5.1f} s), items {result.items}, stored {result.stored}, "
        f"peak RSS {result.max_rss_mb:.0f} MB, server CPU {result.server_cpu / max(result.elapsed, 1e-9):.0%} of a core"
    )


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from sitegen import serve_site, temporary_site

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=5000, help="article pages in the generated site")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each counts")
    args = parser.parse_args(argv)

    best: dict[str, CrawlResult] = {}
    with temporary_site(args.pages) as site, serve_site(site) as served, tempfile.TemporaryDirectory() as tmp:
        print(f"site: {args.pages} article pages at {served.origin}; {args.rounds} alternating rounds")
        for round_no in range(args.rounds):
            order = ("null", "newscrawl") if round_no % 2 == 0 else ("newscrawl", "null")
            for kind in order:
                result = run_crawl(kind, served, Path(tmp) / f"{kind}-{round_no}")
                print(describe(result), flush=True)
                if kind not in best or result.rate > best[kind].rate:
                    best[kind] = result
    newscrawl, null = best["newscrawl"], best["null"]
    if newscrawl.stored < newscrawl.items or newscrawl.items < args.pages * 0.95:
        print(f"WARNING: newscrawl stored {newscrawl.stored} of {newscrawl.items} items for {args.pages} articles")
    ratio = newscrawl.rate / null.rate
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(
        f"RATIO crawl: newscrawl/null pages per second = {ratio:.2f} "
        f"({newscrawl.rate:.1f} vs {null.rate:.1f} pages/s; goal >= {GOAL:g}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
