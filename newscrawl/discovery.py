"""Discovery documents read as plain data: sitemap (index, urlset, news) locations and RSS/Atom entry links."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from lxml import etree
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots

#: Root elements of discovery documents, by local name (namespaces differ between RSS 1.0, Atom and sitemaps).
SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})
FEED_ROOTS = frozenset({"rss", "feed", "RDF"})
GZIP_MAGIC = b"\x1f\x8b"

__all__ = ["SitemapLinks", "document_kind", "feed_links", "is_robots_or_root", "read_sitemap", "robots_sitemaps"]


@dataclass
class SitemapLinks:
    """What one sitemap document lists."""

    sitemaps: list[str] = field(default_factory=list)
    """Child sitemaps of a sitemap index; never page URLs."""
    pages: list[str] = field(default_factory=list)
    """Page URLs of a urlset (plain or Google News); never sitemap URLs."""


def is_robots_or_root(url: str) -> bool:
    """True for a robots.txt URL or a bare site root, where the site's sitemaps are named by robots.txt."""
    path = urlsplit(url).path
    return path in ("", "/") or path.endswith("/robots.txt")


def document_kind(body: bytes, url: str) -> str:
    """What a start URL turned out to be: "sitemap" (also gzipped), "feed" (RSS/Atom), "robots" or "page".

    Only the root element of an XML document is looked at; anything that is not XML, or is XHTML, is a page.
    """
    if urlsplit(url).path.endswith("/robots.txt"):
        return "robots"
    if body.startswith(GZIP_MAGIC):
        return "sitemap"  # a .xml.gz: the only compressed document a site offers crawlers
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<") or head[:100].lower().startswith((b"<!doctype html", b"<html")):
        return "page"
    try:
        root = etree.fromstring(body, parser=_feed_parser())
    except etree.XMLSyntaxError:
        return "page"
    name = etree.QName(root).localname if root is not None else ""
    if name in SITEMAP_ROOTS:
        return "sitemap"
    if name in FEED_ROOTS:
        return "feed"
    return "page"


def robots_sitemaps(robots_body: bytes, base_url: str) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt, absolute."""
    return list(dict.fromkeys(sitemap_urls_from_robots(robots_body, base_url=base_url)))


def read_sitemap(body: bytes) -> SitemapLinks:
    """Scrapy's own sitemap reader (lxml with entities and network off); a document that is no sitemap lists nothing."""
    try:
        sitemap = Sitemap(body)
        locations = [entry["loc"].strip() for entry in sitemap if entry.get("loc", "").strip()]
    except (etree.XMLSyntaxError, StopIteration):  # StopIteration: an empty document has no root element
        return SitemapLinks()
    if sitemap.type == "sitemapindex":
        return SitemapLinks(sitemaps=locations)
    if sitemap.type == "urlset":
        return SitemapLinks(pages=locations)
    return SitemapLinks()


def _feed_parser() -> etree.XMLParser:
    # A feed is untrusted XML: no entity expansion (billion laughs), no DTD, nothing fetched from the network.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def feed_links(body: bytes, base_url: str) -> list[str]:
    """Entry links of an RSS 2.0, RSS 1.0 (RDF) or Atom feed, absolute and in feed order; [] for anything else."""
    try:
        root = etree.fromstring(body, parser=_feed_parser())
    except etree.XMLSyntaxError:
        return []
    if root is None:
        return []
    # local-name() keeps one query for RSS without namespace, RSS 1.0 in the RSS namespace, and Atom.
    rss = root.xpath("//*[local-name()='item']/*[local-name()='link']/text()")
    atom = root.xpath(
        "//*[local-name()='entry']/*[local-name()='link'][not(@rel) or @rel='alternate']/@href")
    links = [urljoin(base_url, str(link).strip()) for link in [*rss, *atom] if str(link).strip()]
    return list(dict.fromkeys(links))
