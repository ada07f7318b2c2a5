"""Extraction benchmark: pages/second of newscrawl's page understanding + loaders against bare lxml and trafilatura.

Run from the repository root::

    .venv/bin/python benchmarks/extraction.py [--rounds 5] [--limit N] [--profile]

``--profile`` then shows where newscrawl's time goes over the eval pages (pyinstrument, from the ``bench``
extra, or cProfile without it).

Each contender handles the same bytes of the same pages in the same process. Rounds are interleaved
(the order of contenders rotates every round) and the best round of each counts, so a noisy neighbour
on a shared machine costs every contender alike. The ratios printed are the figures to read; absolute
pages/second only mean something next to each other.

- ``bare``: ``lxml.html.fromstring(body)``, the parse every extractor pays at least once (the floor).
- ``newscrawl``: ``load_article(read_article(HtmlResponse(...).selector, url))``; the Selector's parse
  is counted, as it is in a crawl.
- ``trafilatura``: ``trafilatura.extract(body, url=url)`` with its default options.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import lxml.html
from scrapy.http import HtmlResponse

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from newscrawl.loaders import load_article  # noqa: E402
from newscrawl.page.article import read_article  # noqa: E402
from newscrawl.saved_pages import iter_saved_pages  # noqa: E402

FIXTURE_PAGES = REPO / "fixtures" / "pages"
EVAL_RELATIVE = Path("shared") / "eval" / "article-extraction-benchmark"
GOAL_VS_TRAFILATURA = 3.0  # newscrawl at least this many times faster than trafilatura
GOAL_VS_BARE = 4.0  # newscrawl at most this many times slower than a bare parse


@dataclass(frozen=True)
class Page:
    url: str
    body: bytes
    content_type: str


def eval_dir() -> Path | None:
    """The eval set next to the repository (CI checks it out as ``<repo>/../shared``), else /work/shared."""
    for candidate in (REPO.parent / EVAL_RELATIVE, Path("/work") / EVAL_RELATIVE):
        if (candidate / "ground-truth.json").is_file():
            return candidate
    return None


def fixture_pages(limit: int | None = None) -> list[Page]:
    pages = [Page(p.url, p.body, p.content_type) for p in iter_saved_pages(FIXTURE_PAGES)]
    return pages[:limit] if limit else pages


def eval_pages(limit: int | None = None) -> list[Page]:
    folder = eval_dir()
    if folder is None:
        return []
    truth = json.loads((folder / "ground-truth.json").read_text("utf-8"))
    pages = []
    for path in sorted((folder / "html").glob("*.html.gz"))[:limit]:
        page_id = path.name.removesuffix(".html.gz")
        # The README of the set says every page decodes as UTF-8; the header says so, as a server would.
        pages.append(Page(truth[page_id]["url"], gzip.decompress(path.read_bytes()), "text/html; charset=utf-8"))
    return pages


def run_bare(pages: Iterable[Page]) -> None:
    for page in pages:
        lxml.html.fromstring(page.body)


def newscrawl_extract(page: Page):
    response = HtmlResponse(page.url, body=page.body, headers={"Content-Type": page.content_type})
    return load_article(read_article(response.selector, page.url))


def run_newscrawl(pages: Iterable[Page]) -> None:
    for page in pages:
        newscrawl_extract(page)


def run_trafilatura(pages: Iterable[Page]) -> None:
    import trafilatura

    for page in pages:
        trafilatura.extract(page.body, url=page.url)


CONTENDERS: dict[str, Callable[[Iterable[Page]], None]] = {
    "bare": run_bare,
    "newscrawl": run_newscrawl,
    "trafilatura": run_trafilatura,
}


def best_times(pages: list[Page], rounds: int) -> dict[str, float]:
    """Best wall time of a full pass per contender, over interleaved rounds with a rotating order."""
    names = list(CONTENDERS)
    for name in names:  # warm-up: imports, caches, first-call costs
        CONTENDERS[name](pages[:3])
    best = {name: float("inf") for name in names}
    for round_no in range(rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for name in order:
            gc.collect()
            start = time.perf_counter()
            CONTENDERS[name](pages)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(label: str, pages: list[Page], rounds: int) -> dict[str, float]:
    best = best_times(pages, rounds)
    rate = {name: len(pages) / seconds for name, seconds in best.items()}
    megabytes = sum(len(p.body) for p in pages) / 1e6
    print(f"\n== {label}: {len(pages)} pages, {megabytes:.1f} MB, best of {rounds} interleaved rounds")
    for name in CONTENDERS:
        print(f"  {name:<12} {rate[name]:9.1f} pages/s  ({best[name] * 1000 / len(pages):7.2f} ms/page)")
    speedup = rate["newscrawl"] / rate["trafilatura"]
    slowdown = rate["bare"] / rate["newscrawl"]
    ok_speed = "met" if speedup >= GOAL_VS_TRAFILATURA else "NOT met"
    ok_floor = "met" if slowdown <= GOAL_VS_BARE else "NOT met"
    print(
        f"RATIO {label}: newscrawl/trafilatura speedup = {speedup:.2f}x "
        f"(goal >= {GOAL_VS_TRAFILATURA:g}x: {ok_speed}); "
        f"newscrawl/bare-parse slowdown = {slowdown:.2f}x (goal <= {GOAL_VS_BARE:g}x: {ok_floor})"
    )
    return {"speedup": speedup, "slowdown": slowdown}


def profile(pages: list[Page], top: int) -> None:
    """Where newscrawl's time goes over one pass: pyinstrument's call tree when installed, else cProfile."""
    run_newscrawl(pages[:3])  # warm-up: the language model and the locale table load once per process
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    if Profiler is not None:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        run_newscrawl(pages)
        profiler.stop()
        print(f"\n== pyinstrument profile of newscrawl over {len(pages)} pages")
        print(profiler.output_text(unicode=False, color=False))
        return
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run_newscrawl(pages)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"\n== cProfile of newscrawl over {len(pages)} pages (own time, top {top}; pip install pyinstrument for a tree)")
    stats.sort_stats("tottime").print_stats(top)
    print(f"== cProfile (cumulative time, top {top})")
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best of each counts")
    parser.add_argument("--limit", "--pages", type=int, default=None, help="use only the first N pages of each set")
    parser.add_argument("--profile", action="store_true", help="also profile newscrawl over the eval pages")
    parser.add_argument("--top", type=int, default=30, help="functions to list in a cProfile listing")
    args = parser.parse_args(argv)

    sets = [("fixtures", fixture_pages(args.limit)), ("eval", eval_pages(args.limit))]
    for label, pages in sets:
        if not pages:
            print(f"\n== {label}: no pages found, skipped")
            continue
        report(label, pages, args.rounds)
    if args.profile:
        pages = sets[1][1] or sets[0][1]
        profile(pages, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
