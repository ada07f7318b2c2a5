"""Retry with exponential backoff that honours Retry-After, which Scrapy 2.19's RetryMiddleware ignores."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message

from newscrawl.logformatter import GAVE_UP_META

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or HTTP-date, RFC 9110 10.2.3); None if absent or bad."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware (same RETRY_* settings, stats and give-up line) that waits before each retry.

    The wait is the server's Retry-After when it sends one, else NEWSCRAWL_RETRY_BACKOFF_BASE * 2**(n-1) seconds,
    never more than NEWSCRAWL_RETRY_MAX_DELAY; a Retry-After beyond that is given up at once.  The wait holds only
    this request (other slots keep downloading), which is what a server's 429 or 503 asks of one URL.
    """

    backoff_base: float
    max_delay: float

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = super().from_crawler(crawler)
        middleware.backoff_base = crawler.settings.getfloat("NEWSCRAWL_RETRY_BACKOFF_BASE", 1.0)
        middleware.max_delay = crawler.settings.getfloat("NEWSCRAWL_RETRY_MAX_DELAY", 60.0)
        return middleware

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        asked = retry_after_seconds(response.headers.get("Retry-After"))
        stats = self.crawler.stats
        assert stats is not None
        if asked is not None and asked > self.max_delay:
            stats.inc_value("newscrawl/retry/gave_up/retry_after_too_long")
            logger.error(
                "Gave up retrying %s: the server asks to wait %.0f s (Retry-After), more than "
                "NEWSCRAWL_RETRY_MAX_DELAY = %.0f s",
                request, asked, self.max_delay,
            )
            return response
        retry = self._retry_request(request, response_status_message(response.status))
        if retry is None:
            return response
        if asked is not None:
            stats.inc_value("newscrawl/retry/retry_after_honoured")
        await self._wait(retry, asked)
        return retry

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        retry = self._retry_request(request, exception)
        if retry is None:
            # get_retry_request has logged the one "Gave up retrying" line; the log formatter skips the repeat.
            request.meta[GAVE_UP_META] = True
            return None
        await self._wait(retry, None)
        return retry

    def _retry_request(self, request: Request, reason: str | Exception) -> Request | None:
        # The same per-request meta overrides RetryMiddleware._retry reads, through Scrapy's public helper.
        assert self.crawler.spider is not None
        return get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=request.meta.get("priority_adjust", self.priority_adjust),
            give_up_log_level=request.meta.get("give_up_log_level", self.give_up_log_level),
        )

    async def _wait(self, retry: Request, asked: float | None) -> None:
        attempt = retry.meta.get("retry_times", 1)
        delay = asked if asked is not None else self.backoff_base * 2 ** (attempt - 1)
        delay = min(delay, self.max_delay)
        if delay > 0:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("newscrawl/retry/delayed")
            logger.debug("Waiting %.1f s before retry %d of %s", delay, attempt, retry)
            await sleep(delay)
