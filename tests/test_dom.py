"""Laying a tree out as text blocks: comments, breaks, hidden boxes and hostile nesting."""

from __future__ import annotations

from lxml import html
from parsel import Selector

from newscrawl.page.article import read_article
from newscrawl.page.dom import linearize


def blocks(markup: str) -> list[str]:
    return [b.text for b in linearize(html.fromstring(markup)).blocks]


def test_text_after_comments_is_kept():
    assert blocks("<div><p>very<!-- --> recently <a>explained</a> now</p></div>") == ["very recently explained now"]


def test_nested_blocks_split_their_parent_text():
    assert blocks("<div>before<p>inside</p>after</div>") == ["before", "inside", "after"]


def test_double_break_starts_a_new_block():
    assert blocks("<div><p>one<br><br>two</p></div>") == ["one", "two"]


def test_hidden_and_script_text_is_not_text():
    markup = "<div><p>seen</p><p hidden>unseen</p><p style='display: none'>gone</p><script>var x;</script></div>"
    assert blocks(markup) == ["seen"]


def test_link_characters_are_counted():
    block = linearize(html.fromstring("<div><p>abc <a href='#'>defg</a></p></div>")).blocks[0]
    assert block.link_chars == 4


def test_fifty_thousand_levels_of_nesting_are_read_without_recursion():
    depth = 50_000
    markup = "<html><body>" + "<div>" * depth + "deep text" + "</div>" * depth + "</body></html>"
    page = linearize(Selector(text=markup).root)
    # libxml2 itself stops nesting at its own limit; whatever it keeps, the walk must not recurse or blow up.
    assert page.depth_limited
    reading = read_article(Selector(text=markup), "https://x.example/deep")
    assert not reading.is_article
