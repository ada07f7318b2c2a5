"""The item contract: what newscrawl stores for one article page, and what each field must never hold."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Image:
    """One image of the article itself (hero or inline), never a teaser's or an ad's image."""

    src: str
    """Absolute URL of the image as the browser would load it (lazy-loading attributes resolved)."""
    alt: str | None = None
    """The alt text exactly as on the page, disclosure suffix included."""
    caption: str | None = None
    """The caption text only: never the AI label, never the photographer credit."""
    credit: str | None = None
    """Photographer or agency credit ("Foto: Anna Berg / TT"), if the page gives one."""
    ai_generated: bool = False
    """True when the page labels the image as made by AI (visible label, badge, or alt/caption suffix)."""
    disclosure: str | None = None
    """The AI label exactly as on the page ("Bild genererad av AI", "(AI-generated image)"), else None."""


@dataclass
class RelatedLink:
    """A related-article teaser: where it points and what it says, never its image caption or labels."""

    url: str
    """Absolute URL of the related article."""
    title: str
    summary: str | None = None
    ai_reported: bool = False
    """True when the teaser is labelled as written by AI."""


@dataclass
class BoilerplateBlock:
    """A text block removed from the article, with why (cookie_banner, ai_label, navigation, ...)."""

    kind: str
    text: str


@dataclass
class Article:
    """One article page, separated into its parts."""

    url: str | None = None
    """The URL fetched."""
    canonical_url: str | None = None
    """<link rel=canonical> or og:url, absolute."""
    title: str | None = None
    """The headline, once, without site name or labels."""
    body: str | None = None
    """The article's own prose, paragraphs joined by a blank line. Never a caption, label, section heading,
    cookie text, teaser, button label, ad or share text."""
    language: str | None = None
    """BCP-47 primary language of the content (not of the UI chrome)."""
    published_at: str | None = None
    """ISO 8601, as the page states it."""
    modified_at: str | None = None
    authors: list[str] = field(default_factory=list)
    site_name: str | None = None
    ai_reported: bool = False
    """The article itself is labelled as written by AI."""
    images: list[Image] = field(default_factory=list)
    social_summary: str | None = None
    """The "What people say" section, outside the body."""
    related: list[RelatedLink] = field(default_factory=list)
    boilerplate: list[BoilerplateBlock] = field(default_factory=list)
    """Every text block that was removed, with why."""
    fetched_at: str | None = None
    """When the page was fetched (UTC, ISO 8601); set by the spider."""
