"""Replay of saved pages at the download layer, so a fixture is crawled under its real URL without the network."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.httpobj import urlparse_cached
from w3lib.url import canonicalize_url

from newscrawl.saved_pages import SavedPage, iter_saved_pages

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)


class ReplayMiddleware:
    """Answers requests for saved pages' URLs from ``NEWSCRAWL_REPLAY_DIR`` (``<name>/{page.html,meta.json}``).

    Any other URL on a replayed host (robots.txt, a related article that was not saved) gets a 404, so a
    replayed crawl never reaches the network for those hosts; other hosts are fetched as usual.
    """

    def __init__(self, pages: list[SavedPage], stats: StatsCollector):
        self.pages = {canonicalize_url(page.url): page for page in pages}
        self.hosts = {urlparse_cached(Request(page.url)).netloc for page in pages}
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        folder = crawler.settings.get("NEWSCRAWL_REPLAY_DIR")
        if not folder:
            raise NotConfigured  # off unless asked for; a message would be logged as a warning on every crawl
        pages = list(iter_saved_pages(folder))
        if not pages:
            raise NotConfigured(f"NEWSCRAWL_REPLAY_DIR={folder!r} holds no saved pages (<name>/meta.json + page.html)")
        logger.info("Replaying %d saved pages from %s", len(pages), folder)
        return cls(pages, crawler.stats)

    def process_request(self, request: Request) -> Response | None:
        page = self.pages.get(canonicalize_url(request.url))
        if page is not None:
            self.stats.inc_value("newscrawl/replay/hit")
            headers = {"Content-Type": page.content_type}
            respcls = responsetypes.from_args(headers=headers, url=request.url, body=page.body)
            return respcls(request.url, body=page.body, headers=headers, request=request, flags=["replayed"])
        if urlparse_cached(request).netloc in self.hosts:
            self.stats.inc_value("newscrawl/replay/not_saved")
            return Response(request.url, status=404, request=request, flags=["replayed"])
        return None
