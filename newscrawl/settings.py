"""Scrapy settings of the newscrawl project; every NEWSCRAWL_* setting is read here or in from_crawler."""

import os

BOT_NAME = "newscrawl"
SPIDER_MODULES = ["newscrawl.spiders"]
NEWSPIDER_MODULE = "newscrawl.spiders"
COMMANDS_MODULE = "newscrawl.commands"

# Site operators must be able to reach whoever runs the crawl: set NEWSCRAWL_CONTACT_URL in the environment.
NEWSCRAWL_CONTACT_URL = os.environ.get("NEWSCRAWL_CONTACT_URL", "https://newscrawl.invalid/contact")
USER_AGENT = f"newscrawl/0.1 (news research crawler; +{NEWSCRAWL_CONTACT_URL})"

# Politeness: obey robots.txt, few parallel requests per site, and let AutoThrottle follow the server's latency.
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0

# An article page is well under a megabyte; anything huge is not what this crawler is for.
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024

# No listening sockets in a crawler process: neither the telnet console nor Scrapy 2.19's remote-control server.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

DOWNLOADER_MIDDLEWARES = {
    # After OffsiteMiddleware (50) and RobotsTxtMiddleware (100): only requests that would really go out count.
    "newscrawl.downloadermiddlewares.domaincap.DomainCapMiddleware": 120,
    # Next to the download handler, like HttpCacheMiddleware (900): a replayed page skips only the network.
    "newscrawl.middlewares.ReplayMiddleware": 950,
    # The last to see a response (lowest number): it reads the final, decoded page in a worker process.
    "newscrawl.extraction.ExtractionPoolMiddleware": 30,
}
# Worker processes that read pages beside the crawl's own ("auto": one when the machine has a second core;
# 0: read pages in the crawl's process).
NEWSCRAWL_EXTRACTION_WORKERS = "auto"
SPIDER_MIDDLEWARES = {
    # Beside DepthMiddleware (900): links are judged as the spider yields them, before they reach the scheduler.
    "newscrawl.spidermiddlewares.traps.TrapMiddleware": 850,
}

# One fetch per page: the dupefilter (and anything keyed on fingerprints) sees the URL without fragment, tracking
# parameters (utm_*, fbclid, gclid, mc_cid, ref, ...) or host case, so /a?utm_source=x#top and /a are one request.
REQUEST_FINGERPRINTER_CLASS = "newscrawl.urls.CanonicalRequestFingerprinter"
# Bounds of every crawl besides -a depth= and -a max_pages= (CLOSESPIDER_PAGECOUNT): pages per host, 0 = no cap.
NEWSCRAWL_MAX_PAGES_PER_DOMAIN = 5000
# URL spaces that grow forever: a dated page may lead to this many more of the same template (calendars), and a
# path word may occur this many times; session ids in paths or queries are always refused.
NEWSCRAWL_TRAPS_ENABLED = True
NEWSCRAWL_TRAPS_CALENDAR_MAX_STEPS = 2
NEWSCRAWL_TRAPS_MAX_SEGMENT_REPEATS = 2

ITEM_PIPELINES = {
    "newscrawl.pipelines.SeparatePipeline": 100,
    "newscrawl.templates.TemplatePipeline": 150,
    "newscrawl.pipelines.ValidatePipeline": 200,
    "newscrawl.pipelines.StoragePipeline": 800,
}

# Where items are stored: sqlite:///relative/path, sqlite:////absolute/path or postgresql://user:pw@host/db;
# empty switches storage off (and with it incremental crawling and the runs table).
NEWSCRAWL_DATABASE_URL = os.environ.get("NEWSCRAWL_DATABASE_URL", "sqlite:///data/newscrawl.sqlite3")
# Items written per transaction.
NEWSCRAWL_STORAGE_BATCH_SIZE = 50
# Batches that could not be written wait here as JSONL and are written when storage next opens.
NEWSCRAWL_SPOOL_DIR = "data/spool"
# A folder of saved pages (fixtures/pages); when set, their URLs are answered from disk instead of the network.
NEWSCRAWL_REPLAY_DIR = ""

# --- reliability and security (issue 5) ---
DOWNLOADER_MIDDLEWARES = {
    **DOWNLOADER_MIDDLEWARES,
    # Scrapy's RetryMiddleware ignores Retry-After; this subclass waits (backoff or Retry-After) in its place.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "newscrawl.downloadermiddlewares.retry.BackoffRetryMiddleware": 550,
    # Below HttpCompressionMiddleware (590) to see the decoded body, above MetaRefreshMiddleware (580) that parses it.
    "newscrawl.downloadermiddlewares.content.ContentGuardMiddleware": 585,
    # Last before the network (after ReplayMiddleware, 950): judges exactly the requests that would go out.
    "newscrawl.downloadermiddlewares.ssrf.SSRFGuardMiddleware": 980,
}
EXTENSIONS = {"newscrawl.extensions.health.HealthReport": 500}

# SSRF guard: only the user's start origins and these hosts ("host" or "host:port") may be non-public addresses.
NEWSCRAWL_SSRF_ALLOWED_HOSTS: list[str] = []
NEWSCRAWL_SSRF_TRUST_START_ORIGINS = True
NEWSCRAWL_SSRF_DNS_CACHE_SECONDS = 60  # as DNSCACHE keeps answers, so the checked address is the one used

# Faults: a few retries with growing waits (or the server's Retry-After, up to the max), then one ERROR line.
RETRY_TIMES = 2
NEWSCRAWL_RETRY_BACKOFF_BASE = 2.0
NEWSCRAWL_RETRY_MAX_DELAY = 120.0
DNS_TIMEOUT = 15
# A body shorter than its Content-Length is an error (retried), never a page; ContentGuardMiddleware backs this up.
DOWNLOAD_FAIL_ON_DATALOSS = True
# Loops and long chains stop here; a redirect to another host is re-checked by offsite, robots.txt and the SSRF guard.
REDIRECT_MAX_TIMES = 5
METAREFRESH_MAXDELAY = 10
# The "Gave up retrying" ERROR line is the report of a failed download; no second line with a traceback.
LOG_FORMATTER = "newscrawl.logformatter.NewscrawlLogFormatter"
# DOWNLOAD_MAXSIZE above also caps decompression (HttpCompressionMiddleware): gzip/deflate/brotli/zstd bombs stop there.

# Health report at the end of each crawl; `scrapy crawl` exits 3 when a threshold is crossed (unset = not checked).
NEWSCRAWL_HEALTH_MAX_ERROR_RATIO = 0.25
NEWSCRAWL_HEALTH_MAX_EMPTY_RATIO = 0.8
NEWSCRAWL_HEALTH_MIN_ITEMS = 1
# With JOBDIR, a crawl killed mid-way (SIGKILL, OOM) is started over from its start URLs by the next crawl in the same
# directory, instead of resuming a queue that was never written; a cleanly stopped one resumes as Scrapy resumes it.
SCHEDULER = "newscrawl.scheduler.ResumableScheduler"
# Scrapy's cookie handling (tldextract) would download the Public Suffix List on first use, outside the downloader and
# its SSRF guard: this extension makes it read the list bundled with tldextract. False lets it download again.
EXTENSIONS = {**EXTENSIONS, "newscrawl.extensions.psl.OfflinePublicSuffixList": 0}
NEWSCRAWL_PSL_OFFLINE = True

# --- incremental and scheduled crawls (issue 6) ---
DOWNLOADER_MIDDLEWARES = {
    **DOWNLOADER_MIDDLEWARES,
    # Below RedirectMiddleware (600) and HttpCompressionMiddleware (590): sees final, decoded responses, so the
    # fetch state is keyed by the URL the article was read from.
    "newscrawl.downloadermiddlewares.incremental.ConditionalRequestMiddleware": 570,
}
EXTENSIONS = {**EXTENSIONS, "newscrawl.extensions.runs.RunRecorder": 400}
# Conditional requests (If-None-Match / If-Modified-Since) for pages whose article is stored; start pages, feeds
# and sitemaps are always fetched in full.
NEWSCRAWL_INCREMENTAL = True
# A stored page asked less than this many seconds ago is not asked again; 0: every run asks, conditionally.
NEWSCRAWL_REVISIT_AFTER = 0
# The name a run is recorded under in the runs table (`scrapy schedule` sets it per crawl); empty: the spider's name.
NEWSCRAWL_CRAWL_NAME = ""
NEWSCRAWL_RUNS_ENABLED = True
# `scrapy schedule` keeps one lock file per crawl here; the kernel frees a lock when its run ends, however it ends.
NEWSCRAWL_LOCK_DIR = "data/locks"
# Job directories (JOBDIR) of the crawls.toml crawls with resume = true, one per crawl.
NEWSCRAWL_JOBS_DIR = "data/jobs"

# --- distributed crawls (issue 8) ---
# With a Redis URL, every `scrapy crawl article` started with it is a worker of one crawl: the add-on switches the
# scheduler and dupefilter to scrapy-redis's (the frontier lives in Redis) and starts come from `scrapy seed`.
ADDONS = {"newscrawl.addons.DistributedCrawl": 0}
NEWSCRAWL_REDIS_URL = os.environ.get("NEWSCRAWL_REDIS_URL", "")
# Keys are <prefix>:<spider>:... (see newscrawl.distributed.FrontierKeys); another prefix is another crawl.
NEWSCRAWL_REDIS_KEY_PREFIX = "newscrawl"
# A worker silent this long (killed, frozen, cut off) loses its requests to the queue, and live workers fetch them.
NEWSCRAWL_REDIS_LEASE_TIMEOUT = 30
# Seconds a worker waits, once the whole crawl is finished (nothing queued or in flight), before it exits; 0: never.
NEWSCRAWL_REDIS_IDLE_TIMEOUT = 0
# How often an idle worker looks for requests queued by others or new seeds.
NEWSCRAWL_REDIS_POLL_INTERVAL = 0.5
# Requests a worker may hold waiting for a download slot; more stay in the shared queue for other workers.
# 0: CONCURRENT_REQUESTS_PER_DOMAIN (raise it for crawls of many sites at once with a download delay).
NEWSCRAWL_REDIS_PREFETCH = 0
# DOWNLOAD_DELAY (or AutoThrottle's delay) between requests to one site, counted over all workers together.
NEWSCRAWL_REDIS_POLITENESS = True
