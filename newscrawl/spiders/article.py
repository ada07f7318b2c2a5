"""The article spider: fetches the given pages, yields one item per article and follows related-article links."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import HtmlResponse, Response
from w3lib.url import url_query_cleaner

from newscrawl.items import Article
from newscrawl.loaders import load_article
from newscrawl.page.article import read_article

#: Query parameters that only say where a click came from; dropping them keeps one URL per article.
TRACKING_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "fbclid", "gclid")
WEB_SCHEMES = ("http", "https")


def parse_depth(value: Any) -> int:
    try:
        depth = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"depth must be a whole number of hops, got {value!r}") from None
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    return depth


def start_url(value: str) -> str:
    """A start URL as given; an existing local path becomes its file:// URL, anything else must be http(s) or file."""
    value = value.strip()
    scheme = urlsplit(value).scheme.lower()
    if scheme in (*WEB_SCHEMES, "file"):
        return value
    if Path(value).exists():
        return Path(value).resolve().as_uri()
    raise ValueError(f"not an http(s) or file:// URL, nor an existing file: {value!r}")


def read_url_list(path: str | Path) -> list[str]:
    """URLs from a text file, one per line; blank lines and lines starting with # are skipped."""
    lines = Path(path).read_text("utf-8-sig").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def followable(url: str) -> str | None:
    """The URL to request for a link found in a page: http(s) only, without fragment or tracking parameters."""
    if urlsplit(url).scheme.lower() not in WEB_SCHEMES:
        return None
    return url_query_cleaner(url, TRACKING_PARAMS, remove=True, keep_fragments=False)


class ArticleSpider(scrapy.Spider):
    """``-a url=URL`` and/or ``-a urls=FILE`` (one URL per line); ``-a depth=N`` hops of related links (default 1)."""

    name = "article"

    def __init__(self, url: str | None = None, urls: str | None = None, depth: int | str = 1, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        given = ([url] if url else []) + (read_url_list(urls) if urls else [])
        if not given:
            raise ValueError("give a start page: -a url=https://... or -a urls=list.txt (one URL per line)")
        self.start_urls = [start_url(value) for value in given]
        self.depth = parse_depth(depth)
        # file:// start URLs have no host: a domain derived from them would filter out every http(s) link.
        hosts = {urlsplit(u).hostname for u in self.start_urls if urlsplit(u).scheme.lower() in WEB_SCHEMES}
        self.allowed_domains = sorted(host for host in hosts if host)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.start_urls:
            # A file:// start page is the user's explicit choice; the offsite filter knows only web hosts.
            meta = {"allow_offsite": True} if url.lower().startswith("file:") else {}
            yield scrapy.Request(url, callback=self.parse, meta=meta)

    def parse(self, response: Response) -> Iterator[Article | scrapy.Request]:
        stats = self.crawler.stats
        if not isinstance(response, HtmlResponse):
            stats.inc_value("newscrawl/pages/not_html")
            self.logger.info("Skipped %s: not an HTML page (%s)", response.url, type(response).__name__)
            return
        reading = read_article(response.selector, response.url)
        if not reading.is_article:
            reason = reading.not_article_reason or "unknown"
            stats.inc_value("newscrawl/pages/not_article")
            stats.inc_value(f"newscrawl/pages/not_article/{reason}")
            self.logger.info("Not an article (%s): %s", reason, response.url)
        else:
            stats.inc_value("newscrawl/pages/article")
            yield load_article(reading, fetched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        if response.meta.get("depth", 0) >= self.depth:
            return
        links = [related.url for related in reading.related] + list(reading.article_links)
        for link in dict.fromkeys(links):
            url = followable(response.urljoin(link))
            if url is not None:
                yield response.follow(url, callback=self.parse)
