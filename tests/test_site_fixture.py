"""Self-test of the local test site (fixtures/site) and its HTTP server (tests/support/site_server.py)."""
from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.site_server import resolve, serve_directory  # noqa: E402

SITE = REPO / "fixtures" / "site"
WWW = SITE / "www"
MANIFEST = json.loads((SITE / "MANIFEST.json").read_text(encoding="utf-8"))
ENTRY = MANIFEST["entry"]
TRACKING = set(MANIFEST["tracking_params"])
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def site():
    with serve_directory(WWW) as server:
        yield server


def fetch(server, path, method="GET", headers=None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


class Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.related: list[str] = []
        self.canonical: list[str] = []
        self._in_related = 0
        self.title = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        if self._in_related:
            self._in_related += tag == "section"
        elif tag == "section" and "related" in (d.get("class") or "").split():
            self._in_related = 1
        if tag in ("a", "link") and d.get("href") is not None:
            self.hrefs.append(d["href"])
            if tag == "a" and self._in_related:
                self.related.append(d["href"])
            if tag == "link" and d.get("rel") == "canonical":
                self.canonical.append(d["href"])
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        if self._in_related and tag == "section":
            self._in_related -= 1
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title = (self.title or "") + data


def parse(path_in_www: Path) -> Links:
    p = Links()
    p.feed(path_in_www.read_text(encoding="utf-8"))
    p.close()
    return p


def file_of(url_path: str) -> Path:
    kind, target = resolve(WWW, url_path)
    assert kind == "file", (url_path, kind)
    return target


def normalize(href: str) -> str:
    parts = urlsplit(href)
    q = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in TRACKING]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), ""))


# --------------------------------------------------------------------------------------------------------------
# server
# --------------------------------------------------------------------------------------------------------------

def test_serves_entry_page(site):
    status, headers, body = fetch(site, ENTRY)
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert int(headers["content-length"]) == len(body)
    text = body.decode("utf-8")
    assert '<html lang="sv">' in text
    assert "<title>South Korean envoy vows closer US cooperation for North Korea dialogue | Nyheter</title>" in text
    assert f'<link rel="canonical" href="{ENTRY}">' in text
    for label in ("Bild genererad av AI", "Vad folk säger", "Relaterade artiklar", "Rapporterad av AI",
                  "Denna webbplats använder cookies", "Avböj", "Acceptera"):
        assert label in text
    assert "{{ORIGIN}}" not in text
    assert f"{site.url}{ENTRY}" in text  # og:url / JSON-LD / share links are absolute after substitution


def test_url_mapping_404_redirect_and_head(site):
    assert fetch(site, "/sv/")[0] == 200
    assert fetch(site, "/")[0] == 200
    status, headers, _ = fetch(site, "/sv")
    assert status == 301 and headers["location"] == "/sv/"
    assert fetch(site, ENTRY + ".html")[0] == 200
    assert fetch(site, ENTRY + "?utm_source=x&utm_medium=y")[0] == 200
    for missing in MANIFEST["broken"] + ["/nope", "/sv/artikel/", "/img/none.jpg", "/../../etc/passwd",
                                         "/sv/artikel/%2e%2e/%2e%2e/robots.txt"]:
        status, headers, _ = fetch(site, missing)
        assert status == 404, missing
    status, headers, body = fetch(site, ENTRY, method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000


def test_content_types(site):
    expected = {
        "/robots.txt": "text/plain; charset=utf-8",
        "/sitemap.xml": "application/xml",
        "/sitemap-news.xml": "application/xml",
        "/rss.xml": "application/rss+xml",
        "/atom.xml": "application/atom+xml",
        "/static/site.css": "text/css; charset=utf-8",
    }
    for path, ctype in expected.items():
        status, headers, _ = fetch(site, path)
        assert (status, headers["content-type"]) == (200, ctype), path


def test_origin_substitution(site):
    _, _, robots = fetch(site, "/robots.txt")
    robots = robots.decode()
    assert f"Sitemap: {site.url}/sitemap.xml" in robots.splitlines()
    assert "Disallow: /sv/privat/" in robots.splitlines()
    for path in ("/sitemap.xml", "/sitemap-articles.xml", "/sitemap-news.xml", "/rss.xml", "/atom.xml", ENTRY):
        _, _, body = fetch(site, path)
        assert b"{{ORIGIN}}" not in body, path
        assert site.url.encode() in body, path
    # the files themselves keep the token
    assert "{{ORIGIN}}" in (WWW / "robots.txt").read_text(encoding="utf-8")


def test_request_log(site):
    site.clear_requests()
    fetch(site, "/sv/?utm_source=x", headers={"User-Agent": "newscrawl-test", "X-Probe": "1"})
    fetch(site, "/nope", method="HEAD")
    reqs = site.requests
    assert [(m, p) for m, p, _ in reqs] == [("GET", "/sv/?utm_source=x"), ("HEAD", "/nope")]
    assert reqs[0][2]["User-Agent"] == "newscrawl-test" and reqs[0][2]["X-Probe"] == "1"
    assert site.paths() == ["/sv/?utm_source=x"]
    # concurrent requests are all logged
    site.clear_requests()
    paths = [f"/sv/artikel/{i}" for i in range(20)]
    threads = [threading.Thread(target=fetch, args=(site, p)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(site.paths()) == sorted(paths)


def test_context_manager_stops_and_module_main():
    with serve_directory(WWW) as server:
        url = server.url
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert fetch(server, "/robots.txt")[0] == 200
    with pytest.raises(OSError):
        fetch(server, "/robots.txt")
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.site_server", str(WWW), "--port", "0", "-q"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert m, line
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        try:
            conn.request("GET", "/robots.txt")
            resp = conn.getresponse()
            assert resp.status == 200 and f"Sitemap: http://127.0.0.1:{m.group(1)}/sitemap.xml" in resp.read().decode()
        finally:
            conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


# --------------------------------------------------------------------------------------------------------------
# fixture site and MANIFEST
# --------------------------------------------------------------------------------------------------------------

def test_build_is_deterministic_and_committed():
    res = subprocess.run([sys.executable, str(SITE / "build.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_articles_and_duplicates_have_canonical():
    arts = MANIFEST["articles"]
    assert len(arts) >= 45 and ENTRY in arts
    titles = set()
    for path in arts:
        links = parse(file_of(path))
        assert links.canonical == [path], path
        assert links.title and links.title.endswith(" | Nyheter")
        titles.add(links.title)
        assert 2 <= len(links.related) <= (7 if path == ENTRY else 5), path
    assert len(titles) == len(arts)
    bodies = [MANIFEST["pages"][p]["body"] for p in arts]
    assert len(set(bodies)) == len(bodies)
    for alias, canonical in MANIFEST["duplicates"].items():
        assert canonical in arts
        assert parse(file_of(alias)).canonical == [canonical], alias


def test_every_internal_link_resolves_or_is_a_listed_trap():
    traps = MANIFEST["traps"]
    allowed_missing = set(MANIFEST["broken"]) | {traps["calendar"]["next_of_last"]}
    offsite_ok = set(MANIFEST["offsite"])
    share_hosts = {"twitter.com", "www.facebook.com", "www.linkedin.com"}
    seen_missing = set()
    for f in WWW.rglob("*.html"):
        for href in parse(f).hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc:
                assert href in offsite_ok or parts.netloc in share_hosts, (f, href)
                continue
            if not href.startswith("/"):
                assert href.startswith("#"), (f, href)  # only in-page anchors are relative
                continue
            kind, _ = resolve(WWW, parts.path)
            if kind == "missing":
                assert parts.path in allowed_missing, (f, href)
                seen_missing.add(parts.path)
    assert seen_missing == allowed_missing
    # images are never real files
    assert not list(WWW.rglob("*.jpg"))


def test_related_graph_depths_match_manifest():
    arts = set(MANIFEST["articles"])
    dups = MANIFEST["duplicates"]
    related = {p: parse(file_of(p)).related for p in arts}
    assert related == MANIFEST["related_graph"]
    depth = {ENTRY: 0}
    q = deque([ENTRY])
    while q:
        cur = q.popleft()
        for href in related[cur]:
            n = normalize(href)
            n = dups.get(n, n)
            if n in arts and n not in depth:
                depth[n] = depth[cur] + 1
                q.append(n)
    assert set(depth) == arts
    assert max(depth.values()) == MANIFEST["max_depth"] == 4
    by_depth = {}
    for p, d in depth.items():
        by_depth.setdefault(str(d), []).append(p)
    assert {k: sorted(v) for k, v in by_depth.items()} == MANIFEST["reachable_from_entry_by_depth"]
    for p in arts:
        assert MANIFEST["pages"][p]["depth"] == depth[p]
    # cycles exist
    assert MANIFEST["traps"]["cycles"]
    a, b = MANIFEST["traps"]["cycles"][0]
    assert any(normalize(h) == b for h in related[a]) and any(normalize(h) == a for h in related[b])


def test_traps_are_present():
    traps = MANIFEST["traps"]
    all_related = [h for hs in MANIFEST["related_graph"].values() for h in hs]
    flat = " ".join(all_related)
    for param in ("utm_source=", "fbclid=", "gclid=", "#comments"):
        assert param in flat or any(param in t["href"] for t in traps["tracking_params"]), param
    for key in ("aliases", "broken", "offsite", "disallowed", "session_id", "repeated_segments"):
        for t in traps[key]:
            assert t["href"] in all_related, (key, t)
            assert t["linked_from"], (key, t)
    assert any(";jsessionid=" in t["href"] for t in traps["session_id"])
    assert any(t["href"].startswith("/sv/sv/sv/") for t in traps["repeated_segments"])
    cal = traps["calendar"]
    assert cal["entry"] in all_related and len(cal["pages"]) >= 20
    for here, nxt in zip(cal["pages"], cal["pages"][1:] + [cal["next_of_last"]]):
        assert nxt in parse(file_of(here)).hrefs
    robots = (WWW / "robots.txt").read_text(encoding="utf-8")
    for rule in MANIFEST["robots_disallow"]:
        assert f"Disallow: {rule}" in robots
    for path in MANIFEST["disallowed"]:
        assert any(path.startswith(r) for r in MANIFEST["robots_disallow"])
        assert path not in MANIFEST["articles"]
    assert any(h.startswith("/sv/privat/") for h in all_related)
    for path in MANIFEST["not_articles"]:
        assert resolve(WWW, path)[0] == "file", path
        assert path not in MANIFEST["articles"]
    index = parse(file_of("/sv/"))
    assert len([h for h in index.hrefs if h in MANIFEST["articles"]]) == 15


def test_sitemaps_and_feeds(site):
    arts = set(MANIFEST["articles"])

    def xml(path):
        status, _, body = fetch(site, path)
        assert status == 200, path
        return ET.fromstring(body)

    def paths(urls):
        out = []
        for u in urls:
            assert u.startswith(site.url + "/"), u
            out.append(u[len(site.url):])
        return out

    index = xml("/sitemap.xml")
    assert paths(e.text for e in index.iter(SM + "loc")) == ["/sitemap-articles.xml", "/sitemap-news.xml"]
    urlset = xml("/sitemap-articles.xml")
    assert set(paths(e.text for e in urlset.iter(SM + "loc"))) == arts
    assert len(list(urlset.iter(SM + "lastmod"))) == len(arts)
    news = xml("/sitemap-news.xml")
    news_ns = "{http://www.google.com/schemas/sitemap-news/0.9}"
    assert len(list(news.iter(news_ns + "news"))) == 20
    newest = MANIFEST["newest_20"]
    rss = xml("/rss.xml")
    assert paths(e.text for e in rss.iter("link") if e.text and "/artikel/" in e.text) == newest
    atom = xml("/atom.xml")
    assert paths(e.get("href") for e in atom.iter(ATOM + "link") if "/artikel/" in e.get("href")) == newest


def test_entry_is_the_seed_page():
    page = MANIFEST["pages"][ENTRY]
    html_text = file_of(ENTRY).read_text(encoding="utf-8")
    assert page["body"].startswith("In Washington, South Korea's new ambassador to the US, Kang Kyung-wha")
    assert page["body"].endswith("Speculation persists that Trump's approval could trigger internal debates "
                                 "over proliferation concerns.")
    assert page["paragraphs"] == 6 and len(page["related"]) == 7
    assert [r["ai_reported"] for r in page["related"]] == [True, False, True, False, True, False, True]
    assert page["images"][0]["ai_generated"] is True
    for para in page["body"].split("\n\n"):
        assert f"<p>{para}</p>" in html_text.replace("&quot;", '"')
    # the depth-1 articles are exactly the seed's related teasers
    assert sorted(normalize(r["url"]) for r in page["related"]) == MANIFEST["reachable_from_entry_by_depth"]["1"]
