"""Page understanding for article pages: from a parsel Selector to plain data, with no crawler involved.

The page is laid out as text blocks (``dom.linearize``); labels from the locale table, landmarks and
class/id hints mark what is chrome; a text-density score finds the article's prose; images take their
captions and AI disclosures from their figure or media wrapper; labelled sections give the social
summary and the related teasers. Structured data (JSON-LD, OpenGraph, ``__NEXT_DATA__``) fills what the
visible page does not say, and loses where the two disagree.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from urllib.parse import urljoin

from lxml.html import HtmlElement
from parsel import Selector
from w3lib.html import remove_tags, replace_entities

from newscrawl.items import BoilerplateBlock, Image, RelatedLink
from newscrawl.locales import BOILERPLATE_KINDS, LabelMatch, LocaleTable, default_locale_table, label_key
from newscrawl.page.dom import HEADING_TAGS, Block, PageText, element_tag, linearize, normalize_space
from newscrawl.page.language import detect_language
from newscrawl.page.signals import chrome_kind, image_source, is_decorative_image, landmark_kind
from newscrawl.page.structured import StructuredData, read_structured_data

LABEL_KINDS = BOILERPLATE_KINDS
# Concepts matched as a whole element's text; prefixes ("Foto:", "By") are matched elsewhere.
WHOLE_LABEL_CONCEPTS = frozenset(LABEL_KINDS) - {"credit_prefix", "byline_prefix"}
SECTION_CONCEPTS = {
    "related_heading": "related",
    "social_heading": "social",
    "comments": "comments",
    "popular_heading": "popular",  # other articles, but not related ones: boilerplate
}
# Chrome that wraps a labelled box inside the article: only the box goes, never the text after it.
BOX_CONCEPTS = {
    "ad_label": "ad",
    "newsletter": "newsletter",
    "cookie_phrase": "cookie_banner",
    "factbox_heading": "factbox",
}
_DATE_ONLY = re.compile(
    r"^(?:[A-Za-zÀ-ÿ]+\.?,?\s+)?(?:\d{1,4}[-./ ]\s*(?:\d{1,2}|[A-Za-zÀ-ÿ]+\.?)[-./ ,]\s*\d{2,4})"
    # the word before the time ("kl.", "at", "um", "a las") is any short word, so no locale lives here
    r"(?:,?\s*(?:[^\W\d_]{1,3}\.?\s?){0,2}\d{1,2}[:.]\d{2}(?:\s*[AaPp][Mm])?)?(?:\s*[^\W\d_]{1,5}\.?)?$"
)
IMAGE_TAGS = ("img", "amp-img")
_LANDMARK_TAGS = frozenset({"nav", "footer", "aside", "form", "dialog", "header"})
# Picture agencies whose name alone closes a caption: "(AP Photo/Evan Vucci)", "| Getty Images".
_AGENCIES = "AP|AFP|Reuters|Getty|Getty Images|EPA|dpa|PA|Bloomberg|TT|NTB|Ritzau|ANP|ANSA|PAP|Lusa|EFE"


@cache
def credit_tail(locales: LocaleTable) -> re.Pattern[str]:
    """A credit that closes a caption, with the table's credit prefixes: "(Image: GETTY)", "| Foto: X"."""
    prefixes = "|".join(sorted((re.escape(label) for label in locales.labels("credit_prefix")), key=len, reverse=True))
    return re.compile(
        rf"(?:\((?:{prefixes})s?\s*:[^()]{{1,80}}\)"
        rf"|\((?:{_AGENCIES})[^()]{{0,60}}\)"
        rf"|\|\s*(?:{_AGENCIES})[^|]{{0,40}})\s*\.?$",
        re.IGNORECASE,
    )
_BREADCRUMB = re.compile(r"\s[>›»/]\s")
_WORD = re.compile(r"[^\W\d_]+")
_DIGIT = re.compile(r"\d")
_LETTERS = re.compile(r"[^\W\d_]")
_SHORTCODE = re.compile(r"^\[\w+[^\]]*\].*\[/\w+\]$|^\[/?\w+(?:\s[^\]]*)?\]$")
_MARKUP = re.compile(r"<[a-zA-Z/][^>]*>|&lt;[a-zA-Z/]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+|\s+[|·•–—]\s+")
_SENTENCE_END = re.compile(r"[.!?…]\s*$")


@dataclass
class ArticleReading:
    """What the page says, before loaders clean it into an ``Article`` item."""

    url: str
    canonical_url: str | None = None
    title: str | None = None
    body: list[str] = field(default_factory=list)
    language: str | None = None
    published_at: str | None = None
    modified_at: str | None = None
    authors: list[str] = field(default_factory=list)
    site_name: str | None = None
    ai_reported: bool = False
    images: list[Image] = field(default_factory=list)
    social_summary: str | None = None
    related: list[RelatedLink] = field(default_factory=list)
    boilerplate: list[BoilerplateBlock] = field(default_factory=list)
    is_article: bool = False
    not_article_reason: str | None = None
    body_source: str = "dom"
    article_links: list[str] = field(default_factory=list)


def read_article(selector: Selector, url: str, locales: LocaleTable | None = None) -> ArticleReading:
    """Read an article page. Pure: the same selector and URL always give the same reading."""
    return ArticlePage(selector, url, locales).read()


@dataclass
class _Region:
    element: HtmlElement
    kind: str
    heading: HtmlElement | None = None


class ArticlePage:
    """One page being read; subclasses may override the hooks for a site, never branch on URLs."""

    def __init__(self, selector: Selector, url: str, locales: LocaleTable | None = None):
        self.selector = selector
        self.url = url
        self.locales = locales or default_locale_table()
        root = selector.root
        self.root: HtmlElement = root if isinstance(root, HtmlElement) else None
        base = self.root.xpath("//base/@href") if self.root is not None else []
        self.base_url = urljoin(url, base[0].strip()) if base else url
        if self.base_url.startswith("file:") and self.root is not None:
            # A saved page's links belong to the site it was saved from, not to the local disk.
            canonical = self.root.xpath(
                "//head/link[@rel='canonical']/@href | //head/meta[@property='og:url']/@content"
            )
            web = [c.strip() for c in canonical if c.strip().startswith(("http://", "https://"))]
            if web:
                self.base_url = web[0]

    # ---- entry point ------------------------------------------------------------------------------------

    def read(self) -> ArticleReading:
        reading = ArticleReading(url=self.url)
        if self.root is None:
            reading.not_article_reason = "not_html"
            return reading
        body_el = self.root.find("body")
        if body_el is None:
            body_el = self.root
        self.data = read_structured_data(self.root)
        self.page = linearize(body_el)
        self._mark_labels()
        self.title_el = self._find_title_element()
        self.regions = self._find_regions()
        self.block_region = self._assign_regions()
        self._locate_body()
        images = self._images()
        body_blocks = self._body_blocks()

        reading.canonical_url = self._absolute(self.data.canonical_url)
        reading.site_name = self.data.site_name
        reading.title = self._title()
        reading.body = self._paragraphs(body_blocks)
        reading.images = images
        reading.social_summary = self._social_summary()
        reading.related = self._related()
        reading.ai_reported = self._article_ai_reported(body_blocks)
        reading.published_at = self._published_at()
        reading.modified_at = iso_datetime(self.data.modified_at)
        reading.authors = list(self.data.authors)
        reading.article_links = self._read_more_links(body_blocks)
        self._apply_next_data(reading)
        self._apply_json_ld_body(reading)
        reading.boilerplate = self._boilerplate(body_blocks)
        reading.language = detect_language(
            "\n".join(reading.body) or (reading.title or ""),
            declared=[self.data.language, self._declared_language()],
        )
        reading.is_article, reading.not_article_reason = self._is_article(reading, body_blocks)
        return reading

    def _chrome(self, element: HtmlElement) -> str | None:
        """``chrome_kind`` once per element: the same boxes are asked about from several passes."""
        try:
            return self._chrome_cache[element]
        except KeyError:
            kind = self._chrome_cache[element] = chrome_kind(element)
            return kind
        except AttributeError:
            self._chrome_cache: dict[HtmlElement, str | None] = {}
            return self._chrome(element)

    # ---- labels -----------------------------------------------------------------------------------------

    def _mark_labels(self) -> None:
        """Find every element whose whole text is one or more UI labels; their text leaves every block."""
        page = self.page
        self.labels: dict[HtmlElement, list[LabelMatch]] = {}
        candidates: list[tuple[int, int, HtmlElement, list[LabelMatch]]] = []
        for element, (start, end) in page.spans.items():
            if end <= start or end - start > 40 or element_tag(element) in ("html", "body"):
                continue
            text = "".join(page.pieces[start:end])
            if len(text) > 200:
                continue
            matches = self.locales.split_labels(text, WHOLE_LABEL_CONCEPTS)
            if matches and not (element.tag in HEADING_TAGS and all(m.guessed for m in matches)):
                # (a sub-heading is never taken for a label only because it mentions AI-made things)
                candidates.append((start, -end, element, matches))
        candidates.sort(key=lambda c: (c[0], c[1]))
        # Keep the outermost element of nested label elements: "<span><b>Rapporterad av AI</b></span>",
        # unless the outer one is only a guess and the table spells out labels inside it.
        last_end = -1
        for i, (start, neg_end, element, matches) in enumerate(candidates):
            if start < last_end:
                continue
            inner = [c for c in candidates[i + 1 :] if c[0] < -neg_end and -c[1] <= -neg_end]
            if inner and all(m.guessed for m in matches) and any(not m.guessed for c in inner for m in c[3]):
                continue
            self.labels[element] = matches
            last_end = -neg_end
        # Labels carried only by attributes: an overlay badge with aria-label, a title tooltip.
        self.attribute_labels: list[tuple[HtmlElement, str]] = []
        for element in self.root.xpath("//body//*[@aria-label or @title][not(self::a)][not(self::img)]"):
            for attr in ("aria-label", "title"):
                value = (element.get(attr) or "").strip()
                if value and self.locales.is_label(value, "ai_image", "ai_reported"):
                    self.attribute_labels.append((element, value))
                    break
        self.label_pieces = set()
        for element in self.labels:
            start, end = page.spans[element]
            self.label_pieces.update(range(start, end))
        for element, _ in self.attribute_labels:
            # The badge's own glyph or abbreviation ("IA", "✦") is part of the label, not of a caption.
            start, end = page.spans.get(element, (0, 0))
            if sum(len(p) for p in page.pieces[start:end]) <= 12:
                self.label_pieces.update(range(start, end))
        self.clean_text: dict[int, str] = {}
        for block in page.blocks:
            if any(i in self.label_pieces for i in range(block.start, block.end)):
                kept = [page.pieces[i] for i in range(block.start, block.end) if i not in self.label_pieces]
                self.clean_text[block.index] = normalize_space("".join(kept))
            else:
                self.clean_text[block.index] = block.text

    # ---- title ------------------------------------------------------------------------------------------

    def _find_title_element(self) -> HtmlElement | None:
        headline = normalize_space(self.data.headline or "").casefold()
        h1s = [b for b in self.page.blocks if b.tag == "h1" and not b.ancestors & {"nav", "footer", "aside", "a"}]
        if not h1s:
            return self._headline_without_h1(headline)
        if headline:
            scored = [(_overlap(headline, self.clean_text[b.index].casefold()), -b.index, b) for b in h1s]
            best = max(scored, key=lambda s: (s[0], s[1]))
            if best[0] >= 0.5:
                return best[2].element
        in_article = [b for b in h1s if b.ancestors & {"article", "main"}]
        return (in_article or h1s)[0].element

    def _headline_without_h1(self, headline: str) -> HtmlElement | None:
        """Pages with no <h1>: an ARIA or microdata headline, else the block that repeats the stated headline."""
        for block in self.page.blocks:
            element = block.element
            if (element.get("role") == "heading" and element.get("aria-level") in (None, "1")) or element.get(
                "itemprop"
            ) == "headline":
                return element
        stated = [h.casefold() for h in (headline, (_first_text(self.root, "//head/title") or "").casefold()) if h]
        for block in self.page.blocks:
            if block.ancestors & {"nav", "footer", "aside", "a"} or len(block.text) < 10:
                continue
            text = self.clean_text[block.index].casefold()
            if any(text == h or (text in h and _overlap(text, h) >= 0.6) for h in stated):
                return block.element
        return None

    def _title(self) -> str | None:
        if self.title_el is not None:
            text = normalize_space(
                "".join(
                    self.page.pieces[i]
                    for i in range(*self.page.spans[self.title_el])
                    if i not in self.label_pieces
                )
            )
            if text:
                return text
        for candidate in (self.data.headline, _first_text(self.root, "//head/title")):
            if candidate:
                return strip_site_name(normalize_space(candidate), self.data.site_name)
        return None

    # ---- regions of chrome and labelled sections --------------------------------------------------------

    def _find_regions(self) -> list[_Region]:
        """Elements whose whole content is not article prose, each with why."""
        regions: list[_Region] = []
        title_el = self.title_el
        for element, (start, end) in self.page.spans.items():
            if end <= start or not isinstance(element.tag, str):
                continue
            tag = element.tag
            if not element.attrib and tag not in _LANDMARK_TAGS:
                continue  # no name, no role, no landmark: nothing here can say it is chrome
            kind = landmark_kind(element)
            if kind == "aside" or tag == "header":
                kind = None if self._holds_title(element) else (kind or "navigation")
                if tag == "header" and kind and self._inside(element, ("article", "main")):
                    kind = None  # an article's own header holds its standfirst and byline
            elif kind is not None and self._holds_title(element):
                kind = None
            if kind is None:
                named = self._chrome(element)
                if named in ("comments", "cookie_banner") and not self._holds_title(element):
                    kind = named  # long comment threads are still comments
                elif named and named not in ("caption", "byline") and not self._holds_content(element):
                    kind = named
                    if named == "related" and self.locales.prefix(self.page.text_of(element), "read_more"):
                        kind = "read_more"  # one "Read more: <a>" line inside the body, not a teaser list
            if kind is not None:
                regions.append(_Region(element, kind))
        for element, matches in self.labels.items():
            concepts = set().union(*(m.concepts for m in matches))
            if not self._is_heading_like(element):
                # A newsletter or ad box is also known by its button or link ("Subscribe"), or by a label
                # that opens a short block ("<b>Nieuwsbrief</b><br>Every morning ...").
                if (
                    concepts & {"newsletter", "ad_label"}
                    and (element.tag in ("a", "button") or self._opens_short_block(element))
                    and not self._inside(element, ("nav", "header", "footer"))
                ):
                    kind = "newsletter" if "newsletter" in concepts else "ad"
                    regions.append(_Region(self._box_of(element), kind, heading=element))
                continue
            for concept, kind in SECTION_CONCEPTS.items():
                if concept in concepts and not concepts & {"ai_image", "ai_reported"}:
                    regions.append(_Region(self._section_of(element), kind, heading=element))
                    break
            else:
                for concept, kind in BOX_CONCEPTS.items():
                    if concept in concepts:
                        regions.append(_Region(self._box_of(element), kind, heading=element))
                        break
        regions.extend(self._cookie_banners())
        # A sign-up link or button no label row spells out ("Receba a newsletter diária") opens a box too.
        for element in self.root.xpath("//body//a | //body//button"):
            if element in self.labels or element not in self.page.spans or self._inside(element, ("nav", "header", "footer")):
                continue
            if self.locales.mentions_newsletter(self.page.text_of(element)):
                box = self._box_of(element)
                # A call-to-action box, not a bar of links that happens to hold "Subscribe".
                if box is not element and len(box.xpath(".//a")) <= 2 and not self._holds_content(box):
                    regions.append(_Region(box, "newsletter"))
        # A sign-up form with an e-mail field is a newsletter box, whatever its wrapper is called.
        for form in self.root.iter("form"):
            if form in self.page.spans and form.xpath(".//input[@type='email' or contains(@name, 'mail')]"):
                box = self._box_of(form)
                if not self._holds_content(box):
                    regions.append(_Region(box, "newsletter"))
        # Where a class name and a visible heading both speak for one box, the heading says what it is.
        labelled = {id(r.element) for r in regions if r.heading is not None}
        return [r for r in regions if r.heading is not None or id(r.element) not in labelled]

    def _opens_short_block(self, element: HtmlElement) -> bool:
        start = self.page.spans[element][0]
        for block in self.page.blocks:
            if block.start <= start < block.end:
                return not "".join(self.page.pieces[block.start : start]).strip() and len(block.text) <= 400
        return False

    def _holds_title(self, element: HtmlElement) -> bool:
        if self.title_el is None:
            return False
        span, title_span = self.page.spans.get(element), self.page.spans.get(self.title_el)
        return bool(span and title_span and span[0] <= title_span[0] and title_span[1] <= span[1])

    def _holds_content(self, element: HtmlElement) -> bool:
        """Real prose inside: a chrome-sounding class on a content wrapper must not cost the article."""
        if self._holds_title(element):
            return True
        paragraphs = prose = 0
        for block in self.page.blocks_in(element):
            if len(block.text) >= 80 and block.link_density < 0.2:
                paragraphs += 1
                prose += len(block.text)
                if paragraphs >= 3 and prose >= 400:
                    return True
        return False

    @staticmethod
    def _inside(element: HtmlElement, tags: tuple[str, ...]) -> bool:
        parent = element.getparent()
        while parent is not None:
            if parent.tag in tags:
                return True
            parent = parent.getparent()
        return False

    def _is_heading_like(self, element: HtmlElement) -> bool:
        """A label standing as a heading of its own, not a word inside a link, button or sentence."""
        tag = element_tag(element)
        if tag in ("a", "button", "option", "label"):
            return False
        parent = element
        for _ in range(3):
            if parent is None:
                break
            if element_tag(parent) in ("a", "button"):
                return False
            parent = parent.getparent()
        if tag in HEADING_TAGS or tag in ("header", "legend", "summary", "caption"):
            return True
        # Otherwise the label must fill its block: "<div>Related</div>", not "<p><b>Read also:</b> <a>..</a></p>".
        label_start = self.page.spans[element][0]
        for block in self.page.blocks:
            if block.start <= label_start < block.end or self.page.contains(element, block):
                return not self.clean_text[block.index]
        return False

    def _section_of(self, heading: HtmlElement) -> HtmlElement | list:
        """The element a section heading opens: its wrapper, climbing while the heading leads it."""
        node = heading
        while True:
            parent = node.getparent()
            if parent is None or parent.tag in ("body", "html", "main", "article") or self._holds_title(parent):
                break
            if not self._leads(parent, node):
                break
            node = parent
        if node is heading or node.tag in HEADING_TAGS:
            return _SiblingRun(node)
        return node

    def _box_of(self, label: HtmlElement) -> HtmlElement | list:
        node = label
        while True:
            parent = node.getparent()
            if parent is None or parent.tag in ("body", "html", "main", "article") or self._holds_title(parent):
                break
            if self.page.length_of(parent) > 1500 or self._holds_content(parent):
                break
            node = parent
            if not self._leads(node, label) and node.getparent() is not None:
                # the label is not the box's first text: the box is the smallest wrapper around it
                break
        return node

    def _leads(self, parent: HtmlElement, child: HtmlElement) -> bool:
        """True when no text in ``parent`` comes before ``child``."""
        span_parent, span_child = self.page.spans.get(parent), self.page.spans.get(child)
        if not span_parent or not span_child:
            return False
        before = "".join(self.page.pieces[span_parent[0] : span_child[0]])
        return not before.strip()

    def _cookie_banners(self) -> list[_Region]:
        """A consent banner: a cookie phrase and an accept/decline button in one small box."""
        regions: list[_Region] = []
        buttons = [
            element
            for element, matches in self.labels.items()
            if set().union(*(m.concepts for m in matches)) & {"cookie_accept", "cookie_decline"}
        ]
        # <input type=button value="Accept"> carries its label in an attribute, not in text.
        buttons += [
            element
            for element in self.root.xpath("//body//input[@type='button' or @type='submit'][@value]")
            if element in self.page.spans and self.locales.is_label(element.get("value"), "cookie_accept", "cookie_decline")
        ]
        if not buttons:
            return regions
        for block in self.page.blocks:
            if not self.locales.is_label(block.text, "cookie_phrase") and not self.locales.mentions(
                block.text, "cookie_term"
            ):
                continue
            node = block.element
            for _ in range(6):
                parent = node.getparent()
                if parent is None or parent.tag in ("body", "html") or self._holds_content(parent):
                    break
                node = parent
                if any(self._contains_element(node, b) for b in buttons):
                    regions.append(_Region(node, "cookie_banner"))
                    break
        return regions

    def _contains_element(self, outer: HtmlElement, inner: HtmlElement) -> bool:
        span_o, span_i = self.page.spans.get(outer), self.page.spans.get(inner)
        return bool(span_o and span_i and span_o[0] <= span_i[0] and span_i[1] <= span_o[1])

    def _assign_regions(self) -> dict[int, _Region]:
        """For each block, the innermost labelled section or chrome region it lies in."""
        assigned: dict[int, _Region] = {}
        spans: list[tuple[int, int, _Region]] = []
        for region in self.regions:
            start, end = self._region_span(region)
            if end > start:
                spans.append((start, end, region))
        # Outer regions first, so inner ones (a labelled section inside an <aside>) win.
        spans.sort(key=lambda s: (s[0], -s[1]))
        self._region_spans = [(start, end) for start, end, _ in spans]
        starts = self.page.block_starts()
        for start, end, region in spans:
            for block in self.page.blocks[bisect_left(starts, start) : bisect_right(starts, end)]:
                if block.end <= end:
                    assigned[block.index] = region
        return assigned

    # ---- body -------------------------------------------------------------------------------------------

    def _locate_body(self) -> None:
        """Find the element(s) holding the article's prose; sets ``body_roots`` and ``body_span``."""
        candidates = [b for b in self.page.blocks if self._is_prose_candidate(b)]
        container = self._best_container(candidates)
        self.body_roots: list[HtmlElement] = []
        self.body_span: tuple[int, int] | None = None
        if container is None:
            return
        roots = self.body_roots = self._body_roots(container, candidates)
        start = min(self.page.spans[r][0] for r in roots)
        end = max(self.page.spans[r][1] for r in roots)
        # The standfirst often sits in the article header, between the headline and the body container.
        if self.title_el is not None:
            start = min(start, self.page.spans[self.title_el][1])
        self.body_span = (start, end)

    def _body_blocks(self) -> list[Block]:
        if self.body_span is None:
            return []
        start, end = self.body_span
        roots = self.body_roots
        # A short line before the headline is a kicker or breadcrumb ("Goslar"), not the story's prose.
        headline_start = self.page.spans[self.title_el][0] if self.title_el is not None else -1
        blocks = []
        for block in self.page.blocks:
            if block.start < start or block.end > end:
                continue
            if block.end <= headline_start and len(self.clean_text[block.index]) < 80:
                continue
            in_roots = any(self.page.contains(r, block) for r in roots)
            if not in_roots and not self._is_standfirst(block):
                continue
            if self._body_exclusion(block) is None:
                blocks.append(block)
        return blocks

    def _is_prose_candidate(self, block: Block) -> bool:
        if block.index in self.block_region or block.ancestors & {"figure", "figcaption", "button", "nav"}:
            return False
        text = self.clean_text[block.index]
        return len(text) >= 25 and block.link_density < 0.33

    def _best_container(self, candidates: list[Block]) -> HtmlElement | None:
        scores: dict[HtmlElement, float] = {}
        for block in candidates:
            text = self.clean_text[block.index]
            score = 1 + text.count(",") + text.count("，") + min(len(text) / 100, 3)
            owner = block.element if block.tag not in ("p", "li", "blockquote", "pre") else block.element
            parent = owner.getparent() if block.tag in ("p", "li", "blockquote", "pre", "dd") else owner
            if block.tag == "li" and parent is not None:
                parent = parent.getparent()
            weight = 1.0
            for _ in range(3):
                if parent is None or not isinstance(parent.tag, str):
                    break
                scores[parent] = scores.get(parent, 0.0) + score * weight
                weight /= 2
                parent = parent.getparent()
        if not scores:
            return None
        return max(scores, key=lambda el: scores[el] * (1 - self._link_density(el)))

    def _link_density(self, element: HtmlElement) -> float:
        blocks = self.page.blocks_in(element)
        total = sum(len(b.text) for b in blocks)
        return sum(b.link_chars for b in blocks) / max(total, 1)

    def _body_roots(self, container: HtmlElement, candidates: list[Block]) -> list[HtmlElement]:
        """The best container and its siblings that also hold prose (a body split by an ad, say).

        When the container is the only child of its parent with prose in it, the parent stands for it:
        bodies split into several column wrappers share a grandparent, not a parent.
        """
        node = container
        for _ in range(3):
            parent = node.getparent()
            if parent is None or parent.tag in ("body", "html") or self._holds_title(parent):
                break
            if any(self._sibling_prose(sibling, candidates) for sibling in parent if sibling is not node):
                break
            node = parent
        parent = node.getparent()
        if parent is None:
            return [container]
        roots = []
        for sibling in parent:
            if sibling is node:
                roots.append(container if node is container else node)
            elif self._sibling_prose(sibling, candidates) and self._link_density(sibling) < 0.25:
                roots.append(sibling)
        return roots

    def _sibling_prose(self, sibling: HtmlElement, candidates: list[Block]) -> bool:
        if not isinstance(sibling.tag, str) or sibling not in self.page.spans or self._holds_title(sibling):
            return False
        prose = [b for b in candidates if self.page.contains(sibling, b)]
        if not prose or sum(len(self.clean_text[b.index]) for b in prose) < 80:
            return False
        # A lone block beside an image is a caption box, not a second part of the body.
        has_image = next(sibling.iter(*IMAGE_TAGS), None) is not None
        return not (len(prose) == 1 and (has_image or len(self.clean_text[prose[0].index]) < 250))

    def _is_standfirst(self, block: Block) -> bool:
        text = self.clean_text[block.index]
        # Some sites set the standfirst as an <h2> under the headline: a long sentence, not a heading.
        heading_as_lead = block.tag in HEADING_TAGS and len(text) >= 80 and bool(_SENTENCE_END.search(text))
        return (
            len(text) >= 60
            and block.link_density < 0.2
            and (block.tag not in HEADING_TAGS or heading_as_lead)
            and not block.ancestors & {"figure", "figcaption", "a", "nav", "footer"}
            and self._body_exclusion(block) is None
        )

    def _body_exclusion(self, block: Block) -> str | None:
        """Why a block inside the body region is still not body text, or None when it is.

        Asked by several passes once the images have claimed their captions; answered once per block.
        """
        cache = self.__dict__.setdefault("_exclusions", {})
        if block.index not in cache:
            cache[block.index] = self._why_not_body(block)
        return cache[block.index]

    def _why_not_body(self, block: Block) -> str | None:
        if block.index in self.block_region:
            return self.block_region[block.index].kind
        text = self.clean_text[block.index]
        if not text:
            return "label"
        if self.title_el is not None and (
            block.element is self.title_el or self.page.contains(self.title_el, block)
        ):
            return "title"
        if block.ancestors & {"figure", "figcaption"} or block.index in self.caption_blocks:
            return "caption"
        parent = block.element.getparent()
        if (
            parent is not None
            and not any(parent is root for root in self.body_roots)
            and parent.find(".//iframe") is not None
            or parent is not None and parent.find("video") is not None
        ) and self.page.length_of(parent) < 300:
            return "caption"  # the line under an embedded video or player
        if "button" in block.ancestors:
            return "button"
        named = self._named_ancestor_kind(block.element)
        if named in ("caption", "byline"):
            return named
        if credit_tail(self.locales).search(text) and len(text) < 400 or text.startswith("©") and len(text) < 300:
            return "caption"  # "Protesters in Hong Kong (Image: GETTY)", "© Lucy Nicholson ..."
        if self._is_byline(block, text):
            return "byline"
        if self.locales.prefix(text, "read_more") and block.link_chars:
            return "read_more"
        if len(text) < 80 and _BREADCRUMB.search(text) and not _SENTENCE_END.search(text):
            return "navigation"  # "Region > Konstanz"
        if _SHORTCODE.match(text):
            return "shortcode"  # an unrendered CMS shortcode: "[button link=...]Send us...[/button]"
        if self.locales.prefix(text, "credit_prefix") and len(text) < 120 and not _SENTENCE_END.search(text):
            return "caption"
        if block.link_density > 0.5 and (len(text) < 200 or block.link_density > 0.8):
            return "links"
        return None

    def _named_ancestor_kind(self, element: HtmlElement) -> str | None:
        """A caption or byline class on the block or a close wrapper ("<div class=caption><p>..</p></div>")."""
        roots = self.body_roots
        for _ in range(3):
            if element is None or any(element is root for root in roots):
                return None
            kind = self._chrome(element)
            if kind in ("caption", "byline"):
                return kind
            element = element.getparent()
        return None

    def _has_dateline_word(self, text: str) -> bool:
        """A dateline word or phrase of the locale table ("Published", "Mis à jour") among the words."""
        words = _WORD.findall(text)
        return any(
            self.locales.is_label(" ".join(words[i : i + n]), "dateline_word")
            for n in (1, 2, 3)
            for i in range(len(words) - n + 1)
        )

    def _is_byline(self, block: Block, text: str) -> bool:
        if len(text) > 200:
            return False
        if _DATE_ONLY.match(text) or (block.element.find(".//time") is not None and len(text) < 60):
            return True
        words = text.split()
        has_digit = _DIGIT.search(text) is not None
        # "Publicerad 12 mars 2025 kl. 08.14", "Von der KI-Redaktion | 18.05.2025, 11:20 Uhr"
        if has_digit and len(text) < 160 and self._has_dateline_word(text):
            return True
        if words and self.locales.is_label(words[0], "byline_prefix") and len(words) > 1:
            if has_digit and len(text) < 160 and not _SENTENCE_END.search(text):
                return True
            return len(words) <= 7 and words[1][:1].isupper()
        return False

    def _paragraphs(self, blocks: list[Block]) -> list[str]:
        out: list[str] = []
        for block in blocks:
            text = self.clean_text[block.index]
            for part in re.split(r"\s*\n\s*\n\s*", text):
                part = normalize_space(part)
                if part:
                    out.append(part)
        return out

    # ---- images -----------------------------------------------------------------------------------------

    @property
    def caption_blocks(self) -> set[int]:
        if not hasattr(self, "_caption_blocks"):
            self._caption_blocks: set[int] = set()
        return self._caption_blocks

    def _article_scope(self) -> tuple[int, int]:
        """Pieces that belong to the article: the hero zone before the headline, then up to the body's end."""
        start, end = self.body_span or (0, len(self.page.pieces))
        anchor = self.page.spans[self.title_el][0] if self.title_el is not None else start
        # The hero image and its caption stand between the last piece of page chrome and the headline.
        hero_start = 0
        for block in self.page.blocks:
            if block.end > anchor:
                break
            if block.index in self.block_region or block.link_density > 0.5:
                hero_start = block.end
        return min(start, hero_start), end

    def _images(self) -> list[Image]:
        scope = self._article_scope()
        images: list[tuple[HtmlElement, Image]] = []
        seen: set[str] = set()
        for img in self.root.iter(*IMAGE_TAGS):
            position = self.page.spans.get(img)
            if position is None or not (scope[0] <= position[0] <= scope[1]):
                continue
            # By ancestry, not by text position: a badge right after the image may be a region of its own.
            if is_decorative_image(img) or self._inside_region(img):
                continue
            src = image_source(img)
            if not src:
                continue
            src = self._absolute(src)
            if src in seen:
                continue
            seen.add(src)
            alt = normalize_space(img.get("alt") or "") or None
            reading = Image(src=src, alt=alt)
            self._caption_image(img, reading)
            if not reading.ai_generated:
                found = self._alt_disclosure(alt) or self._alt_disclosure(normalize_space(img.get("title") or ""))
                if found:
                    reading.ai_generated, reading.disclosure = True, found
            images.append((img, reading))
        self._attach_loose_labels(images)
        # Blocks used as captions must not count as body: recompute body exclusions lazily.
        return [reading for _, reading in images]

    def _region_span(self, region: _Region) -> tuple[int, int]:
        if isinstance(region.element, _SiblingRun):
            return region.element.span(self.page)
        return self.page.spans.get(region.element, (0, 0))

    def _inside_region(self, element: HtmlElement) -> bool:
        """An element (an image has no text of its own) inside a chrome or section region."""
        if not hasattr(self, "_region_elements"):
            self._region_elements = set()
            for region in self.regions:
                members = region.element.elements() if isinstance(region.element, _SiblingRun) else [region.element]
                self._region_elements.update(members)
        return any(ancestor in self._region_elements for ancestor in element.iterancestors())

    def _in_region(self, piece: int) -> bool:
        return any(start <= piece < end for start, end in self._region_spans)

    def _media_wrapper(self, img: HtmlElement, within: HtmlElement | None = None) -> HtmlElement | None:
        """The smallest ancestor that holds this image and its caption, and nothing of the article's prose."""
        node = img
        roots = getattr(self, "body_roots", [])
        for _ in range(4):
            parent = node.getparent()
            if parent is None or parent is within or parent.tag in ("body", "html", "article", "main"):
                return None
            if any(parent is root for root in roots) or self._holds_title(parent):
                return None
            if len(list(parent.iter(*IMAGE_TAGS))) > 1:
                return None
            texts = [self.clean_text[b.index] for b in self.page.blocks_in(parent)]
            texts = [t for t in texts if _LETTERS.search(t)]  # an icon glyph ("✦") is not a caption
            if texts:
                # A caption is one short block, perhaps with a credit line; prose means we climbed too far.
                if sum(map(len, texts)) > 500 or len(texts) > 3 or (len(texts) == 3 and min(map(len, texts)) > 80):
                    return None
                return parent
            node = parent
        return None

    def _caption_image(self, img: HtmlElement, reading: Image) -> None:
        figure = next((a for a in img.iterancestors() if a.tag == "figure"), None)
        wrapper = figure if figure is not None else self._media_wrapper(img)
        if wrapper is None or not any(_LETTERS.search(self.clean_text[b.index]) for b in self.page.blocks_in(wrapper)):
            sibling = self._caption_sibling(wrapper if wrapper is not None else img)
            if sibling is not None:
                self._label_image_from(wrapper, reading)
                wrapper = sibling
        if wrapper is None:
            return
        caption_parts: list[str] = []
        credit: str | None = None
        for block in self.page.blocks_in(wrapper):
            if block.index in self.block_region and self.block_region[block.index].kind != "caption":
                continue
            self.caption_blocks.add(block.index)
            text = self.clean_text[block.index]
            if not text:
                continue
            if self._chrome(block.element) == "caption" and self._credit_like(block.element, text):
                credit = text
                continue
            if not _LETTERS.search(text):
                continue
            text, tail_label = self._trailing_ai_label(text)
            if tail_label and not reading.ai_generated:
                reading.ai_generated, reading.disclosure = True, tail_label
            caption, found_credit = split_credit(text, self.locales)
            if found_credit:
                credit = found_credit
            if caption:
                caption_parts.append(caption)
        # Inline credits in a <span class="credit"> or a <cite> inside the caption block.
        for element in wrapper.iter():
            if element is wrapper or not isinstance(element.tag, str):
                continue
            if element.tag == "cite" or (
                self._chrome(element) == "caption" and self._credit_like(element, self.page.text_of(element))
            ):
                credit_text = self.page.text_of(element)
                if credit_text:
                    credit = credit_text
                    caption_parts = [_remove_once(p, credit_text) for p in caption_parts]
        caption = normalize_space(" ".join(p for p in caption_parts if p)).lstrip(".,;:|·•–—- ") or None
        reading.caption = caption
        reading.credit = credit
        for element, matches in self.labels.items():
            if self._contains_element(wrapper, element):
                for match in matches:
                    if "ai_image" in match.concepts and not reading.ai_generated:
                        reading.ai_generated, reading.disclosure = True, match.text
                self._used_labels.add(element)
        for element, value in self.attribute_labels:
            if (element is wrapper or wrapper in element.iterancestors()) and not reading.ai_generated:
                reading.ai_generated, reading.disclosure = True, value
                self._used_labels.add(element)
        if reading.caption and not reading.ai_generated:
            suffix = self.locales.disclosure_suffix(reading.caption)
            if suffix:
                reading.ai_generated, reading.disclosure = True, suffix
                reading.caption = normalize_space(reading.caption.replace(suffix, "")) or None

    def _alt_disclosure(self, text: str | None) -> str | None:
        """An AI label in an alt text or tooltip: whole, as a suffix, as a prefix or as one of its parts."""
        if not text:
            return None
        if self.locales.split_labels(text, {"ai_image"}):
            return text
        suffix = self.locales.disclosure_suffix(text)
        if suffix:
            return suffix
        head, sep, _ = text.partition(":")
        if sep and self.locales.split_labels(head + ":", {"ai_image"}):
            return head.strip()  # "AI illustration: a tram on a viaduct"
        for part in re.split(r"\s*[,;|–—]\s*|\s+-\s+", text):
            if part != text and self.locales.split_labels(part, {"ai_image"}):
                return part.strip()  # "The quays, image générée par IA, with families"
        return None

    def _caption_sibling(self, element: HtmlElement) -> HtmlElement | None:
        """A caption-named element right after (or before) the image's box: "<div><img></div><p class=caption>"."""
        node = element
        for _ in range(3):
            for sibling in (node.getnext(), node.getprevious()):
                if sibling is None or not isinstance(sibling.tag, str):
                    continue
                if sibling.tag == "figcaption" or self._chrome(sibling) == "caption":
                    if next(sibling.iter(*IMAGE_TAGS), None) is None and self.page.length_of(sibling) < 500:
                        return sibling
            parent = node.getparent()
            if parent is None or any(parent is root for root in self.body_roots) or next(
                (i for i in parent.iter(*IMAGE_TAGS) if i is not element and element not in i.iterancestors()), None
            ) is not None and len(list(parent.iter(*IMAGE_TAGS))) > 1:
                return None
            node = parent
        return None

    def _label_image_from(self, box: HtmlElement | None, reading: Image) -> None:
        """AI labels in the image's own box, when its caption stands outside it."""
        if box is None:
            return
        for element, matches in self.labels.items():
            if self._contains_element(box, element):
                for match in matches:
                    if "ai_image" in match.concepts and not reading.ai_generated:
                        reading.ai_generated, reading.disclosure = True, match.text
                self._used_labels.add(element)
        for element, value in self.attribute_labels:
            if (element is box or box in element.iterancestors()) and not reading.ai_generated:
                reading.ai_generated, reading.disclosure = True, value
                self._used_labels.add(element)

    def _trailing_ai_label(self, text: str) -> tuple[str, str | None]:
        """'Caption sentence. Billede: genereret med AI' -> ('Caption sentence.', 'Billede: genereret med AI')."""
        parts = _SENTENCE_BREAK.split(text)
        if len(parts) < 2:
            return text, None
        matches = self.locales.split_labels(parts[-1], {"ai_image"})
        if not matches:
            return text, None
        return text[: len(text) - len(parts[-1])].rstrip(" |·•–—-"), parts[-1].strip()

    @property
    def _used_labels(self) -> set[HtmlElement]:
        if not hasattr(self, "_used_labels_set"):
            self._used_labels_set: set[HtmlElement] = set()
        return self._used_labels_set

    @staticmethod
    def _credit_like(element: HtmlElement, text: str) -> bool:
        tokens = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
        return any(t in tokens for t in ("credit", "copyright", "photographer", "byline", "source")) or text.startswith(
            "©"
        )

    def _attach_loose_labels(self, images: list[tuple[HtmlElement, Image]]) -> None:
        """AI-image labels outside any media wrapper go to the nearest article image without one."""
        if not images:
            return
        positions = [(self.page.spans[img][0], reading) for img, reading in images]
        scope = self._article_scope()
        loose: list[tuple[int, str]] = []
        for element, matches in self.labels.items():
            if element in self._used_labels:
                continue
            start = self.page.spans[element][0]
            if self._in_region(start) or not any("ai_image" in m.concepts for m in matches):
                continue
            if not (scope[0] <= start <= scope[1]):
                continue
            text = next(m.text for m in matches if "ai_image" in m.concepts)
            loose.append((start, text))
        for element, value in self.attribute_labels:
            if element in self._used_labels:
                continue
            span = self.page.spans.get(element)
            if span is None or self._in_region(span[0]) or not self.locales.is_label(value, "ai_image"):
                continue
            loose.append((span[0], value))
        for start, text in loose:
            position, reading = min(positions, key=lambda p: abs(p[0] - start))
            if not reading.ai_generated:
                reading.ai_generated, reading.disclosure = True, text

    # ---- labelled sections ------------------------------------------------------------------------------

    def _regions_of(self, kind: str) -> list[_Region]:
        return [r for r in self.regions if r.kind == kind]

    def _social_summary(self) -> str | None:
        parts: list[str] = []
        for region in self._regions_of("social"):
            for block in self._region_blocks(region):
                text = self.clean_text[block.index]
                if text and block.element is not region.heading:
                    parts.append(text)
        return "\n\n".join(parts) or None

    def _region_blocks(self, region: _Region) -> list[Block]:
        return [b for b in self.page.blocks if self.block_region.get(b.index) is region]

    def _related(self) -> list[RelatedLink]:
        teasers: list[RelatedLink] = []
        seen: set[str] = set()
        regions = self._regions_of("related")
        spans = [self._region_span(r) for r in regions]
        # A teaser card named "related-post" inside the "Related" section is a part, not a section.
        outermost = [
            region
            for region, (start, end) in zip(regions, spans)
            if not any(o is not region and os <= start and end <= oe and (os, oe) != (start, end)
                       for o, (os, oe) in zip(regions, spans))
        ]
        for region in outermost:
            for teaser in self._teasers(region):
                if teaser.url not in seen:
                    seen.add(teaser.url)
                    teasers.append(teaser)
        return teasers

    def _teasers(self, region: _Region) -> list[RelatedLink]:
        elements = region.element.elements() if isinstance(region.element, _SiblingRun) else [region.element]
        anchors: dict[str, list[HtmlElement]] = {}
        for element in elements:
            for anchor in element.iter("a"):
                href = (anchor.get("href") or "").strip()
                if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
                    continue
                anchors.setdefault(self._absolute(href), []).append(anchor)
        teasers = []
        for url, links in anchors.items():
            container = self._teaser_container(links[0], elements, set(anchors))
            title_el, title = self._teaser_title(links, container)
            if not title:
                continue
            skip = self._teaser_chrome(container, links, title_el)
            start, end = self.page.spans.get(container, (0, 0))
            summary = normalize_space(
                " ".join(self.page.pieces[i] for i in range(start, end) if i not in skip and i not in self.label_pieces)
            )
            ai_reported = any(
                (self._contains_element(container, element) or self._trails(container, element))
                and any("ai_reported" in m.concepts and "ai_image" not in m.concepts for m in matches)
                for element, matches in self.labels.items()
            )
            teasers.append(RelatedLink(url=url, title=title, summary=summary or None, ai_reported=ai_reported))
        return teasers

    def _trails(self, container: HtmlElement, label: HtmlElement) -> bool:
        """A label standing loose right after a teaser card ("<a>..</a><span>Reported by AI</span>")."""
        following = container.getnext()
        while following is not None and not isinstance(following.tag, str):
            following = following.getnext()
        return following is label

    def _is_card_caption(self, block: Block) -> bool:
        """Inside a card: the line right before an AI-image label is the picture's caption."""
        element = block.element
        following = element.getnext()
        matches = self.labels.get(following, []) if following is not None else []
        return bool(matches) and all(m.concepts == {"ai_image"} for m in matches)

    def _teaser_container(self, link: HtmlElement, elements: list[HtmlElement], hrefs: set[str]) -> HtmlElement:
        """The largest ancestor of a teaser's link that holds no other teaser's link."""
        node = link
        while not any(node is e for e in elements):
            parent = node.getparent()
            if parent is None:
                break
            targets = {
                self._absolute(href.strip())
                for href in parent.xpath(".//a/@href")
                if href.strip() and not href.strip().startswith(("#", "javascript:", "mailto:", "tel:"))
            }
            if len(targets & hrefs) > 1:
                break
            node = parent
        return node

    def _teaser_title(self, links: list[HtmlElement], container: HtmlElement) -> tuple[HtmlElement | None, str | None]:
        """A heading in the teaser, else the link's first text block, else the longest link text."""
        for heading in container.iter(*HEADING_TAGS):
            text = self._text_without_labels(heading)
            if text:
                return heading, text
        for link in links:
            # A whole card wrapped in one link: its first text block outside the image is the title.
            inner = [b for b in self.page.blocks_in(link) if self.clean_text[b.index]]
            if len(inner) > 1:
                for block in inner:
                    if block.ancestors & {"figure", "figcaption"} or self._chrome(block.element) == "caption":
                        continue
                    if self._is_card_caption(block):
                        continue
                    return block.element, self.clean_text[block.index]
            # ... or its first inline child with text, when title and summary are sibling <span>s.
            node = link
            for _ in range(4):
                texts = [(child, self._text_without_labels(child)) for child in node if isinstance(child.tag, str)]
                texts = [(child, text) for child, text in texts if text]
                if len(texts) > 1:
                    return texts[0]
                if len(texts) != 1:
                    break
                node = texts[0][0]
        best: tuple[HtmlElement | None, str | None] = (None, None)
        for link in links:
            text = self._text_without_labels(link)
            if text and len(text) > len(best[1] or ""):
                best = (link, text)
        return best

    def _text_without_labels(self, element: HtmlElement) -> str:
        start, end = self.page.spans.get(element, (0, 0))
        return normalize_space("".join(self.page.pieces[i] for i in range(start, end) if i not in self.label_pieces))

    def _teaser_chrome(self, container: HtmlElement, links: list[HtmlElement], title_el) -> set[int]:
        """Pieces of a teaser that are not its summary: the title, its links, image captions and credits."""
        skip: set[int] = set()
        card_links = [link for link in links if title_el is not None and self._contains_element(link, title_el)]
        parts = [link for link in links if link not in card_links] + ([title_el] if title_el is not None else [])
        for element in container.iter():
            if not isinstance(element.tag, str):
                continue
            if element.tag in ("figcaption", "figure", "time", "button") or self._chrome(element) in ("caption", "byline"):
                parts.append(element)
        for block in self.page.blocks_in(container):
            if self._is_card_caption(block):
                parts.append(block.element)
        for img in container.iter(*IMAGE_TAGS):
            wrapper = self._media_wrapper(img, within=container)
            if (
                wrapper is not None
                and not (title_el is not None and self._contains_element(wrapper, title_el))
                and not any(self._contains_element(wrapper, link) for link in links if link not in card_links)
            ):
                parts.append(wrapper)
        for part in parts:
            start, end = self.page.spans.get(part, (0, 0))
            skip.update(range(start, end))
        return skip

    def _article_ai_reported(self, body_blocks: list[Block]) -> bool:
        scope_start, scope_end = self._article_scope()
        for element, matches in self.labels.items():
            start = self.page.spans[element][0]
            if not (scope_start <= start <= scope_end) or self._in_region(start):
                continue
            if any("ai_reported" in m.concepts and "ai_image" not in m.concepts for m in matches):
                return True
            if any({"ai_reported", "ai_image"} <= m.concepts for m in matches) and element not in self._used_labels:
                return True
        # A label inside a dateline: "Deventer · vrijdag 14 maart 2025, 16:20 · Gerapporteerd door AI".
        title_end = self.page.spans[self.title_el][1] if self.title_el is not None else scope_start
        for block in self.page.blocks:
            if block.start < scope_start or block.start > title_end + 40 or len(block.text) > 200:
                continue
            if block.index in self.block_region:
                continue
            for segment in re.split(r"\s[·|•–—]\s", block.text):
                matches = self.locales.split_labels(segment, {"ai_reported", "ai_image"})
                if matches and any(m.concepts == {"ai_reported"} for m in matches):
                    return True
        for element, value in self.attribute_labels:
            span = self.page.spans.get(element)
            if span and scope_start <= span[0] <= scope_end and self.locales.is_label(value, "ai_reported"):
                if not self.locales.is_label(value, "ai_image"):
                    return True
        return False

    def _read_more_links(self, body_blocks: list[Block]) -> list[str]:
        links = []
        span = self.body_span
        if span is None:
            return links
        for block in self.page.blocks:
            if span[0] <= block.start and block.end <= span[1] and self._body_exclusion(block) == "read_more":
                for anchor in block.element.iter("a"):
                    href = (anchor.get("href") or "").strip()
                    if href and not href.startswith(("#", "javascript:")):
                        links.append(self._absolute(href))
        return links

    # ---- boilerplate ------------------------------------------------------------------------------------

    def _boilerplate(self, body_blocks: list[Block]) -> list[BoilerplateBlock]:
        body_ids = {b.index for b in body_blocks}
        title_span = self.page.spans.get(self.title_el) if self.title_el is not None else None
        entries: list[tuple[str, str, object]] = []
        for block in self.page.blocks:
            if block.index in body_ids:
                continue
            if block.index in self.caption_blocks:
                self._label_entries(block, entries)  # the caption is the image's; its AI label is chrome
                continue
            if title_span and title_span[0] <= block.start and block.end <= title_span[1]:
                continue
            region = self.block_region.get(block.index)
            if region is not None and region.kind in ("social", "related") and block.element is not region.heading:
                # Teasers and the social summary are fields of their own; only their labels are chrome.
                self._label_entries(block, entries)
                continue
            self._label_entries(block, entries)
            text = self.clean_text[block.index]
            if not text:
                continue
            if region is not None:
                kind, owner = region.kind, region
            else:
                kind = self._body_exclusion(block) or self._landmark_of(block)
                owner = block.element.getparent()
            if kind in ("title",):
                continue
            entries.append((kind, text, owner))
        merged: list[BoilerplateBlock] = []
        last_owner = None
        for kind, text, owner in entries:
            if merged and merged[-1].kind == kind and owner is last_owner and kind != "ai_label":
                merged[-1].text += "\n" + text
            else:
                merged.append(BoilerplateBlock(kind=kind, text=text))
            last_owner = owner
        return merged

    def _label_entries(self, block: Block, entries: list) -> int:
        count = 0
        for element, matches in self.labels.items():
            start, end = self.page.spans[element]
            if block.start <= start < block.end:
                for match in matches:
                    concept = "ai_image" if "ai_image" in match.concepts else sorted(match.concepts)[0]
                    entries.append((LABEL_KINDS.get(concept, "label"), match.text, element))
                    count += 1
        return count

    def _landmark_of(self, block: Block) -> str:
        if "nav" in block.ancestors:
            return "navigation"
        if "footer" in block.ancestors:
            return "footer"
        if "header" in block.ancestors:
            return "navigation"
        if "aside" in block.ancestors:
            return "aside"
        return "other"

    # ---- metadata ---------------------------------------------------------------------------------------

    def _published_at(self) -> str | None:
        scope = self.body_span
        for time_el in self.root.iter("time"):
            value = time_el.get("datetime")
            span = self.page.spans.get(time_el)
            if not value or span is None or self._in_region(span[0]):
                continue
            if scope and self.title_el is not None:
                title_start = self.page.spans[self.title_el][0]
                if span[0] < title_start - 2000 or span[0] > scope[1]:
                    continue
            parsed = iso_datetime(value)
            if parsed:
                return parsed
        return iso_datetime(self.data.published_at) or self._visible_date()

    def _visible_date(self) -> str | None:
        """A date the page shows only as text near the headline: "19 november 2025 kl. 08.12"."""
        if self.title_el is None:
            return None
        title_start, title_end = self.page.spans[self.title_el]
        months = self.locales.month_numbers()
        nearby = [b for b in self.page.blocks if title_start - 400 <= b.start and b.start <= title_end + 400]
        for block in nearby:
            if len(block.text) > 200 or block.index in self.block_region:
                continue
            found = parse_visible_date(block.text, months)
            if found:
                return found
        return None

    def _declared_language(self) -> str | None:
        for xpath in ("//article/@lang", "/html/@lang", "//meta[@http-equiv='content-language']/@content"):
            value = _first_text(self.root, xpath)
            if value:
                return value
        return None

    def _absolute(self, href: str | None) -> str | None:
        if not href:
            return None
        try:
            return self._absolute_cache[href]
        except KeyError:
            url = self._absolute_cache[href] = urljoin(self.base_url, href.strip())
            return url
        except AttributeError:
            self._absolute_cache: dict[str, str] = {}
            return self._absolute(href)

    # ---- structured-data fallbacks ----------------------------------------------------------------------

    def _apply_next_data(self, reading: ArticleReading) -> None:
        article = self.data.next_article
        if not article:
            return
        next_body = _next_paragraphs(article)
        if next_body and len("".join(reading.body)) < 0.5 * len("".join(next_body)):
            reading.body = next_body
            reading.body_source = "next_data"
        if not reading.title:
            reading.title = _string(article, "headline", "title")
        if not reading.images:
            reading.images = _next_images(article, self.locales, self._absolute)
        if not reading.related:
            reading.related = _next_related(article, self._absolute)
        from newscrawl.page.structured import _walk_json

        for node in _walk_json(article):
            for key, value in node.items():
                if not isinstance(value, str):
                    continue
                if not reading.ai_reported and self.locales.is_label(value, "ai_reported") and not self.locales.is_label(
                    value, "ai_image"
                ):
                    reading.ai_reported = True  # "byline": {"aiLabel": "Reported by AI"}
                if reading.social_summary is None and "social" in key.lower() and len(value) > 40:
                    reading.social_summary = normalize_space(value)
                if reading.social_summary is None and key == "text" and self.locales.is_label(
                    str(node.get("heading") or node.get("title") or ""), "social_heading"
                ):
                    reading.social_summary = normalize_space(value)

    def _apply_json_ld_body(self, reading: ArticleReading) -> None:
        """Use JSON-LD articleBody when the visible body is a consistent but shorter part of it.

        Some sites render only the first paragraphs and ship the rest in script; the visible text must
        then be found inside articleBody, or the structured data is stale and loses.
        """
        body = self.data.article_body
        if not body or _MARKUP.search(body):
            return  # escaped HTML in articleBody: the visible page says it better
        dom_length = len("".join(reading.body))
        if dom_length >= 0.77 * len(body):
            return
        folded = normalize_space(body).casefold()
        if reading.body:
            found = sum(1 for p in reading.body if normalize_space(p).casefold()[:200] in folded)
            if found < 0.8 * len(reading.body) and dom_length >= 0.3 * len(body):
                return
        paragraphs = [normalize_space(p) for p in re.split(r"\n\s*\n|\n", body) if p.strip()]
        if paragraphs:
            reading.body = paragraphs
            reading.body_source = "json_ld"

    def _is_article(self, reading: ArticleReading, body_blocks: list[Block]) -> tuple[bool, str | None]:
        if not reading.title:
            return False, "no_title"
        text_len = sum(len(p) for p in reading.body)
        if text_len < 200:
            return False, "no_body"
        # A list page: its "body" is teaser summaries under linked headlines.
        region = [b for root in self.body_roots for b in self.page.blocks_in(root)]
        teaser_headlines = sum(1 for b in region if b.tag in ("h2", "h3", "h4") and b.link_density > 0.6)
        if teaser_headlines >= 4 and teaser_headlines * 2 >= len(body_blocks) and not self.data.is_article_type:
            return False, "index_page"
        return True, None


class _SiblingRun:
    """A heading and the siblings after it up to the next heading of the same or a higher rank."""

    def __init__(self, heading: HtmlElement):
        self.heading = heading
        self.tag = heading.tag

    def elements(self) -> list[HtmlElement]:
        rank = int(self.heading.tag[1]) if self.heading.tag in HEADING_TAGS else 7
        out = [self.heading]
        for sibling in self.heading.itersiblings():
            if not isinstance(sibling.tag, str):
                continue
            if sibling.tag in HEADING_TAGS and int(sibling.tag[1]) <= rank:
                break
            out.append(sibling)
        return out

    def span(self, page: PageText) -> tuple[int, int]:
        elements = [e for e in self.elements() if e in page.spans]
        if not elements:
            return (0, 0)
        return page.spans[elements[0]][0], page.spans[elements[-1]][1]

    def iter(self, *tags):
        for element in self.elements():
            yield from element.iter(*tags)

    def findall(self, path):
        return [found for element in self.elements() for found in element.findall(path)]




def _overlap(a: str, b: str) -> float:
    ta, tb = set(re.findall(r"\w+", a)), set(re.findall(r"\w+", b))
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


def _first_text(root: HtmlElement, xpath: str) -> str | None:
    for value in root.xpath(xpath):
        text = value if isinstance(value, str) else value.text_content()
        text = normalize_space(str(text))
        if text:
            return text
    return None


def _remove_once(text: str, part: str) -> str:
    return normalize_space(text.replace(part, "", 1))


_SITE_SEPARATORS = re.compile(r"\s+[|–—\-:·•»]\s+")


def strip_site_name(title: str, site_name: str | None) -> str:
    """'Headline | Site' -> 'Headline'; the longest part is the headline when the site name is unknown."""
    parts = _SITE_SEPARATORS.split(title)
    if len(parts) == 1:
        return title
    if site_name:
        kept = [p for p in parts if p.casefold() != site_name.casefold()]
        if kept and len(kept) < len(parts):
            return " - ".join(kept) if len(kept) > 1 else kept[0]
    return max(parts, key=len)


def split_credit(text: str, locales: LocaleTable) -> tuple[str | None, str | None]:
    """'Caption text. Foto: Anna Berg/TT' -> ('Caption text.', 'Foto: Anna Berg/TT')."""
    if text.startswith("©"):
        return None, text
    for match in re.finditer(
        r"(?:^|(?<=[.!?)\]»”\"])\s+|\s[|/–—-]\s|\s[(\[]|\s(?=[^\W\d_]{2,20}\s?:))"
        r"([^\s:()\[\]]{2,20}(?:\s[^\s:()\[\]]{2,12})?)\s?(:|\.(?=\s))",
        text,
    ):
        # "Foto: ..." always; "Fot. ..." only for a short abbreviation, never a sentence's last word.
        if match.group(2) == "." and len(match.group(1)) > 4:
            continue
        if locales.is_label(match.group(1), "credit_prefix"):
            caption = text[: match.start()].strip(" |/–—-([") or None
            credit = text[match.start(1) :].strip().rstrip(")]") or None
            return caption, credit
    return text, None


def iso_datetime(value: str | None) -> str | None:
    """An ISO 8601 string for what the page states, or None when it is not a date."""
    if not value:
        return None
    value = value.strip()
    candidate = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        datetime.fromisoformat(candidate)
        return value  # already ISO 8601: keep it exactly as the page states it
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%d.%m.%Y", "%a, %d %b %Y %H:%M:%S %z"):
        try:
            return datetime.strptime(value, fmt).isoformat()
        except ValueError:
            continue
    return None


_NUMERIC_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b|\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})\.?\s+([^\W\d_]{3,12})\.?,?\s+(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(r"\b([^\W\d_]{3,12})\.?\s+(\d{1,2}),?\s+(\d{4})\b")
_CLOCK = re.compile(r"(?<![\d.:])(\d{1,2})[:.h](\d{2})(?![\d])")


def parse_visible_date(text: str, months: dict[str, int]) -> str | None:
    """ISO 8601 ("2025-11-19T08:12", or the date alone) for the first date in ``text``, or None."""
    date = None
    for pattern in (_NUMERIC_DATE, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        match = pattern.search(text)
        if not match:
            continue
        groups = match.groups()
        if pattern is _NUMERIC_DATE:
            year, month, day = (groups[0], groups[1], groups[2]) if groups[0] else (groups[5], groups[4], groups[3])
            year, month, day = int(year), int(month), int(day)
            if month > 12 and day <= 12:  # "11/24/2025": the American order
                month, day = day, month
        elif pattern is _DAY_MONTH_YEAR:
            day, month, year = int(groups[0]), months.get(label_key(groups[1])), int(groups[2])
        else:
            month, day, year = months.get(label_key(groups[0])), int(groups[1]), int(groups[2])
        if month is None:
            continue
        try:
            date = datetime(year, month, day)
        except ValueError:
            continue
        rest = text[match.end() :]
        break
    if date is None:
        return None
    clock = _CLOCK.search(rest)
    if clock and int(clock.group(1)) < 24 and int(clock.group(2)) < 60:
        return date.replace(hour=int(clock.group(1)), minute=int(clock.group(2))).isoformat(timespec="minutes")
    return date.date().isoformat()


# ---- __NEXT_DATA__ shapes --------------------------------------------------------------------------------


def _string(node: dict, *keys: str) -> str | None:
    for key in keys:
        value = node.get(key)
        if isinstance(value, str) and value.strip():
            return normalize_space(value)
    return None


def _next_paragraphs(article: dict) -> list[str]:
    for key in ("body", "content", "articleBody", "paragraphs", "blocks", "text", "bodyText"):
        value = article.get(key)
        if isinstance(value, str):
            return [normalize_space(p) for p in re.split(r"\n\s*\n|\n", value) if p.strip()]
        if isinstance(value, list):
            out = []
            for item in value:
                if isinstance(item, str):
                    out.append(normalize_space(item))
                elif isinstance(item, dict):
                    kind = {w for w in re.split(r"[^a-z]+", str(item.get("type") or item.get("__typename") or "").lower()) if w}
                    if kind & _NEXT_SKIP_BLOCKS:
                        continue
                    text = _string(item, "text", "content", "html", "value")
                    if text:
                        out.append(normalize_space(replace_entities(remove_tags(text))))
            if out:
                lead = _string(article, "standfirst", "lead", "dek", "intro", "summary", "description")
                return ([normalize_space(lead)] if lead and lead not in out else []) + out
    return []


_NEXT_SKIP_BLOCKS = frozenset(
    "image img figure photo gallery ad ads advert advertisement embed tweet video related newsletter promo teaser".split()
)


def _next_images(article: dict, locales: LocaleTable, absolute) -> list[Image]:
    from newscrawl.page.structured import _walk_json

    images = []
    for node in _walk_json({k: v for k, v in article.items() if "related" not in k.lower()}):
        src = _string(node, "src", "url", "imageUrl")
        if not src or not re.search(r"\.(jpe?g|png|webp|gif|avif)(\?|$)", src, re.I):
            continue
        reading = Image(src=absolute(src), alt=_string(node, "alt", "altText"))
        reading.caption = _string(node, "caption", "description")
        reading.credit = _string(node, "credit", "photographer", "copyright")
        for key, value in node.items():
            if "ai" in key.lower() and value is True:
                reading.ai_generated = True
            if isinstance(value, str) and locales.is_label(value, "ai_image"):
                reading.ai_generated, reading.disclosure = True, value
        images.append(reading)
    return images


def _next_related(article: dict, absolute) -> list[RelatedLink]:
    out = []
    for key, value in article.items():
        if "related" not in key.lower() or not isinstance(value, list):
            continue
        for item in value:
            if isinstance(item, dict):
                url, title = _string(item, "url", "href", "slug", "path"), _string(item, "title", "headline")
                if url and title:
                    ai = any("ai" in k.lower() and v is True for k, v in item.items())
                    out.append(RelatedLink(absolute(url), title, _string(item, "summary", "description"), ai))
    return out
