"""Site-template paragraphs: seen on enough articles of one host, they leave the body."""

from __future__ import annotations

from scrapy.utils.test import get_crawler

from newscrawl.items import Article
from newscrawl.templates import TemplateMemory, TemplatePipeline

ABOUT = "About Ascom: Ascom is a global solutions provider focused on healthcare ICT and mobile workflow solutions."


def test_memory_counts_distinct_articles_per_host():
    memory = TemplateMemory(min_articles=3)
    assert memory.observe("a.example", ["one", ABOUT, ABOUT]) == set()  # twice in one article counts once
    assert memory.observe("a.example", ["two", ABOUT]) == set()
    assert memory.observe("b.example", ["three", ABOUT]) == set()  # another host
    assert memory.observe("a.example", ["four", ABOUT]) == {ABOUT}


def test_memory_is_bounded_per_host():
    memory = TemplateMemory(min_articles=2, max_paragraphs_per_host=3)
    memory.observe("a.example", ["p1", "p2", "p3", "p4"])
    assert memory.observe("a.example", ["p1"]) == set()  # p1 was the oldest and was forgotten
    assert memory.observe("a.example", ["p4"]) == {"p4"}


def test_pipeline_moves_repeated_paragraphs_to_boilerplate():
    crawler = get_crawler(settings_dict={"NEWSCRAWL_TEMPLATE_MIN_ARTICLES": 2})
    pipeline = TemplatePipeline.from_crawler(crawler)
    first = Article(url="https://a.example/1", body=f"Story one.\n\n{ABOUT}")
    second = Article(url="https://a.example/2", body=f"Story two.\n\n{ABOUT}")
    assert pipeline.process_item(first).body == f"Story one.\n\n{ABOUT}"
    item = pipeline.process_item(second)
    assert item.body == "Story two."
    assert [(b.kind, b.text) for b in item.boilerplate] == [("template", ABOUT)]
    assert crawler.stats.get_value("newscrawl/template/moved") == 1


def test_pipeline_never_empties_a_body():
    crawler = get_crawler(settings_dict={"NEWSCRAWL_TEMPLATE_MIN_ARTICLES": 1})
    item = TemplatePipeline.from_crawler(crawler).process_item(Article(url="https://a.example/1", body=ABOUT))
    assert item.body == ABOUT
