"""Where a crawl may go, without a crawl: URL identity, traps, the per-domain cap, discovery documents, spider inputs."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.utils.test import get_crawler

from newscrawl.discovery import feed_links, is_robots_or_root, read_sitemap, robots_sitemaps
from newscrawl.downloadermiddlewares.domaincap import DomainCapMiddleware
from newscrawl.items import Article
from newscrawl.saved_pages import SavedPage
from newscrawl.spidermiddlewares.traps import TrapMiddleware, date_template, has_session_id, repeats_segments
from newscrawl.spiders.article import ArticleSpider, parse_max_pages
from newscrawl.urls import CanonicalRequestFingerprinter, clean_url, url_key

from .conftest import FIXTURE_PAGES, FIXTURE_SITE

WWW = FIXTURE_SITE / "www"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://a.example/x?utm_source=rel&utm_campaign=c&id=4#top", "https://a.example/x?id=4"),
        ("https://a.example/x?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ref=home", "https://a.example/x"),
        ("HTTPS://News.A.Example:443/Path/Case?b=2&a=1", "https://news.a.example/Path/Case?b=2&a=1"),
        ("http://a.example:8080/x#frag", "http://a.example:8080/x"),
        ("http://a.example", "http://a.example/"),
        ("https://a.example/x?page=2&reference=keep", "https://a.example/x?page=2&reference=keep"),
        ("https://user:pw@a.example/x", None),
        ("file:///etc/passwd", None),
        ("mailto:desk@a.example", None),
        ("javascript:void(0)", None),
    ],
)
def test_clean_url(link: str, expected: str | None) -> None:
    assert clean_url(link) == expected


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("https://a.example/x?b=2&a=1", "https://A.example/x?a=1&b=2&utm_medium=web#c", True),
        ("https://a.example/x", "https://a.example:443/x#comments", True),
        ("https://a.example/x", "https://a.example/y", False),
        ("https://a.example/x?id=1", "https://a.example/x?id=2", False),
    ],
)
def test_url_key_and_request_fingerprint_agree_on_one_page(one: str, other: str, same: bool) -> None:
    assert (url_key(one) == url_key(other)) is same
    fingerprinter = CanonicalRequestFingerprinter.from_crawler(get_crawler())
    assert (fingerprinter.fingerprint(Request(one)) == fingerprinter.fingerprint(Request(other))) is same


def test_fingerprint_still_tells_methods_and_bodies_apart() -> None:
    fingerprinter = CanonicalRequestFingerprinter()
    get = fingerprinter.fingerprint(Request("https://a.example/x?utm_source=y"))
    post = fingerprinter.fingerprint(Request("https://a.example/x", method="POST", body=b"q=1"))
    other_post = fingerprinter.fingerprint(Request("https://a.example/x", method="POST", body=b"q=2"))
    assert len({get, post, other_post}) == 3


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("http://h/sv/kalender/2025/11", "h/sv/kalender/{date}?"),
        ("http://h/sv/kalender/2027/07", "h/sv/kalender/{date}?"),
        ("http://h/events/2025-11-03", "h/events/{date}?"),
        ("http://h/cal?month=11&year=2025", "h/cal?month={date}&year={date}"),
        ("http://h/2025/11/27/storm-hits-coast", "h/{date}/storm-hits-coast?"),
        ("http://h/sv/artikel/x", None),
        ("http://h/a/1042", None),
    ],
)
def test_date_template(url: str, template: str | None) -> None:
    assert date_template(url) == template


@pytest.mark.parametrize(
    ("url", "session"),
    [
        ("http://h/sv/;jsessionid=ABC123/artikel/x", True),
        ("http://h/shop;JSESSIONID=a1?x=1", True),
        ("http://h/a?sid=3f9a", True),
        ("http://h/a?PHPSESSID=3f9a", True),
        ("http://h/(S(abcdefghijklmnop))/page.aspx", True),
        ("http://h/a?side=left", False),
        ("http://h/a;sidebar=1", False),
        ("http://h/sv/artikel/x", False),
    ],
)
def test_session_ids(url: str, session: bool) -> None:
    assert has_session_id(url) is session


@pytest.mark.parametrize(
    ("path", "repeats"),
    [
        ("/sv/sv/sv/artikel/x", True),
        ("/sv/sv/artikel/x", True),
        ("/a/b/a/b/a/b", True),
        ("/a/b/a/c", False),
        ("/2025/11/11/eleven-things", False),
        ("/sv/artikel/x", False),
    ],
)
def test_repeating_segments(path: str, repeats: bool) -> None:
    assert repeats_segments(path, max_repeats=2) is repeats


def response_for(url: str, meta: dict | None = None) -> HtmlResponse:
    return HtmlResponse(url, body=b"<html></html>", encoding="utf-8", request=Request(url, meta=meta or {}))


def test_trap_middleware_cuts_a_calendar_after_its_steps_and_logs_each_kind_once(caplog: pytest.LogCaptureFixture) -> None:
    crawler = get_crawler(settings_dict={"NEWSCRAWL_TRAPS_CALENDAR_MAX_STEPS": 2})
    middleware = TrapMiddleware.from_crawler(crawler)
    page = response_for("http://h/sv/artikel/apec")
    months = ["2025/11", "2025/12", "2026/01", "2026/02", "2026/03"]
    followed = []
    with caplog.at_level(logging.INFO, logger="newscrawl.spidermiddlewares.traps"):
        for month in months:
            out = list(middleware.process_spider_output(page, [Request(f"http://h/sv/kalender/{month}")]))
            if not out:
                break
            [request] = out
            followed.append(month)
            page = response_for(request.url, request.meta)
        # A second calendar link refused, and two other kinds.
        list(middleware.process_spider_output(page, [Request("http://h/sv/kalender/2030/01")]))
        survivors = list(middleware.process_spider_output(page, [
            Request("http://h/sv/;jsessionid=1/artikel/x"), Request("http://h/sv/sv/artikel/x"),
            Request("http://h/sv/artikel/y"), Request("http://h/2025/11/27/storm"),
        ]))
    assert followed == ["2025/11", "2025/12", "2026/01"]  # the first month and two steps
    assert [r.url for r in survivors] == ["http://h/sv/artikel/y", "http://h/2025/11/27/storm"]
    stats = crawler.stats
    assert stats.get_value("newscrawl/links/refused/trap") == 4
    assert stats.get_value("newscrawl/links/refused/trap/calendar") == 2
    assert stats.get_value("newscrawl/links/refused/trap/session_id") == 1
    assert stats.get_value("newscrawl/links/refused/trap/repeating_segments") == 1
    lines = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert [line.split("(")[1].split(")")[0] for line in lines] == ["calendar", "session_id", "repeating_segments"]


def test_trap_middleware_never_refuses_start_requests() -> None:
    middleware = TrapMiddleware.from_crawler(get_crawler())
    start = Request("http://h/sv/;jsessionid=1/artikel/x")
    assert middleware.get_processed_request(start, None) is start


def test_trap_middleware_can_be_switched_off() -> None:
    with pytest.raises(NotConfigured):
        TrapMiddleware.from_crawler(get_crawler(settings_dict={"NEWSCRAWL_TRAPS_ENABLED": False}))


def test_domain_cap_counts_pages_per_host_not_robots_txt_or_retries(caplog: pytest.LogCaptureFixture) -> None:
    crawler = get_crawler(settings_dict={"NEWSCRAWL_MAX_PAGES_PER_DOMAIN": 2})
    cap = DomainCapMiddleware.from_crawler(crawler)
    cap.process_request(Request("http://a.example/robots.txt"))
    cap.process_request(Request("http://a.example/1"))
    cap.process_request(Request("http://a.example/1", meta={"retry_times": 1}))
    cap.process_request(Request("http://a.example/2"))
    cap.process_request(Request("http://b.example/1"))
    with caplog.at_level(logging.INFO, logger="newscrawl.downloadermiddlewares.domaincap"):
        for page in (3, 4):
            with pytest.raises(IgnoreRequest):
                cap.process_request(Request(f"http://a.example/{page}"))
    assert crawler.stats.get_value("newscrawl/links/refused/cap") == 2
    assert len(caplog.records) == 1 and "a.example" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("value", "error"), [(0, NotConfigured), (-1, ValueError)])
def test_domain_cap_off_or_invalid(value: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        DomainCapMiddleware.from_crawler(get_crawler(settings_dict={"NEWSCRAWL_MAX_PAGES_PER_DOMAIN": value}))


def test_sitemaps_index_urlset_and_news() -> None:
    index = read_sitemap((WWW / "sitemap.xml").read_bytes())
    assert [u.rsplit("/", 1)[1] for u in index.sitemaps] == ["sitemap-articles.xml", "sitemap-news.xml"]
    assert index.pages == []
    articles = read_sitemap((WWW / "sitemap-articles.xml").read_bytes())
    news = read_sitemap((WWW / "sitemap-news.xml").read_bytes())
    assert len(articles.pages) == 48 and len(news.pages) == 20 and not articles.sitemaps
    assert set(news.pages) <= set(articles.pages)


@pytest.mark.parametrize("body", [b"", b"not xml", b"<html><body><a href='/x'>x</a></body></html>", b"<rss/>"])
def test_documents_that_are_no_sitemap_list_nothing(body: bytes) -> None:
    links = read_sitemap(body)
    assert links.sitemaps == [] and links.pages == []


def test_robots_sitemap_lines_and_what_counts_as_robots_or_root() -> None:
    body = b"User-agent: *\nDisallow: /p/\nSitemap: https://a.example/s1.xml\nsitemap: /s2.xml\n"
    assert robots_sitemaps(body, "https://a.example/robots.txt") == ["https://a.example/s1.xml", "https://a.example/s2.xml"]
    assert [is_robots_or_root(u) for u in ("https://a.example", "https://a.example/", "https://a.example/robots.txt",
                                           "https://a.example/sitemap.xml")] == [True, True, True, False]


def test_feed_links_of_rss_atom_and_rdf() -> None:
    rss = feed_links((WWW / "rss.xml").read_bytes(), "http://h/rss.xml")
    atom = feed_links((WWW / "atom.xml").read_bytes(), "http://h/atom.xml")
    assert len(rss) == 20 and rss == atom
    rdf = (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
           b"<item><link>/a</link></item><item><link> http://h/b </link></item></rdf:RDF>")
    assert feed_links(rdf, "http://h/feed") == ["http://h/a", "http://h/b"]
    related_only = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link rel="related" href="/r"/>'
                    b'<link href="/e"/></entry></feed>')
    assert feed_links(related_only, "http://h/") == ["http://h/e"]


def test_feed_parsing_expands_no_entities_and_loads_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET", "utf-8")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
           "<rss><channel><item><link>http://h/&x;</link></item></channel></rss>").encode()
    laughs = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
              b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><rss><channel><item><link>http://h/&c;</link></item></channel></rss>')
    assert not any("TOPSECRET" in link for link in feed_links(xxe, "http://h/"))
    assert all(len(link) < 100 for link in feed_links(laughs, "http://h/"))
    assert feed_links(b"<html>not a feed", "http://h/") == []


def make_spider(**kwargs: object) -> ArticleSpider:
    return ArticleSpider.from_crawler(get_crawler(ArticleSpider), **kwargs)


def start_requests(spider: ArticleSpider) -> list[Request]:
    async def gather() -> list[Request]:
        return [request async for request in spider.start()]

    return asyncio.run(gather())


def test_sitemap_and_feed_arguments_start_discovery() -> None:
    spider = make_spider(sitemap="https://News.example/,https://news.example/sitemap.xml", feed="https://feeds.example/rss")
    requests = start_requests(spider)
    assert [(r.url, r.callback.__name__) for r in requests] == [
        ("https://news.example/robots.txt", "parse_robots"),
        ("https://news.example/sitemap.xml", "parse_sitemap"),
        ("https://feeds.example/rss", "parse_feed"),
    ]
    assert spider.allowed_domains == ["feeds.example", "news.example"]
    assert all(r.errback is not None for r in requests)


def test_allowed_domains_can_be_given() -> None:
    spider = make_spider(url="https://a.example/x", allowed_domains=" A.example, b.example ,")
    assert spider.allowed_domains == ["a.example", "b.example"]


@pytest.mark.parametrize(("given", "pages"), [(None, None), ("", None), ("500", 500), (7, 7)])
def test_max_pages(given: object, pages: int | None) -> None:
    assert parse_max_pages(given) == pages


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_bad_max_pages_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="max_pages"):
        parse_max_pages(bad)


def test_discovered_urls_start_at_hop_zero_and_are_requested_once() -> None:
    spider = make_spider(sitemap="http://h/sitemap.xml", depth=0)
    body = b"".join([b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
                     b"<url><loc>http://h/a?utm_source=s</loc></url><url><loc>http://h/a</loc></url>",
                     b"<url><loc>mailto:x@h</loc></url><url><loc>http://h/b#x</loc></url></urlset>"])
    sitemap = TextResponse("http://h/sitemap-1.xml", body=body, request=Request("http://h/sitemap-1.xml", meta={"depth": 2}))
    requests = list(spider.parse_sitemap(sitemap))
    assert [r.url for r in requests] == ["http://h/a", "http://h/b"]
    # Scrapy's depth (3 after robots.txt, index and sitemap) is not the distance: hops of related links start at 0.
    assert {r.meta["newscrawl_hops"] for r in requests} == {0}


def test_an_article_under_a_second_url_is_yielded_once() -> None:
    page = SavedPage.from_folder(FIXTURE_PAGES / "seed-semantic-sv")
    spider = make_spider(url=page.url, depth=0)

    def parse(url: str) -> list[object]:
        response = HtmlResponse(url, body=page.body, headers={"Content-Type": page.content_type}, request=Request(url))
        return list(spider.parse(response))

    first, again = parse(page.url), parse(page.url + "?amp=1")
    assert [type(x) for x in first] == [Article] and again == []
    assert spider.crawler.stats.get_value("newscrawl/duplicates/canonical") == 1


def test_gzipped_sitemaps_are_read_within_the_size_limit() -> None:
    xml = (WWW / "sitemap-news.xml").read_bytes().replace(b"{{ORIGIN}}", b"http://h")
    packed = gzip.compress(xml)
    spider = make_spider(sitemap="http://h/sitemap-news.xml.gz", depth=0)
    response = Response("http://h/sitemap-news.xml.gz", body=packed, request=Request("http://h/sitemap-news.xml.gz"))
    assert len(list(spider.parse_sitemap(response))) == 20

    small = Response("http://h/s.xml.gz", body=packed, request=Request("http://h/s.xml.gz", meta={"download_maxsize": 100}))
    assert list(make_spider(sitemap="http://h/s.xml.gz").parse_sitemap(small)) == []


def site_page(path: str, hops: int) -> HtmlResponse:
    """A page of the test site as served from http://h, read at ``hops`` from its start."""
    body = (WWW / f"{path.lstrip('/')}.html").read_bytes().replace(b"{{ORIGIN}}", b"http://h")
    url = f"http://h{path}"
    return HtmlResponse(url, body=body, encoding="utf-8", request=Request(url, meta={"newscrawl_hops": hops}))


def test_a_page_found_closer_later_passes_the_distance_on_without_a_refetch() -> None:
    manifest = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
    entry = manifest["entry"]
    near = sorted(manifest["reachable_from_entry_by_depth"]["1"])[0]
    spider = make_spider(url=f"http://h{entry}", depth=2)
    start_requests(spider)
    # The near page finished first, reached by a long way round: two hops, so its links were not followed.
    spider.hops[url_key(f"http://h{near}")] = 2
    far = [x for x in spider.parse(site_page(near, hops=2)) if isinstance(x, Request)]
    assert far == []
    # Then the start page links to it: one hop.  Its links are followed now, and it is not requested again.
    out = [x for x in spider.parse(site_page(entry, hops=0)) if isinstance(x, Request)]
    urls = {r.url for r in out}
    assert f"http://h{near}" not in urls
    # Its links (root-relative in the manifest) other than the start page and pages one hop away themselves.
    near_links = {clean_url(f"http://h{link}") for link in manifest["related_graph"][near]}
    near_links -= {f"http://h{p}" for p in [entry, *manifest["reachable_from_entry_by_depth"]["1"]]}
    assert near_links and near_links <= urls
    assert {r.meta["newscrawl_hops"] for r in out if r.url in near_links} == {2}
