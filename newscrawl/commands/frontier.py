"""`scrapy frontier <spider>`: what the shared frontier of a distributed crawl holds, and whether the crawl is done."""

from __future__ import annotations

import argparse

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

#: Exit status of `scrapy frontier --check` while the crawl is not finished (something queued or in flight).
NOT_FINISHED_EXIT_CODE = 4


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "<spider> [--check] [--clear]"

    def short_desc(self) -> str:
        return "Show the shared frontier of a distributed crawl (NEWSCRAWL_REDIS_URL): queued, in flight, workers"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--check", action="store_true",
                            help=f"exit {NOT_FINISHED_EXIT_CODE} unless the crawl is finished (nothing queued or in flight)")
        parser.add_argument("--clear", action="store_true",
                            help="delete the frontier (queue, seeds, seen URLs, leases) to start a new crawl")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from newscrawl.distributed import FrontierKeys, clear_frontier, frontier_status, redis_from_settings

        if len(args) != 1:
            raise UsageError("name the spider, e.g. scrapy frontier article")
        assert self.settings is not None
        if not self.settings.get("NEWSCRAWL_REDIS_URL"):
            raise UsageError("NEWSCRAWL_REDIS_URL is not set: there is no shared frontier", print_help=False)
        server = redis_from_settings(self.settings)
        keys = FrontierKeys.from_settings(self.settings, args[0])
        if opts.clear:
            deleted = clear_frontier(server, keys)
            print(f"Cleared {keys.base}: {deleted} keys deleted")
            return
        status = frontier_status(server, keys)
        lines = [
            f"Frontier {keys.base}",
            f"  seeds waiting     {status.seeds:>8}",
            f"  requests queued   {status.queued:>8}",
            f"  in flight         {sum(status.in_flight.values()):>8}",
            f"  URLs seen         {status.seen:>8}",
            f"  workers           {len(status.live_workers):>8} live",
        ]
        for worker, count in status.in_flight.items():
            state = "live" if worker in status.live_workers else "silent: its requests go back to the queue"
            lines.append(f"    {worker}  {count} in flight ({state})")
        lines.append("  finished: " + ("yes (nothing queued or in flight)" if status.finished else "no"))
        print("\n".join(lines))
        if opts.check and not status.finished:
            self.exitcode = NOT_FINISHED_EXIT_CODE
