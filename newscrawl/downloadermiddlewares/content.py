"""Refuse responses that must never reach page understanding: truncated bodies and binary data sent as HTML."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest, NotConfigured

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

#: Leading bytes of formats a server may mislabel as text/html: images, archives, documents, executables, media.
MAGIC_NUMBERS: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"%PDF-"),
    (0, b"PK\x03\x04"),  # zip, docx, epub, jar
    (0, b"\x1f\x8b"),  # gzip left undecoded (no or a wrong Content-Encoding)
    (0, b"BZh"),
    (0, b"7z\xbc\xaf\x27\x1c"),
    (0, b"\xfd7zXZ\x00"),
    (0, b"\x28\xb5\x2f\xfd"),  # zstd
    (0, b"\x7fELF"),
    (0, b"MZ"),  # Windows executable
    (0, b"\x00asm"),
    (0, b"OggS"),
    (0, b"ID3"),  # mp3
    (0, b"\x1aE\xdf\xa3"),  # Matroska, WebM
    (0, b"wOFF"),
    (0, b"wOF2"),
    (4, b"ftyp"),  # mp4, mov, heic, avif
    (8, b"WEBP"),
    (8, b"AVI "),
    (8, b"WAVE"),
)
UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Bytes that no ASCII-compatible text encoding uses (C0 controls but tab, LF, FF, CR; and DEL).
CONTROL_BYTES = frozenset(range(0x00, 0x09)) | frozenset(range(0x0E, 0x20)) | {0x0B, 0x7F}
SAMPLE_SIZE = 8192


def binary_reason(body: bytes, declared_charset: str | None = None) -> str | None:
    """Why `body` is not text ("magic:<hex>" or "control_bytes"), or None when it can be text."""
    head = body[:SAMPLE_SIZE]
    if not head:
        return None
    for offset, magic in MAGIC_NUMBERS:
        if head[offset:offset + len(magic)] == magic:
            return "magic"
    # UTF-16/32 text is full of NUL bytes: trust a BOM or an explicit charset before counting.
    if head.startswith(UTF16_32_BOMS) or (declared_charset or "").lower().startswith(("utf-16", "utf-32", "utf16", "utf32")):
        return None
    controls = sum(1 for byte in head if byte in CONTROL_BYTES)
    # Random or compressed bytes are ~9% control bytes; text, even with a stray NUL or two, is near 0%.
    if controls / len(head) > 0.02:
        return "control_bytes"
    return None


def _claims_html(content_type: str) -> bool:
    """Whether a Content-Type (or its absence, which Scrapy sniffs) sends the body to the HTML page code."""
    # Sitemaps and feeds are left alone: a .xml.gz mislabelled as XML is gzip that SitemapSpider decodes itself.
    return content_type in ("", "text/html", "application/xhtml+xml")


class ContentGuardMiddleware:
    """Drop truncated responses (the ``dataloss`` flag) and binary bodies that claim to be HTML, counting each.

    Sits below HttpCompressionMiddleware (590) so that it judges the decoded body, and above MetaRefreshMiddleware
    (580) so that nothing parses a refused body.  DOWNLOAD_FAIL_ON_DATALOSS = True already fails a short body
    before it gets here; the flag check keeps a truncated page out of storage if someone turns that off.
    """

    def __init__(self, stats: StatsCollector):
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("NEWSCRAWL_CONTENT_GUARD_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_CONTENT_GUARD_ENABLED is off")
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_response(self, request: Request, response: Response) -> Response:
        if "dataloss" in response.flags:
            self._refuse(response, "dataloss", "body shorter than its Content-Length")
        raw_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        content_type, _, params = raw_type.partition(";")
        content_type = content_type.strip().lower()
        if _claims_html(content_type):
            charset = None
            for param in params.split(";"):
                name, _, value = param.partition("=")
                if name.strip().lower() == "charset":
                    charset = value.strip().strip("\"'")
            reason = binary_reason(response.body, charset)
            if reason is not None:
                self._refuse(response, f"binary_{reason}", f"binary body served as {content_type or 'no type'}")
        return response

    def _refuse(self, response: Response, reason: str, detail: str) -> None:
        self.stats.inc_value(f"newscrawl/content/refused/{reason}")
        logger.warning("Refused %s: %s", response.url, detail)
        raise IgnoreRequest(f"content guard: {detail}")
