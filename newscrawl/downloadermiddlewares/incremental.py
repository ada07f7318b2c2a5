"""Conditional requests from the per-URL fetch state in newscrawl's database: a 304 ends the request, counted."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http.request import NO_CALLBACK

from newscrawl.storage import FetchState, Storage, StorageError, open_storage, redact

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

#: Request meta key: False never makes the request conditional, True makes it so even at depth 0.
CONDITIONAL_META = "newscrawl_conditional"
#: Set by the middleware on a request it made conditional.
SENT_META = "newscrawl_conditional_sent"
#: After the database fails, wait this long before trying it again; requests go out unconditionally meanwhile.
RECONNECT_SECONDS = 30.0
#: Statuses (runs table) of a previous run that ended without its queue: killed ("running", "died") or stopped.
INTERRUPTED = ("running", "died", "shutdown")


class NotModified(IgnoreRequest):
    """The server answered 304 to our conditional request: the stored article is current."""


class ConditionalRequestMiddleware:
    """Adds ``If-None-Match`` / ``If-Modified-Since`` from ``fetch_state`` to requests for pages whose article is stored.

    Start requests (depth 0: front pages, feeds, sitemaps) always go out in full, since new links are found there;
    so do pages whose article was never stored (a crash before the batch was written, or not an article). A 304
    drops the request (``newscrawl/http/not_modified``); a 200 records the response's validators and body hash.
    ``NEWSCRAWL_REVISIT_AFTER`` > 0 skips, without asking, a stored page asked less than that many seconds ago
    (``newscrawl/http/revisit_skipped``). Off when ``NEWSCRAWL_INCREMENTAL`` is false or storage is off.
    """

    def __init__(self, database_url: str, revisit_after: float, stats: StatsCollector,
                 crawl_name: str | None = None, jobdir: bool = False):
        self.database_url = database_url
        self.revisit_after = revisit_after
        self.stats = stats
        self.crawl_name = crawl_name
        self.jobdir = jobdir
        self.storage: Storage | None = None
        self.failed_at: float | None = None
        #: The previous run ended without finishing its queue: this one asks for every page in full.
        self.after_interrupted_run = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        url = settings.get("NEWSCRAWL_DATABASE_URL")
        if not url or not settings.getbool("NEWSCRAWL_INCREMENTAL", True):
            raise NotConfigured
        revisit_after = settings.getfloat("NEWSCRAWL_REVISIT_AFTER", 0.0)
        if revisit_after < 0:
            raise ValueError(f"NEWSCRAWL_REVISIT_AFTER must be 0 or more seconds, got {revisit_after}")
        middleware = cls(url, revisit_after, crawler.stats, crawl_name=settings.get("NEWSCRAWL_CRAWL_NAME") or None,
                         jobdir=bool(settings.get("JOBDIR")))
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def spider_opened(self, spider: Spider) -> None:
        """Look at how the previous run of this crawl ended (``runs``, as RunRecorder names runs).

        Links are found only on pages read in full. A run that ended without finishing its queue (killed, or
        stopped without a JOBDIR to resume) left pages unvisited whose links sit on pages it did store; were those
        answered 304 now, the unvisited pages would never be found. So this run asks for every page in full.
        """
        storage = self._storage()
        if storage is None:
            return
        name = self.crawl_name or spider.name
        try:
            runs = storage.runs(limit=5, crawl=name)
        except StorageError as exc:
            self._failed(exc)
            return
        # This run's own row may already be there (RunRecorder), or not yet.
        previous = next((run for run in runs if run.pid != os.getpid()), None)
        if previous is None or previous.status not in INTERRUPTED or (previous.status == "shutdown" and self.jobdir):
            return
        self.after_interrupted_run = True
        self.stats.set_value("newscrawl/incremental/after_interrupted_run", 1)
        logger.warning("The previous run of %s (started %s) ended as %r without finishing: this run fetches every "
                       "page in full, to find again the pages it never reached", name, previous.started_at,
                       previous.status)

    def spider_closed(self) -> None:
        if self.storage is not None:
            self.storage.close()
            self.storage = None

    def _storage(self) -> Storage | None:
        if self.storage is None and (self.failed_at is None or time.monotonic() - self.failed_at > RECONNECT_SECONDS):
            try:
                self.storage = open_storage(self.database_url)
                self.failed_at = None
            except StorageError as exc:
                self._failed(exc)
        return self.storage

    def _failed(self, exc: Exception) -> None:
        self.stats.inc_value("newscrawl/incremental/db_errors")
        logger.warning("Fetch state in %s unavailable (%s); requests go out unconditionally for now",
                       redact(self.database_url), exc)
        if self.storage is not None:
            try:
                self.storage.close()
            except Exception:  # a broken connection may fail to close; it is dropped either way
                pass
        self.storage = None
        self.failed_at = time.monotonic()

    @staticmethod
    def _tracked(request: Request) -> bool:
        # Only pages meant for the spider: not robots.txt or other internal fetches (NO_CALLBACK), not file://.
        return request.callback is not NO_CALLBACK and request.url.startswith(("http://", "https://"))

    def _state(self, url: str) -> FetchState | None:
        storage = self._storage()
        if storage is None:
            return None
        try:
            return storage.fetch_state(url)
        except StorageError as exc:
            self._failed(exc)
            return None

    def process_request(self, request: Request) -> None:
        wanted = request.meta.get(CONDITIONAL_META)
        if not self._tracked(request) or wanted is False or (wanted is None and not request.meta.get("depth")):
            return
        if self.after_interrupted_run:
            return
        state = self._state(request.url)
        if state is None or state.stored_at is None:
            return
        if self.revisit_after and _age(state.checked_at) < self.revisit_after:
            self.stats.inc_value("newscrawl/http/revisit_skipped")
            raise IgnoreRequest(f"asked less than {self.revisit_after:g}s ago: {request.url}")
        if state.etag:
            request.headers.setdefault("If-None-Match", state.etag)
        if state.last_modified:
            request.headers.setdefault("If-Modified-Since", state.last_modified)
        if state.etag or state.last_modified:
            request.meta[SENT_META] = True
            self.stats.inc_value("newscrawl/http/conditional")

    def process_response(self, request: Request, response: Response) -> Response:
        if not self._tracked(request):
            return response
        if response.status == 304 and request.meta.get(SENT_META):
            self.stats.inc_value("newscrawl/http/not_modified")
            self._write(lambda storage: storage.record_not_modified(request.url))
            raise NotModified(f"not modified: {request.url}")
        if response.status == 200:
            etag = _header(response, b"ETag")
            last_modified = _header(response, b"Last-Modified")
            body_hash = hashlib.sha256(response.body).hexdigest()
            self._write(lambda storage: storage.record_fetch(response.url, etag, last_modified, body_hash))
        return response

    def _write(self, write: Callable[[Storage], None]) -> None:
        storage = self._storage()
        if storage is None:
            return
        try:
            write(storage)
        except StorageError as exc:
            self._failed(exc)


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _age(timestamp: str) -> float:
    """Seconds since an ISO 8601 timestamp written by storage (UTC)."""
    then = datetime.fromisoformat(timestamp)
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()
