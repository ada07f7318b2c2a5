"""Scrapy add-ons of the project: settings that depend on other settings, applied before the crawler starts."""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


class DistributedCrawl:
    """Scrapy add-on (ADDONS): with NEWSCRAWL_REDIS_URL set, the crawl's frontier is shared through Redis."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not settings.get("NEWSCRAWL_REDIS_URL"):
            return
        if find_spec("scrapy_redis") is None:
            raise RuntimeError("NEWSCRAWL_REDIS_URL is set but scrapy-redis is not installed: "
                               "pip install 'newscrawl[distributed]'")
        prefix = settings.get("NEWSCRAWL_REDIS_KEY_PREFIX") or "newscrawl"
        # At the project's priority, over what settings.py says for a crawl of one process; -s still wins.
        settings.set("SCHEDULER", "newscrawl.distributed.LeasedScheduler", "project")
        settings.set("SCHEDULER_QUEUE_CLASS", "newscrawl.distributed.LeasedPriorityQueue", "project")
        settings.set("DUPEFILTER_CLASS", "newscrawl.distributed.CanonicalDupeFilter", "project")
        settings.set("SCHEDULER_QUEUE_KEY", f"{prefix}:%(spider)s:requests", "project")
        settings.set("SCHEDULER_DUPEFILTER_KEY", f"{prefix}:%(spider)s:dupefilter", "project")
        # The frontier outlives every worker: a worker that finishes must not delete what the others work on.
        settings.set("SCHEDULER_PERSIST", True, "project")
        settings.set("SCHEDULER_FLUSH_ON_START", False, "project")
        settings.set("REDIS_URL", settings.get("NEWSCRAWL_REDIS_URL"), "project")
        # A request is finished when its items are stored: one item per transaction, so none waits in a batch that
        # a killed worker would take with it.  Upserts on the canonical URL make a re-fetched article land once.
        settings.set("NEWSCRAWL_STORAGE_BATCH_SIZE", 1, "project")
        settings["EXTENSIONS"]["newscrawl.distributed.RedisSeeds"] = 0
        if settings.getbool("NEWSCRAWL_REDIS_POLITENESS", True):
            # Where a request goes out: only requests that really reach the site take a turn.
            for scheme in ("http", "https"):
                settings["DOWNLOAD_HANDLERS"][scheme] = "newscrawl.distributed.SharedPolitenessHandler"
