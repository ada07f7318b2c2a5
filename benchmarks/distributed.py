"""Distributed crawl benchmark: pages/second of two `scrapy crawl article` workers sharing a Redis frontier, against one.

    NEWSCRAWL_TEST_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python benchmarks/distributed.py \\
        [--pages 300] [--latency 0.2] [--rounds 1] [--database postgresql://...]

The site is ``benchmarks/sitegen.py``'s generated news site, served on 127.0.0.1 by the test site server
(``tests/support/site_server.py``) with ``--latency`` seconds before each answer, as a real site takes its time:
a worker is then bound by how many requests it keeps in flight (CONCURRENT_REQUESTS_PER_DOMAIN, newscrawl's 2),
not by its CPU, which is the case more workers are for. Every article URL is pushed as a seed
(``scrapy seed article -a urls=FILE``) once the workers are up; ``-a depth=0``, so each page is fetched once
and the work is the same in both runs. Settings are the project's, less AutoThrottle and DOWNLOAD_DELAY
(the shared per-site delay would cap both runs at 1/DOWNLOAD_DELAY: that is politeness, not throughput).
Articles are stored in a fresh SQLite file per run (``--database``: a PostgreSQL URL, a fresh schema per run).

The rate is taken from the server's own request log: article pages received, over the time from the first to the
last of them, so interpreter start-up and the idle wait at the end do not count. Each run also checks that each
article was fetched once in total and stored once. The last line is ``RATIO distributed: ...`` with the goal.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.sitegen import article_path, temporary_site  # noqa: E402
from tests.support.site_server import serve_directory  # noqa: E402

GOAL = 1.8  # two workers at least this many times the pages/second of one


@dataclass
class Run:
    workers: int
    pages: int
    seconds: float
    fetched_twice: int
    stored: int

    @property
    def rate(self) -> float:
        return (self.pages - 1) / self.seconds if self.seconds > 0 else 0.0


@contextmanager
def fresh_database(database: str | None, workdir: Path):
    """A database URL to store into: a new SQLite file, or a new schema on the given PostgreSQL server."""
    if not database:
        yield f"sqlite:///{workdir / 'news.sqlite3'}"
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in database else "?"
    try:
        yield f"{database}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def count_stored(database_url: str) -> int:
    if database_url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(database_url) as connection:
            return connection.execute("SELECT count(*) FROM articles").fetchone()[0]
    with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as connection:
        return connection.execute("SELECT count(*) FROM articles").fetchone()[0]


def live_workers(redis_url: str, prefix: str) -> int:
    import redis

    return redis.Redis.from_url(redis_url).scard(f"{prefix}:article:workers")


def run_crawl(workers: int, site_root: Path, pages: int, latency: float, redis_url: str, database: str | None,
              workdir: Path) -> Run:
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    paths = {article_path(index) for index in range(pages)}
    with serve_directory(site_root, latency=latency) as server, fresh_database(database, workdir) as database_url:
        settings = {
            "NEWSCRAWL_REDIS_URL": redis_url, "NEWSCRAWL_REDIS_KEY_PREFIX": prefix,
            "NEWSCRAWL_DATABASE_URL": database_url, "NEWSCRAWL_SPOOL_DIR": str(workdir / "spool"),
            "NEWSCRAWL_SSRF_ALLOWED_HOSTS": f"127.0.0.1:{server.port}",
            "AUTOTHROTTLE_ENABLED": "False", "DOWNLOAD_DELAY": "0", "NEWSCRAWL_MAX_PAGES_PER_DOMAIN": "0",
            "NEWSCRAWL_REDIS_IDLE_TIMEOUT": "2", "NEWSCRAWL_REDIS_POLL_INTERVAL": "0.2",
            "NEWSCRAWL_HEALTH_MIN_ITEMS": "", "LOG_LEVEL": "WARNING",
        }
        options = [arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")]
        processes = []
        try:
            for number in range(workers):
                with (workdir / f"worker-{workers}-{number}.log").open("w") as log:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-m", "scrapy", "crawl", "article", "-a", "depth=0", *options],
                        cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 120
            while live_workers(redis_url, prefix) < workers:
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"workers did not start; see {workdir}")
                time.sleep(0.1)
            url_list = workdir / "urls.txt"
            url_list.write_text("".join(f"{server.url}{path}\n" for path in sorted(paths)), "utf-8")
            subprocess.run([sys.executable, "-m", "scrapy", "seed", "article", "-a", f"urls={url_list}", *options],
                           cwd=REPO, check=True, capture_output=True)
            for process in processes:
                if process.wait(timeout=3600) != 0:
                    raise RuntimeError(f"a worker exited {process.returncode}; see {workdir}")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            subprocess.run([sys.executable, "-m", "scrapy", "frontier", "article", "--clear", *options], cwd=REPO,
                           capture_output=True)
        timed = [(at, path) for at, path in server.timed_paths() if path in paths]
        counts = Counter(path for _, path in timed)
        if set(counts) != paths:
            raise RuntimeError(f"{len(paths - set(counts))} articles were never fetched; see {workdir}")
        seconds = timed[-1][0] - timed[0][0]
        return Run(workers, pages, seconds, sum(1 for n in counts.values() if n > 1), count_stored(database_url))


def describe(run: Run) -> str:
    return (f"{run.workers} worker{'s' if run.workers > 1 else ' '}: {run.pages} pages in {run.seconds:6.2f} s = "
            f"{run.rate:6.1f} pages/s; fetched twice {run.fetched_twice}, stored {run.stored}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server takes for each answer")
    parser.add_argument("--rounds", type=int, default=1, help="each round runs one worker, then two; best counts")
    parser.add_argument("--database", default="", help="a PostgreSQL URL to store into (default: SQLite files)")
    parser.add_argument("--redis", default=os.environ.get("NEWSCRAWL_TEST_REDIS_URL", ""),
                        help="Redis URL (default: NEWSCRAWL_TEST_REDIS_URL)")
    args = parser.parse_args(argv)
    if not args.redis:
        parser.error("give --redis or set NEWSCRAWL_TEST_REDIS_URL (.ci/redis start prints one)")
    best: dict[int, Run] = {}
    with temporary_site(args.pages) as site, tempfile.TemporaryDirectory(prefix="newscrawl-bench-") as folder:
        for round_number in range(args.rounds):
            for workers in (1, 2):
                workdir = Path(folder) / f"round-{round_number}-{workers}"
                workdir.mkdir()
                run = run_crawl(workers, site.root, args.pages, args.latency, args.redis, args.database or None,
                                workdir)
                print(describe(run), flush=True)
                if run.fetched_twice or run.stored != args.pages:
                    raise SystemExit(f"not a clean crawl: {describe(run)}")
                if workers not in best or run.rate > best[workers].rate:
                    best[workers] = run
    ratio = best[2].rate / best[1].rate
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"RATIO distributed: two workers/one pages per second = {ratio:.2f} ({best[2].rate:.1f} vs "
          f"{best[1].rate:.1f} pages/s, {args.latency:g} s per answer, {args.pages} pages, "
          f"{'PostgreSQL' if args.database else 'SQLite'}; goal >= {GOAL:g}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
