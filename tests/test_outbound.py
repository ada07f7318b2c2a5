"""What a crawl may reach besides the page it was sent to: robots.txt re-checked after a redirect to another host, and
no Public Suffix List download by Scrapy's cookie handling (issue 5)."""

from __future__ import annotations

import os
import socketserver
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

from tests.support.hostile_server import article_html

from .conftest import ROOT

#: robots.txt by host name: the redirect's target host forbids what its source host allows.
ROBOTS = {"127.0.0.1": b"User-agent: *\nDisallow:\n", "localhost": b"User-agent: *\nDisallow: /blocked/\n"}


class TwoHostSite:
    """One server on 127.0.0.1 answering as two sites, told apart by the Host header: 127.0.0.1 and localhost."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (host name, path)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
                site.requests.append((host, self.path))
                status, headers, body = site.answer(host, urlsplit(self.path).path)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, ROBOTS.get(host, b"")
        if path.startswith("/to-other-host/"):
            return 302, {"Location": self.url(path.removeprefix("/to-other-host"), "localhost")}, b""
        if path == "/cookie":
            page = article_html("A page that sets a cookie").encode()
            return 200, {**html, "Set-Cookie": "session=abc; Path=/"}, page
        if path.startswith(("/blocked/", "/open/")):
            return 200, html, article_html(f"Article at {host}{path}").encode()
        return 404, html, b"<html><head><title>Not found</title></head><body>Not found</body></html>"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def site() -> Iterator[TwoHostSite]:
    server = TwoHostSite()
    yield server
    server.stop()


def crawl(site: TwoHostSite, tmp_path: Path, urls: list[str], *settings: str,
          env: dict[str, str] | None = None, clean: bool = True) -> tuple[str, dict[str, str]]:
    """Run the article spider on both host names; returns the log and the stored rows (path -> title)."""
    database, url_list = tmp_path / "news.sqlite3", tmp_path / "urls.txt"
    url_list.write_text("\n".join(urls) + "\n")
    options = {"NEWSCRAWL_DATABASE_URL": f"sqlite:///{database}", "NEWSCRAWL_SPOOL_DIR": str(tmp_path / "spool"),
               "AUTOTHROTTLE_ENABLED": "False", "DOWNLOAD_DELAY": "0",
               "NEWSCRAWL_SSRF_ALLOWED_HOSTS": f"localhost:{site.port}"}
    command = [sys.executable, "-m", "scrapy", "crawl", "article", "-a", f"urls={url_list}", "-a", "depth=0",
               "-a", "allowed_domains=127.0.0.1,localhost",
               *(arg for name, value in options.items() for arg in ("-s", f"{name}={value}")), *settings]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and ("Traceback" not in done.stderr or not clean), done.stderr[-3000:]
    with closing(sqlite3.connect(database)) as connection:
        stored = {urlsplit(url).hostname + urlsplit(url).path: title
                  for url, title in connection.execute("SELECT url, title FROM articles")}
    return done.stderr, stored


def test_a_redirect_to_another_host_is_checked_against_that_hosts_robots_txt(site: TwoHostSite, tmp_path: Path) -> None:
    site.requests.clear()
    # 127.0.0.1 allows everything; both pages redirect to localhost, whose robots.txt forbids /blocked/.
    log, stored = crawl(site, tmp_path, [site.url("/to-other-host/blocked/page"), site.url("/to-other-host/open/page")])
    assert ("127.0.0.1", "/to-other-host/blocked/page") in site.requests
    assert ("localhost", "/robots.txt") in site.requests
    assert ("localhost", "/blocked/page") not in site.requests
    assert "'robotstxt/forbidden': 1" in log and "links refused: offsite 0, robots 1" in log
    assert set(stored) == {"localhost/open/page"}  # the allowed redirect went through, so the check is per page


class RecordingProxy(socketserver.ThreadingTCPServer):
    """A would-be HTTPS proxy on 127.0.0.1: records each request line (CONNECT host:port) and refuses it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy.lines.append(self.rfile.readline(4096).decode("latin-1").strip())
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "control-with-download-allowed"])
def test_cookies_never_make_tldextract_download_the_public_suffix_list(
        site: TwoHostSite, tmp_path: Path, offline: bool) -> None:
    # Every HTTPS request made outside Scrapy's downloader (requests honours HTTPS_PROXY) lands in the recording proxy
    # instead of the internet; an empty tldextract cache means the first cookie would trigger the download.
    proxy = RecordingProxy()
    # Any proxy settings of the machine are replaced, in both spellings, so nothing can bypass the recording proxy.
    replaced = ("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    env = {key: value for key, value in os.environ.items() if key.upper() not in replaced}
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    env.update({"HTTPS_PROXY": proxy_url, "https_proxy": proxy_url, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "TLDEXTRACT_CACHE": str(tmp_path / "tldextract-cache")})
    try:
        # On localhost: a cookie for an IP address is never looked up in the suffix list.
        log, stored = crawl(site, tmp_path, [site.url("/cookie", "localhost")], "-s",
                            f"NEWSCRAWL_PSL_OFFLINE={offline}", env=env, clean=offline)
    finally:
        proxy.stop()
    assert set(stored) == {"localhost/cookie"}
    if offline:
        assert proxy.lines == []
    else:  # the control: without the extension, the first cookie sends tldextract to the internet (and its refusal
        # is logged with a traceback, then the bundled list is used)
        assert any(line.startswith("CONNECT publicsuffix.org:443") for line in proxy.lines), proxy.lines
        assert "Exception reading Public Suffix List url" in log
