"""Records each crawl run in the ``runs`` table: a row when the spider opens, its counts when it closes."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from newscrawl.storage import Storage, StorageError, open_storage, redact

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

#: runs column -> the stat it is read from when the spider closes.
RUN_STATS = {
    "pages": "response_received_count",
    "items": "item_scraped_count",
    "new_articles": "newscrawl/articles/new",
    "changed_articles": "newscrawl/articles/changed",
    "unchanged_articles": "newscrawl/articles/unchanged",
    "not_modified": "newscrawl/http/not_modified",
    "errors": "log_count/ERROR",
}


class RunRecorder:
    """One ``runs`` row per crawl, named by ``NEWSCRAWL_CRAWL_NAME`` (``scrapy schedule`` sets it; else the spider's name).

    The row says "running" until the spider closes, then the close reason (``finished``, ``shutdown``, ...); a run
    that was killed outright stays "running" until ``scrapy schedule`` takes the crawl's lock and marks it "died".
    """

    def __init__(self, database_url: str, crawl_name: str | None, stats: StatsCollector):
        self.database_url = database_url
        self.crawl_name = crawl_name
        self.stats = stats
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        url = settings.get("NEWSCRAWL_DATABASE_URL")
        if not url or not settings.getbool("NEWSCRAWL_RUNS_ENABLED", True):
            raise NotConfigured
        recorder = cls(url, settings.get("NEWSCRAWL_CRAWL_NAME") or None, crawler.stats)
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    def _open(self) -> Storage | None:
        try:
            return open_storage(self.database_url)
        except StorageError as exc:
            logger.warning("Cannot record this run in %s: %s", redact(self.database_url), exc)
            return None

    def spider_opened(self, spider: Spider) -> None:
        storage = self._open()
        if storage is None:
            return
        try:
            self.run_id = storage.start_run(self.crawl_name or spider.name, spider.name, pid=os.getpid())
            self.stats.set_value("newscrawl/run/id", self.run_id)
        except StorageError as exc:
            logger.warning("Cannot record this run in %s: %s", redact(self.database_url), exc)
        finally:
            storage.close()

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is None:
            return
        counts = {column: self.stats.get_value(stat, 0) for column, stat in RUN_STATS.items()}
        storage = self._open()
        if storage is None:
            return
        try:
            storage.finish_run(self.run_id, reason, counts)
        except StorageError as exc:
            logger.warning("Cannot record the end of run %d in %s: %s", self.run_id, redact(self.database_url), exc)
        finally:
            storage.close()
