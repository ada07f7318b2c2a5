"""The storage contract of tests/test_storage.py on a real PostgreSQL (NEWSCRAWL_TEST_POSTGRES_URL; .ci/run starts one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from newscrawl.storage import SCHEMA_VERSION, PostgreSQLStorage, Storage, StorageError, open_storage

from tests.support.postgres import SERVER_URL, SKIP_REASON, fresh_schema

from .test_storage import StorageContract, record, rows

pytestmark = pytest.mark.skipif(not SERVER_URL, reason=SKIP_REASON)


class TestPostgreSQLStorage(StorageContract):
    @pytest.fixture
    def url(self) -> Iterator[str]:
        with fresh_schema() as url:
            yield url

    def test_the_backend_is_postgresql_with_real_booleans(self, storage: Storage) -> None:
        assert isinstance(storage, PostgreSQLStorage)
        storage.save([record()])
        assert rows(storage, "SELECT ai_generated FROM images ORDER BY position") == [(True,), (False,)]
        assert rows(storage, "SELECT data_type FROM information_schema.columns "
                             "WHERE table_name = 'articles' AND column_name = 'id' AND table_schema = current_schema()") == [
            ("bigint",)]

    def test_a_lost_connection_is_a_storage_error_and_a_new_connection_works(self, storage: Storage, url: str) -> None:
        import psycopg

        # What the crawl sees when the server restarts: its session is gone.
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            pid = storage.connection.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StorageError):
            storage.save([record()])
        again = open_storage(url)
        try:
            assert again.save([record()]).new == 1
        finally:
            again.close()

    def test_four_sessions_opening_a_new_database_together_all_find_one_schema(self, url: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        def open_and_count(_: int) -> int:
            storage = open_storage(url)
            try:
                return storage.schema_version()
            finally:
                storage.close()

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(open_and_count, range(4))) == [SCHEMA_VERSION] * 4
        storage = open_storage(url)
        try:
            assert rows(storage, "SELECT COUNT(*) FROM schema_version") == [(SCHEMA_VERSION,)]
        finally:
            storage.close()


def test_an_unreachable_server_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot connect"):
        open_storage("postgresql://newscrawl:pw@127.0.0.1:1/nothing")


def test_a_database_that_goes_away_mid_crawl_loses_no_item(tmp_path) -> None:
    """The storage pipeline over a proxy that is cut and restored: batches spool, then land once it is back."""
    from urllib.parse import urlsplit

    from scrapy.utils.test import get_crawler

    from newscrawl.pipelines import StoragePipeline
    from tests.support.tcp_proxy import TcpProxy

    from .test_pipelines import article

    with fresh_schema() as direct_url:
        server = urlsplit(direct_url)
        with TcpProxy(server.hostname, server.port) as proxy:
            url = direct_url.replace(f"{server.hostname}:{server.port}", f"127.0.0.1:{proxy.port}", 1)
            crawler = get_crawler(settings_dict={"NEWSCRAWL_DATABASE_URL": url, "NEWSCRAWL_STORAGE_BATCH_SIZE": 2,
                                                 "NEWSCRAWL_SPOOL_DIR": str(tmp_path / "spool")})
            pipeline, stats = StoragePipeline.from_crawler(crawler), crawler.stats
            pipeline.open_spider()
            for n in range(2):
                pipeline.process_item(article(n))
            assert stats.get_value("newscrawl/storage/stored") == 2

            proxy.stop()  # the server goes away: the open connection breaks, new ones are refused
            for n in range(2, 6):
                pipeline.process_item(article(n))
            assert stats.get_value("newscrawl/storage/spooled") == 4
            assert len(list((tmp_path / "spool").glob("*.jsonl"))) == 2

            proxy.start()  # back on the same address: the next batch reconnects and writes what was spooled first
            for n in range(6, 8):
                pipeline.process_item(article(n))
            pipeline.close_spider()
        storage = open_storage(direct_url)
        try:
            assert rows(storage, "SELECT COUNT(*), COUNT(DISTINCT article_url) FROM articles") == [(8, 8)]
            assert rows(storage, "SELECT COUNT(*) FROM article_versions") == [(8,)]
        finally:
            storage.close()
    assert stats.get_value("newscrawl/storage/replayed") == 4
    assert stats.get_value("newscrawl/articles/new") == 8
    assert list((tmp_path / "spool").glob("*.jsonl")) == []
