"""The static test site server, answering conditional requests: ETag and Last-Modified on every 200, 304 when they match.

    from tests.support.conditional_server import serve_conditional
    with serve_conditional(Path("fixtures/site/www")) as site:
        ...  # change a file under the root and the next request for it gets a new ETag and a 200

The ETag is a hash of the bytes served; Last-Modified is when the server first served those bytes for that path.
If-None-Match wins over If-Modified-Since, as RFC 9110 section 13.2.2 orders them.
"""
from __future__ import annotations

import hashlib
import threading
import time
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.site_server import SiteServer, _Handler


class _Validators:
    """Per path: the ETag of the bytes last served and since when they are served (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, tuple[str, float]] = {}

    def current(self, path: str, body: bytes) -> tuple[str, float]:
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        with self._lock:
            known = self._by_path.get(path)
            if known is None or known[0] != etag:
                # Whole seconds: HTTP dates have no finer resolution.
                known = (etag, float(int(time.time())))
                self._by_path[path] = known
            return known


class _ConditionalHandler(_Handler):
    def _send(self, status: int, body: bytes, ctype: str, send_body: bool, extra: dict | None = None) -> None:
        if status != 200:
            super()._send(status, body, ctype, send_body, extra)
            return
        etag, since = self.server.validators.current(urlsplit(self.path).path, body)
        headers = {**(extra or {}), "ETag": etag, "Last-Modified": formatdate(since, usegmt=True)}
        if self._not_modified(etag, since):
            self.send_response(304)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        super()._send(status, body, ctype, send_body, headers)

    def _not_modified(self, etag: str, since: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
            return etag in tags or "*" in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since is not None:
            try:
                return since <= parsedate_to_datetime(if_modified_since).timestamp()
            except (TypeError, ValueError):
                return False
        return False


class ConditionalSiteServer(SiteServer):
    """A SiteServer whose 200 responses carry validators and that answers 304 to a matching conditional request."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        super().__init__(root, host=host, port=port, verbose=verbose)
        # socketserver picks the handler class per connection, so swapping it before the first request is enough.
        self._server.validators = _Validators()
        self._server.RequestHandlerClass = _ConditionalHandler


def serve_conditional(root: Path, host: str = "127.0.0.1", port: int = 0) -> ConditionalSiteServer:
    return ConditionalSiteServer(root, host=host, port=port)
