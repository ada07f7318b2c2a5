"""Keeps Scrapy's cookie domain check offline: tldextract reads its bundled Public Suffix List, never downloads it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares import cookies
from scrapy.exceptions import NotConfigured
from tldextract import TLDExtract

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class OfflinePublicSuffixList:
    """Scrapy's CookiesMiddleware asks tldextract whether a cookie's domain is a public suffix, and tldextract, on its
    first use without a cache, downloads the Public Suffix List from publicsuffix.org or GitHub with ``requests``:
    outside Scrapy's downloader, so past the SSRF guard and from every machine a crawl runs on. Scrapy offers no
    setting for it; its extractor is a module attribute built at import, so this extension empties that extractor's
    URL list before any response is handled, and tldextract falls back to the snapshot bundled with the package
    (the package's own, documented fallback). ``NEWSCRAWL_PSL_OFFLINE = False`` lets tldextract download again.
    """

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("NEWSCRAWL_PSL_OFFLINE", True):
            raise NotConfigured
        extractor = getattr(cookies, "_split_domain", None)
        if not isinstance(extractor, TLDExtract):
            # Scrapy changed how it checks cookie domains; say so rather than pretend the crawl is offline.
            logger.warning("Cannot keep tldextract offline: scrapy.downloadermiddlewares.cookies has no TLDExtract "
                           "_split_domain any more; it may download the Public Suffix List")
            raise NotConfigured
        extractor.suffix_list_urls = ()
        return cls()
