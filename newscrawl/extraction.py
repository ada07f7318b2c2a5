"""Page understanding in worker processes, so the reactor keeps downloading while pages are read.

Reading a page is pure CPU work in Python: in the crawl's own process it holds the reactor (and the GIL)
for as long as it takes. This downloader middleware hands each HTML response's bytes to a process pool,
awaits the reading and its loaded item, and leaves them in ``request.meta`` (``newscrawl_reading``,
``newscrawl_item``) for the spider, which reads the page itself when it finds nothing there (pool
switched off, or a worker failed).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse

from newscrawl.items import Article
from newscrawl.loaders import load_article
from newscrawl.page.article import ArticleReading, read_article

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

READING_META_KEY = "newscrawl_reading"
ITEM_META_KEY = "newscrawl_item"


def read_in_worker(url: str, body: bytes, content_type: str | None) -> tuple[ArticleReading, Article | None]:
    """What the spider would read from this response, and its loaded item, computed in a worker process."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = HtmlResponse(url, body=body, headers=headers)
    reading = read_article(response.selector, url)
    return reading, load_article(reading) if reading.is_article else None


def default_workers() -> int:
    # One worker beside the crawl's own process on a machine with a second core; none on a single core,
    # where a worker could only take turns with the reactor.
    return 1 if (os.cpu_count() or 1) > 1 else 0


class ExtractionPoolMiddleware:
    """Reads HTML responses in ``NEWSCRAWL_EXTRACTION_WORKERS`` processes (0 switches it off)."""

    def __init__(self, workers: int, stats: StatsCollector):
        self.workers = workers
        self.stats = stats
        self.executor: ProcessPoolExecutor | None = None
        self.broken = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        workers = crawler.settings.get("NEWSCRAWL_EXTRACTION_WORKERS")
        workers = default_workers() if workers in (None, "", "auto") else int(workers)
        if workers <= 0:
            raise NotConfigured("NEWSCRAWL_EXTRACTION_WORKERS is 0: pages are read in the crawl's process")
        middleware = cls(workers, crawler.stats)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def _pool(self) -> ProcessPoolExecutor:
        if self.executor is None:
            # forkserver: workers are forked from a clean server process, never from the crawl's own, which
            # runs threads (DNS resolution) that a plain fork would copy in an unknown state.
            context = multiprocessing.get_context("forkserver")
            self.executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self.executor

    async def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        if self.broken or not isinstance(response, HtmlResponse) or READING_META_KEY in request.meta:
            return response
        content_type = response.headers.get("Content-Type")
        future = self._pool().submit(
            read_in_worker, response.url, response.body, content_type.decode("latin-1") if content_type else None
        )
        try:
            reading = await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory): read every page in the crawl's process from now on.
            self.stats.inc_value("newscrawl/extraction/worker_errors")
            logger.error("Extraction worker died (%s); reading pages in the crawl's process from now on", exc)
            self.broken = True
            return response
        except Exception:  # this page failed to read: the spider reads it again and reports it the usual way
            self.stats.inc_value("newscrawl/extraction/page_errors")
            return response
        self.stats.inc_value("newscrawl/extraction/pooled")
        request.meta[READING_META_KEY], request.meta[ITEM_META_KEY] = reading
        return response

    def spider_closed(self, spider: Any = None) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
