"""Structured data a page carries beside its visible text: JSON-LD, OpenGraph and a Next.js __NEXT_DATA__ blob."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lxml.html import HtmlElement

ARTICLE_TYPES = frozenset(
    {
        "article",
        "newsarticle",
        "reportagenewsarticle",
        "analysisnewsarticle",
        "opinionnewsarticle",
        "backgroundnewsarticle",
        "reviewnewsarticle",
        "blogposting",
        "liveblogposting",
        "scholarlyarticle",
        "techarticle",
        "socialmediaposting",
    }
)
_HTML_COMMENT = re.compile(r"^\s*(?:<!--|/\*<!\[CDATA\[\*/|<!\[CDATA\[)|(?:-->|/\*\]\]>\*/|\]\]>)\s*$")
_TRAILING_COMMA = re.compile(r",\s*([\]}])")


@dataclass
class StructuredData:
    """What JSON-LD, meta tags and embedded app state say about the page; every field may be missing."""

    headline: str | None = None
    article_body: str | None = None
    published_at: str | None = None
    modified_at: str | None = None
    language: str | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    description: str | None = None
    authors: list[str] = field(default_factory=list)
    is_article_type: bool = False
    invalid_json_ld: int = 0
    next_article: dict[str, Any] | None = None


def read_structured_data(root: HtmlElement) -> StructuredData:
    data = StructuredData()
    _read_meta(root, data)
    _read_json_ld(root, data)
    _read_next_data(root, data)
    return data


def _first(root: HtmlElement, xpath: str) -> str | None:
    for value in root.xpath(xpath):
        value = str(value).strip()
        if value:
            return value
    return None


def _read_meta(root: HtmlElement, data: StructuredData) -> None:
    data.canonical_url = _first(root, "//head/link[@rel='canonical']/@href") or _first(
        root, "//meta[@property='og:url']/@content"
    )
    data.site_name = _first(root, "//meta[@property='og:site_name']/@content")
    data.description = _first(root, "//meta[@property='og:description' or @name='description']/@content")
    data.published_at = _first(
        root,
        "//meta[@property='article:published_time' or @name='article:published_time'"
        " or @itemprop='datePublished' or @name='pubdate' or @name='date']/@content",
    )
    data.modified_at = _first(root, "//meta[@property='article:modified_time']/@content")
    headline = _first(root, "//meta[@property='og:title' or @name='twitter:title']/@content")
    data.headline = headline
    data.is_article_type = (_first(root, "//meta[@property='og:type']/@content") or "").lower() == "article"


def _load_json(text: str) -> Any:
    text = _HTML_COMMENT.sub("", text.strip())
    try:
        return json.loads(text)
    except ValueError:
        # Hand-written JSON-LD often has trailing commas or raw newlines inside strings.
        return json.loads(_TRAILING_COMMA.sub(r"\1", text), strict=False)


def _walk_json(node: Any):
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _types(node: dict) -> set[str]:
    value = node.get("@type", ())
    values = value if isinstance(value, list) else [value]
    return {str(v).rsplit("/", 1)[-1].lower() for v in values}


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value:
        return _text(value[0])
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("@value"))
    return None


def _read_json_ld(root: HtmlElement, data: StructuredData) -> None:
    for script in root.xpath("//script[@type='application/ld+json']"):
        try:
            document = _load_json(script.text or "")
        except ValueError:
            data.invalid_json_ld += 1
            continue
        for node in _walk_json(document):
            if not _types(node) & ARTICLE_TYPES:
                continue
            data.is_article_type = True
            data.headline = _text(node.get("headline")) or _text(node.get("name")) or data.headline
            data.article_body = _text(node.get("articleBody")) or data.article_body
            data.published_at = _text(node.get("datePublished")) or data.published_at
            data.modified_at = _text(node.get("dateModified")) or data.modified_at
            data.language = _text(node.get("inLanguage")) or data.language
            authors = node.get("author")
            for author in authors if isinstance(authors, list) else [authors]:
                name = _text(author)
                if name and name not in data.authors:
                    data.authors.append(name)
            main = node.get("mainEntityOfPage")
            url = _text(main.get("@id") if isinstance(main, dict) else main) or _text(node.get("url"))
            if url and not data.canonical_url:
                data.canonical_url = url
            return


_BODY_KEYS = ("body", "content", "articleBody", "paragraphs", "blocks", "text", "bodyText")
_TITLE_KEYS = ("headline", "title")


def _read_next_data(root: HtmlElement, data: StructuredData) -> None:
    scripts = root.xpath("//script[@id='__NEXT_DATA__']")
    if not scripts:
        return
    try:
        blob = _load_json(scripts[0].text or "")
    except ValueError:
        data.invalid_json_ld += 1
        return
    best: dict | None = None
    best_len = 0
    for node in _walk_json(blob):
        if not any(isinstance(node.get(key), str) for key in _TITLE_KEYS):
            continue
        for key in _BODY_KEYS:
            length = len(json.dumps(node.get(key), ensure_ascii=False)) if node.get(key) else 0
            if length > best_len and length > 200:
                best, best_len = node, length
    if best is not None:
        data.next_article = best
