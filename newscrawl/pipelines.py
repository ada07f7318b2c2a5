"""Item pipelines: a separation safety net, the item contract, and batched storage that never loses an item."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from contextlib import suppress
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from newscrawl.items import BoilerplateBlock
from newscrawl.locales import BOILERPLATE_KINDS, LocaleTable, default_locale_table
from newscrawl.storage import SaveResult, Storage, StorageError, open_storage, redact

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)



def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _entries(value: Any) -> list[dict[str, Any]]:
    """List entries (dataclasses or dicts) as dicts; anything else is skipped here and refused by validation."""
    if not isinstance(value, list):
        return []
    return [asdict(e) if is_dataclass(e) and not isinstance(e, type) else e for e in value if isinstance(e, dict) or is_dataclass(e)]


class SeparatePipeline:
    """Moves out of the body any paragraph that is, whole, another part of the item or a UI label.

    Page understanding should already have kept these out; this catches what a new markup slips past it,
    and counts it (``newscrawl/separate/moved``) so a regression shows in the crawl stats.
    """

    def __init__(self, labels: LocaleTable, stats: StatsCollector):
        self.labels = labels
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(default_locale_table(), crawler.stats)

    def known_parts(self, adapter: ItemAdapter) -> dict[str, str]:
        """Folded text -> boilerplate kind, for every text of the item that must not be body prose."""
        parts: dict[str, str] = {}

        def add(text: Any, kind: str) -> None:
            if isinstance(text, str) and text.strip():
                parts.setdefault(_fold(text), kind)

        for image in _entries(adapter.get("images")):
            add(image.get("caption"), "caption")
            add(image.get("credit"), "credit")
            add(image.get("disclosure"), "ai_label")
        for related in _entries(adapter.get("related")):
            add(related.get("title"), "related")
            add(related.get("summary"), "related")
        add(adapter.get("social_summary"), "social_summary")
        return parts

    def label_kind(self, paragraph: str) -> str | None:
        matches = self.labels.split_labels(paragraph)
        if not matches or any(m.guessed for m in matches):
            return None  # only a label the table spells out is sure enough to take out of the body
        concepts = sorted(matches[0].concepts)
        return next((BOILERPLATE_KINDS[c] for c in concepts if c in BOILERPLATE_KINDS), "other")

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        body = adapter.get("body")
        if not isinstance(body, str) or not body.strip():
            return item
        parts = self.known_parts(adapter)
        kept: list[str] = []
        moved: list[tuple[str, str]] = []
        for paragraph in body.split("\n\n"):
            kind = parts.get(_fold(paragraph)) or self.label_kind(paragraph)
            (kept.append(paragraph) if kind is None else moved.append((kind, paragraph)))
        if not moved:
            return item
        adapter["body"] = "\n\n".join(kept)
        boilerplate = adapter.get("boilerplate")
        boilerplate = list(boilerplate) if isinstance(boilerplate, list) else []
        # Keep the entry type the item already uses, so validation and storage see one shape.
        as_dict = not is_dataclass(item)
        boilerplate.extend({"kind": k, "text": t} if as_dict else BoilerplateBlock(kind=k, text=t) for k, t in moved)
        adapter["boilerplate"] = boilerplate
        self.stats.inc_value("newscrawl/separate/moved", len(moved))
        for kind, _ in moved:
            self.stats.inc_value(f"newscrawl/separate/moved/{kind}")
        logger.debug("Moved %d paragraph(s) out of the body of %s: %s", len(moved), adapter.get("url"), moved)
        return item


class ValidatePipeline:
    """The item contract, checked right before storage: a bad item is dropped, counted and logged with its URL."""

    LIST_FIELDS = {
        "images": {"src": str, "ai_generated": bool},
        "related": {"url": str, "title": str, "ai_reported": bool},
        "boilerplate": {"kind": str, "text": str},
    }

    def __init__(self, stats: StatsCollector):
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats)

    @classmethod
    def problem(cls, adapter: ItemAdapter) -> str | None:
        """The first broken rule, as a short stat-friendly reason, or None for a good item."""
        for name in ("url", "title", "body"):
            value = adapter.get(name)
            if not isinstance(value, str) or not value.strip():
                return f"no_{name}"
        if not isinstance(adapter.get("ai_reported"), bool):
            return "bad_ai_reported"
        for name in ("canonical_url", "language", "published_at", "social_summary"):
            if adapter.get(name) is not None and not isinstance(adapter.get(name), str):
                return f"bad_{name}"
        for name, required in cls.LIST_FIELDS.items():
            value = adapter.get(name)
            if not isinstance(value, list):
                return f"bad_{name}"
            for entry in value:
                if not ItemAdapter.is_item(entry):
                    return f"bad_{name}"
                fields = ItemAdapter(entry)
                for key, kind in required.items():
                    if not isinstance(fields.get(key), kind) or (kind is str and not fields.get(key).strip()):
                        return f"bad_{name}"
        return None

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item) if ItemAdapter.is_item(item) else None
        reason = "not_an_item" if adapter is None else self.problem(adapter)
        if reason is None:
            self.stats.inc_value("newscrawl/validate/ok")
            return item
        self.stats.inc_value("newscrawl/validate/dropped")
        self.stats.inc_value(f"newscrawl/validate/dropped/{reason}")
        url = adapter.get("url") if adapter is not None else None
        raise DropItem(f"Invalid article item ({reason}): {url}")


class StoragePipeline:
    """Writes items to ``NEWSCRAWL_DATABASE_URL`` in batches of ``NEWSCRAWL_STORAGE_BATCH_SIZE``, one transaction each.

    A batch that cannot be written goes to a JSONL file in ``NEWSCRAWL_SPOOL_DIR`` and is written the next
    time storage opens on the same database: an item is never dropped for a database error. When the spool cannot
    be written either (disk full, read-only), the batch stays in memory and both are tried again at the next flush;
    only items that neither took by the end of the crawl are lost, and then counted and logged.
    """

    def __init__(self, database_url: str, batch_size: int, spool_dir: Path, stats: StatsCollector):
        self.database_url = database_url
        self.batch_size = batch_size
        self.spool_dir = spool_dir
        self.stats = stats
        self.storage: Storage | None = None
        self.batch: list[dict[str, Any]] = []
        # Spool files name their database, so a batch is only ever replayed into the database it was meant for.
        self.spool_prefix = hashlib.sha256(database_url.encode("utf-8")).hexdigest()[:12]
        # Kinds of failure ("storage", "spool") already reported at ERROR: an outage is told once, not once per batch,
        # until a write succeeds again; the stats count every failure.
        self.reported: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        url = settings.get("NEWSCRAWL_DATABASE_URL")
        if not url:
            raise NotConfigured  # storage deliberately switched off
        batch_size = settings.getint("NEWSCRAWL_STORAGE_BATCH_SIZE", 50)
        if batch_size < 1:
            raise ValueError(f"NEWSCRAWL_STORAGE_BATCH_SIZE must be at least 1, got {batch_size}")
        spool_dir = Path(settings.get("NEWSCRAWL_SPOOL_DIR") or "data/spool")
        return cls(url, batch_size, spool_dir, crawler.stats)

    def open_spider(self) -> None:
        self._connect()

    def close_spider(self) -> None:
        self.flush()
        if self.batch:
            self.stats.inc_value("newscrawl/storage/lost", len(self.batch))
            logger.error("Lost %d items at the end of the crawl: neither storage %s nor the spool directory %s "
                         "took them", len(self.batch), redact(self.database_url), self.spool_dir)
            self.batch = []
        if self.storage is not None:
            self.storage.close()
            self.storage = None

    def process_item(self, item: Any) -> Any:
        self.batch.append(ItemAdapter(item).asdict())
        if len(self.batch) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        """Write the buffered items in one transaction, or spool them when that fails."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        if self.storage is None:
            self._connect()
        try:
            if self.storage is None:
                raise StorageError("no database connection")
            result = self.storage.save(batch)
        except StorageError as exc:
            self.stats.inc_value("newscrawl/storage/errors")
            # The connection may be dead (a restarted server): drop it, the next batch opens a new one.
            self._disconnect()
            self._keep(batch, exc)
            return
        self._count(result)
        self._recovered("storage")

    def _keep(self, batch: list[dict[str, Any]], error: StorageError) -> None:
        """Spool a batch the database refused; if the spool cannot be written either, hold it for the next flush."""
        try:
            path = self._spool(batch)
        except OSError as exc:
            self.stats.inc_value("newscrawl/storage/spool_errors")
            self.batch = batch + self.batch
            self._failed("spool", "Storage write of %d items to %s failed (%s) and so did spooling them to %s (%s); "
                         "kept them in memory, tried again at the next flush", len(batch), redact(self.database_url),
                         error, self.spool_dir, exc)
            return
        self._recovered("spool")
        self._failed("storage", "Storage write of %d items to %s failed (%s); kept them in %s, written when the "
                     "database is back", len(batch), redact(self.database_url), error, path)

    def _failed(self, kind: str, message: str, *args: Any) -> None:
        """Log a failure at ERROR the first time in a row, at DEBUG while it lasts."""
        logger.log(logging.DEBUG if kind in self.reported else logging.ERROR, message, *args)
        self.reported.add(kind)

    def _recovered(self, kind: str) -> None:
        if kind in self.reported:
            self.reported.discard(kind)
            logger.info("%s works again", "Storage " + redact(self.database_url) if kind == "storage"
                        else f"Spool directory {self.spool_dir}")

    def _count(self, result: SaveResult) -> None:
        self.stats.inc_value("newscrawl/storage/stored", result.total)
        for kind in ("new", "changed", "unchanged"):
            self.stats.inc_value(f"newscrawl/articles/{kind}", getattr(result, kind))

    def _connect(self) -> None:
        """Open storage and write what earlier failures spooled; on failure, items go on being spooled."""
        try:
            self.storage = open_storage(self.database_url)
        except StorageError as exc:
            self.stats.inc_value("newscrawl/storage/errors")
            self._failed("storage", "Cannot open storage %s (%s); items will be spooled to %s",
                         redact(self.database_url), exc, self.spool_dir)
            self.storage = None
            return
        self._replay_spool()

    def _disconnect(self) -> None:
        if self.storage is not None:
            try:
                self.storage.close()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                pass
            self.storage = None

    def _spool(self, batch: list[dict[str, Any]]) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{self.spool_prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        # Write aside and rename, so a crash mid-write never leaves a half file to be replayed.
        partial = path.with_suffix(".partial")
        try:
            with partial.open("w", encoding="utf-8") as out:
                for record in batch:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            partial.replace(path)
        except OSError:
            with suppress(OSError):  # a full disk may refuse even this; the batch is held in memory either way
                partial.unlink(missing_ok=True)
            raise
        self.stats.inc_value("newscrawl/storage/spooled", len(batch))
        return path

    def _replay_spool(self) -> None:
        assert self.storage is not None
        for path in sorted(self.spool_dir.glob(f"{self.spool_prefix}-*.jsonl")):
            try:
                records = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
            except FileNotFoundError:  # another crawl on the same database replayed it first
                continue
            try:
                result = self.storage.save(records)
            except StorageError as exc:
                self.stats.inc_value("newscrawl/storage/errors")
                self._failed("storage", "Replaying spooled items from %s into %s failed (%s); kept it",
                             path, redact(self.database_url), exc)
                self._disconnect()
                return
            self._recovered("storage")
            path.unlink(missing_ok=True)
            self._count(result)
            self.stats.inc_value("newscrawl/storage/replayed", len(records))
            logger.info("Database %s is reachable: wrote %d spooled items from %s",
                        redact(self.database_url), len(records), path)
