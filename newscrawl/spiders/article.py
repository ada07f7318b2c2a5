"""The article spider: starts from pages, sitemaps or feeds, yields one item per article, follows related articles."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.http import HtmlResponse, Response, XmlResponse
from scrapy.utils.gz import gunzip, gzip_magic_number
from twisted.python.failure import Failure

from newscrawl.discovery import document_kind, feed_links, is_robots_or_root, read_sitemap, robots_sitemaps
from newscrawl.extraction import ITEM_META_KEY, READING_META_KEY
from newscrawl.items import Article
from newscrawl.loaders import load_article
from newscrawl.page.article import read_article
from newscrawl.urls import WEB_SCHEMES, clean_url, url_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

#: Meta key: hops of related links from a start page or a sitemap/feed entry (both 0).  Not Scrapy's ``depth``,
#: which also counts robots.txt -> sitemap index -> sitemap, and whose DEPTH_LIMIT = 0 means "no limit".
HOPS = "newscrawl_hops"
#: Reasons a link is not followed, as in the stats ``newscrawl/links/refused/<reason>``.
REFUSAL_REASONS = ("offsite", "robots", "trap", "depth", "cap")
#: Scrapy's own stats for two of them, mirrored under the newscrawl names at the end of the crawl.
SCRAPY_REFUSAL_STATS = {"offsite": "offsite/filtered", "robots": "robotstxt/forbidden"}
#: What a start is: an article page, a sitemap (or robots.txt, or a site root naming its sitemaps), a feed, or
#: ``auto``: told apart by what the response holds (``scrapy seed`` pushes URLs given without a kind so).
SEED_KINDS = ("page", "sitemap", "feed", "auto")
NO_START = ("give a start: -a url=https://... , -a urls=list.txt (one URL per line), "
            "-a sitemap=https://.../sitemap.xml or -a feed=https://.../rss.xml")


class RecentLinks(OrderedDict):
    """The followable links of the pages read most recently, at most ``capacity`` pages.

    A page is found again closer to the start soon after it was read, or not at all; keeping every page's
    links would make memory grow with the crawl (17 URLs a page), which a crawl of millions cannot afford.
    """

    capacity = 1_000

    def __setitem__(self, key: str, links: list[str]) -> None:
        super().__setitem__(key, links)
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


def parse_depth(value: Any) -> int:
    try:
        depth = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"depth must be a whole number of hops, got {value!r}") from None
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    return depth


def parse_max_pages(value: Any) -> int | None:
    """``max_pages`` as a positive number, or None when not given."""
    if value is None or value == "":
        return None
    try:
        pages = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"max_pages must be a whole number of pages, got {value!r}") from None
    if pages < 1:
        raise ValueError(f"max_pages must be 1 or more, got {pages}")
    return pages


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


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """A comma-separated argument (``a.com,b.com``) or a list, stripped, empties dropped."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [part.strip() for part in parts if part.strip()]


class ArticleSpider(scrapy.Spider):
    """Start with ``-a url=URL``, ``-a urls=FILE``, ``-a sitemap=URL`` (a sitemap, robots.txt or site root) and/or
    ``-a feed=URL`` (RSS/Atom); ``-a depth=N`` hops of related links (default 1), ``-a max_pages=N`` for the crawl,
    ``-a allowed_domains=a.com,b.com`` to replace the domains taken from the start URLs.
    """

    name = "article"

    def __init__(self, url: str | None = None, urls: str | None = None, sitemap: str | None = None,
                 feed: str | None = None, depth: int | str = 1, max_pages: int | str | None = None,
                 allowed_domains: str | list[str] | None = None, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        given = ([url] if url else []) + (read_url_list(urls) if urls else [])
        self.page_urls = [start_url(value) for value in given]
        self.sitemap_urls = [start_url(value) for value in split_list(sitemap)]
        self.feed_urls = [start_url(value) for value in split_list(feed)]
        # Every URL the user gave: components that trust the user's start origins (the SSRF guard) read this.
        self.start_urls = self.page_urls + self.sitemap_urls + self.feed_urls
        self.depth = parse_depth(depth)
        self.max_pages = parse_max_pages(max_pages)
        # file:// start URLs have no host: a domain derived from them would filter out every http(s) link.
        hosts = {urlsplit(u).hostname for u in self.start_urls if urlsplit(u).scheme.lower() in WEB_SCHEMES}
        domains = split_list(allowed_domains) if allowed_domains else sorted(host for host in hosts if host)
        self.allowed_domains = [domain.lower() for domain in domains]
        # Fewest hops known for each page key (newscrawl.urls.url_key) requested, or known as the canonical URL of a
        # fetched page: the dupefilter cannot know that a link points at an article fetched under another URL.
        self.hops: dict[str, int] = {}
        # The followable links of each page read, so that a page found closer to the start later (pages finish in
        # any order) passes the shorter distance on to its links without being fetched again.
        self.links_of: dict[str, list[str]] = RecentLinks()
        self.stored: set[str] = set()  # canonical keys of the articles yielded in this crawl
        self.refused_by_depth: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        # A worker of a distributed crawl may start with none: its starts come from the shared queue in Redis.
        if not spider.start_urls and not crawler.settings.get("NEWSCRAWL_REDIS_URL"):
            raise ValueError(NO_START)
        spider.links_of.capacity = crawler.settings.getint("NEWSCRAWL_LINK_MEMORY", RecentLinks.capacity)
        if spider.max_pages is not None:
            # Scrapy's CloseSpider extension enforces it; the crawler freezes its settings only after this method.
            crawler.settings.set("CLOSESPIDER_PAGECOUNT", spider.max_pages, priority="spider")
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for kind, urls in (("page", self.page_urls), ("sitemap", self.sitemap_urls), ("feed", self.feed_urls)):
            for url in urls:
                for request in self.seed_requests(url, kind):
                    yield request

    def seed_requests(self, url: str, kind: str = "auto") -> Iterator[scrapy.Request]:
        """The request for one start of a kind in SEED_KINDS, from ``-a`` or from the shared queue of a distributed crawl."""
        if kind == "page":
            self.hops[url_key(url)] = 0
            meta: dict[str, Any] = {HOPS: 0}
            if url.lower().startswith("file:"):
                meta["allow_offsite"] = True  # the user's explicit choice; the offsite filter knows only web hosts
            yield scrapy.Request(url, callback=self.parse, meta=meta)
        elif kind == "sitemap":
            if is_robots_or_root(url):
                robots = urljoin(url, "/robots.txt")
                yield scrapy.Request(robots, callback=self.parse_robots, errback=self.discovery_failed)
            else:
                yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.discovery_failed)
        elif kind == "feed":
            yield scrapy.Request(url, callback=self.parse_feed, errback=self.discovery_failed)
        elif kind == "auto":
            self.hops[url_key(url)] = 0
            yield scrapy.Request(url, callback=self.parse_seed, meta={HOPS: 0})
        else:
            raise ValueError(f"unknown kind of start {kind!r}, expected one of {', '.join(SEED_KINDS)}")

    def parse_seed(self, response: Response) -> Iterator[Article | scrapy.Request]:
        """A start given without its kind: read as the sitemap, feed, robots.txt or page its body says it is."""
        kind = document_kind(response.body, response.url)
        self.crawler.stats.inc_value(f"newscrawl/seeds/{kind}")
        if kind == "sitemap":
            yield from self.parse_sitemap(response)
        elif kind == "feed":
            yield from self.parse_feed(response)
        elif kind == "robots":
            yield from self.parse_robots(response)
        else:
            yield from self.parse(response)

    def parse(self, response: Response) -> Iterator[Article | scrapy.Request]:
        stats = self.crawler.stats
        if not isinstance(response, HtmlResponse):
            stats.inc_value("newscrawl/pages/not_html")
            self.logger.info("Skipped %s: not an HTML page (%s)", response.url, type(response).__name__)
            return
        # Read in a worker process by ExtractionPoolMiddleware when it is on; here otherwise.
        reading = response.meta.get(READING_META_KEY) or read_article(response.selector, response.url)
        # The URL the link pointed at, before any redirect: that is the key links to this page carry.
        page = url_key(response.meta.get("redirect_urls", [response.url])[0])
        hops = min(response.meta.get(HOPS, 0), self.hops.get(page, response.meta.get(HOPS, 0)))
        self.hops[page] = hops
        keys = [page]
        if not reading.is_article:
            reason = reading.not_article_reason or "unknown"
            stats.inc_value("newscrawl/pages/not_article")
            stats.inc_value(f"newscrawl/pages/not_article/{reason}")
            self.logger.info("Not an article (%s): %s", reason, response.url)
        else:
            stats.inc_value("newscrawl/pages/article")
            canonical = url_key(reading.canonical_url or response.url)
            self.hops[canonical] = min(hops, self.hops.get(canonical, hops))
            keys.append(canonical)
            if canonical in self.stored:
                # Storage would only overwrite the row; a second item would count one article twice in the feed.
                stats.inc_value("newscrawl/duplicates/canonical")
                self.logger.debug("Skipped %s: same article as %s, already stored", response.url, reading.canonical_url)
            else:
                self.stored.add(canonical)
                fetched_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
                item = response.meta.get(ITEM_META_KEY)
                if item is None:
                    item = load_article(reading, fetched_at=fetched_at)
                else:
                    item.fetched_at = fetched_at
                yield item
        links = [related.url for related in reading.related] + list(reading.article_links)
        urls = [url for url in dict.fromkeys(clean_url(response.urljoin(link)) for link in links) if url is not None]
        for key in keys:
            self.links_of[key] = urls
        yield from self.follow(urls, hops)

    def follow(self, urls: list[str], hops: int) -> Iterator[scrapy.Request]:
        """Requests for the links of a page ``hops`` from its start: new ones, while fewer than ``depth`` hops.

        A link to a page already known further away makes it closer; if that page was read already, its own
        links are passed the shorter distance in turn, so no reachable article is lost to the order pages finish in.
        """
        stats = self.crawler.stats
        for url in urls:
            key = url_key(url)
            known = self.hops.get(key)
            if known is not None and known <= hops + 1:
                stats.inc_value("newscrawl/duplicates/links")
                continue
            if hops + 1 > self.depth:
                self.refused_by_depth.add(key)
                continue
            self.hops[key] = hops + 1
            if known is None:
                yield scrapy.Request(url, callback=self.parse, meta={HOPS: hops + 1})
            elif key in self.links_of:
                yield from self.follow(self.links_of[key], hops + 1)

    def discovered(self, response: Response, urls: list[str], source: str) -> Iterator[scrapy.Request]:
        """Article requests for URLs a sitemap or feed lists: each starts a chain of related links at hop 0."""
        stats = self.crawler.stats
        stats.inc_value(f"newscrawl/discovery/{source}/urls", len(urls))
        cleaned = [url for url in dict.fromkeys(clean_url(response.urljoin(link)) for link in urls) if url is not None]
        for url in cleaned:
            key = url_key(url)
            known = self.hops.get(key)
            if known == 0:
                continue
            self.hops[key] = 0
            if known is None:
                yield scrapy.Request(url, callback=self.parse, meta={HOPS: 0})
            elif key in self.links_of:
                yield from self.follow(self.links_of[key], 0)

    def parse_robots(self, response: Response) -> Iterator[scrapy.Request]:
        sitemaps = robots_sitemaps(response.body, response.url)
        if not sitemaps:
            self.crawler.stats.inc_value("newscrawl/discovery/failed")
            self.logger.warning("No Sitemap: line in %s; give the sitemap URL itself with -a sitemap=", response.url)
        for url in sitemaps:
            yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.discovery_failed)

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        body = self.sitemap_body(response)
        links = read_sitemap(body) if body else None
        if links is None or not (links.sitemaps or links.pages):
            self.crawler.stats.inc_value("newscrawl/discovery/failed")
            self.logger.warning("Not a sitemap, or an empty one: %s", response.url)
            return
        for url in links.sitemaps:
            yield scrapy.Request(response.urljoin(url), callback=self.parse_sitemap, errback=self.discovery_failed)
        yield from self.discovered(response, links.pages, "sitemap")

    def sitemap_body(self, response: Response) -> bytes | None:
        """The XML of a sitemap response, gunzipped (within DOWNLOAD_MAXSIZE) for .xml.gz files."""
        if isinstance(response, XmlResponse) or not gzip_magic_number(response):
            return response.body
        try:
            max_size = response.meta.get("download_maxsize", self.settings.getint("DOWNLOAD_MAXSIZE"))
            return gunzip(response.body, max_size=max_size)
        except ValueError as exc:  # corrupt, or larger than the size limit once decompressed
            self.logger.warning("Cannot decompress sitemap %s: %s", response.url, exc)
            return None

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        links = feed_links(response.body, response.url)
        if not links:
            self.crawler.stats.inc_value("newscrawl/discovery/failed")
            self.logger.warning("Not an RSS/Atom feed, or an empty one: %s", response.url)
        yield from self.discovered(response, links, "feed")

    def discovery_failed(self, failure: Failure) -> None:
        self.crawler.stats.inc_value("newscrawl/discovery/failed")
        request = getattr(failure, "request", None)
        self.logger.warning("Could not read discovery document %s: %s", getattr(request, "url", "?"), failure.value)

    def closed(self, reason: str) -> None:
        """One line a user can read: what was fetched, stored and skipped, and why links were refused."""
        stats = self.crawler.stats
        # A link refused for its distance may have been reached later by a shorter path: count only the others.
        stats.set_value("newscrawl/links/refused/depth", len(self.refused_by_depth - self.hops.keys()))
        for ours, scrapys in SCRAPY_REFUSAL_STATS.items():
            stats.set_value(f"newscrawl/links/refused/{ours}", stats.get_value(scrapys, 0))
        refused = ", ".join(f"{r} {stats.get_value(f'newscrawl/links/refused/{r}', 0)}" for r in REFUSAL_REASONS)
        self.logger.info(
            "Crawl finished (%s): %d pages fetched, %d articles yielded, %d stored, %d duplicate articles skipped, "
            "%d duplicate links not refetched; links refused: %s",
            reason, stats.get_value("response_received_count", 0), stats.get_value("item_scraped_count", 0),
            stats.get_value("newscrawl/storage/stored", 0), stats.get_value("newscrawl/duplicates/canonical", 0),
            stats.get_value("newscrawl/duplicates/links", 0), refused)
