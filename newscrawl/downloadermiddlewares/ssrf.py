"""SSRF guard: refuse requests to non-public addresses or non-web schemes, checked after DNS resolution."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest, NotConfigured
from scrapy.utils.asyncio import run_in_thread
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

#: Request.meta key the spider sets on the requests built from the user's start URLs.
START_URL_META = "newscrawl_start_url"

WEB_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (scheme, host, port): what a start URL trusts for its own redirects and its robots.txt.
Origin = tuple[str, str, int | None]

# Digits, dots and hex markers only: the shapes inet_aton() reads as IPv4 (2130706433, 0177.0.0.1, 0x7f.1).
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)
# 64:ff9b::/96 is NAT64: a gateway turns it into the embedded IPv4 address, so judge that address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host names without DNS (IPv4 in any inet_aton form, IPv6 with or without brackets)."""
    host = host.strip("[]").split("%", 1)[0]  # an IPv6 zone id (fe80::1%eth0) does not change the address
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Browsers, curl and the system resolver all read decimal, octal and hex IPv4 forms; so must the guard.
    if _NUMERIC_HOST.match(host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and that the network may deliver to (mapped, 6to4, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why a crawler must not connect to `ip` (loopback, private, link_local, ...), or None for a public address."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        ip = embedded
    if ip.is_unspecified:
        return "unspecified"  # 0.0.0.0 and :: reach the local host on Linux
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"  # 169.254.169.254 is the cloud metadata service
    if ip.is_multicast:
        return "multicast"
    # is_global alone misses ::/8 (IPv4-compatible ::7f00:1) on Python 3.11, hence is_reserved.
    if ip.is_reserved:
        return "reserved"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "private"  # carrier-grade NAT space, an internal network all the same
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "private"
    if not ip.is_global:
        return "reserved"  # documentation, benchmarking and other special-purpose ranges
    return None


def parse_allowed_hosts(entries: Iterable[str]) -> set[tuple[str, int | None]]:
    """NEWSCRAWL_SSRF_ALLOWED_HOSTS entries ("host", "host:port", "[v6]:port", "v6") as (host, port or None)."""
    allowed: set[tuple[str, int | None]] = set()
    for entry in entries:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else None
        elif entry.count(":") == 1:
            host, port_text = entry.split(":")
            port = int(port_text)
        else:
            host, port = entry, None
        allowed.add((host, port))
    return allowed


def origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), parts.port or DEFAULT_PORTS.get(scheme)


def _system_resolve(host: str, port: int | None) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


class SSRFGuardMiddleware:
    """Refuse any request, from a link, a redirect, robots.txt, a sitemap or a feed, that is not to a public address.

    Exceptions: the user's start URLs (request.meta[START_URL_META], or a URL in the spider's ``start_urls``) and,
    with NEWSCRAWL_SSRF_TRUST_START_ORIGINS, everything on their exact origin (scheme, host, port), else only their
    same-origin redirects and robots.txt; and the hosts in NEWSCRAWL_SSRF_ALLOWED_HOSTS.  It sits last before the
    network (after ReplayMiddleware, 950) so that it judges exactly what would go out; redirected requests reach it
    again because RedirectMiddleware hands them back to the scheduler.
    """

    def __init__(
        self,
        stats: StatsCollector,
        allowed_hosts: set[tuple[str, int | None]],
        trust_start_origins: bool = True,
        cache_seconds: float = 60.0,
        cache_size: int = 4096,
        resolve: Callable[[str, int | None], list[str]] = _system_resolve,
    ):
        self.stats = stats
        self.allowed_hosts = allowed_hosts
        self.trust_start_origins = trust_start_origins
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self.resolve = resolve
        self.start_urls: set[str] = set()
        self.start_origins: set[Origin] = set()
        # (host, port) -> (expiry, reason or None); bounded so a site with endless host names cannot grow it.
        self._verdicts: OrderedDict[tuple[str, int | None], tuple[float, str | None]] = OrderedDict()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("NEWSCRAWL_SSRF_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_SSRF_ENABLED is off")
        assert crawler.stats is not None
        middleware = cls(
            crawler.stats,
            parse_allowed_hosts(settings.getlist("NEWSCRAWL_SSRF_ALLOWED_HOSTS")),
            trust_start_origins=settings.getbool("NEWSCRAWL_SSRF_TRUST_START_ORIGINS", True),
            # As long as Scrapy's own DNS cache keeps an answer, so the address checked is the one connected to.
            cache_seconds=settings.getfloat("NEWSCRAWL_SSRF_DNS_CACHE_SECONDS", 60.0),
        )
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        return middleware

    def spider_opened(self, spider: Spider) -> None:
        for url in getattr(spider, "start_urls", None) or ():
            self.add_start_url(url)

    def add_start_url(self, url: str) -> None:
        url = Request(url).url  # the same normalisation a request applies, so that membership tests match
        self.start_urls.add(url)
        self.start_origins.add(origin_of(url))

    def _user_given(self, request: Request) -> bool:
        """True for the user's start URLs and what their origin is trusted with."""
        if request.url in self.start_urls:
            return True
        redirected_from = request.meta.get("redirect_urls")
        # Redirects copy meta, so only an unredirected request may bring a new start URL with it.
        if request.meta.get(START_URL_META) and not redirected_from:
            self.add_start_url(request.url)
            return True
        origin = origin_of(request.url)
        if origin not in self.start_origins:
            return False
        if self.trust_start_origins or urlparse_cached(request).path == "/robots.txt":
            return True
        return bool(redirected_from) and redirected_from[0] in self.start_urls

    def _allow_listed(self, request: Request) -> bool:
        parts = urlparse_cached(request)
        host = (parts.hostname or "").lower()
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        return (host, None) in self.allowed_hosts or (host, port) in self.allowed_hosts

    async def process_request(self, request: Request) -> None:
        if self._user_given(request) or self._allow_listed(request):
            return None
        parts = urlparse_cached(request)
        if parts.scheme.lower() not in WEB_SCHEMES:
            self._refuse(request, "scheme", parts.scheme or "no scheme")
        host = (parts.hostname or "").lower()
        if not host:
            self._refuse(request, "no_host", "no host")
        reason, detail = await self._judge(host, parts.port or DEFAULT_PORTS.get(parts.scheme.lower()))
        if reason is not None:
            self._refuse(request, reason, detail)
        return None

    async def _judge(self, host: str, port: int | None) -> tuple[str | None, str]:
        literal = parse_ip_literal(host)
        if literal is not None:
            return forbidden_reason(literal), str(literal)
        key = (host, port)
        now = time.monotonic()
        cached = self._verdicts.get(key)
        if cached is not None and cached[0] > now:
            return cached[1], f"{host} (cached)"
        try:
            # getaddrinfo blocks; a thread keeps the reactor serving other downloads meanwhile.
            addresses = await run_in_thread(self.resolve, host, port)
        except OSError as error:
            # Fail closed, the way Scrapy itself fails an unresolvable host, so RetryMiddleware retries it.
            raise CannotResolveHostError(f"{host}: {error}") from error
        reason: str | None = None
        detail = host
        # Any one bad address is enough: the connection may pick whichever the resolver lists first.
        for address in addresses:
            ip = parse_ip_literal(address)
            bad = "unresolvable" if ip is None else forbidden_reason(ip)
            if bad is not None:
                reason, detail = bad, f"{host} -> {address}"
                break
        self._verdicts[key] = (now + self.cache_seconds, reason)
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > self.cache_size:
            self._verdicts.popitem(last=False)
        return reason, detail

    def _refuse(self, request: Request, reason: str, detail: str) -> None:
        self.stats.inc_value("newscrawl/ssrf/refused")
        self.stats.inc_value(f"newscrawl/ssrf/refused/{reason}")
        via = request.meta.get("redirect_urls")
        logger.warning(
            "SSRF guard refused %s: %s (%s)%s", request.url, reason, detail, f", redirected from {via[-1]}" if via else ""
        )
        raise IgnoreRequest(f"SSRF guard: {reason} ({detail})")
