"""Scrapy's scheduler, made safe to resume in a JOBDIR that a killed crawl (SIGKILL, OOM, power loss) left behind."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.core.scheduler import Scheduler
from scrapy.utils.job import job_dir

from newscrawl.downloadermiddlewares.incremental import CONDITIONAL_META

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

#: In the job directory while a crawl runs in it; left behind only by a crawl that never closed.
RUNNING_MARKER = "newscrawl.running"


class ResumableScheduler(Scheduler):
    """Resumes a JOBDIR after a clean stop as Scrapy does, and starts it over after a crash.

    Scrapy writes the pending queue's state (``requests.queue/active.json``, queue file headers) only when a
    crawl closes, but appends to ``requests.seen`` as each request is scheduled. After a kill, the queue files no
    longer match the state an earlier pause wrote (Scrapy then fails on every pop), and ``requests.seen`` names pages
    only queued, or fetched with their items still in the storage batch, that no queue will hand out again: a resume
    would filter them, and every link on them, for good. Keeping only the fingerprints of stored pages would not do
    either: the links found on those pages were in the lost queue. So a crawl marks the job directory while it runs;
    a crawl that finds the mark forgets the dead run's queue and fingerprints and starts again from its start URLs.
    Stored rows stay (storage upserts one row per article), so the runs together store every reachable article,
    each once. That crawl asks for no page conditionally: the dead run's links are found again only by reading the
    pages they were on, and a 304 for an article stored before would carry none.
    """

    restarted: bool = False
    """True in a crawl that started over after a killed one."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        directory = job_dir(crawler.settings)
        # Before the dupefilter is built: it reads requests.seen when it is created.
        restarted = bool(directory) and forget_crashed_run(Path(directory), crawler.stats)
        scheduler = super().from_crawler(crawler)
        scheduler.restarted = restarted
        return scheduler

    def enqueue_request(self, request: Request) -> bool:
        if self.restarted:
            request.meta[CONDITIONAL_META] = False
        return super().enqueue_request(request)

    def open(self, spider: Spider) -> Deferred[None] | None:
        if self.dqdir:
            (Path(self.dqdir).parent / RUNNING_MARKER).write_text("a crawl is running, or was killed, in this JOBDIR\n")
        return super().open(spider)

    def close(self, reason: str) -> Deferred[None] | None:
        # Scrapy's close writes the queue's state and closes the dupefilter (a plain file close for RFPDupeFilter):
        # once it returns, the directory can be resumed.
        result = super().close(reason)
        if self.dqdir:
            (Path(self.dqdir).parent / RUNNING_MARKER).unlink(missing_ok=True)
        return result


def forget_crashed_run(directory: Path, stats: StatsCollector) -> bool:
    """Remove the queue and seen requests of a job directory whose last crawl never closed; True if it had to."""
    if not (directory / RUNNING_MARKER).exists():
        return False
    shutil.rmtree(directory / "requests.queue", ignore_errors=True)
    (directory / "requests.seen").unlink(missing_ok=True)
    stats.inc_value("newscrawl/jobdir/restarted")
    logger.warning("The last crawl in JOBDIR %s did not close (killed?): its queue is lost, so this crawl starts again "
                   "from the start URLs; articles already stored are kept", directory)
    return True
