"""Log formatter: a download that retrying already gave up on is not logged a second time with a traceback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.logformatter import LogFormatter

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.logformatter import LogFormatterResult
    from twisted.python.failure import Failure

#: Set by BackoffRetryMiddleware on a request it gave up on, after logging the one ERROR line that says so.
GAVE_UP_META = "newscrawl_retry_gave_up"


class NewscrawlLogFormatter(LogFormatter):
    def download_error(
        self, failure: Failure, request: Request, spider: Spider, errmsg: str | None = None
    ) -> LogFormatterResult:
        result = super().download_error(failure, request, spider, errmsg)
        if request.meta.get(GAVE_UP_META):
            # The scraper would add the traceback of an ordinary network error to a failure already reported.
            result["level"] = logging.DEBUG
        return result
