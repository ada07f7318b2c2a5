"""Reading pages in worker processes gives exactly what the crawl's own process would read."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from newscrawl.extraction import ITEM_META_KEY, READING_META_KEY, ExtractionPoolMiddleware, read_in_worker
from newscrawl.loaders import load_article
from newscrawl.page.article import read_article
from newscrawl.saved_pages import iter_saved_pages

from .conftest import FIXTURE_PAGES

PAGES = list(iter_saved_pages(FIXTURE_PAGES))[:4]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_worker_reading_equals_in_process_reading(page):
    response = page.response()
    reading, item = read_in_worker(page.url, page.body, page.content_type)
    assert reading == read_article(response.selector, response.url)
    assert asdict(item) == asdict(load_article(reading))


def test_zero_workers_switches_the_pool_off():
    with pytest.raises(NotConfigured):
        ExtractionPoolMiddleware.from_crawler(get_crawler(settings_dict={"NEWSCRAWL_EXTRACTION_WORKERS": 0}))


def test_pool_leaves_reading_and_item_in_request_meta():
    crawler = get_crawler(settings_dict={"NEWSCRAWL_EXTRACTION_WORKERS": 1})
    middleware = ExtractionPoolMiddleware.from_crawler(crawler)
    page = PAGES[0]
    request = Request(page.url)
    try:
        response = asyncio.run(middleware.process_response(request, page.response()))
    finally:
        middleware.spider_closed()
    assert response.url == page.url
    assert request.meta[READING_META_KEY].title == page.expected()["title"]
    assert request.meta[ITEM_META_KEY].body == page.expected()["body"]
    assert crawler.stats.get_value("newscrawl/extraction/pooled") == 1
