"""The visible text of an HTML tree as ordered blocks, with each element's place in that text.

One iterative pass (no recursion, so 50,000 nested levels are fine) turns the tree into text pieces in
document order, groups them into blocks the way a browser would lay out paragraphs, and remembers for
every element the range of pieces it covers. Classification then works on ranges instead of re-walking
the tree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field

from lxml import etree
from lxml.html import HtmlElement

BLOCK_TAGS = frozenset(
    "address article aside blockquote body center dd details dialog dir div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main menu nav ol p pre section summary table "
    "tbody thead tfoot tr td th ul caption legend button".split()
)
# Never visible as text; skipped with their whole subtree.
SKIP_TAGS = frozenset(
    "script style noscript template svg math iframe object embed canvas video audio select option textarea "
    "head title meta link base input map area".split()
)
HEADING_TAGS = frozenset("h1 h2 h3 h4 h5 h6".split())
# Ancestors worth knowing for every block; counted while walking.
TRACKED_TAGS = frozenset("a figure figcaption header footer nav aside article main form li blockquote button".split())


@dataclass(slots=True)
class Block:
    """A run of text laid out as one paragraph-like box, owned by its nearest block-level element."""

    index: int
    element: HtmlElement
    start: int  # first piece
    end: int  # one past the last piece
    text: str
    link_chars: int
    tag: str
    ancestors: frozenset[str]  # tracked tags open around this block

    @property
    def link_density(self) -> float:
        return self.link_chars / max(len(self.text), 1)


@dataclass
class PageText:
    pieces: list[str] = field(default_factory=list)
    piece_in_link: list[bool] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    spans: dict[HtmlElement, tuple[int, int]] = field(default_factory=dict)
    depth_limited: bool = False
    _block_starts: list[int] = field(default_factory=list)

    def text_of(self, element: HtmlElement) -> str:
        start, end = self.spans.get(element, (0, 0))
        return normalize_space("".join(self.pieces[start:end]))

    def length_of(self, element: HtmlElement) -> int:
        start, end = self.spans.get(element, (0, 0))
        return sum(len(p) for p in self.pieces[start:end])

    def contains(self, outer: HtmlElement, block: Block) -> bool:
        span = self.spans.get(outer)
        return span is not None and span[0] <= block.start and block.end <= span[1] and span[0] < span[1]

    def blocks_in(self, element: HtmlElement) -> list[Block]:
        span = self.spans.get(element)
        if span is None or span[0] >= span[1]:
            return []
        # Blocks are laid out in document order, so their starts are sorted: bisect instead of scanning.
        starts = self.block_starts()
        first = bisect_left(starts, span[0])
        last = bisect_right(starts, span[1])
        return [b for b in self.blocks[first:last] if b.end <= span[1]]

    def block_starts(self) -> list[int]:
        if len(self._block_starts) != len(self.blocks):
            self._block_starts = [b.start for b in self.blocks]
        return self._block_starts


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def element_tag(element) -> str:
    tag = element.tag
    return tag.lower() if isinstance(tag, str) else ""


def is_hidden(element: HtmlElement) -> bool:
    if element.get("hidden") is not None:
        return True
    style = (element.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


def linearize(root: HtmlElement, max_depth: int = 400) -> PageText:
    """Walk the tree once and lay its visible text out as blocks.

    Subtrees deeper than ``max_depth`` are read as plain text of their nearest block: no real page nests
    that deep, and hostile ones should not cost more than their text.
    """
    page = PageText()
    pieces, in_link, spans = page.pieces, page.piece_in_link, page.spans
    open_tags: Counter[str] = Counter()
    ancestors: frozenset[str] = frozenset()  # the tracked tags open now, rebuilt only when they change
    # Stack of (element, start piece, is_block); the innermost open block owns new text.
    stack: list[tuple[HtmlElement, int, bool]] = []
    owners: list[HtmlElement] = []
    segment_start = 0
    link_depth = 0
    brs = 0

    def close_segment(owner: HtmlElement | None) -> None:
        nonlocal segment_start
        if owner is not None and segment_start < len(pieces):
            _add_block(page, owner, segment_start, len(pieces), ancestors)
        segment_start = len(pieces)

    def add_text(text: str | None) -> None:
        nonlocal brs
        if text:
            if brs and not text.isspace():
                if brs >= 2 and owners:
                    close_segment(owners[-1])
                brs = 0
            pieces.append(text)
            in_link.append(link_depth > 0)

    # Comments and processing instructions come as events of their own; only their tail is text
    # (React pages put "<!-- -->" between words).
    walker = etree.iterwalk(root, events=("start", "end", "comment", "pi"))
    for event, element in walker:
        if event == "comment" or event == "pi":
            add_text(element.tail)
            continue
        tag = element.tag
        if type(tag) is not str:
            tag = ""
        if event == "start":
            if (
                not tag
                or tag in SKIP_TAGS
                or ((element.get("hidden") is not None or element.get("style")) and tag != "body" and is_hidden(element))
            ):
                # Invisible subtrees: only their tail is text.
                walker.skip_subtree()
                if tag:
                    spans[element] = (len(pieces), len(pieces))
                add_text(element.tail if stack else None)
                continue
            if len(stack) >= max_depth:
                page.depth_limited = True
                add_text(normalize_space(element.text_content()) + " ")
                walker.skip_subtree()
                add_text(element.tail)
                continue
            block = tag in BLOCK_TAGS
            if block:
                close_segment(owners[-1] if owners else None)
                owners.append(element)
            if tag in TRACKED_TAGS:
                open_tags[tag] += 1
                if open_tags[tag] == 1:
                    ancestors = ancestors | {tag}
                if tag == "a":
                    link_depth += 1
            elif tag == "br":
                brs += 1
                add_text("\n")
            stack.append((element, len(pieces), block))
            add_text(element.text)
        else:
            if not stack or stack[-1][0] is not element:
                continue
            _, start, block = stack.pop()
            if block:
                close_segment(element)
                owners.pop()
            if tag in TRACKED_TAGS:
                open_tags[tag] -= 1
                if not open_tags[tag]:
                    ancestors = ancestors - {tag}
                if tag == "a":
                    link_depth -= 1
            spans[element] = (start, len(pieces))
            if stack:
                add_text(element.tail)
    close_segment(owners[-1] if owners else None)
    return page


def _add_block(page: PageText, owner: HtmlElement, start: int, end: int, ancestors: frozenset[str]) -> None:
    raw = page.pieces[start:end]
    text = " ".join("".join(raw).split())
    if not text:
        return
    flags = page.piece_in_link[start:end]
    link_chars = sum(len(p.strip()) for p, linked in zip(raw, flags) if linked) if any(flags) else 0
    page.blocks.append(Block(len(page.blocks), owner, start, end, text, link_chars, owner.tag, ancestors))
