"""Every saved page through page understanding and the loaders, compared with its golden item field by field."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from newscrawl.loaders import load_article
from newscrawl.page.article import read_article
from newscrawl.saved_pages import SavedPage, iter_saved_pages

from .conftest import FIXTURE_PAGES

PAGES = list(iter_saved_pages(FIXTURE_PAGES))
CONTRACT_FIELDS = [
    "url", "canonical_url", "title", "body", "language", "published_at", "ai_reported",
    "images", "social_summary", "related", "boilerplate",
]


def extract(page: SavedPage) -> dict:
    response = page.response()
    reading = read_article(response.selector, response.url)
    assert reading.is_article, f"{page.name}: not read as an article ({reading.not_article_reason})"
    return asdict(load_article(reading))


def test_there_are_enough_fixture_pages():
    assert len(PAGES) >= 15


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_matches_golden(page: SavedPage, update_golden: bool):
    item = extract(page)
    if update_golden:
        golden = page.expected()
        golden["boilerplate"] = item["boilerplate"]
        page.write_expected({key: item[key] if key == "boilerplate" else golden[key] for key in golden})
    expected = page.expected()
    for name in CONTRACT_FIELDS:
        if name in expected:
            assert item[name] == expected[name], f"{page.name}: field {name!r} differs"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_body_keeps_and_drops_what_meta_says(page: SavedPage):
    body = extract(page)["body"]
    for text in page.meta.get("body_must_contain", []):
        assert text in body, f"{page.name}: body lost {text!r}"
    for text in page.meta.get("body_must_not_contain", []):
        assert text not in body, f"{page.name}: body holds {text!r}"
