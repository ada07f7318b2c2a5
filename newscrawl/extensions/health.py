"""Health report at the end of a crawl, and a failed verdict when the crawl crosses thresholds set in settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

#: Refusals are the guards doing their job, not failures of the crawl.
POLICY_EXCEPTIONS = ("scrapy.exceptions.IgnoreRequest",)
EXCEPTION_PREFIX = "downloader/exception_type_count/"
STATUS_PREFIX = "downloader/response_status_count/"


def _optional_float(settings: BaseSettings, name: str) -> float | None:
    value = settings.get(name)
    return None if value in (None, "") else float(value)


@dataclass
class Health:
    """The numbers of one crawl that the report shows and the thresholds judge."""

    finish_reason: str
    requests: int
    responses: int
    items: int
    dropped: dict[str, int]
    errors: dict[str, int]
    not_article: int
    log_errors: int
    counters: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_ratio(self) -> float:
        return self.error_count / max(self.requests, 1)

    @property
    def empty_ratio(self) -> float:
        return self.not_article / max(self.responses, 1)

    @classmethod
    def from_stats(cls, stats: dict[str, Any], finish_reason: str) -> Health:
        errors: dict[str, int] = {}
        for key, value in stats.items():
            if key.startswith(EXCEPTION_PREFIX) and key[len(EXCEPTION_PREFIX):] not in POLICY_EXCEPTIONS:
                errors[key[len(EXCEPTION_PREFIX):].rsplit(".", 1)[-1]] = value
            elif key.startswith(STATUS_PREFIX) and key[len(STATUS_PREFIX):].startswith("5"):
                errors[f"HTTP {key[len(STATUS_PREFIX):]}"] = value
        if stats.get("spider_exceptions/count"):
            errors["spider exceptions"] = stats["spider_exceptions/count"]
        dropped = {
            key.split("/", 1)[1]: value for key, value in stats.items() if key.startswith("item_dropped_reasons_count/")
        }
        return cls(
            finish_reason=finish_reason,
            requests=stats.get("downloader/request_count", 0),
            responses=stats.get("response_received_count", 0),
            items=stats.get("item_scraped_count", 0),
            dropped=dropped,
            errors=errors,
            not_article=stats.get("newscrawl/pages/not_article", 0),
            log_errors=stats.get("log_count/ERROR", 0),
            counters={key: value for key, value in sorted(stats.items()) if key.startswith("newscrawl/")},
        )

    def render(self) -> str:
        def listing(counts: dict[str, Any]) -> str:
            return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"

        verdict = "FAILED: " + "; ".join(self.problems) if self.problems else "OK"
        return "\n".join([
            f"Health report: {verdict}",
            f"  finish reason: {self.finish_reason}",
            f"  items: {self.items} scraped, {sum(self.dropped.values())} dropped ({listing(self.dropped)})",
            f"  downloads: {self.requests} requests, {self.responses} responses, {self.error_count} errors "
            f"(ratio {self.error_ratio:.2f}): {listing(self.errors)}",
            f"  pages not articles: {self.not_article} of {self.responses} responses (ratio {self.empty_ratio:.2f})",
            f"  ERROR log lines: {self.log_errors}",
            f"  newscrawl counters: {listing({k.removeprefix('newscrawl/'): v for k, v in self.counters.items()})}",
        ])


class HealthReport:
    """Logs the health report at spider_closed; ``failed`` tells newscrawl's ``crawl`` command to exit non-zero.

    Thresholds (unset = not checked): NEWSCRAWL_HEALTH_MAX_ERROR_RATIO (failed downloads, 5xx answers and spider
    exceptions per download), NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO (pages that were not articles per response),
    NEWSCRAWL_HEALTH_MIN_ITEMS (items that came through every pipeline).
    """

    def __init__(
        self,
        stats: StatsCollector,
        max_error_ratio: float | None,
        max_empty_ratio: float | None,
        min_items: int | None,
    ):
        self.stats = stats
        self.max_error_ratio = max_error_ratio
        self.max_empty_ratio = max_empty_ratio
        self.min_items = min_items
        self.failed = False
        self.health: Health | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("NEWSCRAWL_HEALTH_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_HEALTH_ENABLED is off")
        assert crawler.stats is not None
        min_items = settings.get("NEWSCRAWL_HEALTH_MIN_ITEMS")
        extension = cls(
            crawler.stats,
            max_error_ratio=_optional_float(settings, "NEWSCRAWL_HEALTH_MAX_ERROR_RATIO"),
            max_empty_ratio=_optional_float(settings, "NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO"),
            min_items=None if min_items in (None, "") else int(min_items),
        )
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def judge(self, health: Health) -> list[str]:
        problems = []
        if self.max_error_ratio is not None and health.error_ratio > self.max_error_ratio:
            problems.append(f"error ratio {health.error_ratio:.2f} > NEWSCRAWL_HEALTH_MAX_ERROR_RATIO {self.max_error_ratio}")
        if self.max_empty_ratio is not None and health.empty_ratio > self.max_empty_ratio:
            problems.append(f"not-article ratio {health.empty_ratio:.2f} > NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO {self.max_empty_ratio}")
        # An incremental run over an unchanged site yields few items: articles the server answered 304 for (or
        # that NEWSCRAWL_REVISIT_AFTER skipped) are known current, and count towards the minimum.
        current = sum(health.counters.get(f"newscrawl/http/{key}", 0) for key in ("not_modified", "revisit_skipped"))
        if self.min_items is not None and health.items + current < self.min_items:
            known = f" (+{current} not modified)" if current else ""
            problems.append(f"{health.items} items{known} < NEWSCRAWL_HEALTH_MIN_ITEMS {self.min_items}")
        # No threshold: an item that neither the database nor the spool took is data lost, always a failure.
        if lost := health.counters.get("newscrawl/storage/lost", 0):
            problems.append(f"{lost} items lost (neither storage nor the spool took them)")
        return problems

    def spider_closed(self, spider: Spider, reason: str) -> None:
        health = Health.from_stats(self.stats.get_stats(), reason)
        health.problems = self.judge(health)
        self.health = health
        self.failed = bool(health.problems)
        self.stats.set_value("newscrawl/health/failed", int(self.failed))
        # WARNING rather than ERROR: the report must not count itself among the errors it reports.
        logger.log(logging.WARNING if self.failed else logging.INFO, health.render())
