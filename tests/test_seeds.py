"""Starts of a distributed crawl as data: what a seed entry says, and what kind of document a start turned out to be."""

from __future__ import annotations

import gzip
import json

import pytest

from newscrawl.discovery import document_kind
from newscrawl.distributed import FrontierKeys, read_seed, seed_data

from .conftest import FIXTURE_SITE

WWW = FIXTURE_SITE / "www"


@pytest.mark.parametrize(("entry", "expected"), [
    (seed_data("https://a.example/sitemap.xml", "sitemap"), ("https://a.example/sitemap.xml", "sitemap")),
    (seed_data("https://a.example/x"), ("https://a.example/x", "auto")),
    (b'{"url": "https://a.example/rss", "kind": "feed"}', ("https://a.example/rss", "feed")),
    (json.dumps({"url": "https://a.example/p", "meta": {}}), ("https://a.example/p", "auto")),  # scrapy-redis's
    (b"https://a.example/bare\n", ("https://a.example/bare", "auto")),  # redis-cli rpush of a plain URL
    ('{"url": "https://a.example/", "kind": "video"}', None),
    ('{"kind": "page"}', None),
    ("{not json", None),
    ("   ", None),
])
def test_read_seed(entry: str | bytes, expected: tuple[str, str] | None) -> None:
    assert read_seed(entry) == expected


def test_seed_data_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown kind of start 'video'"):
        seed_data("https://a.example/", "video")


@pytest.mark.parametrize(("name", "url", "expected"), [
    ("sitemap.xml", "/sitemap.xml", "sitemap"),  # a sitemap index
    ("sitemap-news.xml", "/sitemap-news.xml", "sitemap"),  # a Google News urlset
    ("rss.xml", "/rss.xml", "feed"),
    ("atom.xml", "/atom.xml", "feed"),
    ("robots.txt", "/robots.txt", "robots"),
    ("index.html", "/", "page"),
    ("sv/artikel/eu-ledare-enas-om-forsvarsfond.html", "/sv/artikel/eu-ledare-enas-om-forsvarsfond", "page"),
])
def test_document_kind_of_the_test_site(name: str, url: str, expected: str) -> None:
    assert document_kind((WWW / name).read_bytes(), "http://127.0.0.1:8000" + url) == expected


@pytest.mark.parametrize(("body", "expected"), [
    (gzip.compress((WWW / "sitemap-articles.xml").read_bytes()), "sitemap"),  # .xml.gz
    (b'\xef\xbb\xbf<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>', "feed"),
    (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "page"),  # XHTML
    (b"<!DOCTYPE html><html><body><p>x</p></body></html>", "page"),
    (b"<rss><channel><item>", "page"),  # not well-formed: not a feed
    (b"", "page"),
    (b"plain text", "page"),
])
def test_document_kind_of_other_bodies(body: bytes, expected: str) -> None:
    assert document_kind(body, "https://a.example/start") == expected


def test_frontier_keys_are_per_prefix_and_spider() -> None:
    keys = FrontierKeys("crawl1", "article")
    assert (keys.seeds, keys.requests, keys.dupefilter) == (
        "crawl1:article:seeds", "crawl1:article:requests", "crawl1:article:dupefilter")
    assert keys.inflight("w1") == "crawl1:article:inflight:w1" and keys.heartbeat("w1") == "crawl1:article:worker:w1"
    assert keys.politeness("site.example") == "crawl1:politeness:site.example"


def test_shared_recent_links_keep_the_last_pages_read_over_all_workers() -> None:
    import os
    import uuid

    url = os.environ.get("NEWSCRAWL_TEST_REDIS_URL", "")
    if not url:
        pytest.skip("NEWSCRAWL_TEST_REDIS_URL is not set (`.ci/redis start` prints it; .ci/run sets it)")
    import redis

    from newscrawl.distributed import SharedHops, SharedRecentLinks

    server = redis.Redis.from_url(url)
    key = f"test-{uuid.uuid4().hex[:10]}"
    try:
        workers = [SharedRecentLinks(server, f"{key}:links", capacity=3) for _ in range(2)]
        for number in range(5):
            workers[number % 2][f"/page/{number}"] = [f"/link/{number}"]
        workers[0]["/page/4"] = ["/link/4b"]  # rewriting a page does not count twice
        assert sorted(workers[1]) == ["/page/2", "/page/3", "/page/4"]
        assert workers[1]["/page/4"] == ["/link/4b"] and "/page/0" not in workers[0]
        hops = SharedHops(server, f"{key}:hops")
        hops["/a"] = 3
        hops["/a"] = 5  # a longer path found later never raises the distance
        assert hops.get("/a") == 3 and hops.get("/b") is None
        hops["/a"] = 1
        assert hops["/a"] == 1 and len(hops) == 1
    finally:
        server.delete(f"{key}:links", f"{key}:links:order", f"{key}:hops")
