"""Loader processors: each declared processor names a real field, and each cleans what pages throw at it."""

from __future__ import annotations

from dataclasses import fields

import pytest

from newscrawl.items import Article
from newscrawl.loaders import ArticleLoader, clean_text, clean_url, make_image, make_related, normalize_space


def test_every_declared_processor_names_a_field():
    names = {f.name for f in fields(Article)}
    declared = {
        attr.rsplit("_", 1)[0] for attr in vars(ArticleLoader) if attr.endswith(("_in", "_out")) and not attr.startswith("_")
    }
    assert declared - {"default_input", "default_output"} <= names


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Hello\u00a0 world \n", "Hello world"),
        ("<script>alert(1)</script>Title", "alert(1)Title"),
        ("Caf&eacute; &amp; bar", "Café & bar"),
        ("a\x00b", "ab"),
        ("", None),
    ],
)
def test_clean_text(raw: str, clean: str | None):
    assert (clean_text(raw) or [None])[0] == clean


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://x.example/a b", "https://x.example/a%20b"),
        ("javascript:alert(1)", None),
        ("data:image/png;base64,xx", None),
        ("  https://x.example/ ", "https://x.example/"),
    ],
)
def test_clean_url(url: str, clean: str | None):
    assert clean_url(url) == clean


def test_make_image_flags_ai_when_a_disclosure_is_found():
    image = make_image({"src": "https://x.example/i.jpg", "alt": " A ", "disclosure": "Bild genererad av AI"})
    assert image.ai_generated and image.disclosure == "Bild genererad av AI" and image.alt == "A"


def test_make_related_needs_url_and_title():
    assert make_related({"url": "https://x.example/a", "title": ""}) is None
    assert make_related({"url": "https://x.example/a", "title": "T"}).title == "T"


def test_normalize_space_drops_control_characters():
    assert normalize_space("a\x07 \tb") == "a b"
