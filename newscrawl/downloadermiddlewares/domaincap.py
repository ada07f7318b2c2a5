"""Downloader middleware capping the pages fetched from one host (NEWSCRAWL_MAX_PAGES_PER_DOMAIN)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


class DomainCapMiddleware:
    """After ``NEWSCRAWL_MAX_PAGES_PER_DOMAIN`` requests to a host, refuses the rest (``newscrawl/links/refused/cap``).

    It sits after OffsiteMiddleware and RobotsTxtMiddleware and below the scheduler's dupefilter, so only requests
    that would really go out count; robots.txt itself is not a page and is never refused.  0 switches it off.
    """

    def __init__(self, cap: int, stats: StatsCollector):
        self.cap = cap
        self.stats = stats
        self.fetched: Counter[str] = Counter()
        self.capped: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        cap = crawler.settings.getint("NEWSCRAWL_MAX_PAGES_PER_DOMAIN", 0)
        if cap < 0:
            raise ValueError(f"NEWSCRAWL_MAX_PAGES_PER_DOMAIN must be 0 (no cap) or more, got {cap}")
        if cap == 0:
            raise NotConfigured("NEWSCRAWL_MAX_PAGES_PER_DOMAIN is 0")
        return cls(cap, crawler.stats)

    def process_request(self, request: Request) -> None:
        parsed = urlparse_cached(request)
        host = parsed.hostname
        # A retry is the same page again, and robots.txt is no page: neither spends the cap.
        if not host or parsed.path == "/robots.txt" or request.meta.get("retry_times"):
            return
        if self.fetched[host] < self.cap:
            self.fetched[host] += 1
            return
        self.stats.inc_value("newscrawl/links/refused/cap")
        if host not in self.capped:
            self.capped.add(host)
            logger.info("Reached NEWSCRAWL_MAX_PAGES_PER_DOMAIN=%d for %s; further pages of it are refused",
                        self.cap, host)
        raise IgnoreRequest(f"Page cap of {self.cap} reached for {host}")
