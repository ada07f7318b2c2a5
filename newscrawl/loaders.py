"""Item loaders: every field of an article passes through small pure processors built from w3lib."""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from typing import Any

from itemloaders.processors import Compose, Identity, Join, MapCompose, TakeFirst
from scrapy.loader import ItemLoader
from w3lib.html import remove_tags, replace_entities, strip_html5_whitespace
from w3lib.url import safe_url_string

from newscrawl.items import Article, BoilerplateBlock, Image, RelatedLink
from newscrawl.page.article import ArticleReading


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace (NBSP included) to one space; drop NUL and other control characters."""
    return " ".join(_CONTROL_CHARACTERS.sub("", text).split())


def drop_empty(text: str) -> str | None:
    return text or None


def clean_url(url: str) -> str | None:
    """An absolute http(s) URL, percent-encoded; script and data URLs never get through."""
    url = strip_html5_whitespace(url)
    if not url.lower().startswith(("http://", "https://", "file://")):
        return None
    return safe_url_string(url)


def strip_markup(text: str) -> str:
    """w3lib's ``remove_tags`` then ``replace_entities``, skipped when there is no tag or entity to find."""
    if "<" in text:
        text = remove_tags(text)
    if "&" in text:
        text = replace_entities(text)
    return text


#: Plain text from anything a page may put in a text field: tags, entities, stray whitespace.
clean_text = MapCompose(str, strip_markup, normalize_space, drop_empty)


def _text_or_none(value: Any) -> str | None:
    """``clean_text`` for one nested value, called directly: a MapCompose per field of every entry costs."""
    if value is None:
        return None
    return drop_empty(normalize_space(strip_markup(str(value))))


def _fields(value: Any) -> dict[str, Any]:
    # Shallow on purpose: dataclasses.asdict deep-copies, and these are flat records.
    return {f.name: getattr(value, f.name) for f in fields(value)} if is_dataclass(value) else dict(value)


def make_image(value: Any) -> Image | None:
    data = _fields(value)
    src = clean_url(str(data.get("src") or ""))
    if not src:
        return None
    disclosure = _text_or_none(data.get("disclosure"))
    return Image(
        src=src,
        alt=_text_or_none(data.get("alt")),
        caption=_text_or_none(data.get("caption")),
        credit=_text_or_none(data.get("credit")),
        ai_generated=bool(data.get("ai_generated")) or disclosure is not None,
        disclosure=disclosure,
    )


def make_related(value: Any) -> RelatedLink | None:
    data = _fields(value)
    url, title = clean_url(str(data.get("url") or "")), _text_or_none(data.get("title"))
    if not url or not title:
        return None
    return RelatedLink(url=url, title=title, summary=_text_or_none(data.get("summary")), ai_reported=bool(data.get("ai_reported")))


def make_boilerplate(value: Any) -> BoilerplateBlock | None:
    data = _fields(value)
    text = _text_or_none(data.get("text"))
    return BoilerplateBlock(kind=str(data.get("kind") or "other"), text=text) if text else None


def language_tag(value: str) -> str | None:
    value = value.strip().replace("_", "-")
    return value if value and all(part.isalnum() for part in value.split("-")) else None


class ArticleLoader(ItemLoader):
    default_item_class = Article
    default_input_processor = clean_text
    default_output_processor = TakeFirst()

    url_in = MapCompose(clean_url)
    canonical_url_in = MapCompose(clean_url)
    body_out = Join("\n\n")
    language_in = MapCompose(str, language_tag)
    ai_reported_in = MapCompose(bool)
    ai_reported_out = Compose(any)
    authors_out = Identity()
    images_in = MapCompose(make_image)
    images_out = Identity()
    related_in = MapCompose(make_related)
    related_out = Identity()
    boilerplate_in = MapCompose(make_boilerplate)
    boilerplate_out = Identity()


def load_article(reading: ArticleReading, **extra: Any) -> Article:
    """The cleaned ``Article`` item for one page reading."""
    loader = ArticleLoader()
    for name in (
        "url", "canonical_url", "title", "body", "language", "published_at", "modified_at", "authors",
        "site_name", "ai_reported", "images", "social_summary", "related", "boilerplate",
    ):
        loader.add_value(name, getattr(reading, name))
    for name, value in extra.items():
        loader.add_value(name, value)
    item = loader.load_item()
    for name in ("authors", "images", "related", "boilerplate"):
        if getattr(item, name) is None:
            setattr(item, name, [])
    item.ai_reported = bool(item.ai_reported)
    return item
