"""`scrapy runs`: the recent crawl runs recorded in the runs table, newest first."""

from __future__ import annotations

import argparse

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from newscrawl.schedule import utc
from newscrawl.commands.stored import print_from_storage
from newscrawl.storage import Run, redact

COLUMNS = ("id", "crawl", "status", "started (UTC)", "secs", "pages", "items", "new", "changed", "unchanged", "304",
           "errors")


def format_runs(database_url: str, runs: list[Run]) -> str:
    if not runs:
        return f"No runs recorded in {redact(database_url)}"
    table = [COLUMNS]
    for run in runs:
        seconds = "" if run.finished_at is None else f"{(utc(run.finished_at) - utc(run.started_at)).total_seconds():.0f}"
        table.append((
            str(run.id), run.crawl, run.status, run.started_at.replace("+00:00", "").replace("T", " "), seconds,
            *(str(n) for n in (run.pages, run.items, run.new_articles, run.changed_articles, run.unchanged_articles,
                               run.not_modified, run.errors)),
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    # Text columns left-aligned, numbers right-aligned.
    lines = ["  ".join(cell.ljust(w) if i in (1, 2, 3) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in table]
    return f"Runs in {redact(database_url)}\n\n" + "\n".join(line.rstrip() for line in lines)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "List the recent crawl runs recorded in NEWSCRAWL_DATABASE_URL"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--limit", type=int, default=20, metavar="N", help="show the N most recent runs (default: 20)")
        parser.add_argument("--crawl", metavar="NAME", help="only the runs of this crawl (a crawls.toml name or a spider)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("scrapy runs takes no arguments")
        print_from_storage(
            self, "no runs are recorded", lambda url, storage: format_runs(url, storage.runs(limit=opts.limit, crawl=opts.crawl))
        )
