"""`scrapy stored`: a short table of what the article database holds."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from newscrawl.storage import Storage, StorageError, StoredSummary, open_storage, redact


def format_summary(database_url: str, summary: StoredSummary, titles: int) -> str:
    rows = [
        ("articles", summary.articles),
        ("images", summary.images),
        ("image captions", summary.captions),
        ("AI-flagged images", summary.ai_images),
        ("related links", summary.related_links),
        ("boilerplate blocks", sum(summary.boilerplate_by_kind.values())),
        *((f"  {kind}", n) for kind, n in summary.boilerplate_by_kind.items()),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"Stored in {database_url}", ""]
    lines += [f"{label:<{width}}  {n:>6}" for label, n in rows]
    if summary.titles and titles:
        lines += ["", "Articles:"]
        lines += [f"  {title}" for title in summary.titles[:titles]]
        if len(summary.titles) > titles:
            lines.append(f"  ... and {len(summary.titles) - titles} more")
    return "\n".join(lines)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Print what the article database (NEWSCRAWL_DATABASE_URL) holds"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--titles", type=int, default=50, metavar="N",
                            help="list at most N article titles (default: 50; 0: none)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("scrapy stored takes no arguments")
        assert self.settings is not None
        print_from_storage(self, "nothing is stored", lambda url, storage: format_summary(url, storage.summary(), opts.titles))


def print_from_storage(command: ScrapyCommand, nothing: str, render: Callable[[str, Storage], str]) -> None:
    """Open the configured database, print what ``render`` makes of it, close it; a clear line if it can't."""
    assert command.settings is not None
    url = command.settings.get("NEWSCRAWL_DATABASE_URL")
    if not url:
        raise UsageError(f"NEWSCRAWL_DATABASE_URL is empty: {nothing}")
    try:
        storage = open_storage(url)
    except (StorageError, ValueError) as exc:
        print(f"Cannot open {redact(url)}: {exc}")
        command.exitcode = 1
        return
    try:
        print(render(url, storage))
    finally:
        storage.close()
