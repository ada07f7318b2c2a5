"""SSRF guard, redirect header hygiene, Retry-After backoff and the content guard, each through from_crawler."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from datetime import datetime, timezone
from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from newscrawl.downloadermiddlewares.content import ContentGuardMiddleware, binary_reason
from newscrawl.downloadermiddlewares.retry import BackoffRetryMiddleware, retry_after_seconds
from newscrawl.downloadermiddlewares.ssrf import (
    START_URL_META,
    SSRFGuardMiddleware,
    forbidden_reason,
    parse_allowed_hosts,
    parse_ip_literal,
)
from newscrawl.logformatter import GAVE_UP_META

START = "http://127.0.0.1:8123/news/start"


class TinySpider(Spider):
    name = "tiny"
    start_urls = [START]


def make_crawler(settings: dict[str, Any] | None = None):
    crawler = get_crawler(TinySpider, settings_dict=settings or {})
    crawler.spider = crawler._create_spider()
    return crawler


def make_guard(settings: dict[str, Any] | None = None, resolve=None) -> tuple[SSRFGuardMiddleware, Any]:
    crawler = make_crawler(settings)
    guard = SSRFGuardMiddleware.from_crawler(crawler)
    if resolve is not None:
        guard.resolve = resolve
    guard.spider_opened(crawler.spider)
    return guard, crawler.stats


def judge(guard: SSRFGuardMiddleware, request: Request) -> None:
    asyncio.run(guard.process_request(request))


# -- addresses

@pytest.mark.parametrize(("host", "reason"), [
    ("127.0.0.1", "loopback"),
    ("2130706433", "loopback"),  # decimal
    ("0177.0.0.1", "loopback"),  # octal
    ("0x7f.0.0.1", "loopback"),  # hex
    ("127.1", "loopback"),  # short form
    ("[::1]", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:a9fe:a9fe", "link_local"),  # mapped 169.254.169.254
    ("2002:a9fe:a9fe::1", "link_local"),  # 6to4 around the metadata address
    ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
    ("169.254.169.254", "link_local"),
    ("fe80::1%eth0", "link_local"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),
    ("fd00::1", "private"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("::7f00:1", "reserved"),
])
def test_non_public_addresses_are_refused(host: str, reason: str) -> None:
    ip = parse_ip_literal(host)
    assert ip is not None
    assert forbidden_reason(ip) == reason


@pytest.mark.parametrize("host", ["93.184.216.34", "8.8.8.8", "2606:4700::6810:85e5", "1.1.1.1"])
def test_public_addresses_pass(host: str) -> None:
    ip = parse_ip_literal(host)
    assert ip is not None and forbidden_reason(ip) is None


@pytest.mark.parametrize("host", ["news.example", "localhost", "0x10.example.com", "deadbeef.example"])
def test_host_names_are_not_ip_literals(host: str) -> None:
    assert parse_ip_literal(host) is None


def test_allowed_host_entries() -> None:
    assert parse_allowed_hosts(["intranet.local", "127.0.0.1:8000", "[::1]:9000", "::1", " "]) == {
        ("intranet.local", None), ("127.0.0.1", 8000), ("::1", 9000), ("::1", None)}


# -- the middleware

FORBIDDEN = [
    ("http://10.0.0.1/internal", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link_local"),
    ("http://[::1]:8123/news/start", "loopback"),
    ("http://2130706433:8123/news/start", "loopback"),
    ("http://[::ffff:127.0.0.1]:8123/news/start", "loopback"),
    ("http://127.0.0.1:2375/containers/json", "loopback"),  # same host, another port: not the start origin
    ("https://127.0.0.1:8123/news/start", "loopback"),  # another scheme is another origin
    ("http://localhost:8123/news/start", "loopback"),  # resolved from /etc/hosts, never the network
    ("file:///etc/passwd", "scheme"),
    ("data:text/html,<p>hi</p>", "scheme"),
    ("ftp://127.0.0.1/pub", "scheme"),
]


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN)
def test_forbidden_requests_are_refused_with_a_stat(url: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    guard, stats = make_guard()
    with caplog.at_level(logging.WARNING), pytest.raises(IgnoreRequest):
        judge(guard, Request(url))
    assert stats.get_value(f"newscrawl/ssrf/refused/{reason}") == 1
    assert stats.get_value("newscrawl/ssrf/refused") == 1
    [record] = [r for r in caplog.records if r.name == "newscrawl.downloadermiddlewares.ssrf"]
    assert url.split(":")[0] in record.getMessage() and reason in record.getMessage()


def test_start_urls_and_their_origin_pass() -> None:
    guard, stats = make_guard()
    judge(guard, Request(START))
    judge(guard, Request("http://127.0.0.1:8123/news/other-article"))
    judge(guard, Request("http://127.0.0.1:8123/robots.txt"))
    assert stats.get_value("newscrawl/ssrf/refused") is None


def test_strict_mode_trusts_only_start_urls_their_robots_and_their_redirects() -> None:
    guard, _ = make_guard({"NEWSCRAWL_SSRF_TRUST_START_ORIGINS": False})
    judge(guard, Request(START))
    judge(guard, Request("http://127.0.0.1:8123/robots.txt"))
    judge(guard, Request("http://127.0.0.1:8123/news/start/", meta={"redirect_urls": [START]}))
    with pytest.raises(IgnoreRequest):
        judge(guard, Request("http://127.0.0.1:8123/news/other-article"))


def test_marked_start_request_passes_but_its_meta_does_not_carry_over_a_redirect() -> None:
    guard, _ = make_guard()
    marked = "http://10.9.9.9/intranet-news"
    judge(guard, Request(marked, meta={START_URL_META: True}))
    # RedirectMiddleware copies meta to the redirected request: the mark must not open the metadata service.
    redirected = Request("http://169.254.169.254/latest/", meta={START_URL_META: True, "redirect_urls": [marked]})
    with pytest.raises(IgnoreRequest):
        judge(guard, redirected)


def test_allow_list_by_host_and_by_host_and_port() -> None:
    guard, _ = make_guard({"NEWSCRAWL_SSRF_ALLOWED_HOSTS": ["10.0.0.5", "127.0.0.1:9000"]})
    judge(guard, Request("http://10.0.0.5:8080/feed.xml"))
    judge(guard, Request("http://127.0.0.1:9000/sitemap.xml"))
    with pytest.raises(IgnoreRequest):
        judge(guard, Request("http://127.0.0.1:9001/sitemap.xml"))


def fake_dns(answers: dict[str, list[str]]):
    def resolve(host: str, port: int | None) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]
    return resolve


def test_names_are_judged_by_what_they_resolve_to() -> None:
    dns = fake_dns({
        "news.example": ["93.184.216.34", "2606:2800:220:1::1"],
        "rebind.example": ["10.1.2.3"],
        "mixed.example": ["93.184.216.34", "169.254.169.254"],
    })
    guard, stats = make_guard(resolve=dns)
    judge(guard, Request("https://news.example/a"))
    with pytest.raises(IgnoreRequest):
        judge(guard, Request("https://rebind.example/a"))
    with pytest.raises(IgnoreRequest):
        judge(guard, Request("https://mixed.example/a"))
    assert stats.get_value("newscrawl/ssrf/refused/private") == 1
    assert stats.get_value("newscrawl/ssrf/refused/link_local") == 1
    # An unresolvable name fails as Scrapy fails it, so that RetryMiddleware treats it the same way.
    with pytest.raises(CannotResolveHostError):
        judge(guard, Request("https://nowhere.example/a"))


def test_verdicts_are_cached_per_host_and_port() -> None:
    calls: list[str] = []

    def counting(host: str, port: int | None) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"]

    guard, _ = make_guard(resolve=counting)
    for path in ("a", "b", "c"):
        judge(guard, Request(f"https://news.example/{path}"))
    assert calls == ["news.example"]


def test_guard_can_be_switched_off() -> None:
    with pytest.raises(NotConfigured):
        SSRFGuardMiddleware.from_crawler(make_crawler({"NEWSCRAWL_SSRF_ENABLED": False}))


# -- redirects: what Scrapy 2.19's RedirectMiddleware already does (BaseRedirectMiddleware._build_redirect_request)

@pytest.mark.parametrize(("target", "keeps_cookie", "keeps_auth"), [
    ("http://127.0.0.1:8123/same-origin", True, True),
    ("http://localhost:8123/other-host", False, False),
    ("http://127.0.0.1:9999/other-port", True, False),  # cookies are per host (RFC 6265), credentials per origin
    ("https://127.0.0.1:8123/upgrade", True, False),
])
def test_scrapy_strips_cookie_and_authorization_on_cross_host_redirects(target: str, keeps_cookie: bool, keeps_auth: bool) -> None:
    crawler = make_crawler()
    redirect = RedirectMiddleware.from_crawler(crawler)
    request = Request(START, headers={"Cookie": "session=secret", "Authorization": "Bearer token"})
    response = Response(START, status=302, headers={"Location": target}, request=request)
    redirected = redirect.process_response(request, response)
    assert isinstance(redirected, Request) and redirected.url == target
    assert ("Cookie" in redirected.headers) is keeps_cookie
    assert ("Authorization" in redirected.headers) is keeps_auth


def test_scrapy_does_not_follow_redirects_to_other_schemes() -> None:
    redirect = RedirectMiddleware.from_crawler(make_crawler())
    request = Request(START)
    response = Response(START, status=302, headers={"Location": "file:///etc/passwd"}, request=request)
    assert redirect.process_response(request, response) is response


# -- Retry-After and backoff

@pytest.mark.parametrize(("header", "seconds"), [
    (b"120", 120.0),
    (b" 0 ", 0.0),
    (b"Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    (b"Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
    (b"soon", None),
    (b"-5", None),
    (None, None),
])
def test_retry_after_values(header: bytes | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(header, now) == seconds


def retry_middleware(**settings: Any) -> tuple[BackoffRetryMiddleware, Any]:
    crawler = make_crawler({"NEWSCRAWL_RETRY_BACKOFF_BASE": 0.01, **settings})
    return BackoffRetryMiddleware.from_crawler(crawler), crawler.stats


def test_503_with_retry_after_is_retried_after_the_wait() -> None:
    middleware, stats = retry_middleware()
    request = Request(START)
    response = Response(START, status=503, headers={"Retry-After": "0"}, request=request)
    retried = asyncio.run(middleware.process_response(request, response))
    assert isinstance(retried, Request) and retried.meta["retry_times"] == 1
    assert stats.get_value("newscrawl/retry/retry_after_honoured") == 1
    assert stats.get_value("retry/count") == 1


def test_retry_after_beyond_the_maximum_is_given_up_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    middleware, stats = retry_middleware(NEWSCRAWL_RETRY_MAX_DELAY=30)
    request = Request(START)
    response = Response(START, status=429, headers={"Retry-After": "3600"}, request=request)
    with caplog.at_level(logging.INFO):
        assert asyncio.run(middleware.process_response(request, response)) is response
    assert stats.get_value("newscrawl/retry/gave_up/retry_after_too_long") == 1
    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "3600" in line.getMessage() and START in line.getMessage()


def test_exceptions_back_off_then_give_up_once() -> None:
    middleware, stats = retry_middleware(RETRY_TIMES=1)
    request = Request(START)
    error = ConnectionRefusedError("refused")
    middleware.exceptions_to_retry = (ConnectionRefusedError,)
    retried = asyncio.run(middleware.process_exception(request, error))
    assert isinstance(retried, Request)
    assert stats.get_value("newscrawl/retry/delayed") == 1
    assert asyncio.run(middleware.process_exception(retried, error)) is None
    assert retried.meta[GAVE_UP_META] is True
    assert stats.get_value("retry/max_reached") == 1


def test_other_statuses_pass_untouched() -> None:
    middleware, _ = retry_middleware()
    request = Request(START)
    response = Response(START, status=404, request=request)
    assert asyncio.run(middleware.process_response(request, response)) is response


# -- content guard

HTML = b"<!DOCTYPE html><html><head><title>t</title></head><body>" + b"<p>Some words of a story.</p>" * 200


@pytest.mark.parametrize(("body", "reason"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "magic"),
    (b"%PDF-1.7\n" + HTML, "magic"),
    (b"\x1f\x8b\x08\x00" + bytes(50), "magic"),
    (b"\x00\x00\x00\x18ftypmp42", "magic"),
    (random.Random(3).randbytes(8192), "control_bytes"),
    (HTML, None),
    (HTML.replace(b"words", b"wo\x00rds", 3), None),  # a few stray NULs are a bad page, not a binary one
    ("<html><body>Hälsningar</body></html>".encode("utf-16"), None),  # UTF-16 with its BOM
    (b"", None),
])
def test_binary_bodies_are_recognised(body: bytes, reason: str | None) -> None:
    assert binary_reason(body) == reason


def test_utf16_declared_in_the_header_is_text() -> None:
    assert binary_reason("<html>Hej</html>".encode("utf-16-le"), "UTF-16LE") is None


def content_guard() -> tuple[ContentGuardMiddleware, Any]:
    crawler = make_crawler()
    return ContentGuardMiddleware.from_crawler(crawler), crawler.stats


def test_binary_served_as_html_is_refused() -> None:
    guard, stats = content_guard()
    request = Request(START)
    response = HtmlResponse(START, body=b"\x89PNG\r\n\x1a\n" + bytes(64), headers={"Content-Type": "text/html"}, request=request)
    with pytest.raises(IgnoreRequest):
        guard.process_response(request, response)
    assert stats.get_value("newscrawl/content/refused/binary_magic") == 1


def test_truncated_responses_are_refused() -> None:
    guard, stats = content_guard()
    request = Request(START)
    response = HtmlResponse(START, body=HTML[:100], flags=["dataloss"], headers={"Content-Type": "text/html"}, request=request)
    with pytest.raises(IgnoreRequest):
        guard.process_response(request, response)
    assert stats.get_value("newscrawl/content/refused/dataloss") == 1


def test_html_and_declared_non_html_pass() -> None:
    guard, stats = content_guard()
    request = Request(START)
    page = HtmlResponse(START, body=HTML, headers={"Content-Type": "text/html; charset=utf-8"}, request=request)
    image = Response(START + ".png", body=b"\x89PNG\r\n\x1a\n", headers={"Content-Type": "image/png"}, request=request)
    assert guard.process_response(request, page) is page
    assert guard.process_response(request, image) is image
    assert not [key for key in stats.get_stats() if key.startswith("newscrawl/content")]

