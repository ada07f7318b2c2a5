"""URL identity: the tracking-free URL to request for a link, and the canonical key that says two URLs are one page."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from weakref import WeakKeyDictionary

from scrapy.utils.request import fingerprint
from w3lib.url import canonicalize_url

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

WEB_SCHEMES = ("http", "https")
#: Query parameters that only say where a click came from (ad, newsletter and social click ids); never page identity.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id", "igshid",
    "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id",
    "ref", "ref_src", "ref_url", "cmpid", "ocid", "spm",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def clean_url(url: str) -> str | None:
    """The URL to request for a link: http(s) only, host case folded, default port, fragment and tracking dropped.

    The query keeps its order and encoding otherwise: servers may care, and identity is ``url_key``'s job.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES or not parts.hostname:
        return None
    host = parts.hostname  # urlsplit already lower-cases it
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return None
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username or parts.password:
        # Credentials in a link are never part of a page's identity, and must not be sent on.
        return None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = parts.query
    if any(is_tracking_param(name) for name, _ in pairs):
        query = urlencode([(name, value) for name, value in pairs if not is_tracking_param(name)])
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def url_key(url: str) -> str:
    """One string per page: ``clean_url`` then w3lib's ``canonicalize_url`` (sorted query, normalised escapes)."""
    cleaned = clean_url(url)
    return canonicalize_url(cleaned if cleaned is not None else url, keep_fragments=False)


class CanonicalRequestFingerprinter:
    """Scrapy's request fingerprint taken over ``clean_url(request.url)``: one fetch per page, whatever the link said.

    Set as ``REQUEST_FINGERPRINTER_CLASS``, so the dupefilter, HTTP cache and anything else keyed on fingerprints
    agree that ``/a?utm_source=x#top`` and ``HTTP://Site/a`` are ``/a``.
    """

    def __init__(self) -> None:
        self._cache: WeakKeyDictionary[Request, bytes] = WeakKeyDictionary()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    def fingerprint(self, request: Request) -> bytes:
        if request not in self._cache:
            cleaned = clean_url(request.url)
            same = cleaned is None or cleaned == request.url
            self._cache[request] = fingerprint(request if same else request.replace(url=cleaned))
        return self._cache[request]
