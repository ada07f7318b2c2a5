"""A tiny threaded HTTP server for the static test site in fixtures/site/www (stdlib only).

    from tests.support.site_server import serve_directory
    with serve_directory(Path("fixtures/site/www")) as site:
        fetch(site.url + "/sv/artikel/...")
        paths = [path for method, path, headers in site.requests]

From the shell:  python -m tests.support.site_server fixtures/site/www --port 8000

URL -> file mapping (fixtures/site/build.py writes files to match):
  /dir/            -> dir/index.html
  /a/b             -> a/b if it is a file, else a/b.html
  /dir (no slash)  -> 301 to /dir/ when dir/index.html exists
  anything else    -> 404
The query string is ignored for the mapping (but kept in the request log).  In text files the literal token
{{ORIGIN}} is replaced by the server's origin, e.g. http://127.0.0.1:8000.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

ORIGIN_TOKEN = b"{{ORIGIN}}"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
# feeds whose file name ends in .xml but that are served with their feed type
NAME_CONTENT_TYPES = {"rss.xml": "application/rss+xml", "atom.xml": "application/atom+xml"}
TEXT_EXTENSIONS = {".html", ".htm", ".xml", ".rss", ".atom", ".txt", ".css", ".js", ".json", ".svg"}

NOT_FOUND_BODY = (b"<!DOCTYPE html>\n<html lang=\"sv\"><head><meta charset=\"utf-8\"><title>Sidan hittades inte"
                  b"</title></head><body><h1>404</h1><p>Sidan hittades inte.</p></body></html>\n")


def content_type_for(path: Path) -> str:
    return NAME_CONTENT_TYPES.get(path.name) or CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def resolve(root: Path, url_path: str) -> tuple[str, Path | str | None]:
    """Map a URL path (without query) to ("file", path) | ("redirect", location) | ("missing", None)."""
    path = unquote(url_path)
    if not path.startswith("/") or "\x00" in path:
        return "missing", None
    segments = path.split("/")[1:]
    if any(s in ("..", ".") for s in segments) or "\\" in path:
        return "missing", None
    rel = path.lstrip("/")
    base = (root / rel) if rel else root
    if path.endswith("/"):
        candidate = base / "index.html"
        return ("file", candidate) if candidate.is_file() else ("missing", None)
    if base.is_file():
        return "file", base
    html = base.parent / (base.name + ".html")
    if html.is_file():
        return "file", html
    if (base / "index.html").is_file():
        return "redirect", url_path + "/"
    return "missing", None


class RequestLog:
    """Thread-safe, append-only log of (method, path_with_query, headers_dict), with the time.monotonic() of each."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: list[tuple[str, str, dict[str, str]]] = []
        self._times: list[float] = []

    def append(self, item):
        with self._lock:
            self._items.append(item)
            self._times.append(time.monotonic())

    def snapshot(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return list(self._items)

    def times(self) -> list[float]:
        with self._lock:
            return list(self._times)

    def clear(self):
        with self._lock:
            self._items.clear()
            self._times.clear()


class _Handler(BaseHTTPRequestHandler):
    server_version = "NyheterTestSite/1.0"
    protocol_version = "HTTP/1.0"
    server: "_Server"

    def log_message(self, format, *args):  # silence the default stderr log
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self._respond(send_body=True)

    def do_HEAD(self):
        self._respond(send_body=False)

    def _respond(self, send_body: bool):
        self.server.log.append((self.command, self.path, dict(self.headers.items())))
        if self.server.latency:
            time.sleep(self.server.latency)  # a server that takes its time, each request in its own thread
        url_path = urlsplit(self.path).path or "/"
        kind, target = resolve(self.server.root, url_path)
        if kind == "redirect":
            self._send(301, b"", "text/plain; charset=utf-8", send_body, {"Location": target})
            return
        if kind == "missing":
            self._send(404, NOT_FOUND_BODY, "text/html; charset=utf-8", send_body)
            return
        try:
            body = target.read_bytes()
        except OSError:
            self._send(404, NOT_FOUND_BODY, "text/html; charset=utf-8", send_body)
            return
        if target.suffix.lower() in TEXT_EXTENSIONS:
            body = body.replace(ORIGIN_TOKEN, self.server.origin.encode("ascii"))
        self._send(200, body, content_type_for(target), send_body)

    def _send(self, status: int, body: bytes, ctype: str, send_body: bool, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, root: Path, verbose: bool, latency: float = 0.0):
        super().__init__(addr, _Handler)
        self.root = root
        self.verbose = verbose
        self.latency = latency
        self.log = RequestLog()
        host, port = self.server_address[:2]
        self.origin = f"http://{host}:{port}"


class SiteServer:
    """A running server.  Use as a context manager or call stop()."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                 latency: float = 0.0):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(self.root)
        self._server = _Server((host, port), self.root, verbose, latency)
        self.host = host
        self.port = self._server.server_address[1]
        self.url = self._server.origin
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"site-server-{self.port}", daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """Requests received so far, in order: (method, path_with_query, headers)."""
        return self._server.log.snapshot()

    def paths(self, method: str | None = "GET") -> list[str]:
        """Request paths (with query) in order, optionally only for one method."""
        return [p for m, p, _ in self.requests if method is None or m == method]

    def timed_paths(self, method: str | None = "GET") -> list[tuple[float, str]]:
        """(time.monotonic() when received, path with query) of each request, in order."""
        timed = zip(self._server.log.times(), self._server.log.snapshot())
        return [(at, path) for at, (m, path, _) in timed if method is None or m == method]

    def clear_requests(self) -> None:
        self._server.log.clear()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "SiteServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SiteServer {self.url} root={self.root}>"


def serve_directory(root: Path, host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                    latency: float = 0.0) -> SiteServer:
    """Start serving `root` in a background thread and return the running SiteServer; each answer waits `latency` s."""
    return SiteServer(root, host=host, port=port, verbose=verbose, latency=latency)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.support.site_server",
                                 description="Serve a static test site (default: fixtures/site/www).")
    ap.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[2] / "fixtures/site/www"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("-q", "--quiet", action="store_true", help="do not log requests")
    args = ap.parse_args(argv)
    server = serve_directory(Path(args.root), host=args.host, port=args.port, verbose=not args.quiet)
    print(f"Serving {server.root} at {server.url}/  (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
