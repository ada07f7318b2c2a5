"""A threaded HTTP server on 127.0.0.1 that misbehaves in every way issue 5 lists (stdlib only).

    from tests.support.hostile_server import serve_hostile
    with serve_hostile() as site:
        site.url("/good/1")             # http://127.0.0.1:PORT/good/1
        site.url("/good/1", "localhost")  # the same server under a second host name
        site.requests                   # [(method, path, headers), ...]

Every page is answered from 127.0.0.1; the addresses the pages point at elsewhere (10.0.0.1, 169.254.169.254,
[::1], 2130706433, a closed port) are never served by anything, so a guard that let one through would show up as a
connection error in the crawl's stats, and one that reached this server under a forbidden Host shows up in the log.
From the shell:  python -m tests.support.hostile_server --port 8001
"""

from __future__ import annotations

import argparse
import gzip
import html
import random
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

#: Longest a hanging response holds its connection; the crawl's DOWNLOAD_TIMEOUT must be shorter.
HANG_SECONDS = 5.0
DEEP_LEVELS = 50_000
BOMB_BYTES = 64 * 1024 * 1024  # inflates to 64 MiB from about 64 KiB on the wire
CHAIN_LENGTH = 30
#: Failures a /flaky/ page answers before it serves the article.
FLAKY_FAILURES = 1

PARAGRAPHS = [
    "The harbour council voted on Tuesday to rebuild the lifeboat station on higher ground after two winter "
    "storms tore away part of the slipway and flooded the crew room to a depth of almost a metre.",
    "Volunteers spent six weeks launching from a neighbouring beach while engineers assessed the damage, and "
    "the charity says the new launch ramp will recover most of the time lost on the longer route.",
    "Opponents argued that the new site would add minutes to the crew's response time because volunteers living "
    "in the old town would have to cross the harbour bridge; the charity's modelling showed ninety seconds.",
    "Construction is expected to begin in the spring and take around eighteen months, with the council paying "
    "part of the cost from its coastal resilience fund and a public appeal aiming to raise the rest.",
    "Local fishermen welcomed the decision but asked for the inner basin to be dredged at the same time, saying "
    "silt washed in by the storms had already made the channel unsafe at low tide for most of the fleet.",
]


def article_html(
    title: str,
    *,
    related: list[tuple[str, str]] = (),  # type: ignore[assignment]
    head_extra: str = "",
    title_tag: str | None = None,
    paragraphs: list[str] | None = None,
    charset_meta: str = "utf-8",
) -> str:
    """A plain news article page; `related` (url, teaser title) fills a "Related articles" section."""
    items = "\n".join(
        f'<li><a href="{html.escape(url)}"><span class="teaser-title">{html.escape(text)}</span></a></li>'
        for url, text in related
    )
    related_section = f'<section class="related-articles"><h2>Related articles</h2><ul>\n{items}\n</ul></section>' if related else ""
    body = "\n".join(f"<p>{p}</p>" for p in (paragraphs if paragraphs is not None else PARAGRAPHS))
    title_element = f"<title>{html.escape(title)} | Hostile News</title>" if title_tag is None else title_tag
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="{charset_meta}">{title_element}{head_extra}</head>
<body><header><a href="/">Hostile News</a></header>
<main><article><h1>{html.escape(title)}</h1><p class="byline">By Ada Reporter</p>
<div class="story-body">
{body}
</div></article>
{related_section}
</main><footer>Hostile News Ltd</footer></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server_version = "HostileTestSite/1.0"
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def handle(self) -> None:
        # Resets and abandoned hanging responses leave a dead socket behind: that is the point, not an error.
        try:
            super().handle()
        except (OSError, ValueError):
            pass

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def do_GET(self) -> None:
        self.server.record(self.command, self.path, dict(self.headers.items()))
        parts = urlsplit(self.path)
        route = self.server.routes.get(parts.path)
        if route is None and parts.path.startswith("/redirect/chain/"):
            route = self.server.chain
        if route is None and parts.path.startswith("/flaky/"):
            route = self.server.flaky
        if route is None:
            self.send_body(404, b"<html><head><title>Not found</title></head><body>Not found</body></html>")
            return
        route(self, parts.path, parse_qs(parts.query))

    # -- helpers for the routes

    def send_body(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8",
                  headers: dict[str, str] | None = None, content_length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, b"", "text/plain", {"Location": location, **(headers or {})})

    def reset(self) -> None:
        # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


Route = Callable[[_Handler, str, dict[str, list[str]]], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, verbose: bool):
        super().__init__((host, port), _Handler)
        self.verbose = verbose
        self.port: int = self.server_address[1]
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.hits: Counter[str] = Counter()
        # A port with nothing listening: the "internal service on another port" that must never be tried.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.closed_port: int = probe.getsockname()[1]
        self.routes = self._routes()

    def record(self, method: str, path: str, headers: dict[str, str]) -> int:
        with self._lock:
            self.log.append((method, path, headers))
            self.hits[urlsplit(path).path] += 1
            return self.hits[urlsplit(path).path]

    def origin(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    # -- content built once

    @cached_property
    def bomb(self) -> bytes:
        head = b"<!DOCTYPE html><html><head><title>Bomb</title></head><body><p>"
        return gzip.compress(head + b" " * BOMB_BYTES + b"</p></body></html>", compresslevel=9, mtime=0)

    @cached_property
    def deep(self) -> bytes:
        paragraphs = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
        return (
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Deeply nested page</title></head>"
            "<body><h1>Deeply nested page</h1>" + "<div>" * DEEP_LEVELS + paragraphs + "</div>" * DEEP_LEVELS
            + "</body></html>"
        ).encode()

    def hub_links(self) -> list[tuple[str, str]]:
        """Every case, as the related links of the hub article /good/1."""
        o = self.origin()
        own = [
            "/good/2", "/good/3", "/flaky/retry-after", "/status/500", "/status/503", "/status/429-long",
            "/reset", "/hang", "/truncated", "/redirect/loop-a", "/redirect/chain/1", "/redirect/other-host",
            "/redirect/metadata", "/redirect/file", "/redirect/other-port", "/redirect/decimal", "/redirect/ipv6",
            "/bomb", "/deep", "/empty", "/binary/png", "/binary/random", "/charset-conflict", "/bad-jsonld",
            "/no-title", "/null-bytes", "/script-title", "/cookie/set",
        ]
        forbidden = [
            "http://10.0.0.1/internal", f"http://[::1]:{self.port}/good/2", f"http://2130706433:{self.port}/good/2",
            "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "ftp://127.0.0.1/pub",
            f"http://127.0.0.1:{self.closed_port}/admin", f"http://localhost:{self.port}/good/3",
            "data:text/html,<p>hi</p>",
        ]
        return [(o + path, f"Story {path}") for path in own] + [(url, "Internal link") for url in forbidden]

    def _routes(self) -> dict[str, Route]:
        def good(number: int, *, related: bool = False):
            def route(h: _Handler, path: str, query: dict) -> None:
                links = self.hub_links() if related else [(self.origin() + "/good/1", "Back to the hub story")]
                h.send_body(200, article_html(f"Good article number {number}", related=links).encode())
            return route

        def status(code: int, retry_after: str | None = None):
            def route(h: _Handler, path: str, query: dict) -> None:
                headers = {"Retry-After": retry_after} if retry_after else {}
                h.send_body(code, f"<html><body>{code}</body></html>".encode(), headers=headers)
            return route

        def hang(h: _Handler, path: str, query: dict) -> None:
            self.stopping.wait(HANG_SECONDS)  # bounded, and cut short when the server stops
            h.send_body(200, article_html("Slow article").encode())

        def truncated(h: _Handler, path: str, query: dict) -> None:
            body = article_html("Truncated article").encode()
            h.send_body(200, body[: len(body) // 2], content_length=len(body) * 4)
            h.close_connection = True

        def redirect_to(location: str, status_code: int = 302):
            return lambda h, path, query: h.redirect(location, status_code)

        def bomb(h: _Handler, path: str, query: dict) -> None:
            h.send_body(200, self.bomb, headers={"Content-Encoding": "gzip"})

        def binary_png(h: _Handler, path: str, query: dict) -> None:
            h.send_body(200, b"\x89PNG\r\n\x1a\n" + bytes(random.Random(1).randbytes(4096)))

        def binary_random(h: _Handler, path: str, query: dict) -> None:
            h.send_body(200, random.Random(2).randbytes(16384))

        def charset_conflict(h: _Handler, path: str, query: dict) -> None:
            # Header says UTF-8, meta says windows-1251, the bytes are cp1252: a reader must not crash on any of it.
            text = article_html("Café owners protest über new rules", charset_meta="windows-1251",
                                paragraphs=[p + " Café, naïve, über, ½." for p in PARAGRAPHS])
            h.send_body(200, text.encode("cp1252"), ctype="text/html; charset=utf-8")

        def bad_jsonld(h: _Handler, path: str, query: dict) -> None:
            broken = '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Broken, </script>'
            h.send_body(200, article_html("Article with broken JSON-LD", head_extra=broken).encode())

        def no_title(h: _Handler, path: str, query: dict) -> None:
            h.send_body(200, b"<!DOCTYPE html><html><head></head><body><div><p>Just some words without any "
                             b"headline.</p></div></body></html>")

        def null_bytes(h: _Handler, path: str, query: dict) -> None:
            paragraphs = [p.replace(" the ", " the\x00 ", 2) for p in PARAGRAPHS]
            h.send_body(200, article_html("Article with null\x00 bytes", paragraphs=paragraphs).encode())

        def script_title(h: _Handler, path: str, query: dict) -> None:
            title_tag = "<title><script>alert('title')</script>Scripted headline</title>"
            page = article_html("Scripted headline", title_tag=title_tag).replace(
                "<h1>Scripted headline</h1>",
                "<h1><script>alert('h1')</script>Scripted headline<a href=\"javascript:alert(1)\">!</a></h1>")
            h.send_body(200, page.encode())

        def cookie_set(h: _Handler, path: str, query: dict) -> None:
            h.redirect(self.origin("localhost") + "/cookie/echo", headers={"Set-Cookie": "session=secret; Path=/"})

        def cookie_echo(h: _Handler, path: str, query: dict) -> None:
            h.send_body(200, article_html("Cookie echo").encode())

        def robots(h: _Handler, path: str, query: dict) -> None:
            h.send_body(200, b"User-agent: *\nDisallow: /private/\n", ctype="text/plain")

        o = self.origin()
        return {
            "/robots.txt": robots,
            "/good/1": good(1, related=True),
            "/good/2": good(2),
            "/good/3": good(3),
            "/good/4": good(4),
            "/status/500": status(500),
            "/status/503": status(503, "1"),
            "/status/429-long": status(429, "3600"),
            "/reset": lambda h, path, query: h.reset(),
            "/hang": hang,
            "/truncated": truncated,
            "/redirect/loop-a": redirect_to(o + "/redirect/loop-b"),
            "/redirect/loop-b": redirect_to(o + "/redirect/loop-a"),
            "/redirect/other-host": redirect_to(self.origin("localhost") + "/good/4"),
            "/redirect/metadata": redirect_to("http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
            "/redirect/file": redirect_to("file:///etc/passwd"),
            "/redirect/other-port": redirect_to(f"http://127.0.0.1:{self.closed_port}/admin"),
            "/redirect/decimal": redirect_to(f"http://2130706433:{self.port}/good/2"),
            "/redirect/ipv6": redirect_to(f"http://[::ffff:127.0.0.1]:{self.port}/good/2"),
            "/bomb": bomb,
            "/deep": lambda h, path, query: h.send_body(200, self.deep),
            "/empty": lambda h, path, query: h.send_body(200, b""),
            "/binary/png": binary_png,
            "/binary/random": binary_random,
            "/charset-conflict": charset_conflict,
            "/bad-jsonld": bad_jsonld,
            "/no-title": no_title,
            "/null-bytes": null_bytes,
            "/script-title": script_title,
            "/cookie/set": cookie_set,
            "/cookie/echo": cookie_echo,
        }

    def chain(self, h: _Handler, path: str, query: dict) -> None:
        step = int(path.rsplit("/", 1)[1] or 0)
        if step >= CHAIN_LENGTH:
            h.send_body(200, article_html("End of a long redirect chain").encode())
        else:
            h.redirect(f"{self.origin()}/redirect/chain/{step + 1}")

    def flaky(self, h: _Handler, path: str, query: dict) -> None:
        """503 with Retry-After: 1 for the first FLAKY_FAILURES requests of a path, then the article."""
        if self.hits[path] <= FLAKY_FAILURES:
            h.send_body(503, b"<html><body>Busy</body></html>", headers={"Retry-After": "1"})
        else:
            h.send_body(200, article_html("Article after a Retry-After").encode())


class HostileServer:
    """A running hostile site.  Use as a context manager or call stop()."""

    def __init__(self, port: int = 0, verbose: bool = False):
        self._server = _Server("127.0.0.1", port, verbose)
        self.port = self._server.port
        self.closed_port = self._server.closed_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"hostile-server-{self.port}", daemon=True)
        self._thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return self._server.origin(host) + path

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """Requests received so far, in order: (method, path_with_query, headers)."""
        with self._server._lock:
            return list(self._server.log)

    def hits(self, path: str) -> int:
        with self._server._lock:
            return self._server.hits[path]

    def hub_links(self) -> list[tuple[str, str]]:
        return self._server.hub_links()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=HANG_SECONDS + 1)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_hostile(port: int = 0, verbose: bool = False) -> HostileServer:
    """Start the hostile site in a background thread on 127.0.0.1 and return it."""
    return HostileServer(port=port, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.hostile_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    server = serve_hostile(args.port, verbose=not args.quiet)
    print(f"Hostile site at {server.url('/good/1')}  (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
