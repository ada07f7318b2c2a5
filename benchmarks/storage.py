"""Storage benchmark: items/second written through newscrawl's storage layer against a raw ``executemany``.

    .venv/bin/python benchmarks/storage.py [--items 20000] [--batch 50] [--rounds 3]

The items are real: article pages of the generated site (``benchmarks/sitegen.py``) read by
``read_article`` + ``load_article`` and turned into records the way ``StoragePipeline`` does
(``ItemAdapter(item).asdict()``), then repeated under distinct URLs up to ``--items``.

- ``newscrawl``: ``open_storage("sqlite:///...")`` then ``Storage.save(batch)`` per batch of ``--batch``
  records (the crawl's ``NEWSCRAWL_STORAGE_BATCH_SIZE``), one transaction each, as the pipeline does.
- ``raw``: the same rows (every row the storage layer wrote in an untimed first run, read back with their
  ids, hashes and JSON) into the same schema (made by ``open_storage``), same pragmas, one
  ``BEGIN IMMEDIATE ... COMMIT`` per batch with one ``executemany`` per table: the floor.

Each round writes a fresh database file in a temporary directory; rounds alternate the order, best counts.
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from itemadapter import ItemAdapter  # noqa: E402
from scrapy.http import HtmlResponse  # noqa: E402

from newscrawl.loaders import load_article  # noqa: E402
from newscrawl.page.article import read_article  # noqa: E402
from newscrawl.storage import open_storage  # noqa: E402
from sitegen import SECTIONS, _title, article_path, render_article  # noqa: E402

GOAL = 1.5  # newscrawl's write time at most this many times the raw executemany's
DISTINCT_PAGES = 200


def make_records(count: int) -> list[dict[str, Any]]:
    """``count`` records as the storage pipeline receives them, from real readings of generated pages."""
    distinct = min(count, DISTINCT_PAGES)
    rng = random.Random(0)
    titles = [_title(rng) for _ in range(distinct)]
    origin = "http://127.0.0.1:8000"
    templates = []
    for index in range(distinct):
        url = origin + article_path(index)
        body = render_article(index, distinct, titles, 0).encode("utf-8")
        response = HtmlResponse(url, body=body, headers={"Content-Type": "text/html; charset=utf-8"})
        item = load_article(read_article(response.selector, url), fetched_at="2026-03-01T08:00:00+00:00")
        templates.append(ItemAdapter(item).asdict())
    records = []
    for number in range(count):
        record = dict(templates[number % distinct])
        # A distinct article each: same content, its own URL (the identity storage keys on).
        section = SECTIONS[number % len(SECTIONS)]
        record["url"] = record["canonical_url"] = f"{origin}/news/{section}/copy-{number}.html"
        records.append(record)
    return records


def written_rows(path: Path, batch: int) -> list[dict[str, tuple[list[str], list[tuple]]]]:
    """Every row newscrawl's storage wrote into ``path``, per table, cut into the batches it was written in.

    Read back from the database rather than rebuilt here, so the raw write stays "the same rows" whatever
    tables and columns the storage layer grows. A fresh database's ids run 1..N in record order, so a row's
    batch follows from its ``id`` (articles) or ``article_id`` (the other tables).
    """
    plan: list[dict[str, tuple[list[str], list[tuple]]]] = []
    with sqlite3.connect(path) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
            if not name.startswith("sqlite_") and name != "schema_version"  # schema_version is the migration's
        ]
        for table in tables:
            cursor = connection.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            key = columns.index("id") if "id" in columns else columns.index("article_id") if "article_id" in columns else None
            for row in cursor:
                number = (row[key] - 1) // batch if key is not None else 0
                while len(plan) <= number:
                    plan.append({})
                plan[number].setdefault(table, (columns, []))[1].append(row)
    connection.close()
    return plan


def batches(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def write_newscrawl(path: Path, records: list[dict[str, Any]], batch: int) -> float:
    storage = open_storage(f"sqlite:///{path}")
    try:
        chunks = batches(records, batch)
        start = time.perf_counter()
        for chunk in chunks:
            storage.save(chunk)
        return time.perf_counter() - start
    finally:
        storage.close()


def write_raw(path: Path, plan: list[dict[str, tuple[list[str], list[tuple]]]]) -> float:
    open_storage(f"sqlite:///{path}").close()  # the same schema, made by the storage layer itself
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA foreign_keys = ON")
        statements = [
            [
                (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
                for table, (columns, rows) in tables.items()
            ]
            for tables in plan
        ]
        start = time.perf_counter()
        for batch in statements:
            connection.execute("BEGIN IMMEDIATE")
            for statement, rows in batch:
                connection.executemany(statement, rows)
            connection.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        connection.close()


def count_rows(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        tables = [n for (n,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables if t != "schema_version"}
    connection.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=50, help="items per transaction (NEWSCRAWL_STORAGE_BATCH_SIZE)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each counts")
    args = parser.parse_args(argv)

    records = make_records(args.items)
    best = {"newscrawl": float("inf"), "raw": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        # A first, untimed newscrawl write gives the exact rows the raw write repeats.
        reference = Path(tmp) / "reference.sqlite3"
        write_newscrawl(reference, records, args.batch)
        plan = written_rows(reference, args.batch)
        writers = {
            "newscrawl": lambda path: write_newscrawl(path, records, args.batch),
            "raw": lambda path: write_raw(path, plan),
        }
        for round_no in range(args.rounds):
            order = list(writers) if round_no % 2 == 0 else list(writers)[::-1]
            for name in order:
                path = Path(tmp) / f"{name}-{round_no}.sqlite3"
                gc.collect()
                seconds = writers[name](path)
                best[name] = min(best[name], seconds)
                counts = count_rows(path)
                print(f"  round {round_no + 1} {name:<10} {args.items / seconds:9.0f} items/s  rows {counts}", flush=True)
    rate = {name: args.items / seconds for name, seconds in best.items()}
    ratio = best["newscrawl"] / best["raw"]
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"items: {args.items}, batch {args.batch}, best of {args.rounds} rounds")
    for name in writers:
        print(f"  {name:<10} {rate[name]:9.0f} items/s")
    print(
        f"RATIO storage: newscrawl/raw write time = {ratio:.2f}x "
        f"({rate['newscrawl']:.0f} vs {rate['raw']:.0f} items/s; goal <= {GOAL:g}x: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
