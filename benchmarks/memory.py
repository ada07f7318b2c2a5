"""Memory benchmark: peak RSS of ``scrapy crawl article`` over generated sites of 2,000 and 20,000 pages.

    .venv/bin/python benchmarks/memory.py [--pages 2000 20000] [--no-null]

Each crawl is a scrapy subprocess run exactly as in ``benchmarks/crawl.py`` (same settings, SQLite storage
in a temporary directory); its peak resident set size is the ``ru_maxrss`` that ``wait4()`` reports for
that one process, so neither the server nor this script counts. The null spider's peak RSS over the same
sites is printed beside it (``--no-null`` skips it): what grows in both is Scrapy's own per-request state
(dedup fingerprints, the scheduler's queue), what grows only in newscrawl is newscrawl's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crawl import describe, run_crawl  # noqa: E402
from sitegen import serve_site, temporary_site  # noqa: E402

GOAL = 1.25  # peak RSS of the larger crawl at most this many times that of the smaller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, nargs=2, default=[2000, 20000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--no-null", action="store_true", help="skip the null spider's crawls")
    args = parser.parse_args(argv)
    small, large = sorted(args.pages)
    kinds = ["newscrawl"] if args.no_null else ["newscrawl", "null"]

    peak: dict[tuple[str, int], float] = {}
    for pages in (small, large):
        with temporary_site(pages) as site, serve_site(site) as served, tempfile.TemporaryDirectory() as tmp:
            print(f"site: {pages} article pages at {served.origin}", flush=True)
            for kind in kinds:
                result = run_crawl(kind, served, Path(tmp) / kind)
                print(describe(result), flush=True)
                peak[kind, pages] = result.max_rss_mb
    if "null" in kinds:
        grew = peak["null", large] - peak["null", small]
        print(f"null spider: peak RSS {peak['null', small]:.0f} -> {peak['null', large]:.0f} MB (+{grew:.0f} MB)")
    ratio = peak["newscrawl", large] / peak["newscrawl", small]
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(
        f"RATIO memory: newscrawl peak RSS {large} pages / {small} pages = {ratio:.2f} "
        f"({peak['newscrawl', large]:.0f} vs {peak['newscrawl', small]:.0f} MB; goal <= {GOAL:g}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
