"""Storage benchmark: items/second written through newscrawl's storage layer against a raw ``executemany``.

    .venv/bin/python benchmarks/storage.py [--items 20000] [--batch 50] [--rounds 3] [--database postgresql://...]

The items are real: article pages of the generated site (``benchmarks/sitegen.py``) read by
``read_article`` + ``load_article`` and turned into records the way ``StoragePipeline`` does
(``ItemAdapter(item).asdict()``), then repeated under distinct URLs up to ``--items``.

- ``newscrawl``: ``open_storage("sqlite:///...")`` then ``Storage.save(batch)`` per batch of ``--batch``
  records (the crawl's ``NEWSCRAWL_STORAGE_BATCH_SIZE``), one transaction each, as the pipeline does.
- ``raw``: the same rows (every row the storage layer wrote in an untimed first run, read back with their
  ids, hashes and JSON) into the same schema (made by ``open_storage``), same pragmas, one
  ``BEGIN IMMEDIATE ... COMMIT`` per batch with one ``executemany`` per table: the floor.

Each round writes a fresh SQLite file in a temporary directory, or with ``--database postgresql://...`` a
fresh schema of that database (dropped afterwards); rounds alternate the order, the best of each counts.
"""

from __future__ import annotations

import argparse
import gc
import os
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


class Target:
    """Where one round writes: a fresh SQLite file, or a fresh schema of a PostgreSQL database.

    ``url`` is for ``open_storage``; ``connect()`` gives a raw DB-API connection to the same place, outside
    any transaction, and ``tables()`` the tables there.
    """

    def __init__(self, base: str | None, tmp: Path, name: str):
        self.base, self.name = base, name
        if base is None:
            self.path = tmp / f"{name}.sqlite3"
            self.url = f"sqlite:///{self.path}"
            self.placeholder = "?"
        else:
            import psycopg

            self.schema = f"bench_storage_{os.getpid()}_{name}".replace("-", "_")
            with psycopg.connect(base, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                connection.execute(f"CREATE SCHEMA {self.schema}")
            self.url = base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{self.schema}"
            self.placeholder = "%s"

    @property
    def kind(self) -> str:
        return "sqlite" if self.base is None else "postgresql"

    def connect(self):
        if self.base is None:
            connection = sqlite3.connect(self.path, isolation_level=None)
            # The pragmas SQLiteStorage.connect sets: the same journal, the same foreign-key checks.
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA foreign_keys = ON")
            return connection
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def tables(self, connection) -> list[str]:
        if self.base is None:
            query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        else:
            query = (
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_type = 'BASE TABLE' ORDER BY table_name"
            )
        # schema_version rows are the migration's, written before any item.
        return [name for (name,) in connection.execute(query).fetchall() if name != "schema_version"]

    def drop(self) -> None:
        if self.base is not None:
            import psycopg

            with psycopg.connect(self.base, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


Plan = list[dict[str, tuple[list[str], list[tuple]]]]


def written_rows(target: Target, batch: int) -> Plan:
    """Every row newscrawl's storage wrote into ``target``, per table, cut into the batches it was written in.

    Read back from the database rather than rebuilt here, so the raw write stays "the same rows" whatever
    tables and columns the storage layer grows. A fresh database's ids run 1..N in record order, so a row's
    batch follows from its ``id`` (articles) or ``article_id`` (the other tables).
    """
    plan: Plan = []
    connection = target.connect()
    try:
        # Parents before children, so foreign keys hold whatever order the catalogue lists tables in.
        tables = sorted(target.tables(connection), key=lambda name: name != "articles")
        for table in tables:
            cursor = connection.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            key = columns.index("id") if "id" in columns else columns.index("article_id") if "article_id" in columns else None
            for row in cursor.fetchall():
                number = (row[key] - 1) // batch if key is not None else 0
                while len(plan) <= number:
                    plan.append({})
                plan[number].setdefault(table, (columns, []))[1].append(tuple(row))
    finally:
        connection.close()
    return plan


def batches(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def write_newscrawl(target: Target, records: list[dict[str, Any]], batch: int) -> float:
    storage = open_storage(target.url)
    try:
        chunks = batches(records, batch)
        start = time.perf_counter()
        for chunk in chunks:
            storage.save(chunk)
        return time.perf_counter() - start
    finally:
        storage.close()


def write_raw(target: Target, plan: Plan) -> float:
    open_storage(target.url).close()  # the same schema, made by the storage layer itself
    mark = target.placeholder
    statements = [
        [
            (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})", rows)
            for table, (columns, rows) in tables.items()
        ]
        for tables in plan
    ]
    connection = target.connect()
    try:
        if target.kind == "sqlite":
            start = time.perf_counter()
            for batch in statements:
                connection.execute("BEGIN IMMEDIATE")
                for statement, rows in batch:
                    connection.executemany(statement, rows)
                connection.execute("COMMIT")
        else:
            start = time.perf_counter()
            for batch in statements:
                with connection.transaction(), connection.cursor() as cursor:
                    for statement, rows in batch:
                        cursor.executemany(statement, rows)
        return time.perf_counter() - start
    finally:
        connection.close()


def count_rows(target: Target) -> dict[str, int]:
    connection = target.connect()
    try:
        return {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in target.tables(connection)}
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=50, help="items per transaction (NEWSCRAWL_STORAGE_BATCH_SIZE)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each counts")
    parser.add_argument(
        "--database",
        default=None,
        help="a postgresql:// URL to measure PostgreSQL instead (each round in a fresh schema, dropped after); "
        "default: fresh SQLite files in a temporary directory",
    )
    args = parser.parse_args(argv)
    if args.database and not args.database.startswith(("postgresql://", "postgres://")):
        parser.error("--database takes a postgresql:// URL; SQLite is the default")

    records = make_records(args.items)
    best = {"newscrawl": float("inf"), "raw": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[Target] = []

        def target(name: str) -> Target:
            targets.append(Target(args.database, Path(tmp), name))
            return targets[-1]

        try:
            # A first, untimed newscrawl write gives the exact rows the raw write repeats.
            reference = target("reference")
            write_newscrawl(reference, records, args.batch)
            plan = written_rows(reference, args.batch)
            writers = {
                "newscrawl": lambda where: write_newscrawl(where, records, args.batch),
                "raw": lambda where: write_raw(where, plan),
            }
            for round_no in range(args.rounds):
                order = list(writers) if round_no % 2 == 0 else list(writers)[::-1]
                for name in order:
                    where = target(f"{name}_{round_no}")
                    gc.collect()
                    seconds = writers[name](where)
                    best[name] = min(best[name], seconds)
                    counts = count_rows(where)
                    print(f"  round {round_no + 1} {name:<10} {args.items / seconds:9.0f} items/s  rows {counts}", flush=True)
        finally:
            for where in targets:
                where.drop()
    rate = {name: args.items / seconds for name, seconds in best.items()}
    ratio = best["newscrawl"] / best["raw"]
    verdict = "met" if ratio <= GOAL else "NOT met"
    backend = "PostgreSQL" if args.database else "SQLite"
    print(f"{backend}: {args.items} items, batch {args.batch}, best of {args.rounds} rounds")
    for name in writers:
        print(f"  {name:<10} {rate[name]:9.0f} items/s")
    print(
        f"RATIO storage ({backend}): newscrawl/raw write time = {ratio:.2f}x "
        f"({rate['newscrawl']:.0f} vs {rate['raw']:.0f} items/s; goal <= {GOAL:g}x: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
