"""`scrapy schedule` and `scrapy runs`: crawls.toml, due times, the per-crawl lock, and real scheduled runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from newscrawl.schedule import Crawl, CrawlLock, ScheduleError, load_crawls, setting_text, utc
from newscrawl.storage import open_storage
from tests.support.conditional_server import serve_conditional

from .conftest import FIXTURE_SITE, ROOT

MANIFEST = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
DEPTH_1 = sorted(set(MANIFEST["reachable_from_entry_by_depth"]["1"]) - {MANIFEST["entry"]})
T0 = datetime(2025, 11, 20, 10, 0, tzinfo=timezone.utc)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crawls.toml"
    path.write_text(text, "utf-8")
    return path


def test_crawls_toml_with_defaults_intervals_and_cron(tmp_path: Path) -> None:
    crawls = load_crawls(write(tmp_path, """
[defaults]
settings = { CLOSESPIDER_PAGECOUNT = 500, NEWSCRAWL_DATABASE_URL = "sqlite:///data/x.sqlite3" }
args = { depth = 2 }

[crawls.nyheter]
args = { url = "https://nyheter.example/" }
every = "15m"

[crawls.feeds]
spider = "article"
args = { feed = "https://nyheter.example/rss.xml", depth = 1 }
settings = { CLOSESPIDER_PAGECOUNT = 50 }
cron = "0 */6 * * *"
"""))
    nyheter, feeds = crawls
    assert (nyheter.name, nyheter.spider, nyheter.every, nyheter.cron) == ("nyheter", "article", 900.0, None)
    assert nyheter.args == {"depth": 2, "url": "https://nyheter.example/"}
    assert nyheter.settings == {"CLOSESPIDER_PAGECOUNT": 500, "NEWSCRAWL_DATABASE_URL": "sqlite:///data/x.sqlite3"}
    assert (feeds.every, feeds.cron, feeds.args["depth"], feeds.settings["CLOSESPIDER_PAGECOUNT"]) == (
        None, "0 */6 * * *", 1, 50)


@pytest.mark.parametrize(("table", "message"), [
    ('[crawls.a]\nargs = { url = "x" }', "exactly one of every"),
    ('[crawls.a]\nevery = "15m"\ncron = "* * * * *"', "exactly one of every"),
    ('[crawls.a]\ncron = "every day"', "not a valid cron"),
    ('[crawls.a]\nevery = "soon"', "positive interval"),
    ('[crawls.a]\nevery = 0', "positive interval"),
    ('[crawls.a]\nevery = "1h"\nurl = "x"', "unknown keys"),
    ('[crawls."a b"]\nevery = "1h"', "crawl name"),
    ('[crawl.a]\nevery = "1h"', "unknown top-level"),
    ('[defaults]\nspider = "article"', "no [crawls.<name>]"),
    ('[crawls.a\nevery = "1h"', "cannot read"),
    ('[crawls.a]\nevery = "1h"\nresume = "yes"', "resume is true or false"),
    ('[crawls.a]\nevery = "1h"\nresume = true\nsettings = { JOBDIR = "x" }', "drop JOBDIR"),
])
def test_unusable_crawls_toml_names_the_problem(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_crawls(write(tmp_path, table))


@pytest.mark.parametrize(("crawl", "last", "now", "due"), [
    (Crawl("a", every=900), None, T0, True),  # never ran
    (Crawl("a", every=900), T0, T0 + timedelta(minutes=14, seconds=59), False),
    (Crawl("a", every=900), T0, T0 + timedelta(minutes=15), True),
    (Crawl("a", cron="0 * * * *"), T0 + timedelta(minutes=1), T0 + timedelta(minutes=59), False),
    (Crawl("a", cron="0 * * * *"), T0 + timedelta(minutes=1), T0 + timedelta(hours=1), True),
    (Crawl("a", cron="30 6 * * 1"), T0, datetime(2025, 11, 24, 6, 29, tzinfo=timezone.utc), False),  # T0: a Thursday
    (Crawl("a", cron="30 6 * * 1"), T0, datetime(2025, 11, 24, 6, 30, tzinfo=timezone.utc), True),
])
def test_when_a_crawl_is_due(crawl: Crawl, last: datetime | None, now: datetime, due: bool) -> None:
    assert crawl.is_due(last, now) is due


def test_a_run_command_carries_arguments_settings_and_the_crawl_name() -> None:
    crawl = Crawl("nyheter", args={"url": "https://n.example/", "depth": 2},
                  settings={"CLOSESPIDER_PAGECOUNT": 5, "NEWSCRAWL_SSRF_ALLOWED_HOSTS": ["a", "b"],
                            "FEEDS": {"out.jsonl": {"format": "jsonlines"}}, "LOG_LEVEL": "INFO"})
    command = crawl.command({"LOG_LEVEL": "WARNING"})
    assert command[:5] == [sys.executable, "-m", "scrapy", "crawl", "article"]
    assert command[5:] == [
        "-a", "url=https://n.example/", "-a", "depth=2",
        "-s", "CLOSESPIDER_PAGECOUNT=5", "-s", "NEWSCRAWL_SSRF_ALLOWED_HOSTS=a,b",
        "-s", 'FEEDS={"out.jsonl": {"format": "jsonlines"}}', "-s", "LOG_LEVEL=WARNING",
        "-s", "NEWSCRAWL_CRAWL_NAME=nyheter",
    ]
    assert setting_text(True) == "True"


def test_a_crawl_lock_is_exclusive_and_freed_when_its_holder_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from newscrawl.schedule import CrawlLock\n"
        f"lock = CrawlLock({str(tmp_path)!r}, 'nyheter'); assert lock.acquire(); print('held', flush=True); time.sleep(60)"
    )], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = CrawlLock(tmp_path, "nyheter")
        assert not lock.acquire()
        assert lock.holder() == str(holder.pid)
        holder.send_signal(signal.SIGKILL)  # a crash: no cleanup runs, the lock file stays behind
        holder.wait(10)
        assert (tmp_path / "nyheter.lock").exists()
        assert lock.acquire()
        assert not CrawlLock(tmp_path, "nyheter").acquire()
        lock.release()
        after = CrawlLock(tmp_path, "nyheter")
        assert after.acquire()
        after.release()
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


# --- real runs ------------------------------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path: Path):
    root = tmp_path / "www"
    shutil.copytree(FIXTURE_SITE / "www", root)
    with serve_conditional(root) as server:
        yield server


def scrapy(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "scrapy", *args,
               "-s", f"NEWSCRAWL_DATABASE_URL={database_url}", "-s", f"NEWSCRAWL_LOCK_DIR={tmp_path / 'locks'}",
               "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_schedule_once_runs_due_crawls_skips_the_rest_and_runs_lists_them(site, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'news.sqlite3'}"
    toml = write(tmp_path, f"""
[defaults]
settings = {{ AUTOTHROTTLE_ENABLED = false, DOWNLOAD_DELAY = 0 }}

[crawls.nyheter]
args = {{ url = "{site.url}{MANIFEST['entry']}", depth = 1 }}
every = "1h"
""")
    first = scrapy(tmp_path, database_url, "schedule", str(toml), "--once")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Started crawl nyheter" in first.stderr and "Crawl nyheter finished" in first.stderr

    # An hour has not passed: nothing runs.
    site.clear_requests()
    second = scrapy(tmp_path, database_url, "schedule", str(toml), "--once")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Crawl nyheter is not due until" in second.stderr and "Started crawl" not in second.stderr
    assert site.requests == []

    # Due every second: it runs again, conditionally.
    write(tmp_path, toml.read_text("utf-8").replace('every = "1h"', 'every = "1s"'))
    time.sleep(1.1)
    third = scrapy(tmp_path, database_url, "schedule", str(toml), "--once")
    assert third.returncode == 0, third.stderr[-3000:]

    storage = open_storage(database_url)
    try:
        runs = storage.runs(crawl="nyheter")
    finally:
        storage.close()
    assert [(run.status, run.new_articles, run.not_modified) for run in runs] == [
        ("finished", 0, len(DEPTH_1)), ("finished", 1 + len(DEPTH_1), 0)]

    listed = scrapy(tmp_path, database_url, "runs", "--crawl", "nyheter")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[2].split()[:3] == ["id", "crawl", "status"]
    assert [line.split()[1:3] for line in lines[3:]] == [["nyheter", "finished"], ["nyheter", "finished"]]
    assert lines[3].split()[-3:] == ["1", str(len(DEPTH_1)), "0"]  # unchanged, 304, errors


def test_a_running_crawl_is_not_started_twice_and_a_killed_run_is_marked_died(site, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'news.sqlite3'}"
    toml = write(tmp_path, f"""
[crawls.nyheter]
args = {{ url = "{site.url}{MANIFEST['entry']}", depth = 0 }}
settings = {{ AUTOTHROTTLE_ENABLED = false, DOWNLOAD_DELAY = 0 }}
every = "1s"
""")
    # A run in progress holds the lock (here: this test process).
    lock = CrawlLock(tmp_path / "locks", "nyheter")
    assert lock.acquire()
    try:
        busy = scrapy(tmp_path, database_url, "schedule", str(toml), "--once")
    finally:
        lock.release()
    assert busy.returncode == 0, busy.stderr[-3000:]
    assert "Crawl nyheter is still running" in busy.stderr and "Started crawl" not in busy.stderr
    assert site.requests == []

    # A run killed outright left its row "running"; the next scheduled run, holding the lock, marks it died.
    storage = open_storage(database_url)
    try:
        storage.start_run("nyheter", "article", pid=999999)
    finally:
        storage.close()
    time.sleep(1.1)  # that run's start counts: the crawl is due again a second later
    again = scrapy(tmp_path, database_url, "schedule", str(toml), "--once")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 earlier run(s) ended without closing" in again.stderr
    listed = scrapy(tmp_path, database_url, "runs")
    assert [line.split()[1:3] for line in listed.stdout.splitlines()[3:]] == [["nyheter", "finished"], ["nyheter", "died"]]


def test_schedule_needs_a_usable_crawls_toml(tmp_path: Path) -> None:
    done = scrapy(tmp_path, f"sqlite:///{tmp_path / 'news.sqlite3'}", "schedule", str(write(tmp_path, "[crawls.a]\n")), "--once")
    assert done.returncode == 2
    assert "exactly one of every" in done.stderr


def test_schedule_without_once_runs_a_crawl_each_time_it_is_due_until_sigterm(site, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'news.sqlite3'}"
    toml = write(tmp_path, f"""
[crawls.nyheter]
args = {{ url = "{site.url}{MANIFEST['entry']}", depth = 0 }}
settings = {{ AUTOTHROTTLE_ENABLED = false, DOWNLOAD_DELAY = 0 }}
every = "2s"
""")
    command = [sys.executable, "-m", "scrapy", "schedule", str(toml),
               "-s", f"NEWSCRAWL_DATABASE_URL={database_url}", "-s", f"NEWSCRAWL_LOCK_DIR={tmp_path / 'locks'}",
               "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}"]
    scheduler = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        finished: list = []
        while time.monotonic() < deadline and len(finished) < 2:
            time.sleep(0.5)
            try:
                storage = open_storage(database_url)
                try:
                    finished = [run for run in storage.runs(crawl="nyheter") if run.status == "finished"]
                finally:
                    storage.close()
            except Exception:  # the first run has not created the schema yet
                pass
        scheduler.send_signal(signal.SIGTERM)
        _, log = scheduler.communicate(timeout=60)
    finally:
        scheduler.kill()
    assert scheduler.returncode == 0, log[-3000:]
    assert len(finished) >= 2
    # Runs never overlap, and start about the interval apart (recorded to the second, once each crawl is up).
    older, newer = finished[1], finished[0]
    assert (utc(newer.started_at) - utc(older.started_at)).total_seconds() >= 1
    assert utc(newer.started_at) >= utc(older.finished_at)
    assert "Stopping" in log


def test_a_run_stopped_with_sigterm_is_resumed_by_the_next_and_a_finished_one_is_not(site, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'news.sqlite3'}"
    feed = MANIFEST["feeds"]["rss"]
    toml = write(tmp_path, f"""
[crawls.nyheter]
args = {{ feed = "{site.url}{feed}", depth = 0 }}
# One request at a time: the pages not yet fetched wait in the scheduler's queue, which JOBDIR keeps.
settings = {{ AUTOTHROTTLE_ENABLED = false, DOWNLOAD_DELAY = 0.2, CONCURRENT_REQUESTS = 1, NEWSCRAWL_STORAGE_BATCH_SIZE = 2 }}
every = "1s"
resume = true
""")
    command = [sys.executable, "-m", "scrapy", "schedule", str(toml), "--once",
               "-s", f"NEWSCRAWL_DATABASE_URL={database_url}", "-s", f"NEWSCRAWL_LOCK_DIR={tmp_path / 'locks'}",
               "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}", "-s", f"NEWSCRAWL_JOBS_DIR={tmp_path / 'jobs'}"]

    def runs() -> list:
        storage = open_storage(database_url)
        try:
            return storage.runs(crawl="nyheter")
        finally:
            storage.close()

    def articles() -> int:
        storage = open_storage(database_url)
        try:
            return storage.summary().articles
        finally:
            storage.close()

    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                if articles() >= 4:
                    break
            except Exception:  # the run has not created the schema yet
                pass
        [running] = runs()
        os.kill(running.pid, signal.SIGTERM)  # the crawl itself is stopped, as by a shutdown of its host
        first.communicate(timeout=60)
    finally:
        first.kill()
    [stopped] = runs()
    assert stopped.status == "shutdown"
    stored_first = articles()
    assert 0 < stored_first < MANIFEST["feeds"]["count"]
    assert (tmp_path / "jobs" / "nyheter" / "requests.seen").exists()

    # The next run goes on from the queue: the feed is not read again, and the rest of its articles are stored.
    site.clear_requests()
    time.sleep(1.1)
    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming the run stopped at" in resumed.stderr and "Resuming crawl" in resumed.stderr
    assert feed not in site.paths()
    latest = runs()[0]
    assert latest.status == "finished" and latest.new_articles == articles() - stored_first
    total = articles()

    # After a finished run the job directory is emptied: the feed is read again, its articles asked conditionally.
    site.clear_requests()
    time.sleep(1.1)
    fresh = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "Resuming crawl" not in fresh.stderr and feed in site.paths()
    assert (runs()[0].new_articles, runs()[0].not_modified) == (0, total)
    assert articles() == total
