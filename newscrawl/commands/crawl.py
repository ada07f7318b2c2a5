"""`scrapy crawl` as Scrapy ships it, plus a non-zero exit status when the health report fails the crawl."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

if TYPE_CHECKING:
    import argparse

#: Exit status of a crawl that ran but crossed a NEWSCRAWL_HEALTH_* threshold (1 stays "could not start",
#: 2 is a usage error), so that cron and CI can tell the three apart.
HEALTH_FAILED_EXIT_CODE = 3


class Command(ScrapyCrawlCommand):
    def long_desc(self) -> str:
        return (
            "Run a spider of the current project, by name. Exits with status 3 when the crawl's health report "
            "crosses a NEWSCRAWL_HEALTH_* threshold."
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) < 1:
            raise UsageError
        if len(args) > 1:
            raise UsageError("running 'scrapy crawl' with more than one spider is not supported")
        spname = args[0]

        assert self.crawler_process
        crawler = self._create_crawler(spname)
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = 1
        # The health extension leaves its verdict in the stats, which outlive the closed spider.
        elif crawler.stats is not None and crawler.stats.get_value("newscrawl/health/failed"):
            self.exitcode = HEALTH_FAILED_EXIT_CODE
