"""`scrapy seed <spider> URL ...`: push starts into the shared queue of a distributed crawl (NEWSCRAWL_REDIS_URL)."""

from __future__ import annotations

import argparse

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.conf import arglist_to_dict


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "<spider> [URL ...] [-a url=URL] [-a urls=FILE] [-a sitemap=URL] [-a feed=URL]"

    def short_desc(self) -> str:
        return "Push start URLs, sitemaps or feeds into the shared queue of the workers (NEWSCRAWL_REDIS_URL)"

    def long_desc(self) -> str:
        return (
            "Push starts for the workers of a distributed crawl. A URL given alone is read as what its response turns "
            "out to be: a sitemap (or sitemap index, or .xml.gz), an RSS/Atom feed, a robots.txt (its Sitemap: lines) "
            "or an article page. -a url=, urls=, sitemap= and feed= say the kind, as they do for `scrapy crawl`. "
            "The hosts of the starts become the crawl's allowed domains on every worker."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-a", dest="spargs", action="append", default=[], metavar="NAME=VALUE",
                            help="a start of a given kind: url=, urls= (a file, one URL a line), sitemap=, feed=")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        try:
            opts.spargs = arglist_to_dict(opts.spargs)
        except ValueError:
            raise UsageError("Invalid -a value, use -a NAME=VALUE", print_help=False) from None

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from newscrawl.distributed import FrontierKeys, push_seeds, redis_from_settings
        from newscrawl.spiders.article import read_url_list, split_list, start_url

        if not args:
            raise UsageError("name the spider, e.g. scrapy seed article https://site.example/sitemap.xml")
        spider, urls = args[0], args[1:]
        assert self.settings is not None
        if not self.settings.get("NEWSCRAWL_REDIS_URL"):
            raise UsageError("NEWSCRAWL_REDIS_URL is not set: there is no shared queue to seed", print_help=False)
        unknown = set(opts.spargs) - {"url", "urls", "sitemap", "feed"}
        if unknown:
            raise UsageError(f"scrapy seed takes -a url=, urls=, sitemap= and feed=, not {', '.join(sorted(unknown))}",
                             print_help=False)
        given = opts.spargs
        pages = ([given["url"]] if given.get("url") else []) + (read_url_list(given["urls"]) if given.get("urls") else [])
        try:
            seeds = [(start_url(url), "auto") for url in urls]
            seeds += [(start_url(url), "page") for url in pages]
            seeds += [(start_url(url), "sitemap") for url in split_list(given.get("sitemap"))]
            seeds += [(start_url(url), "feed") for url in split_list(given.get("feed"))]
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from None
        if not seeds:
            raise UsageError("give at least one URL, or -a url= / urls= / sitemap= / feed=", print_help=False)
        keys = FrontierKeys.from_settings(self.settings, spider)
        waiting = push_seeds(redis_from_settings(self.settings), keys, seeds)
        print(f"Pushed {len(seeds)} start(s) to {keys.seeds}; {waiting} waiting for a worker")
