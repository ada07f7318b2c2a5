"""Site templates: a paragraph that recurs on many articles of one site is the site's, not the article's."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import is_dataclass
from typing import Any, Self
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import StatsCollector

from newscrawl.items import BoilerplateBlock

logger = logging.getLogger(__name__)


def _fingerprint(paragraph: str) -> bytes:
    return hashlib.blake2b(" ".join(paragraph.casefold().split()).encode(), digest_size=12).digest()


class TemplateMemory:
    """Counts, per host, on how many distinct articles each paragraph was seen; bounded per host (LRU)."""

    def __init__(self, min_articles: int = 3, max_paragraphs_per_host: int = 5_000):
        self.min_articles = min_articles
        self.max_paragraphs = max_paragraphs_per_host
        self._seen: dict[str, OrderedDict[bytes, int]] = {}

    def observe(self, host: str, paragraphs: list[str]) -> set[str]:
        """Record one article's paragraphs; return those now seen on ``min_articles`` articles or more."""
        counts = self._seen.setdefault(host, OrderedDict())
        repeated: set[str] = set()
        for paragraph in dict.fromkeys(paragraphs):  # one article counts once per paragraph
            key = _fingerprint(paragraph)
            counts[key] = counts.get(key, 0) + 1
            counts.move_to_end(key)
            if counts[key] >= self.min_articles:
                repeated.add(paragraph)
        while len(counts) > self.max_paragraphs:
            counts.popitem(last=False)
        return repeated


class TemplatePipeline:
    """Moves paragraphs that recur across a site's articles from the body into boilerplate (kind ``template``).

    The first few articles of a crawl keep such a paragraph (it is not yet known to recur); from the
    ``NEWSCRAWL_TEMPLATE_MIN_ARTICLES``-th article on, it leaves the body. Counted as
    ``newscrawl/template/moved``.
    """

    def __init__(self, memory: TemplateMemory, stats: StatsCollector):
        self.memory = memory
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("NEWSCRAWL_TEMPLATE_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_TEMPLATE_ENABLED is off")
        memory = TemplateMemory(
            min_articles=settings.getint("NEWSCRAWL_TEMPLATE_MIN_ARTICLES", 3),
            max_paragraphs_per_host=settings.getint("NEWSCRAWL_TEMPLATE_MAX_PARAGRAPHS", 5_000),
        )
        return cls(memory, crawler.stats)

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        body, url = adapter.get("body"), adapter.get("canonical_url") or adapter.get("url")
        if not isinstance(body, str) or not body.strip() or not url:
            return item
        paragraphs = body.split("\n\n")
        repeated = self.memory.observe(urlsplit(url).hostname or "", paragraphs)
        if not repeated:
            return item
        kept = [p for p in paragraphs if p not in repeated]
        if not kept:
            return item  # a page that is all template is a validation matter, not ours to empty
        adapter["body"] = "\n\n".join(kept)
        moved = [p for p in paragraphs if p in repeated]
        boilerplate = list(adapter.get("boilerplate") or [])
        boilerplate.extend(
            BoilerplateBlock("template", p) if is_dataclass(item) else {"kind": "template", "text": p} for p in moved
        )
        adapter["boilerplate"] = boilerplate
        self.stats.inc_value("newscrawl/template/moved", len(moved))
        logger.debug("Moved %d site-template paragraph(s) out of %s", len(moved), url)
        return item
