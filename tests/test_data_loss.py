"""No data loss: a database or a spool directory that fails keeps items until they are stored, each once (issue 5)."""

from __future__ import annotations

import json
import logging
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from newscrawl.downloadermiddlewares.incremental import CONDITIONAL_META
from newscrawl.pipelines import StoragePipeline
from newscrawl.scheduler import RUNNING_MARKER, ResumableScheduler
from newscrawl.storage import open_storage
from tests.support.site_server import SiteServer
from tests.support.slow_site import serve_slowly

from .conftest import FIXTURE_SITE, ROOT

from .test_pipelines import article, count


def build(**settings: Any) -> tuple[StoragePipeline, Any]:
    crawler = get_crawler(settings_dict=settings)
    return StoragePipeline.from_crawler(crawler), crawler.stats


def pipeline_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "newscrawl.pipelines" and r.levelno >= logging.ERROR]


def test_a_spool_that_cannot_be_written_keeps_the_items_in_memory_until_it_can(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "news.sqlite3"
    database.mkdir()  # a directory where the database file should be: SQLite cannot open it, even as root
    blocker = tmp_path / "full"
    blocker.write_text("")  # a file where the spool's parent directory should be: no one can create the spool
    settings = {"NEWSCRAWL_DATABASE_URL": f"sqlite:///{database}", "NEWSCRAWL_SPOOL_DIR": str(blocker / "spool"),
                "NEWSCRAWL_STORAGE_BATCH_SIZE": 1}
    pipeline, stats = build(**settings)
    caplog.set_level(logging.DEBUG, logger="newscrawl.pipelines")
    pipeline.open_spider()
    for n in range(3):
        pipeline.process_item(article(n))

    # Every flush tried both and failed; the outage is told in one ERROR line (after the one saying storage is down).
    assert stats.get_value("newscrawl/storage/spool_errors") == 3
    assert stats.get_value("newscrawl/storage/spooled") is None
    errors = pipeline_errors(caplog)
    assert len(errors) == 2, errors
    assert errors[0].startswith(f"Cannot open storage sqlite:///{database}")
    assert "and so did spooling them to" in errors[1] and "kept them in memory" in errors[1]

    # Space is back: the next flush spools what was held together with the new item, nothing lost or repeated.
    blocker.unlink()
    pipeline.process_item(article(3))
    [spooled] = (blocker / "spool").glob("*.jsonl")
    assert len(spooled.read_text("utf-8").splitlines()) == 4
    pipeline.close_spider()
    assert stats.get_value("newscrawl/storage/lost") is None

    database.rmdir()
    recovered, stats = build(**settings)
    recovered.open_spider()
    recovered.close_spider()
    assert count(database, "articles") == 4 and count(database, "article_versions") == 4
    assert stats.get_value("newscrawl/storage/replayed") == 4
    assert list((blocker / "spool").glob("*.jsonl")) == []


def test_items_neither_database_nor_spool_took_by_the_end_are_counted_and_logged_as_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "news.sqlite3"
    database.mkdir()
    blocker = tmp_path / "full"
    blocker.write_text("")
    pipeline, stats = build(NEWSCRAWL_DATABASE_URL=f"sqlite:///{database}", NEWSCRAWL_SPOOL_DIR=str(blocker / "spool"))
    caplog.set_level(logging.INFO, logger="newscrawl.pipelines")
    pipeline.open_spider()
    pipeline.process_item(article(1))
    pipeline.process_item(article(2))
    pipeline.close_spider()
    assert stats.get_value("newscrawl/storage/lost") == 2
    assert pipeline_errors(caplog)[-1].startswith("Lost 2 items at the end of the crawl")


def test_a_database_outage_is_logged_once_and_its_end_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "news.sqlite3"
    pipeline, stats = build(NEWSCRAWL_DATABASE_URL=f"sqlite:///{database}", NEWSCRAWL_SPOOL_DIR=str(tmp_path / "spool"),
                            NEWSCRAWL_STORAGE_BATCH_SIZE=1)
    caplog.set_level(logging.INFO, logger="newscrawl.pipelines")
    pipeline.open_spider()
    pipeline.process_item(article(0))
    with closing(sqlite3.connect(database)) as connection:
        connection.execute(REFUSE_INSERTS)
    for n in range(1, 4):
        pipeline.process_item(article(n))
    with closing(sqlite3.connect(database)) as connection:
        connection.execute(ALLOW_INSERTS)
    pipeline.process_item(article(4))
    pipeline.close_spider()

    errors = pipeline_errors(caplog)
    assert len(errors) == 1 and "kept them in" in errors[0]
    assert errors[0].startswith("Storage write of 1 items to sqlite:///")
    assert any(r.getMessage() == f"Storage sqlite:///{database} works again" for r in caplog.records)
    assert stats.get_value("newscrawl/storage/errors") >= 3
    assert stats.get_value("newscrawl/storage/spooled") == 3 and stats.get_value("newscrawl/storage/replayed") == 3
    assert count(database, "articles") == 5 and count(database, "article_versions") == 5


#: A database that refuses new articles, the way a full or broken one refuses writes; unlike file permissions it
#: holds for root too (CI may run the tests as root).
REFUSE_INSERTS = ("CREATE TRIGGER refuse_articles BEFORE INSERT ON articles "
                  "BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated)'); END")
ALLOW_INSERTS = "DROP TRIGGER refuse_articles"


# --- JOBDIR after a crash ---------------------------------------------------------------------------------------

def scheduler_in(jobdir: Path) -> tuple[ResumableScheduler, Any]:
    # ScrapyPriorityQueue: the default, downloader-aware one needs a running engine.
    crawler = get_crawler(Spider, settings_dict={"JOBDIR": str(jobdir),
                                                 "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue"})
    scheduler = ResumableScheduler.from_crawler(crawler)
    scheduler.open(Spider.from_crawler(crawler, name="jobdir"))
    return scheduler, crawler.stats


def test_a_jobdir_closed_cleanly_resumes_and_one_left_by_a_killed_crawl_starts_over(tmp_path: Path) -> None:
    first, second = Request("http://127.0.0.1/first"), Request("http://127.0.0.1/second")
    scheduler, _ = scheduler_in(tmp_path)
    assert scheduler.enqueue_request(first) and scheduler.enqueue_request(second)
    assert scheduler.next_request().url == second.url  # fetched; `first` is still pending when the crawl stops
    scheduler.close("shutdown")
    assert not (tmp_path / RUNNING_MARKER).exists()

    # Resumed as Scrapy resumes: the pending request comes back and neither is scheduled again.
    scheduler, stats = scheduler_in(tmp_path)
    assert (tmp_path / RUNNING_MARKER).exists()
    assert not scheduler.enqueue_request(second.copy())
    assert scheduler.next_request().url == first.url
    assert stats.get_value("newscrawl/jobdir/restarted") is None
    # Killed here: the mark stays, and requests.seen holds both fingerprints (as a busy crawl's flushed buffer would);
    # the files are closed only so that the test leaves no handle open.
    scheduler.close("killed")
    (tmp_path / RUNNING_MARKER).write_text("")

    # The next crawl finds the mark: the dead run's fingerprints are forgotten, so its pages can be fetched again.
    scheduler, stats = scheduler_in(tmp_path)
    assert scheduler.enqueue_request(first.copy()) and scheduler.enqueue_request(second.copy())
    assert stats.get_value("newscrawl/jobdir/restarted") == 1
    assert scheduler.next_request().meta[CONDITIONAL_META] is False  # a 304 would hide the links on the page
    scheduler.close("finished")


# --- Real crawls of the test site -------------------------------------------------------------------------------

MANIFEST = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
ARTICLES = set(MANIFEST["articles"])
ENTRY_ARGS = ["-a", f"depth={MANIFEST['max_depth']}"]


def crawl_command(site: SiteServer, database: Path, spool: Path, *extra: str, depth: int | None = None) -> list[str]:
    depth_args = ["-a", f"depth={depth}"] if depth is not None else ENTRY_ARGS
    settings = {"NEWSCRAWL_DATABASE_URL": f"sqlite:///{database}", "NEWSCRAWL_SPOOL_DIR": str(spool),
                "AUTOTHROTTLE_ENABLED": "False", "DOWNLOAD_DELAY": "0", "CONCURRENT_REQUESTS": "1",
                "NEWSCRAWL_STORAGE_BATCH_SIZE": "1"}
    options = [arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")]
    return [sys.executable, "-m", "scrapy", "crawl", "article", "-a", f"url={site.url}{MANIFEST['entry']}",
            *depth_args, *options, *extra]


def run(command: list[str]) -> tuple[int, str]:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def stats_of(log: str) -> dict[str, int]:
    dump = log.split("Dumping Scrapy stats:", 1)[1]
    return {key: int(value) for key, value in re.findall(r"'([^']+)': (\d+)[,}]", dump)}


def rows(database: Path) -> dict[str, tuple[str, str]]:
    """article path -> (content_hash, first_seen); {} while the database does not exist yet."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as connection:
            found = connection.execute("SELECT article_url, content_hash, first_seen FROM articles").fetchall()
    except sqlite3.Error:
        return {}
    return {urlsplit(url).path: (digest, first_seen) for url, digest, first_seen in found}


def assert_every_article_stored_once(database: Path) -> None:
    assert set(rows(database)) == ARTICLES
    with closing(sqlite3.connect(database)) as connection:
        versions = connection.execute("SELECT COUNT(*), COUNT(DISTINCT article_id) FROM article_versions").fetchone()
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert versions == (len(ARTICLES), len(ARTICLES))  # one version each: no item was written twice as new


def pipeline_log_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "[newscrawl.pipelines] ERROR" in line]


def test_a_database_that_fails_mid_crawl_keeps_items_on_disk_and_the_next_run_stores_each_once(tmp_path: Path) -> None:
    database, spool = tmp_path / "news.sqlite3", tmp_path / "spool"
    broken = threading.Event()

    def break_database(path: str, n: int) -> None:
        # Once a few articles are stored, the database refuses every further one for the rest of the crawl.
        if not broken.is_set() and len(rows(database)) >= 3:
            with closing(sqlite3.connect(database, timeout=30)) as connection:
                connection.execute(REFUSE_INSERTS)
            broken.set()

    with serve_slowly(FIXTURE_SITE / "www", delay=0, on_request=break_database) as site:
        code, log = run(crawl_command(site, database, spool))
        assert broken.is_set() and "Traceback" not in log, log[-3000:]
        stats = stats_of(log)
        stored_first = rows(database)
        assert 3 <= len(stored_first) < len(ARTICLES)
        assert stats["item_scraped_count"] == len(ARTICLES)
        assert stats["newscrawl/storage/spooled"] == len(ARTICLES) - len(stored_first)
        assert stats["newscrawl/storage/errors"] >= stats["newscrawl/storage/spooled"]
        [error] = pipeline_log_errors(log)  # the outage, told once
        assert "Storage write of 1 items to sqlite:///" in error and f"kept them in {spool}" in error

        with closing(sqlite3.connect(database)) as connection:
            connection.execute(ALLOW_INSERTS)
        code, log = run(crawl_command(site, database, spool, depth=0))
    assert code == 0 and "Traceback" not in log, log[-3000:]
    assert stats_of(log)["newscrawl/storage/replayed"] == len(ARTICLES) - len(stored_first)
    assert list(spool.glob("*")) == []
    assert_every_article_stored_once(database)
    assert {path: rows(database)[path] for path in stored_first} == stored_first


def test_a_spool_directory_that_cannot_be_written_holds_items_until_it_can(tmp_path: Path) -> None:
    database, blocker = tmp_path / "news.sqlite3", tmp_path / "full"
    spool = blocker / "spool"
    blocker.write_text("")  # the spool cannot be created under a file, whoever runs the test
    open_storage(f"sqlite:///{database}").close()
    with closing(sqlite3.connect(database)) as connection:
        connection.execute(REFUSE_INSERTS)  # the database refuses every article of this crawl
    freed = threading.Event()

    def free_space(path: str, n: int) -> None:
        if n == 20 and not freed.is_set():
            blocker.unlink()
            freed.set()

    with serve_slowly(FIXTURE_SITE / "www", delay=0, on_request=free_space) as site:
        code, log = run(crawl_command(site, database, spool))
        assert freed.is_set() and "Traceback" not in log, log[-3000:]
        stats = stats_of(log)
        assert stats["newscrawl/storage/spool_errors"] >= 1
        assert stats["newscrawl/storage/spooled"] == len(ARTICLES) and "newscrawl/storage/lost" not in stats
        errors = pipeline_log_errors(log)
        assert len(errors) == 2, errors  # the spool failing (items held), then the database failing (items spooled)
        assert "and so did spooling them to" in errors[0] and "kept them in memory" in errors[0]
        assert f"Spool directory {spool} works again" in log

        with closing(sqlite3.connect(database)) as connection:
            connection.execute(ALLOW_INSERTS)
        code, log = run(crawl_command(site, database, spool, depth=0))
    assert code == 0, log[-3000:]
    assert stats_of(log)["newscrawl/storage/replayed"] == len(ARTICLES)
    assert_every_article_stored_once(database)


def wait_for_rows(database: Path, count: int, process: subprocess.Popen) -> None:
    for _ in range(1200):  # up to 2 minutes, checked every 0.1 s
        if len(rows(database)) >= count or process.poll() is not None:
            break
        time.sleep(0.1)
    assert process.poll() is None, "the crawl ended before the test could stop it"


def test_a_jobdir_resumes_after_a_pause_and_after_sigkill_with_every_stored_row_kept(tmp_path: Path) -> None:
    database, spool, jobdir = tmp_path / "news.sqlite3", tmp_path / "spool", tmp_path / "job"
    # Batches of 5: at the kill some items are stored and some wait in memory, to be fetched again after it.
    command_options = ["-s", f"JOBDIR={jobdir}", "-s", "NEWSCRAWL_STORAGE_BATCH_SIZE=5"]
    # A server with ETag/Last-Modified, where a crawl asks conditionally for the pages it stored before.
    with serve_slowly(FIXTURE_SITE / "www", delay=0.1, conditional=True) as site:
        command = crawl_command(site, database, spool, *command_options)

        # 1. Paused with Ctrl-C (SIGINT): Scrapy closes cleanly and writes its queue, as its docs describe.
        with (tmp_path / "paused.log").open("w") as log_file:
            process = subprocess.Popen(command, cwd=ROOT, stderr=log_file)
            try:
                wait_for_rows(database, 5, process)
                process.send_signal(signal.SIGINT)
                assert process.wait(timeout=60) == 0
            finally:
                process.kill()
        paused = rows(database)
        assert not (jobdir / RUNNING_MARKER).exists() and (jobdir / "requests.queue" / "active.json").exists()

        # 2. Resumed from the queue (the entry page is not fetched again), then killed outright.
        site.clear_requests()
        with (tmp_path / "killed.log").open("w") as log_file:
            process = subprocess.Popen(command, cwd=ROOT, stderr=log_file)
            try:
                wait_for_rows(database, len(paused) + 10, process)
                process.send_signal(signal.SIGKILL)
            finally:
                process.kill()
                process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        assert MANIFEST["entry"] not in site.paths()
        stored_before = rows(database)
        with closing(sqlite3.connect(database)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert len(paused) + 10 <= len(stored_before) < len(ARTICLES)
        assert {path: stored_before[path] for path in paused} == paused
        assert (jobdir / RUNNING_MARKER).exists()

        # 3. The same JOBDIR again. Scrapy's own scheduler would pop the stale disk queue of run 1 (OSError on every
        # pop, a crawl that never ends); this one drops the dead run's state and starts over, and with the rows
        # already stored every article ends up stored once.
        site.delay = 0
        code, log = run(command)
    assert code == 0 and "Traceback" not in log, log[-3000:]
    stats = stats_of(log)
    assert "did not close (killed?)" in log and stats["newscrawl/jobdir/restarted"] == 1
    # Every page read in full, so the links on articles stored before the kill are followed again.
    assert "newscrawl/http/conditional" not in stats and "newscrawl/http/not_modified" not in stats
    assert_every_article_stored_once(database)
    # The rows stored before the kill are the same rows, untouched by the last run's upserts.
    assert {path: rows(database)[path] for path in stored_before} == stored_before
    assert not (jobdir / RUNNING_MARKER).exists()


def test_a_crawl_that_loses_items_fails_its_health_report_whatever_the_thresholds(tmp_path: Path) -> None:
    database, blocker = tmp_path / "news.sqlite3", tmp_path / "full"
    database.mkdir()
    blocker.write_text("")
    with serve_slowly(FIXTURE_SITE / "www", delay=0) as site:
        code, log = run(crawl_command(site, database, blocker / "spool", "-s", "NEWSCRAWL_HEALTH_MAX_ERROR_RATIO=",
                                      "-s", "NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO=", "-s", "NEWSCRAWL_HEALTH_MIN_ITEMS=",
                                      depth=0))
    assert code == 3, log[-3000:]
    assert "Health report: FAILED: 1 items lost (neither storage nor the spool took them)" in log
    assert stats_of(log)["newscrawl/storage/lost"] == 1



def test_a_database_file_removed_mid_crawl_is_noticed_and_the_items_after_it_land_in_the_new_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "news.sqlite3"
    pipeline, stats = build(NEWSCRAWL_DATABASE_URL=f"sqlite:///{database}", NEWSCRAWL_SPOOL_DIR=str(tmp_path / "spool"),
                            NEWSCRAWL_STORAGE_BATCH_SIZE=1)
    caplog.set_level(logging.INFO, logger="newscrawl.pipelines")
    pipeline.open_spider()
    pipeline.process_item(article(0))
    # Removed under the open connection, which would go on writing into the deleted file unawares.
    database.unlink()
    for n in range(1, 4):
        pipeline.process_item(article(n))
    pipeline.close_spider()

    [error] = pipeline_errors(caplog)
    assert f"the database file {database} was removed or replaced after it was opened" in error
    assert stats.get_value("newscrawl/storage/spooled") == 1 and stats.get_value("newscrawl/storage/replayed") == 1
    with closing(sqlite3.connect(database)) as connection:
        stored = [row[0] for row in connection.execute("SELECT title FROM articles ORDER BY title")]
    assert stored == ["Headline 1", "Headline 2", "Headline 3"]  # every item after the removal, each once
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
