"""The health report: numbers taken from the stats, thresholds from settings, the verdict the crawl command reads."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from newscrawl.extensions.health import Health, HealthReport

STATS: dict[str, Any] = {
    "downloader/request_count": 20,
    "response_received_count": 16,
    "downloader/exception_type_count/scrapy.exceptions.DownloadTimeoutError": 2,
    "downloader/exception_type_count/scrapy.exceptions.IgnoreRequest": 7,  # guards refusing: not errors
    "downloader/response_status_count/200": 14,
    "downloader/response_status_count/503": 2,
    "downloader/response_status_count/404": 1,
    "spider_exceptions/count": 1,
    "spider_exceptions/ValueError": 1,
    "item_scraped_count": 9,
    "item_dropped_count": 2,
    "item_dropped_reasons_count/DropItem": 2,
    "newscrawl/pages/not_article": 4,
    "newscrawl/ssrf/refused/loopback": 3,
    "log_count/ERROR": 3,
}


def test_numbers_come_from_the_stats() -> None:
    health = Health.from_stats(STATS, "finished")
    assert health.errors == {"DownloadTimeoutError": 2, "HTTP 503": 2, "spider exceptions": 1}
    assert health.error_ratio == pytest.approx(5 / 20)
    assert health.empty_ratio == pytest.approx(4 / 16)
    assert health.dropped == {"DropItem": 2}
    assert health.counters == {"newscrawl/pages/not_article": 4, "newscrawl/ssrf/refused/loopback": 3}
    text = health.render()
    assert text.startswith("Health report: OK")
    for line in ("finish reason: finished", "9 scraped, 2 dropped (DropItem 2)", "20 requests, 16 responses, 5 errors",
                 "HTTP 503 2", "4 of 16 responses (ratio 0.25)", "ERROR log lines: 3", "ssrf/refused/loopback 3"):
        assert line in text


def test_an_empty_crawl_does_not_divide_by_zero() -> None:
    health = Health.from_stats({}, "shutdown")
    assert health.error_ratio == 0 and health.empty_ratio == 0 and health.items == 0


def run_report(settings: dict[str, Any], stats: dict[str, Any], caplog: pytest.LogCaptureFixture) -> HealthReport:
    crawler = get_crawler(Spider, settings_dict=settings)
    report = HealthReport.from_crawler(crawler)
    crawler.stats.set_stats(dict(stats))
    with caplog.at_level(logging.INFO, logger="newscrawl.extensions.health"):
        report.spider_closed(Spider("probe"), "finished")
    return report


@pytest.mark.parametrize(("settings", "problem"), [
    ({"NEWSCRAWL_HEALTH_MAX_ERROR_RATIO": 0.2}, "error ratio 0.25 > NEWSCRAWL_HEALTH_MAX_ERROR_RATIO 0.2"),
    ({"NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO": "0.1"}, "not-article ratio 0.25 > NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO 0.1"),
    ({"NEWSCRAWL_HEALTH_MIN_ITEMS": 10}, "9 items < NEWSCRAWL_HEALTH_MIN_ITEMS 10"),
])
def test_a_crossed_threshold_fails_the_crawl(settings: dict[str, Any], problem: str, caplog: pytest.LogCaptureFixture) -> None:
    report = run_report(settings, STATS, caplog)
    assert report.failed
    assert report.health is not None and report.health.problems == [problem]
    assert report.stats.get_value("newscrawl/health/failed") == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"Health report: FAILED: {problem}")


def test_thresholds_met_or_unset_pass(caplog: pytest.LogCaptureFixture) -> None:
    settings = {"NEWSCRAWL_HEALTH_MAX_ERROR_RATIO": 0.25, "NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO": 0.25,
                "NEWSCRAWL_HEALTH_MIN_ITEMS": 9}
    report = run_report(settings, STATS, caplog)
    assert not report.failed
    assert report.stats.get_value("newscrawl/health/failed") == 0
    [record] = caplog.records
    assert record.levelno == logging.INFO and record.getMessage().startswith("Health report: OK")
    assert not run_report({}, {}, caplog).failed  # no thresholds set: nothing to cross


def test_report_can_be_switched_off() -> None:
    with pytest.raises(NotConfigured):
        HealthReport.from_crawler(get_crawler(Spider, settings_dict={"NEWSCRAWL_HEALTH_ENABLED": False}))
