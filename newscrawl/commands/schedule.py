"""`scrapy schedule crawls.toml [--once]`: runs each crawl of the file when it is due, never two runs of one crawl at once."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.conf import arglist_to_dict, get_config
from scrapy.utils.log import configure_logging

from newscrawl.schedule import Crawl, CrawlLock, ScheduleError, load_crawls, start_crawl, utc
from newscrawl.scrapyd import ScrapydClient, ScrapydError
from newscrawl.storage import Run, StorageError, open_storage, redact

if TYPE_CHECKING:
    import argparse
    import subprocess

logger = logging.getLogger(__name__)

#: How often the long-running form looks at its runs and the clock.
TICK_SECONDS = 1.0
#: A due crawl whose lock another process holds is tried again after this long.
LOCKED_RETRY_SECONDS = 30.0


@dataclass
class Running:
    crawl: Crawl
    lock: CrawlLock
    process: subprocess.Popen
    started: datetime


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[options] <crawls.toml>"

    def short_desc(self) -> str:
        return "Run the crawls of a crawls.toml when they are due (--once: those due now, then exit)"

    def long_desc(self) -> str:
        return (
            "Each [crawls.<name>] of the file names a spider, its -a arguments, its -s settings and when it runs "
            "(every = \"15m\" or cron = \"*/15 * * * *\", UTC). A crawl is due when no run of it started since its "
            "last scheduled time (runs table of its NEWSCRAWL_DATABASE_URL). Each run is a `scrapy crawl` child "
            "holding the crawl's lock in NEWSCRAWL_LOCK_DIR, so a crawl never runs twice at once and a killed run "
            "frees it. With --scrapyd URL each due run is queued in Scrapyd (job id <crawl>@<time>) unless a job "
            "of that crawl is still pending or running there. With --once the exit status is 1 when any run failed "
            "(or could not be handed to Scrapyd)."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--once", action="store_true",
                            help="start the crawls that are due now, wait for them, then exit (for cron or a systemd timer)")
        parser.add_argument("--scrapyd", metavar="URL",
                            help="hand due crawls to this Scrapyd (schedule.json) instead of running them here")
        parser.add_argument("--project", metavar="NAME",
                            help="the Scrapyd project (default: [deploy] project in scrapy.cfg, else BOT_NAME)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give one crawls.toml")
        assert self.settings is not None
        configure_logging(self.settings)
        try:
            self.crawls = load_crawls(args[0])
        except ScheduleError as exc:
            raise UsageError(str(exc)) from exc
        self.lock_dir = self.settings.get("NEWSCRAWL_LOCK_DIR") or "data/locks"
        self.jobs_dir = Path(self.settings.get("NEWSCRAWL_JOBS_DIR") or "data/jobs").resolve()
        # The scheduler's own -s NAME=VALUE apply to every run it starts, over crawls.toml.
        self.overrides = arglist_to_dict(opts.set)
        #: In-memory start of our own last run per crawl: a run that could not record itself is not re-run at once.
        self.started: dict[str, datetime] = {}
        self.running: dict[str, Running] = {}
        self.failed = False
        self.scrapyd: ScrapydClient | None = None
        if opts.scrapyd:
            project = opts.project or get_config().get("deploy", "project", fallback=self.settings.get("BOT_NAME"))
            self.scrapyd = ScrapydClient(opts.scrapyd, project)
        if opts.once:
            self.start_due(datetime.now(timezone.utc))
            while self.running:
                self.reap()
                time.sleep(0.2)
            self.exitcode = 1 if self.failed else 0
        else:
            self.serve()  # a failed run is logged; the scheduler goes on, and exits 0 when told to stop

    def database_url(self, crawl: Crawl) -> str:
        """The database the crawl's runs write to, where its runs are looked up."""
        settings = crawl.effective_settings(self.overrides)
        return str(settings.get("NEWSCRAWL_DATABASE_URL", self.settings.get("NEWSCRAWL_DATABASE_URL") or ""))

    def last_run(self, crawl: Crawl) -> Run | None:
        """The latest recorded run of the crawl, or None (never ran, or its database cannot be read)."""
        url = self.database_url(crawl)
        if not url:
            return None
        try:
            storage = open_storage(url)
            try:
                runs = storage.runs(limit=1, crawl=crawl.name)
            finally:
                storage.close()
        except (StorageError, ValueError) as exc:
            logger.warning("Cannot read the runs of %s from %s (%s); judging by this process's runs only",
                           crawl.name, redact(url), exc)
            return None
        return runs[0] if runs else None

    def last_start(self, crawl: Crawl) -> datetime | None:
        """When the latest run of the crawl started: the runs table, or our own memory if that is later."""
        run = self.last_run(crawl)
        known = [when for when in (run and utc(run.started_at), self.started.get(crawl.name)) if when is not None]
        return max(known) if known else None

    def job_settings(self, crawl: Crawl) -> dict[str, str]:
        """``JOBDIR`` for a crawl with ``resume = true``: kept after a run stopped with SIGTERM, else emptied.

        Scrapy's JOBDIR continues one crawl; a finished run's seen requests would filter every page of the next
        run, start pages included, so only a run that was stopped part-way ("shutdown") is resumed.
        """
        if not crawl.resume:
            return {}
        directory = self.jobs_dir / crawl.name
        last = self.last_run(crawl)
        if last is not None and last.status == "shutdown" and directory.exists():
            logger.info("Crawl %s: resuming the run stopped at %s from %s", crawl.name, last.finished_at, directory)
        elif directory.exists():
            shutil.rmtree(directory)
        return {"JOBDIR": str(directory)}

    def start_due(self, now: datetime) -> None:
        for crawl in self.crawls:
            if crawl.name in self.running:
                continue
            last = self.last_start(crawl)
            if not crawl.is_due(last, now):
                logger.info("Crawl %s is not due until %s", crawl.name, crawl.next_run(last).isoformat(timespec="seconds"))
                continue
            self.start(crawl, now)

    def start(self, crawl: Crawl, now: datetime) -> bool:
        if self.scrapyd is not None:
            return self.hand_to_scrapyd(self.scrapyd, crawl, now)
        lock = CrawlLock(self.lock_dir, crawl.name)
        if not lock.acquire():
            logger.warning("Crawl %s is still running (lock %s held by pid %s): not started again",
                           crawl.name, lock.path, lock.holder())
            return False
        self.abandon_dead_runs(crawl)
        overrides = {**self.job_settings(crawl), **self.overrides}
        try:
            process = start_crawl(crawl, lock, os.getcwd(), overrides)
        except OSError:
            lock.release()
            raise
        logger.info("Started crawl %s (pid %d): %s", crawl.name, process.pid, " ".join(crawl.command(overrides)[2:]))
        self.started[crawl.name] = now
        self.running[crawl.name] = Running(crawl, lock, process, now)
        return True

    def hand_to_scrapyd(self, scrapyd: ScrapydClient, crawl: Crawl, now: datetime) -> bool:
        """Queue the run in Scrapyd, unless a job of this crawl is still pending or running there."""
        try:
            if crawl.name in scrapyd.active_crawls():
                logger.warning("Crawl %s is still pending or running in Scrapyd (%s): not scheduled again",
                               crawl.name, scrapyd.url)
                return False
            self.abandon_dead_runs(crawl)
            job = scrapyd.schedule(crawl, {**self.job_settings(crawl), **self.overrides}, now)
        except ScrapydError as exc:
            self.failed = True
            logger.error("Cannot hand crawl %s to Scrapyd: %s", crawl.name, exc)
            return False
        logger.info("Handed crawl %s to Scrapyd %s (project %s) as job %s", crawl.name, scrapyd.url, scrapyd.project, job)
        self.started[crawl.name] = now
        return True

    def abandon_dead_runs(self, crawl: Crawl) -> None:
        """With the lock held (or no Scrapyd job of it) no run of the crawl is alive: "running" rows are dead runs."""
        url = self.database_url(crawl)
        if not url:
            return
        try:
            storage = open_storage(url)
            try:
                dead = storage.abandon_runs(crawl.name)
            finally:
                storage.close()
        except (StorageError, ValueError):
            return  # the run itself reports an unusable database
        if dead:
            logger.warning("Crawl %s: %d earlier run(s) ended without closing (killed?); marked as died", crawl.name, dead)

    def reap(self) -> None:
        for name, run in list(self.running.items()):
            status = run.process.poll()
            if status is None:
                continue
            run.lock.release()
            del self.running[name]
            seconds = (datetime.now(timezone.utc) - run.started).total_seconds()
            if status == 0:
                logger.info("Crawl %s finished in %.0fs", name, seconds)
            else:
                self.failed = True
                logger.error("Crawl %s ended with exit status %d after %.0fs", name, status, seconds)

    def serve(self) -> None:
        """Run forever: start each crawl when due, until SIGTERM or SIGINT; then stop the runs gracefully."""
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        next_due: dict[str, datetime] = {}
        logger.info("Scheduling %d crawl(s): %s", len(self.crawls), ", ".join(c.name for c in self.crawls))
        while not stopping:
            self.reap()
            now = datetime.now(timezone.utc)
            for crawl in self.crawls:
                if crawl.name in self.running:
                    next_due.pop(crawl.name, None)  # recomputed from this run's start once it ends
                    continue
                if crawl.name not in next_due:
                    next_due[crawl.name] = crawl.next_run(self.last_start(crawl)) or now
                if next_due[crawl.name] <= now:
                    if self.start(crawl, now):
                        # Recomputed from this start (a Scrapyd job is never in self.running).
                        next_due.pop(crawl.name)
                    else:
                        next_due[crawl.name] = now + timedelta(seconds=LOCKED_RETRY_SECONDS)
            time.sleep(TICK_SECONDS)
        logger.info("Stopping: asking %d running crawl(s) to finish", len(self.running))
        for run in self.running.values():
            run.process.send_signal(signal.SIGTERM)  # Scrapy closes the spider gracefully, flushing its batch
        while self.running:
            self.reap()
            time.sleep(0.2)
