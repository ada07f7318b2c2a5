"""Generic, locale-free signals about page elements: class and id tokens, landmarks, image sources."""

from __future__ import annotations

import re

from lxml.html import HtmlElement

_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])")

# Class/id tokens that name page chrome in the markup of most sites (developers write English identifiers
# whatever the UI locale). Matched per token, so "ad" hits "ad-slot" but not "header" or "shadow".
CHROME_TOKENS: dict[str, str] = {
    **dict.fromkeys("cookie cookies consent gdpr cmp onetrust didomi cookiebanner cookiebar".split(), "cookie_banner"),
    **dict.fromkeys("share sharing sharebar sharetools addthis".split(), "share"),
    **dict.fromkeys("newsletter subscribe subscription signup optin".split(), "newsletter"),
    **dict.fromkeys(
        "ad ads advert adverts advertisement advertising adslot adunit dfp gpt sponsor sponsored promo "
        "commercial annons anzeige banner-ad outbrain taboola".split(),
        "ad",
    ),
    **dict.fromkeys("comment comments discussion disqus".split(), "comments"),
    **dict.fromkeys(
        "related recommended recommendations recirculation morestories more-stories readmore read-more "
        "teasers".split(),
        "related",
    ),
    **dict.fromkeys("trending popular mostread most-read mostpopular".split(), "popular"),
    **dict.fromkeys("breadcrumb breadcrumbs navbar nav navigation menu topbar masthead skiplink".split(), "navigation"),
    **dict.fromkeys("footer sitefooter colophon".split(), "footer"),
    **dict.fromkeys("byline author authors dateline timestamp".split(), "byline"),
    **dict.fromkeys("caption figcaption credit credits copyright photographer imagecredit".split(), "caption"),
    **dict.fromkeys("tags tagcloud taglist keywords topics".split(), "tags"),
    **dict.fromkeys("paywall modal popup overlay toast".split(), "overlay"),
    **dict.fromkeys("correction corrections erratum".split(), "notice"),
    **dict.fromkeys("factbox factsbox infobox faktabox faktaboks faktaruta".split(), "factbox"),
}
# Compound identifiers that must be matched as a whole token pair ("more stories" written "more-stories").
_PAIRS = {("read", "more"): "related", ("more", "stories"): "related", ("most", "read"): "popular"}

ROLE_KINDS = {
    "navigation": "navigation",
    "banner": "navigation",
    "contentinfo": "footer",
    "complementary": "aside",
    "search": "navigation",
    "dialog": "overlay",
    "alertdialog": "overlay",
    "menu": "navigation",
    "menubar": "navigation",
}
LANDMARK_KINDS = {"nav": "navigation", "footer": "footer", "aside": "aside", "form": "form", "dialog": "overlay"}


# Attributes where developers name a component; all of them say what a box is, in the site's code language.
_IDENTIFIER_ATTRS = ("class", "id", "data-module", "data-component", "data-testid", "data-type")


def identifier_tokens(element: HtmlElement) -> list[str]:
    values = [element.get(attr) for attr in _IDENTIFIER_ATTRS]
    if not any(values):
        return []
    value = _CAMEL_BOUNDARY.sub(" ", " ".join(v for v in values if v)).lower()  # "imageEmbedCaption" too
    return [token for token in _TOKEN_SPLIT.split(value) if token]


def _token_pattern() -> re.Pattern[str]:
    words = sorted(CHROME_TOKENS, key=len, reverse=True)
    pairs = [rf"{a}[^a-z0-9]+{b}" for a, b in _PAIRS]
    alternation = "|".join([*pairs, *(re.escape(w) for w in words)])
    return re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z0-9])")


_CHROME_PATTERN = _token_pattern()


def chrome_kind(element: HtmlElement) -> str | None:
    """The kind of page chrome this element's class or id names, if any.

    One regular-expression search over the joined identifiers instead of a token loop: this runs for
    every named element of every page.
    """
    values = [element.get(attr) for attr in _IDENTIFIER_ATTRS]
    if not any(values):
        return None
    value = _CAMEL_BOUNDARY.sub(" ", " ".join(v for v in values if v)).lower()
    found = _CHROME_PATTERN.search(value)
    if found is None:
        return None
    word = found.group(0)
    if word in CHROME_TOKENS:
        return CHROME_TOKENS[word]
    return _PAIRS[tuple(_TOKEN_SPLIT.split(word))]


def landmark_kind(element: HtmlElement) -> str | None:
    role = (element.get("role") or "").lower()
    if role in ROLE_KINDS:
        return ROLE_KINDS[role]
    if element.get("aria-modal") == "true":
        return "overlay"
    return LANDMARK_KINDS.get(element.tag if isinstance(element.tag, str) else "")


_PLACEHOLDER = re.compile(r"^data:|blank\.gif|spacer\.gif|placeholder|pixel\.gif|1x1", re.I)
_LAZY_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-url", "data-hi-res-src", "data-full-src")


def image_source(img: HtmlElement) -> str | None:
    """The URL a browser would end up showing: lazy-loading attributes and srcset included."""
    src = (img.get("src") or "").strip()
    if not src or _PLACEHOLDER.search(src):
        for attr in _LAZY_ATTRS:
            value = (img.get(attr) or "").strip()
            if value and not value.startswith("data:"):
                return value
        srcset = img.get("srcset") or img.get("data-srcset") or ""
        if not srcset and img.getparent() is not None and img.getparent().tag == "picture":
            for source in img.getparent().iterfind("source"):
                srcset = source.get("srcset") or source.get("data-srcset") or ""
                if srcset:
                    break
        candidates = [part.strip().split()[0] for part in srcset.split(",") if part.strip()]
        if candidates:
            return candidates[-1]
        return None if not src or src.startswith("data:") else src
    return src


def is_decorative_image(img: HtmlElement) -> bool:
    """Tracking pixels, logos, icons and avatars: never an article image."""
    for attr in ("width", "height"):
        value = (img.get(attr) or "").strip().rstrip("px")
        if value.isdigit() and int(value) <= 48:
            return True
    tokens = set(identifier_tokens(img))
    alt = (img.get("alt") or "").lower()
    if len(alt) < 30:  # a short alt names what the picture is ("Site logo"); a long one describes a photo
        tokens |= set(_TOKEN_SPLIT.split(alt))
    if tokens & {"logo", "icon", "avatar", "sprite", "emoji", "badge", "pixel", "tracking"}:
        return True
    return img.get("role") == "presentation" or img.get("aria-hidden") == "true"
