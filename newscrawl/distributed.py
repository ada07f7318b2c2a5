"""Distributed crawls: with NEWSCRAWL_REDIS_URL set, workers share one frontier in Redis (scrapy-redis, plus leases).

What scrapy-redis 0.9.1 brings is used as it is: its scheduler, its sorted-set priority queue and its dupefilter.
What it lacks is added here, each piece in the component Scrapy has for it:

- ``newscrawl.addons.DistributedCrawl``, an add-on: switches the scheduler, dupefilter and the components below on,
  so that ``scrapy crawl article`` is the same command and spider with or without Redis.
- ``CanonicalDupeFilter``: scrapy-redis's dupefilter keyed on the project's request fingerprint (the canonical URL,
  ``newscrawl.urls.CanonicalRequestFingerprinter``) instead of its own.
- ``LeasedScheduler`` / ``LeasedPriorityQueue``: a request taken from the queue is held in the worker's in-flight
  hash until the worker is done with it (downloaded, parsed, its items stored, its links queued).  Workers keep a
  heartbeat key with a TTL; live workers hand the in-flight requests of a worker whose heartbeat expired (killed,
  machine gone) back to the queue.  scrapy-redis alone pops and forgets.
- ``RedisSeeds``, an extension: feeds the spider the starts pushed by ``scrapy seed`` (scrapy-redis's spiders start
  only from the idle hook and have no ``async def start()``, so the article spider is not made one), keeps idle
  workers waiting for more, wakes them when other workers queue requests, and closes a worker after
  NEWSCRAWL_REDIS_IDLE_TIMEOUT seconds with the whole crawl finished.  It also moves the spider's hop counts and
  page links to Redis, so that depth means the same with one worker or many.
- ``SharedPolitenessHandler``: DOWNLOAD_DELAY (or AutoThrottle's current delay) between requests to a site
  counted across all workers, through a per-site key in Redis.

Keys (``NEWSCRAWL_REDIS_KEY_PREFIX`` "newscrawl", spider "article"): see ``FrontierKeys``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy_redis.connection import get_redis
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet import task

from newscrawl.spiders.article import HOPS, SEED_KINDS

if TYPE_CHECKING:
    from typing import Self

    from redis import Redis
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from scrapy.http import Response

logger = logging.getLogger(__name__)

#: Queue score of one hop: more than any request priority Scrapy's components give (redirects +2, retries -1).
HOPS_WEIGHT = 1000


@dataclass(frozen=True)
class FrontierKeys:
    """The Redis keys of one spider's shared frontier."""

    prefix: str
    spider: str

    @classmethod
    def from_settings(cls, settings: BaseSettings, spider: str) -> Self:
        return cls(settings.get("NEWSCRAWL_REDIS_KEY_PREFIX") or "newscrawl", spider)

    @property
    def base(self) -> str:
        return f"{self.prefix}:{self.spider}"

    @property
    def seeds(self) -> str:
        """List of starts waiting for a worker: JSON ``{"url": ..., "kind": "page|sitemap|feed|auto"}`` or a bare URL."""
        return f"{self.base}:seeds"

    @property
    def requests(self) -> str:
        """Sorted set of queued requests (scrapy-redis's PriorityQueue: pickled request dicts, score -priority)."""
        return f"{self.base}:requests"

    @property
    def dupefilter(self) -> str:
        """Set of the canonical fingerprints of every request ever queued in this crawl."""
        return f"{self.base}:dupefilter"

    @property
    def domains(self) -> str:
        """Set of the domains the seeds were on: every worker's ``allowed_domains``."""
        return f"{self.base}:domains"

    @property
    def workers(self) -> str:
        """Set of the ids of the workers that may hold requests."""
        return f"{self.base}:workers"

    @property
    def hops(self) -> str:
        """Hash: fewest hops from a seed known for each page key (the spider's ``hops``, shared by all workers)."""
        return f"{self.base}:hops"

    @property
    def links(self) -> str:
        """Hash: the followable links (JSON list) of the pages read most recently (the spider's ``links_of``,
        shared; NEWSCRAWL_LINK_MEMORY pages at most, oldest first in the list ``<links>:order``)."""
        return f"{self.base}:links"

    def heartbeat(self, worker: str) -> str:
        """Exists while the worker is alive: refreshed every third of NEWSCRAWL_REDIS_LEASE_TIMEOUT, expires after it."""
        return f"{self.base}:worker:{worker}"

    def inflight(self, worker: str) -> str:
        """Hash of the requests a worker took and has not finished: queue member -> score."""
        return f"{self.base}:inflight:{worker}"

    def politeness(self, slot: str) -> str:
        """When the next request to a download slot (a host) may go out, in Redis server milliseconds."""
        return f"{self.prefix}:politeness:{slot}"


def redis_from_settings(settings: BaseSettings) -> Redis:
    url = settings.get("NEWSCRAWL_REDIS_URL")
    if not url:
        raise NotConfigured("NEWSCRAWL_REDIS_URL is not set")
    return get_redis(url=url, socket_timeout=30, socket_connect_timeout=10, retry_on_timeout=True)


def seed_data(url: str, kind: str = "auto") -> str:
    """One entry of the seeds list."""
    if kind not in SEED_KINDS:
        raise ValueError(f"unknown kind of start {kind!r}, expected one of {', '.join(SEED_KINDS)}")
    return json.dumps({"url": url, "kind": kind})


def read_seed(data: bytes | str) -> tuple[str, str] | None:
    """(url, kind) of a seeds-list entry: our JSON, scrapy-redis's JSON (``{"url": ...}``) or a bare URL."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("{"):
        try:
            entry = json.loads(text)
        except ValueError:
            return None
        url, kind = entry.get("url"), entry.get("kind", "auto")
        if not isinstance(url, str) or kind not in SEED_KINDS:
            return None
        return url, kind
    return (text, "auto") if text else None


def push_seeds(server: Redis, keys: FrontierKeys, seeds: list[tuple[str, str]]) -> int:
    """Queue starts for the workers (and their hosts as allowed domains); returns the length of the seeds list."""
    hosts = {urlsplit(url).hostname for url, _ in seeds} - {None}
    with server.pipeline() as pipe:
        if hosts:
            pipe.sadd(keys.domains, *sorted(hosts))
        pipe.rpush(keys.seeds, *(seed_data(url, kind) for url, kind in seeds))
        return pipe.execute()[-1]


# --- Lua: each runs atomically in Redis, so a request is always in exactly one of the queue or an in-flight hash.

# KEYS: queue, inflight hash, heartbeat, workers, domains; ARGV: worker id, heartbeat TTL (ms).
# Takes the best request and leases it to the worker (a pop is also a heartbeat); returns {domains count[, member,
# score]}, so that a worker notices new seed domains with the request that may need them.
POP_SCRIPT = """
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
local ndomains = redis.call('SCARD', KEYS[5])
local found = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #found == 0 then return {ndomains} end
redis.call('ZREM', KEYS[1], found[1])
redis.call('HSET', KEYS[2], found[1], found[2])
return {ndomains, found[1], found[2]}
"""

# KEYS: workers, queue; ARGV: key prefix ("<prefix>:<spider>"), worker ids to give back even if alive (own, at
# close).  Returns the number of requests put back in the queue.
RECLAIM_SCRIPT = """
local moved = 0
local ids = redis.call('SMEMBERS', KEYS[1])
for i = 2, #ARGV do table.insert(ids, ARGV[i]) end
local forced = {}
for i = 2, #ARGV do forced[ARGV[i]] = true end
for _, id in ipairs(ids) do
  if forced[id] or redis.call('EXISTS', ARGV[1] .. ':worker:' .. id) == 0 then
    local inflight = ARGV[1] .. ':inflight:' .. id
    local entries = redis.call('HGETALL', inflight)
    for j = 1, #entries, 2 do
      redis.call('ZADD', KEYS[2], entries[j + 1], entries[j])
      moved = moved + 1
    end
    redis.call('DEL', inflight)
    redis.call('SREM', KEYS[1], id)
  end
end
return moved
"""

# KEYS: the slot's politeness key; ARGV: delay (ms).  A request may go out if none to the slot went out in the last
# delay: then it is recorded as sent now and 0 is returned, else how long to wait before asking again (ms).  Redis's
# clock, so workers on machines with skewed clocks agree.
TURN_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[1]) or '')
local delay = tonumber(ARGV[1])
if last == nil or now_ms >= last + delay then
  redis.call('SET', KEYS[1], tostring(now_ms), 'PX', delay + 60000)
  return 0
end
return last + delay - now_ms
"""


@dataclass
class FrontierStatus:
    """What the shared frontier holds; the crawl is finished when nothing is waiting or in flight."""

    seeds: int
    queued: int
    seen: int
    in_flight: dict[str, int]
    """Requests taken and not finished, per worker id."""
    live_workers: list[str]

    @property
    def finished(self) -> bool:
        return not (self.seeds or self.queued or any(self.in_flight.values()))


def frontier_status(server: Redis, keys: FrontierKeys) -> FrontierStatus:
    workers = sorted(member.decode() for member in server.smembers(keys.workers))
    with server.pipeline(transaction=True) as pipe:
        pipe.llen(keys.seeds).zcard(keys.requests).scard(keys.dupefilter)
        for worker in workers:
            pipe.hlen(keys.inflight(worker)).exists(keys.heartbeat(worker))
        results = pipe.execute()
    seeds, queued, seen = results[:3]
    in_flight = {worker: results[3 + 2 * i] for i, worker in enumerate(workers)}
    live = [worker for i, worker in enumerate(workers) if results[4 + 2 * i]]
    return FrontierStatus(seeds, queued, seen, in_flight, live)


def clear_frontier(server: Redis, keys: FrontierKeys) -> int:
    """Delete the whole frontier of the spider (queue, seeds, seen fingerprints, domains, workers' leases)."""
    names = [keys.seeds, keys.requests, keys.dupefilter, keys.domains, keys.workers, keys.hops, keys.links,
             f"{keys.links}:order"]
    names += [key for key in server.scan_iter(match=f"{keys.base}:worker:*", count=1000)]
    names += [key for key in server.scan_iter(match=f"{keys.base}:inflight:*", count=1000)]
    return server.delete(*names)


# KEYS: hash; ARGV: field, value.  Sets the field only if it is absent or holds a larger number.
SET_MIN_SCRIPT = """
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if old == nil or tonumber(ARGV[2]) < old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""


class SharedMapping(MutableMapping[str, Any]):
    """A dict of JSON values kept in one Redis hash: a spider's crawl state seen alike by every worker."""

    def __init__(self, server: Redis, key: str):
        self.server = server
        self.key = key

    def __getitem__(self, name: str) -> Any:
        value = self.server.hget(self.key, name)
        if value is None:
            raise KeyError(name)
        return json.loads(value)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.server.hget(self.key, name)
        return default if value is None else json.loads(value)

    def __setitem__(self, name: str, value: Any) -> None:
        self.server.hset(self.key, name, json.dumps(value))

    def __delitem__(self, name: str) -> None:
        if not self.server.hdel(self.key, name):
            raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.server.hexists(self.key, name))

    def __iter__(self) -> Iterator[str]:
        return (name.decode() for name, _ in self.server.hscan_iter(self.key, count=1000))

    def __len__(self) -> int:
        return self.server.hlen(self.key)


class SharedHops(SharedMapping):
    """The spider's fewest-hops map: a value is only ever lowered, so two workers racing keep the shorter path."""

    def __init__(self, server: Redis, key: str):
        super().__init__(server, key)
        self.set_min = server.register_script(SET_MIN_SCRIPT)

    def __setitem__(self, name: str, value: int) -> None:
        self.set_min(keys=[self.key], args=[name, int(value)])


# KEYS: hash, order list; ARGV: field, value, capacity.  Sets the field, and drops the oldest fields past capacity.
SET_RECENT_SCRIPT = """
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[1]) end
local capacity = tonumber(ARGV[3])
while redis.call('LLEN', KEYS[2]) > capacity do
  redis.call('HDEL', KEYS[1], redis.call('LPOP', KEYS[2]))
end
"""


class SharedRecentLinks(SharedMapping):
    """The spider's links of the pages read most recently, at most ``capacity`` pages over all workers together
    (as ``RecentLinks`` keeps them in one process): the crawl's memory in Redis does not grow with the crawl."""

    def __init__(self, server: Redis, key: str, capacity: int):
        super().__init__(server, key)
        self.order = f"{key}:order"
        self.capacity = capacity
        self.set_recent = server.register_script(SET_RECENT_SCRIPT)

    def __setitem__(self, name: str, value: list[str]) -> None:
        self.set_recent(keys=[self.key, self.order], args=[name, json.dumps(value), self.capacity])


def wake(crawler: Crawler) -> None:
    """Make the engine ask the scheduler for requests now.

    An idle engine asks only every 5 seconds (its heartbeat), and nothing public schedules that call: requests
    queued by other workers, or reclaimed, would wait that long.
    """
    slot = getattr(crawler.engine, "_slot", None)
    if slot is not None:
        slot.nextcall.schedule()


def in_progress(crawler: Crawler) -> set[Request]:
    """The requests the engine took from the scheduler and has not finished: downloading, waiting for a download
    slot, or being parsed with their items in the pipelines.  Scrapy tells a scheduler about none of that, so this
    reads the engine's own set, the one it waits on before closing a spider."""
    slot = getattr(crawler.engine, "_slot", None)
    return slot.inprogress if slot is not None else set()


class CanonicalDupeFilter(RFPDupeFilter):
    """scrapy-redis's dupefilter on the crawler's request fingerprint (one per canonical URL), shared by all workers."""

    def __init__(self, server: Redis, key: str, debug: bool = False, fingerprinter: Any = None):
        super().__init__(server, key, debug)
        self.fingerprinter = fingerprinter

    @classmethod
    def from_spider(cls, spider: Spider) -> Self:
        settings = spider.settings
        key = settings.get("SCHEDULER_DUPEFILTER_KEY") % {"spider": spider.name}
        return cls(redis_from_settings(settings), key, settings.getbool("DUPEFILTER_DEBUG"),
                   spider.crawler.request_fingerprinter)

    def request_fingerprint(self, request: Request) -> str:
        return self.fingerprinter.fingerprint(request).hex()


class LeasedPriorityQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pop leases the request to a worker instead of forgetting it.

    Ordered by hops from the seeds first, then by priority: breadth-first, so that a page is mostly reached first
    by its shortest path (when not, the shared hops map in ``RedisSeeds`` mends the distance without a refetch).
    """

    def push(self, request: Request) -> None:
        score = request.meta.get(HOPS, 0) * HOPS_WEIGHT - request.priority
        self.server.execute_command("ZADD", self.key, score, self._encode_request(request))

    def pop_leased(self, keys: FrontierKeys, worker: str, ttl_ms: int) -> tuple[int, bytes, float] | None:
        """(domains count, member, score) of the request now leased to ``worker``; (domains count,) when empty."""
        script = self.server.register_script(POP_SCRIPT)
        reply = script(keys=[self.key, keys.inflight(worker), keys.heartbeat(worker), keys.workers, keys.domains],
                       args=[worker, ttl_ms])
        return reply

    def decode(self, member: bytes) -> Request:
        return self._decode_request(member)


class LeasedScheduler(Scheduler):
    """scrapy-redis's scheduler with leases: what a killed worker had taken is fetched by another.

    NEWSCRAWL_REDIS_LEASE_TIMEOUT (seconds): how long a worker may go without a heartbeat before live workers give
    its requests to the queue again.  The heartbeat is a thread of its own, so a worker whose reactor is busy for a
    while (a slow database write) keeps its requests; a process that is gone (SIGKILL, OOM, a lost machine) stops
    beating.  A worker cut off from Redis for longer than the timeout fetches its requests twice, never zero times.
    """

    queue: LeasedPriorityQueue

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        scheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.lease_timeout = crawler.settings.getfloat("NEWSCRAWL_REDIS_LEASE_TIMEOUT", 30.0)
        if scheduler.lease_timeout <= 0:
            raise ValueError("NEWSCRAWL_REDIS_LEASE_TIMEOUT must be more than 0 seconds")
        settings = crawler.settings
        scheduler.prefetch = max(settings.getint("NEWSCRAWL_REDIS_PREFETCH")
                                 or settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"), 1)
        scheduler.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        scheduler.leases = {}
        scheduler.domain_count = -1
        scheduler.ticks = None
        scheduler.heartbeat = None
        scheduler.stopping = threading.Event()
        return scheduler

    # Attributes set in from_crawler (scrapy-redis builds the instance in from_settings, with its own arguments).
    crawler: Crawler
    lease_timeout: float
    worker: str
    prefetch: int
    """Requests a worker takes ahead of its downloads: more wait in its download slots while others idle."""
    leases: dict[Request, bytes]
    domain_count: int
    ticks: task.LoopingCall | None
    heartbeat: threading.Thread | None
    stopping: threading.Event

    @cached_property
    def keys(self) -> FrontierKeys:
        return FrontierKeys.from_settings(self.crawler.settings, self.spider.name)

    @property
    def ttl_ms(self) -> int:
        return int(self.lease_timeout * 1000)

    def open(self, spider: Spider) -> None:
        super().open(spider)
        self.refresh_domains()
        self.beat()
        self.heartbeat = threading.Thread(target=self.beat_until_closed, name="newscrawl-heartbeat", daemon=True)
        self.heartbeat.start()
        self.ticks = task.LoopingCall(self.tick)
        self.ticks.start(self.beat_interval, now=False)
        logger.info("Worker %s of the shared frontier %s (lease timeout %ss)", self.worker, self.keys.base,
                    self.lease_timeout)

    def close(self, reason: str) -> None:
        if self.ticks is not None and self.ticks.running:
            self.ticks.stop()
        self.stopping.set()
        if self.heartbeat is not None:
            self.heartbeat.join(timeout=self.beat_interval + 5)
        # The engine waits for every request it took before closing the scheduler: all of them are finished.
        self.release(list(self.leases))
        self.server.delete(self.keys.heartbeat(self.worker))
        # Anything still leased under this id (a request that could not be decoded) goes back to the queue.
        self.reclaim(own=True)
        super().close(reason)

    @property
    def beat_interval(self) -> float:
        return max(self.lease_timeout / 3, 0.1)

    def beat(self) -> None:
        """Say this worker is alive for another lease timeout."""
        keys = self.keys
        with self.server.pipeline() as pipe:
            pipe.set(keys.heartbeat(self.worker), "1", px=self.ttl_ms).sadd(keys.workers, self.worker)
            pipe.execute()

    def beat_until_closed(self) -> None:
        while not self.stopping.wait(self.beat_interval):
            try:
                self.beat()
            except Exception:  # Redis away for a moment: the next beat tries again, the lease says how long it may
                logger.warning("Heartbeat to Redis failed", exc_info=True)

    def tick(self) -> None:
        """Let go of finished requests; give back those of workers that stopped beating."""
        self.release_finished()
        moved = self.reclaim()
        if moved:
            logger.warning("Gave %d requests of workers that stopped answering back to the queue", moved)
            self.stats.inc_value("newscrawl/distributed/reclaimed", moved)
            wake(self.crawler)

    def reclaim(self, own: bool = False) -> int:
        script = self.server.register_script(RECLAIM_SCRIPT)
        return script(keys=[self.keys.workers, self.keys.requests],
                      args=[self.keys.base, *([self.worker] if own else [])])

    def release_finished(self) -> None:
        if self.leases:
            active = in_progress(self.crawler)
            self.release([request for request in self.leases if request not in active])

    def release(self, requests: list[Request]) -> None:
        members = [self.leases.pop(request) for request in requests]
        if members:
            self.server.hdel(self.keys.inflight(self.worker), *members)
            self.stats.inc_value("newscrawl/distributed/finished", len(members))

    def waiting_for_download(self) -> int:
        """Requests this worker took that wait in its download slots, not yet sent."""
        return sum(len(slot.queue) for slot in self.crawler.engine.downloader.slots.values())

    def refresh_domains(self) -> None:
        """The spider's allowed domains: its own (-a) and those of every seed of the crawl."""
        spider = self.spider
        if not hasattr(spider, "own_allowed_domains"):
            spider.own_allowed_domains = list(getattr(spider, "allowed_domains", None) or [])
            if spider.own_allowed_domains:  # the worker's -a starts go into the shared queue: their domains too
                self.server.sadd(self.keys.domains, *spider.own_allowed_domains)
        shared = {member.decode() for member in self.server.smembers(self.keys.domains)}
        self.domain_count = len(shared)
        spider.allowed_domains = sorted(set(spider.own_allowed_domains) | shared)

    def enqueue_request(self, request: Request) -> bool:
        # scrapy-redis's own passes a spider argument to the stats, which Scrapy 2.19 deprecates.
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            self.stats.inc_value("dupefilter/filtered")  # as Scrapy's own dupefilter counts
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        self.release_finished()
        if self.waiting_for_download() >= self.prefetch:
            # Scrapy takes up to CONCURRENT_REQUESTS requests from its scheduler, however few it may download at
            # once per site: in a shared frontier those would wait here while other workers sit idle.
            return None
        reply = self.queue.pop_leased(self.keys, self.worker, self.ttl_ms)
        if reply[0] != self.domain_count:
            self.refresh_domains()
        if len(reply) == 1:
            return None
        member = reply[1]
        try:
            request = self.queue.decode(member)
        except Exception:
            # A request this code cannot rebuild (another version's callback): it would be leased forever.
            logger.exception("Dropped a request from the shared queue that cannot be decoded")
            self.server.hdel(self.keys.inflight(self.worker), member)
            self.stats.inc_value("newscrawl/distributed/undecodable")
            return None
        self.leases[request] = member
        self.stats.inc_value("scheduler/dequeued/redis")
        return request


class RedisSeeds:
    """Starts from the shared seeds list; waits for more while idle; closes after NEWSCRAWL_REDIS_IDLE_TIMEOUT seconds
    with the whole crawl finished (0: waits for seeds until stopped).

    It also gives the spider shared crawl state: its ``hops`` (fewest hops known per page) and ``links_of`` (the
    links of each page read) live in Redis, so that a shorter path to a page found on one worker after another
    worker read the page still passes the shorter distance on to its links, as within one process.
    """

    def __init__(self, crawler: Crawler, server: Redis, idle_timeout: float, poll_interval: float, batch: int):
        self.crawler = crawler
        self.server = server
        self.idle_timeout = idle_timeout
        self.poll_interval = poll_interval
        self.batch = batch
        self.finished_since: float | None = None
        self.poll: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        extension = cls(crawler, redis_from_settings(settings),
                        idle_timeout=settings.getfloat("NEWSCRAWL_REDIS_IDLE_TIMEOUT", 0.0),
                        poll_interval=settings.getfloat("NEWSCRAWL_REDIS_POLL_INTERVAL", 0.5),
                        batch=settings.getint("CONCURRENT_REQUESTS", 16))
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    @cached_property
    def keys(self) -> FrontierKeys:
        return FrontierKeys.from_settings(self.crawler.settings, self.crawler.spider.name)

    def spider_opened(self, spider: Spider) -> None:
        if isinstance(getattr(spider, "hops", None), dict) and isinstance(getattr(spider, "links_of", None), dict):
            capacity = getattr(spider.links_of, "capacity", 10_000)
            shared_hops = SharedHops(self.server, self.keys.hops)
            shared_links = SharedRecentLinks(self.server, self.keys.links, capacity)
            for name, hops in spider.hops.items():  # the -a starts, read before the crawl opened
                shared_hops[name] = hops
            spider.hops, spider.links_of = shared_hops, shared_links
        self.poll = task.LoopingCall(self.check)
        self.poll.start(self.poll_interval, now=False)

    def spider_closed(self, spider: Spider) -> None:
        if self.poll is not None and self.poll.running:
            self.poll.stop()

    def check(self) -> None:
        """Keep the shared queue fed from the seeds, and wake the engine as soon as the queue has something."""
        with self.server.pipeline(transaction=False) as pipe:
            queued, seeds = pipe.zcard(self.keys.requests).llen(self.keys.seeds).execute()
        if seeds and not queued:
            # A worker reads seeds when idle; a long list of page seeds would otherwise reach the queue only a
            # batch at a time, each time a worker ran dry.
            self.feed(self.crawler.spider, self.pop_seeds())
            queued = 1
        if queued:
            wake(self.crawler)

    def pop_seeds(self) -> list[tuple[str, str]]:
        with self.server.pipeline() as pipe:
            pipe.lrange(self.keys.seeds, 0, self.batch - 1).ltrim(self.keys.seeds, self.batch, -1)
            entries, _ = pipe.execute()
        seeds = []
        for entry in entries:
            seed = read_seed(entry)
            if seed is None:
                logger.warning("Ignored a seed that is neither a URL nor {\"url\": ..., \"kind\": ...}: %r", entry)
                self.crawler.stats.inc_value("newscrawl/seeds/invalid")
            else:
                seeds.append(seed)
        return seeds

    def feed(self, spider: Spider, seeds: list[tuple[str, str]]) -> None:
        """The spider's requests for the seeds, into the shared queue."""
        hosts = {urlsplit(url).hostname for url, _ in seeds} - {None}
        if hosts:  # seeds pushed without `scrapy seed` (redis-cli) bring their domains too
            self.server.sadd(self.keys.domains, *sorted(hosts))
        for url, kind in seeds:
            logger.info("Seed (%s): %s", kind, url)
            self.crawler.stats.inc_value("newscrawl/seeds/read")
            try:
                for request in spider.seed_requests(url, kind):
                    self.crawler.engine.crawl(request)
            except ValueError as exc:
                logger.warning("Ignored seed %s: %s", url, exc)

    def spider_idle(self, spider: Spider) -> None:
        seeds = self.pop_seeds()
        if seeds:
            self.feed(spider, seeds)
            self.finished_since = None
            raise DontCloseSpider
        status = frontier_status(self.server, self.keys)
        if not status.finished:
            self.finished_since = None
            raise DontCloseSpider
        now = time.monotonic()
        if self.finished_since is None:
            self.finished_since = now
            logger.info("The shared frontier %s is empty and nothing is in flight; waiting for seeds", self.keys.base)
        if self.idle_timeout and now - self.finished_since >= self.idle_timeout:
            return  # the engine closes the spider, reason "finished"
        raise DontCloseSpider


class SharedPolitenessHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP(S) download handler, keeping DOWNLOAD_DELAY between requests to one site across all workers.

    A request goes out only when none to its download slot (its host) went out from any worker in the last delay, as
    Redis records, so N workers together send no more often than one would.  It waits here, at the moment the
    request goes out, and not in a downloader middleware: a worker's own download slot may hold a request back after
    a middleware let it pass, which would bunch it with another worker's.  The delay is the slot's current one: DOWNLOAD_DELAY, or what
    AutoThrottle made of it.  CONCURRENT_REQUESTS_PER_DOMAIN stays per worker.
    """

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.server = redis_from_settings(crawler.settings)
        self.script = self.server.register_script(TURN_SCRIPT)
        self.keys = FrontierKeys.from_settings(crawler.settings, "")  # politeness keys are per site, not per spider

    def slot_delay(self, request: Request) -> tuple[str, float]:
        downloader = self._crawler.engine.downloader
        key = downloader.get_slot_key(request)
        slot = downloader.slots.get(key)
        delay = slot.delay if slot is not None else self._crawler.settings.getfloat("DOWNLOAD_DELAY")
        return key, delay

    async def download_request(self, request: Request) -> Response:
        key, delay = self.slot_delay(request)
        if delay > 0:
            await self.wait_for_turn(key, delay)
        return await super().download_request(request)

    async def wait_for_turn(self, slot: str, delay: float) -> None:
        """Wait until no request to the slot has gone out, from any worker, for ``delay`` seconds.

        Asked again after each wait rather than booked ahead: a worker that was busy when its turn came (parsing, a
        database write) would otherwise send late, next to another worker's request.
        """
        key = self.keys.politeness(slot)
        stats = self._crawler.stats
        # Bounded: with many workers on one site a request could lose the race again and again; after this long it
        # goes out anyway (and is counted), rather than waiting for ever.
        deadline = time.monotonic() + max(60.0, 100 * delay)
        while time.monotonic() < deadline:
            wait_ms = self.script(keys=[key], args=[max(int(delay * 1000), 1)])
            if wait_ms <= 0:
                return
            stats.inc_value("newscrawl/distributed/politeness_waits")
            await asyncio.sleep(wait_ms / 1000)
        stats.inc_value("newscrawl/distributed/politeness_gave_up")
