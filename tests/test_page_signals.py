"""Each generic signal of page understanding on its own, on small hand-written pages."""

from __future__ import annotations

import json

import pytest
from lxml import html
from parsel import Selector

from newscrawl.locales import default_locale_table
from newscrawl.page.article import iso_datetime, read_article, split_credit, strip_site_name
from newscrawl.page.language import detect_language
from newscrawl.page.signals import chrome_kind, image_source, is_decorative_image, landmark_kind
from newscrawl.page.structured import read_structured_data

PROSE = [
    "The council voted on Tuesday evening to close the old town to private cars from the spring of 2027, "
    "after a debate that lasted more than four hours and drew a crowd of residents to the public gallery.",
    "Shopkeepers were divided. Some said fewer cars would bring more people on foot, while others feared that "
    "customers from the surrounding villages would simply drive to the retail park on the ring road instead.",
    "The plan includes three new car parks at the edge of the centre, more bicycle racks and a shuttle bus "
    "that will run every six minutes between the railway station and the cathedral square, the mayor said.",
]


def page(body: str, head: str = "") -> Selector:
    return Selector(text=f"<html><head><title>Car ban | Daily</title>{head}</head><body>{body}</body></html>")


def article(inner: str = "", head: str = "", after: str = "") -> Selector:
    paragraphs = "".join(f"<p>{p}</p>" for p in PROSE)
    return page(f"<article><h1>Old town to close to cars</h1>{inner}<div class=b>{paragraphs}</div></article>{after}", head)


def el(markup: str):
    return html.fragment_fromstring(markup)


@pytest.mark.parametrize(
    ("markup", "kind"),
    [
        ('<div class="cookie-banner"></div>', "cookie_banner"),
        ('<div id="onetrust-consent-sdk"></div>', "cookie_banner"),
        ('<ul class="share-tools"></ul>', "share"),
        ('<div class="ad-slot"></div>', "ad"),
        ('<div data-module="newsletter"></div>', "newsletter"),
        ('<div class="InlineImage-imageEmbedCaption"></div>', "caption"),
        ('<section class="more-stories"></section>', "related"),
        ('<div class="header shadow"></div>', None),
        ('<div class="x9f2a _k3d1"></div>', None),
    ],
)
def test_chrome_kind_from_component_names(markup: str, kind: str | None):
    assert chrome_kind(el(markup)) == kind


@pytest.mark.parametrize(
    ("markup", "kind"),
    [("<nav></nav>", "navigation"), ('<div role="contentinfo"></div>', "footer"), ("<div></div>", None)],
)
def test_landmarks(markup: str, kind: str | None):
    assert landmark_kind(el(markup)) == kind


@pytest.mark.parametrize(
    ("markup", "src"),
    [
        ('<img src="/a.jpg">', "/a.jpg"),
        ('<img src="data:image/gif;base64,R0l" data-src="/lazy.jpg">', "/lazy.jpg"),
        ('<img src="/blank.gif" srcset="/s.jpg 400w, /l.jpg 1200w">', "/l.jpg"),
        ('<img src="data:image/gif;base64,R0l">', None),
    ],
)
def test_image_source(markup: str, src: str | None):
    assert image_source(el(markup)) == src


@pytest.mark.parametrize(
    ("markup", "decorative"),
    [
        ('<img src="/p.gif" width="1" height="1">', True),
        ('<img src="/l.svg" alt="Site logo">', True),
        ('<img src="/x.jpg" alt="A crowd outside the town hall on Tuesday, where logo-printed flags flew">', False),
    ],
)
def test_decorative_images(markup: str, decorative: bool):
    assert is_decorative_image(el(markup)) is decorative


@pytest.mark.parametrize(
    ("title", "site", "headline"),
    [
        ("Car ban | Daily", "Daily", "Car ban"),
        ("Old town to close to cars from 2027 - Daily News", None, "Old town to close to cars from 2027"),
        ("A headline without site", None, "A headline without site"),
    ],
)
def test_strip_site_name(title: str, site: str | None, headline: str):
    assert strip_site_name(title, site) == headline


@pytest.mark.parametrize(
    ("text", "caption", "credit"),
    [
        ("Protesters outside parliament. Foto: Anna Berg / TT", "Protesters outside parliament.", "Foto: Anna Berg / TT"),
        ("© Lucy Nicholson", None, "© Lucy Nicholson"),
        ("Fotbollsplanen i Malmö", "Fotbollsplanen i Malmö", None),
    ],
)
def test_split_credit(text: str, caption: str | None, credit: str | None):
    assert split_credit(text, default_locale_table()) == (caption, credit)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2025-11-19T08:12:00+01:00", "2025-11-19T08:12:00+01:00"),
        ("2025-11-19T07:12:00.000Z", "2025-11-19T07:12:00.000Z"),
        ("19.11.2025", "2025-11-19T00:00:00"),
        ("yesterday", None),
    ],
)
def test_iso_datetime(value: str, iso: str | None):
    assert iso_datetime(value) == iso


def test_language_is_the_content_not_the_ui():
    assert detect_language(" ".join(PROSE), declared=["sv"]) == "en"


def test_declared_language_breaks_ties_between_neighbours():
    norwegian = "Kommunen vil bygge en ny skole i sentrum, og arbeidet starter etter sommerferien neste år."
    assert detect_language(norwegian * 2, declared=["nb"]) == "nb"


def test_structured_data_survives_invalid_json_ld():
    head = (
        '<script type="application/ld+json">{broken</script>'
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "x",}</script>'
    )
    data = read_structured_data(page("", head).root)
    assert data.headline == "x" and data.invalid_json_ld == 1


def test_next_data_article_is_found():
    blob = {"props": {"pageProps": {"article": {"title": "T", "body": [{"type": "p", "text": p} for p in PROSE]}}}}
    head = f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(blob)}</script>'
    data = read_structured_data(page("", head).root)
    assert data.next_article["title"] == "T"


def test_figcaption_is_the_caption_and_never_body():
    figure = '<figure><img src="/a.jpg"><figcaption>Residents at the meeting. Foto: Eva Ek</figcaption></figure>'
    reading = read_article(article(figure), "https://daily.example/a")
    assert reading.images[0].caption == "Residents at the meeting."
    assert reading.images[0].credit == "Foto: Eva Ek"
    assert all("Residents" not in p for p in reading.body)


def test_media_wrapper_caption_without_figure():
    wrapper = '<div><img src="/a.jpg"><div>The square at dawn.</div><span>AI-generated image</span></div>'
    reading = read_article(article(wrapper), "https://daily.example/a")
    image = reading.images[0]
    assert (image.caption, image.ai_generated, image.disclosure) == ("The square at dawn.", True, "AI-generated image")
    assert reading.body == PROSE


def test_json_ld_article_body_used_only_when_consistent():
    extra = "The shuttle will be free for the first year, the council said in a statement on Wednesday."
    body = "\n\n".join(PROSE[:1] + [extra] + PROSE[1:]) * 1
    ld = json.dumps({"@type": "NewsArticle", "headline": "Old town", "articleBody": body * 2})
    stale = json.dumps({"@type": "NewsArticle", "headline": "Old town", "articleBody": "Something else entirely. " * 80})
    consistent = read_article(article(head=f'<script type="application/ld+json">{ld}</script>'), "https://d.example/a")
    assert consistent.body_source == "json_ld"
    other = read_article(article(head=f'<script type="application/ld+json">{stale}</script>'), "https://d.example/a")
    assert other.body_source == "dom" and other.body == PROSE


def test_index_page_is_not_an_article():
    teasers = "".join(
        f'<h2><a href="/a{i}">Headline number {i} about the council</a></h2><p>{PROSE[i % 3][:90]}</p>' for i in range(8)
    )
    reading = read_article(page(f"<main>{teasers}</main>"), "https://daily.example/")
    assert not reading.is_article


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("19 november 2025 kl. 08.12", "2025-11-19T08:12"),
        ("Published Feb 3, 2025", "2025-02-03"),
        ("Publié le 10/06/2025 à 18h42", "2025-06-10T18:42"),
        ("24.11.2025, 11:03 Uhr", "2025-11-24T11:03"),
        ("5 listopada 2025, 8:30", "2025-11-05T08:30"),
        ("Updated yesterday", None),
        ("31 februari 2025", None),
    ],
)
def test_visible_dates_with_the_table_s_month_names(text: str, iso: str | None):
    from newscrawl.page.article import parse_visible_date

    assert parse_visible_date(text, default_locale_table().month_numbers()) == iso


def test_date_shown_only_as_text_near_the_headline():
    reading = read_article(article('<p class="meta">Publicerad 19 november 2025 kl. 08.12</p>'), "https://d.example/a")
    assert reading.published_at == "2025-11-19T08:12"
