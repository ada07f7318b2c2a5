"""No data loss: a database or a spool directory that fails keeps items until they are stored, each once (issue 5)."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.test import get_crawler

from newscrawl.pipelines import StoragePipeline

from .test_pipelines import article, count


def build(**settings: Any) -> tuple[StoragePipeline, Any]:
    crawler = get_crawler(settings_dict=settings)
    return StoragePipeline.from_crawler(crawler), crawler.stats


def pipeline_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "newscrawl.pipelines" and r.levelno >= logging.ERROR]


def test_a_spool_that_cannot_be_written_keeps_the_items_in_memory_until_it_can(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "news.sqlite3"
    database.mkdir()  # a directory where the database file should be: SQLite cannot open it, even as root
    blocker = tmp_path / "full"
    blocker.write_text("")  # a file where the spool's parent directory should be: no one can create the spool
    settings = {"NEWSCRAWL_DATABASE_URL": f"sqlite:///{database}", "NEWSCRAWL_SPOOL_DIR": str(blocker / "spool"),
                "NEWSCRAWL_STORAGE_BATCH_SIZE": 1}
    pipeline, stats = build(**settings)
    caplog.set_level(logging.DEBUG, logger="newscrawl.pipelines")
    pipeline.open_spider()
    for n in range(3):
        pipeline.process_item(article(n))

    # Every flush tried both and failed; the outage is told in one ERROR line (after the one saying storage is down).
    assert stats.get_value("newscrawl/storage/spool_errors") == 3
    assert stats.get_value("newscrawl/storage/spooled") is None
    errors = pipeline_errors(caplog)
    assert len(errors) == 2, errors
    assert errors[0].startswith(f"Cannot open storage sqlite:///{database}")
    assert "and so did spooling them to" in errors[1] and "kept them in memory" in errors[1]

    # Space is back: the next flush spools what was held together with the new item, nothing lost or repeated.
    blocker.unlink()
    pipeline.process_item(article(3))
    [spooled] = (blocker / "spool").glob("*.jsonl")
    assert len(spooled.read_text("utf-8").splitlines()) == 4
    pipeline.close_spider()
    assert stats.get_value("newscrawl/storage/lost") is None

    database.rmdir()
    recovered, stats = build(**settings)
    recovered.open_spider()
    recovered.close_spider()
    assert count(database, "articles") == 4 and count(database, "article_versions") == 4
    assert stats.get_value("newscrawl/storage/replayed") == 4
    assert list((blocker / "spool").glob("*.jsonl")) == []


def test_items_neither_database_nor_spool_took_by_the_end_are_counted_and_logged_as_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "news.sqlite3"
    database.mkdir()
    blocker = tmp_path / "full"
    blocker.write_text("")
    pipeline, stats = build(NEWSCRAWL_DATABASE_URL=f"sqlite:///{database}", NEWSCRAWL_SPOOL_DIR=str(blocker / "spool"))
    caplog.set_level(logging.INFO, logger="newscrawl.pipelines")
    pipeline.open_spider()
    pipeline.process_item(article(1))
    pipeline.process_item(article(2))
    pipeline.close_spider()
    assert stats.get_value("newscrawl/storage/lost") == 2
    assert pipeline_errors(caplog)[-1].startswith("Lost 2 items at the end of the crawl")


def test_a_database_outage_is_logged_once_and_its_end_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = tmp_path / "news.sqlite3"
    pipeline, stats = build(NEWSCRAWL_DATABASE_URL=f"sqlite:///{database}", NEWSCRAWL_SPOOL_DIR=str(tmp_path / "spool"),
                            NEWSCRAWL_STORAGE_BATCH_SIZE=1)
    caplog.set_level(logging.INFO, logger="newscrawl.pipelines")
    pipeline.open_spider()
    pipeline.process_item(article(0))
    with closing(sqlite3.connect(database)) as connection:
        connection.execute(REFUSE_INSERTS)
    for n in range(1, 4):
        pipeline.process_item(article(n))
    with closing(sqlite3.connect(database)) as connection:
        connection.execute(ALLOW_INSERTS)
    pipeline.process_item(article(4))
    pipeline.close_spider()

    errors = pipeline_errors(caplog)
    assert len(errors) == 1 and errors[0].startswith("Storage write of 1 items to sqlite:///") and "kept them in" in errors[0]
    assert any(r.getMessage() == f"Storage sqlite:///{database} works again" for r in caplog.records)
    assert stats.get_value("newscrawl/storage/errors") >= 3
    assert stats.get_value("newscrawl/storage/spooled") == 3 and stats.get_value("newscrawl/storage/replayed") == 3
    assert count(database, "articles") == 5 and count(database, "article_versions") == 5


#: A database that refuses new articles, the way a full or broken one refuses writes; unlike file permissions it
#: holds for root too (CI may run the tests as root).
REFUSE_INSERTS = ("CREATE TRIGGER refuse_articles BEFORE INSERT ON articles "
                  "BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated)'); END")
ALLOW_INSERTS = "DROP TRIGGER refuse_articles"
