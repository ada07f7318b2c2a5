"""The article spider's inputs, link-following rules and depth handling, on saved pages without a crawl."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from newscrawl.items import Article
from newscrawl.saved_pages import SavedPage
from newscrawl.spiders.article import ArticleSpider, parse_depth, read_url_list
from newscrawl.urls import clean_url

from .conftest import FIXTURE_PAGES

SEED = FIXTURE_PAGES / "seed-semantic-sv"


def make_spider(**kwargs: object) -> ArticleSpider:
    crawler = get_crawler(ArticleSpider)
    return ArticleSpider.from_crawler(crawler, **kwargs)


def collect_start(spider: ArticleSpider) -> list[Request]:
    async def gather() -> list[Request]:
        return [request async for request in spider.start()]

    return asyncio.run(gather())


def page_response(page: SavedPage, url: str | None = None, depth: int = 0) -> HtmlResponse:
    url = url or page.url
    request = Request(url, meta={"newscrawl_hops": depth})
    return HtmlResponse(url, body=page.body, headers={"Content-Type": page.content_type}, request=request)


def test_url_list_skips_blank_and_comment_lines(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("# seeds\nhttps://a.example/one\n\n   \n  # https://skipped.example/\nhttps://b.example/two\n", "utf-8")
    assert read_url_list(listing) == ["https://a.example/one", "https://b.example/two"]

    spider = make_spider(url="https://c.example/three", urls=str(listing))
    assert spider.start_urls == ["https://c.example/three", "https://a.example/one", "https://b.example/two"]
    assert spider.allowed_domains == ["a.example", "b.example", "c.example"]


@pytest.mark.parametrize(("given", "depth"), [(None, 1), ("0", 0), ("3", 3), (2, 2)])
def test_depth_argument(given: object, depth: int) -> None:
    kwargs = {"url": "https://a.example/x"} | ({} if given is None else {"depth": given})
    assert make_spider(**kwargs).depth == depth


@pytest.mark.parametrize("bad", ["-1", "two", "1.5", None])
def test_bad_depth_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="depth"):
        parse_depth(bad)


def test_a_start_page_is_required() -> None:
    with pytest.raises(ValueError, match="url="):
        make_spider()


def test_unknown_scheme_start_url_is_refused() -> None:
    with pytest.raises(ValueError, match="ftp://"):
        make_spider(url="ftp://a.example/x")


def test_file_start_url_gives_no_allowed_domain_and_skips_the_offsite_filter() -> None:
    file_url = (SEED / "page.html").resolve().as_uri()
    spider = make_spider(url=file_url)
    assert spider.allowed_domains == []
    [request] = collect_start(spider)
    assert request.url == file_url
    assert request.meta.get("allow_offsite") is True


def test_mixed_start_urls_allow_only_web_hosts(tmp_path: Path) -> None:
    file_url = (SEED / "page.html").resolve().as_uri()
    listing = tmp_path / "list.txt"
    listing.write_text(f"http://127.0.0.1:8000/sv/artikel/x\n{file_url}\n", "utf-8")
    spider = make_spider(urls=str(listing))
    assert spider.allowed_domains == ["127.0.0.1"]
    requests = collect_start(spider)
    assert [(r.url, r.meta.get("allow_offsite")) for r in requests] == [
        ("http://127.0.0.1:8000/sv/artikel/x", None),
        (file_url, True),
    ]


def test_a_local_path_becomes_a_file_url() -> None:
    spider = make_spider(url=str(SEED / "page.html"))
    assert spider.start_urls == [(SEED / "page.html").resolve().as_uri()]


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://a.example/x?utm_source=rel&id=4#top", "https://a.example/x?id=4"),
        ("http://a.example/y?gclid=abc", "http://a.example/y"),
        ("file:///etc/passwd", None),
        ("mailto:desk@a.example", None),
        ("javascript:void(0)", None),
    ],
)
def test_only_web_links_are_followed_and_cleaned(link: str, expected: str | None) -> None:
    assert clean_url(link) == expected


def test_depth_zero_yields_only_the_item() -> None:
    page = SavedPage.from_folder(SEED)
    spider = make_spider(url=page.url, depth="0")
    out = list(spider.parse(page_response(page)))
    assert len(out) == 1 and isinstance(out[0], Article)
    assert out[0].url == page.url and out[0].fetched_at
    assert spider.crawler.stats.get_value("newscrawl/pages/article") == 1


def test_related_links_are_followed_until_the_depth_is_reached() -> None:
    page = SavedPage.from_folder(SEED)
    spider = make_spider(url=page.url, depth=1)
    out = list(spider.parse(page_response(page, depth=0)))
    requests = [r for r in out if isinstance(r, Request)]
    related = {link["url"] for link in page.expected()["related"]}
    assert related and {r.url for r in requests} >= related
    assert all(r.url.startswith(("http://", "https://")) for r in requests)

    # A fresh spider: in the same one the page would now be an article already stored (a canonical duplicate).
    deeper = list(make_spider(url=page.url, depth=1).parse(page_response(page, depth=1)))
    assert [type(x) for x in deeper] == [Article]


def test_links_from_a_file_page_never_become_file_requests() -> None:
    page = SavedPage.from_folder(SEED)
    file_url = (SEED / "page.html").resolve().as_uri()
    spider = make_spider(url=file_url, depth=1)
    out = list(spider.parse(page_response(page, url=file_url)))
    assert isinstance(out[0], Article)
    assert all(not r.url.startswith("file:") for r in out[1:])


def test_non_html_and_non_article_pages_are_counted_not_yielded() -> None:
    spider = make_spider(url="https://a.example/", depth=1)
    image = Response("https://a.example/photo.jpg", body=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"})
    assert list(spider.parse(image)) == []
    empty = HtmlResponse("https://a.example/", body=b"<html><body><nav>Hem</nav></body></html>",
                         headers={"Content-Type": "text/html; charset=utf-8"}, request=Request("https://a.example/"))
    assert not any(isinstance(x, Article) for x in spider.parse(empty))
    stats = spider.crawler.stats
    assert stats.get_value("newscrawl/pages/not_html") == 1
    assert stats.get_value("newscrawl/pages/not_article") == 1
