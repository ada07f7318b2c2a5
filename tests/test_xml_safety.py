"""Sitemaps and feeds are read without external entities, external DTDs or entity expansion (XXE, billion laughs)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from scrapy.http import HtmlResponse

from newscrawl.discovery import document_kind, feed_links, read_sitemap
from newscrawl.page.article import read_article
from tests.support.hostile_server import article_html

from .conftest import ROOT

SECRET = "SECRET-FROM-A-LOCAL-FILE"
#: What an external DTD would define, if it were ever fetched and read.
DTD_TEXT = "EXTERNAL-DTD-CONTENT"
ATTACKS = ("file", "dtd", "parameter", "laughs")
#: Words that would be in a URL, a request or a stored row if an entity had been resolved.
LEAKS = ("root:", SECRET, DTD_TEXT, "lol" * 10)
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def doctype(attack: str, root: str, origin: str, secret: Path) -> str:
    if attack == "file":
        return (f'<!DOCTYPE {root} [<!ENTITY passwd SYSTEM "file:///etc/passwd">'
                f'<!ENTITY secret SYSTEM "{secret.as_uri()}">]>')
    if attack == "dtd":
        return f'<!DOCTYPE {root} SYSTEM "{origin}/evil.dtd">'
    if attack == "parameter":
        return f'<!DOCTYPE {root} [<!ENTITY % remote SYSTEM "{origin}/evil-parameter.dtd"> %remote;]>'
    # Billion laughs: ten levels of ten references, 10^9 "lol"s if expanded.
    levels = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return f'<!DOCTYPE {root} [{"".join(levels)}]>'


def reference(attack: str) -> str:
    return {"file": "&passwd;&secret;", "dtd": "&ext;", "parameter": "&ext;", "laughs": "&lol9;"}[attack]


def sitemap(attack: str, origin: str, secret: Path, article: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype(attack, "urlset", origin, secret)}'
            f'<urlset xmlns="{SITEMAP_NS}"><url><loc>{origin}{article}</loc></url>'
            f'<url><loc>{origin}/leak?d={reference(attack)}</loc></url></urlset>').encode()


def feed(attack: str, origin: str, secret: Path, article: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype(attack, "rss", origin, secret)}'
            f'<rss version="2.0"><channel><title>Feed</title><item><title>Story</title><link>{origin}{article}</link>'
            f'</item><item><title>{reference(attack)}</title><link>{origin}/leak?d={reference(attack)}</link></item>'
            f'</channel></rss>').encode()


class XmlTrapSite:
    """127.0.0.1 server of sitemaps and feeds that try each attack, the DTDs they point at, and plain articles."""

    def __init__(self, secret: Path):
        self.secret = secret
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.requests.append(self.path)
                status, ctype, body = site.answer(urlsplit(self.path).path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @staticmethod
    def article(kind: str, attack: str) -> str:
        return f"/article/{kind}-{attack}"

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nAllow: /\n"
        if path.endswith(".dtd"):
            return 200, "application/xml-dtd", f'<!ENTITY ext "{DTD_TEXT}">'.encode()
        match = re.fullmatch(r"/(sitemap|feed)-(\w+)\.xml", path)
        if match and match[2] in ATTACKS:
            kind, attack = match[1], match[2]
            build, ctype = (sitemap, "application/xml") if kind == "sitemap" else (feed, "application/rss+xml")
            return 200, ctype, build(attack, self.origin, self.secret, self.article(kind, attack))
        if path.startswith("/article/"):
            return 200, "text/html; charset=utf-8", article_html(f"Article {path.rsplit('/', 1)[1]}").encode()
        return 404, "text/html", b"<html><head><title>Not found</title></head><body>Not found</body></html>"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture(scope="module")
def site(secret: Path) -> Iterator[XmlTrapSite]:
    server = XmlTrapSite(secret)
    yield server
    server.stop()


def fetched_dtds(site: XmlTrapSite) -> list[str]:
    return [path for path in site.requests if path.endswith(".dtd")]


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_sitemap_resolves_no_entity_and_fetches_no_dtd(site: XmlTrapSite, secret: Path, attack: str) -> None:
    body = sitemap(attack, site.origin, secret, "/article/1")
    links = read_sitemap(body)
    assert document_kind(body, site.origin + "/sitemap.xml") in ("sitemap", "page")
    assert not any(leak in url for url in links.pages for leak in LEAKS)
    # The good entry survives every attack; at an entity bomb, Scrapy's recovering parser stops reading, so the
    # entries before it are kept and nothing after it.
    assert site.origin + "/article/1" in links.pages
    assert fetched_dtds(site) == []


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_feed_resolves_no_entity_and_fetches_no_dtd(site: XmlTrapSite, secret: Path, attack: str) -> None:
    body = feed(attack, site.origin, secret, "/article/1")
    links = feed_links(body, site.origin + "/feed.xml")
    assert document_kind(body, site.origin + "/feed.xml") in ("feed", "page")
    assert not any(leak in url for url in links for leak in LEAKS)
    # The good entry survives every attack but the entity bomb, where libxml2 gives up on the whole document.
    assert (site.origin + "/article/1" in links) is (attack != "laughs")
    assert fetched_dtds(site) == []


def test_an_xhtml_page_with_entities_is_read_without_resolving_them(secret: Path) -> None:
    # Pages go through the HTML parser even when served as XHTML; it reads no DOCTYPE subset at all.
    body = (f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY passwd SYSTEM "file:///etc/passwd">'
            f'<!ENTITY secret SYSTEM "{secret.as_uri()}">]><html><head><title>Story &passwd;&secret;</title></head>'
            f'<body><article><h1>Story &passwd;&secret;</h1>{"<p>Prose of the story, long enough. </p>" * 5}'
            f'</article></body></html>').encode()
    response = HtmlResponse("http://127.0.0.1/story", body=body, headers={"Content-Type": "application/xhtml+xml"})
    reading = read_article(response.selector, response.url)
    text = repr(reading)
    assert "Story" in text and not any(leak in text for leak in LEAKS)


def test_a_crawl_of_hostile_sitemaps_and_feeds_stores_their_articles_and_nothing_else(
        site: XmlTrapSite, tmp_path: Path) -> None:
    database = tmp_path / "news.sqlite3"
    sitemaps = ",".join(f"{site.origin}/sitemap-{attack}.xml" for attack in ATTACKS)
    feeds = ",".join(f"{site.origin}/feed-{attack}.xml" for attack in ATTACKS)
    command = [sys.executable, "-m", "scrapy", "crawl", "article", "-a", f"sitemap={sitemaps}", "-a", f"feed={feeds}",
               "-a", "depth=0", "-s", f"NEWSCRAWL_DATABASE_URL=sqlite:///{database}",
               "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}", "-s", "AUTOTHROTTLE_ENABLED=False",
               "-s", "DOWNLOAD_DELAY=0"]
    site.requests.clear()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    log = done.stderr
    assert done.returncode == 0 and "Traceback" not in log, log[-3000:]

    # The server saw every document asked for, and no request for a DTD: lxml fetched nothing by itself.
    assert fetched_dtds(site) == []
    assert not any(leak in path for path in site.requests for leak in LEAKS)
    with closing(sqlite3.connect(database)) as connection:
        stored = {urlsplit(url).path: title + body for url, title, body in
                  connection.execute("SELECT url, title, body FROM articles")}
    expected = {XmlTrapSite.article("sitemap", attack) for attack in ATTACKS}
    expected |= {XmlTrapSite.article("feed", attack) for attack in ATTACKS if attack != "laughs"}
    assert set(stored) == expected
    assert not any(leak in text for text in stored.values() for leak in LEAKS)
    # The feed with the entity bomb was refused whole, counted and logged as a document that lists nothing.
    assert f"Not an RSS/Atom feed, or an empty one: {site.origin}/feed-laughs.xml" in log
    assert "'newscrawl/discovery/failed': 1" in log
