"""A generated news site of N article pages, and a fast static server for it on 127.0.0.1, for the crawl benchmarks.

    .venv/bin/python benchmarks/sitegen.py --pages 5000 [--seconds 5]   # build, serve, measure the server alone

The site is deterministic for a given (pages, seed): page ``i`` is ``/news/<section>/<i>-<slug>.html`` with a
header and navigation, a headline, byline and date, a figure with an AI-disclosed caption, 6-12 paragraphs,
an advertisement box, a "Related articles" aside with four teaser cards and a footer. The teasers link to
page ``i + 1`` (so every page is reachable from page 0, whatever the crawl order) and to three pages picked
by a seeded RNG among the 50 either side (related stories are recent ones).
Section index pages and ``/`` link into the graph as news sites do. Every article page is about 6-7 kB.

The server is asyncio (one thread, one process of its own), answers HTTP/1.1 with keep-alive from
responses prepared in memory at start-up, and so costs a few microseconds a request: it is started as a
subprocess, so its CPU never competes with the benchmark or with the crawler being measured, and
``ServedSite.cpu_seconds()`` says how much CPU it used (the crawl benchmarks print it to show it is not
the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("politics", "economy", "science", "sport", "culture", "world")
RELATED_PER_PAGE = 4
# Related stories are recent ones: picks lie within this many pages either side, as on a news site, so the
# crawl frontier stays about the same size whatever the size of the site.
RELATED_WINDOW = 50
_WORDS = (
    "the council said on tuesday that its new budget would cut waiting times for patients in the region "
    "while officials warned that costs of energy and housing kept rising across every district researchers "
    "found that the river had warmed by two degrees over a decade and fishermen reported smaller catches "
    "voters in the northern towns turned out in record numbers after a campaign dominated by transport "
    "the minister promised a review of school funding teachers unions welcomed the plan but asked for "
    "details a spokesperson for the company declined to comment on the figures published by the agency "
    "local businesses described a difficult winter with fewer visitors and higher wages analysts expect "
    "the central bank to hold rates steady until inflation falls closer to its target of two percent"
).split()


@dataclass(frozen=True)
class Site:
    root: Path
    pages: int
    seed: int

    def article_path(self, index: int) -> str:
        return article_path(index)

    @property
    def start_path(self) -> str:
        return article_path(0)


def article_path(index: int) -> str:
    section = SECTIONS[index % len(SECTIONS)]
    return f"/news/{section}/{index}-story-{index * 7919 % 10007}.html"


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng, rng.randint(9, 24)) for _ in range(rng.randint(2, 5)))


def _title(rng: random.Random) -> str:
    return _sentence(rng, rng.randint(6, 11)).rstrip(".?!")


def related_of(index: int, pages: int, rng: random.Random) -> list[int]:
    """The next page (connectivity) and three seeded picks, all distinct and never the page itself."""
    if pages < 2:
        return []
    picks = [(index + 1) % pages]
    for _ in range(64):  # bounded: 64 draws always find 3 distinct others when pages > 4
        if len(picks) >= min(RELATED_PER_PAGE, pages - 1):
            break
        other = (index + rng.randint(-RELATED_WINDOW, RELATED_WINDOW)) % pages
        if other != index and other not in picks:
            picks.append(other)
    return picks


def render_article(index: int, pages: int, titles: list[str], seed: int) -> str:
    rng = random.Random(seed * 1_000_003 + index)
    section = SECTIONS[index % len(SECTIONS)]
    title = titles[index]
    paragraphs = [_paragraph(rng) for _ in range(rng.randint(6, 12))]
    ad_at = len(paragraphs) // 2
    body = []
    for number, text in enumerate(paragraphs):
        if number == ad_at:
            body.append(
                '<div class="ad-slot"><span class="ad-label">Advertisement</span>'
                '<a href="https://ads.example.net/click?id=%d"><img src="/static/ad.png" alt="" width="300" '
                'height="250"></a></div>' % index
            )
        body.append(f"<p>{html.escape(text)}</p>")
    teasers = []
    for other in related_of(index, pages, rng):
        teasers.append(
            f'<li class="teaser"><a href="{article_path(other)}"><img src="/static/t{other % 50}.jpg" '
            f'alt="" width="160" height="90"><h3>{html.escape(titles[other])}</h3></a>'
            f"<p>{html.escape(_sentence(rng, 12))}</p><span class=\"label\">Reported by AI</span></li>"
        )
    nav = "".join(f'<li><a href="/news/{s}/">{s.title()}</a></li>' for s in SECTIONS)
    day = 1 + index % 28
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} | Example Daily</title>
<link rel="canonical" href="{article_path(index)}">
<meta property="og:title" content="{html.escape(title)}"><meta property="og:site_name" content="Example Daily">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css"><script src="/static/site.js" defer></script>
</head><body>
<header class="site-header"><a class="logo" href="/"><img src="/static/logo.svg" alt="Example Daily logo" width="40" height="40"></a>
<nav class="main-nav" aria-label="Sections"><ul><li><a href="/">Home</a></li>{nav}</ul></nav>
<a class="skip" href="#main">Skip to content</a></header>
<main id="main"><article class="story">
<header><p class="kicker"><a href="/news/{section}/">{section.title()}</a></p>
<h1>{html.escape(title)}</h1>
<p class="byline">By Example Newsroom · <time datetime="2026-03-{day:02d}T08:{index % 60:02d}:00Z">March {day}, 2026</time></p>
<p class="ai-note">Reported by AI</p></header>
<figure class="hero"><img src="/static/hero{index % 50}.jpg" alt="{html.escape(_sentence(rng, 8))}" width="1200" height="675">
<figcaption>{html.escape(_sentence(rng, 10))} <span class="credit">Image generated by AI</span></figcaption></figure>
<div class="story-body">
{"".join(body)}
</div>
<div class="share"><span>Share</span><a href="https://social.example.com/share?u={index}">Share on X</a></div>
</article>
<aside class="related"><h2>Related articles</h2><ul>{"".join(teasers)}</ul></aside>
</main>
<footer class="site-footer"><p>© 2026 Example Daily. All rights reserved.</p>
<ul><li><a href="/about.html">About us</a></li><li><a href="/contact.html">Contact</a></li></ul></footer>
</body></html>
"""


def render_index(title: str, links: list[int], titles: list[str]) -> str:
    items = "".join(f'<li><a href="{article_path(i)}">{html.escape(titles[i])}</a></li>' for i in links)
    nav = "".join(f'<li><a href="/news/{s}/">{s.title()}</a></li>' for s in SECTIONS)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f'<body><nav><ul><li><a href="/">Home</a></li>{nav}</ul></nav><main><h1>{html.escape(title)}</h1>'
        f"<ul>{items}</ul></main></body></html>\n"
    )


def generate_site(root: Path, pages: int, seed: int = 0) -> Site:
    """Write the site under ``root`` (created if missing); the same (pages, seed) always gives the same bytes."""
    rng = random.Random(seed)
    titles = [_title(rng) for _ in range(pages)]
    for index in range(pages):
        path = root / article_path(index).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_article(index, pages, titles, seed), "utf-8")
    for number, section in enumerate(SECTIONS):
        latest = list(range(number, pages, len(SECTIONS)))[-30:]
        folder = root / "news" / section
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "index.html").write_text(render_index(section.title(), latest, titles), "utf-8")
    (root / "index.html").write_text(render_index("Example Daily", list(range(min(pages, 30))), titles), "utf-8")
    for name in ("about.html", "contact.html"):
        (root / name).write_text(render_index(name.removesuffix(".html").title(), [], titles), "utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /search\n", "utf-8")
    return Site(root, pages, seed)


@contextmanager
def temporary_site(pages: int, seed: int = 0) -> Iterator[Site]:
    folder = Path(tempfile.mkdtemp(prefix="newscrawl-site-"))
    try:
        yield generate_site(folder, pages, seed)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- server ---------------------------------------------------------------------------------------------

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


def _response(status: str, body: bytes, content_type: str) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


def load_responses(root: Path) -> dict[str, bytes]:
    """Every file of the site as a complete HTTP response, keyed by URL path; directories by ``/dir/``."""
    responses: dict[str, bytes] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        url = "/" + path.relative_to(root).as_posix()
        response = _response("200 OK", path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        responses[url] = response
        if path.name == "index.html":
            responses[url.removesuffix("index.html")] = response
    return responses


NOT_FOUND = _response("404 Not Found", b"<!DOCTYPE html><title>Not found</title><h1>404</h1>\n", "text/html; charset=utf-8")


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, responses: dict[str, bytes]) -> None:
    try:
        while True:  # one request per turn; ends when the client closes the connection
            head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].split()
            path = request_line[1].decode("latin-1").split("?", 1)[0] if len(request_line) >= 2 else "/"
            writer.write(responses.get(path, NOT_FOUND))
            if b"connection: close" in head.lower():
                break
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(root: Path, port: int) -> None:
    responses = load_responses(root)
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, responses), "127.0.0.1", port, reuse_address=True, backlog=1024
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@dataclass
class ServedSite:
    site: Site
    process: subprocess.Popen
    port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def start_url(self) -> str:
        return self.origin + self.site.start_path

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (from /proc, Linux)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serve_site(site: Site) -> Iterator[ServedSite]:
    """Serve ``site`` on 127.0.0.1 from a server process of its own; stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, __file__, "serve", str(site.root)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"site server did not start: {line!r}")
        yield ServedSite(site, process, int(line.split()[1]))
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


# ---- measuring the server alone --------------------------------------------------------------------------


def load_test(served: ServedSite, seconds: float, connections: int = 8) -> tuple[int, float]:
    """Requests answered in ``seconds`` by ``connections`` keep-alive clients (threads, raw sockets)."""
    paths = [article_path(i).encode() for i in range(served.site.pages)]
    counts = [0] * connections
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        with socket.create_connection(("127.0.0.1", served.port)) as sock:
            buffer = b""
            number = slot
            while time.perf_counter() < deadline:
                sock.sendall(b"GET " + paths[number % len(paths)] + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                number += connections
                while b"\r\n\r\n" not in buffer:
                    buffer += sock.recv(65536)
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                buffer = buffer[length:]
                counts[slot] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="sitegen.py serve")
        parser.add_argument("root", type=Path)
        parser.add_argument("--port", type=int, default=0)
        args = parser.parse_args(argv[1:])
        try:
            asyncio.run(_serve(args.root, args.port))
        except KeyboardInterrupt:
            pass
        return 0
    parser = argparse.ArgumentParser(description="Generate the benchmark site, serve it and measure the server alone.")
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the load test")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with temporary_site(args.pages, args.seed) as site:
        built = time.perf_counter() - started
        size = sum(p.stat().st_size for p in site.root.rglob("*.html"))
        print(f"site: {args.pages} article pages, {size / 1e6:.1f} MB, generated in {built:.1f} s")
        with serve_site(site) as served:
            cpu_before = served.cpu_seconds()
            requests, elapsed = load_test(served, args.seconds)
            cpu = served.cpu_seconds() - cpu_before
            print(
                f"server alone: {requests / elapsed:.0f} requests/s with 8 keep-alive clients "
                f"(server CPU {cpu / elapsed:.0%} of one core; the Python client is the limit when below 100%)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
