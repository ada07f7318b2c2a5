"""The static test site served slowly, with a hook on each request: time for a test to act in the middle of a crawl.

    from tests.support.slow_site import serve_slowly
    with serve_slowly(FIXTURE_SITE / "www", delay=0.1, on_request=hook) as site:
        ...  # as tests.support.site_server.SiteServer; hook(path, n) runs before the n-th response (1-based)

With ``conditional=True`` it also answers conditional requests, as tests.support.conditional_server does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from tests.support.conditional_server import _ConditionalHandler, _Validators
from tests.support.site_server import SiteServer, _Handler

Hook = Callable[[str, int], None]


class _Slow(_Handler):
    def _respond(self, send_body: bool) -> None:
        server = self.server
        with server.slow_lock:
            server.slow_count += 1
            n = server.slow_count
        if server.on_request is not None:
            server.on_request(self.path, n)
        server.slow_stop.wait(server.slow_delay)  # bounded, and cut short when the server stops
        super()._respond(send_body)


class _SlowHandler(_Slow):
    pass


class _SlowConditionalHandler(_Slow, _ConditionalHandler):
    pass


class SlowSiteServer(SiteServer):
    """A SiteServer whose every response waits ``delay`` seconds after calling ``on_request``."""

    def __init__(self, root: Path, delay: float, on_request: Hook | None = None, conditional: bool = False):
        super().__init__(root)
        server = self._server
        server.RequestHandlerClass = _SlowConditionalHandler if conditional else _SlowHandler
        server.validators = _Validators()
        server.slow_delay = delay
        server.slow_stop = threading.Event()
        server.slow_lock = threading.Lock()
        server.slow_count = 0
        server.on_request = on_request

    @property
    def delay(self) -> float:
        return self._server.slow_delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._server.slow_delay = seconds

    def stop(self) -> None:
        self._server.slow_stop.set()
        super().stop()

    def __enter__(self) -> SlowSiteServer:
        return self


def serve_slowly(root: Path, delay: float, on_request: Hook | None = None, conditional: bool = False) -> SlowSiteServer:
    return SlowSiteServer(root, delay, on_request, conditional)
