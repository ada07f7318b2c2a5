"""Scheduled crawls: the crawls.toml file, when a crawl is due, a per-crawl lock, and the `scrapy crawl` it runs."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from croniter import croniter

#: "90", "90s", "15m", "2h", "1d": an interval between the starts of two runs.
INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: A crawl's name is also its lock file's name and its name in the runs table.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ScheduleError(ValueError):
    """crawls.toml is not usable; the message names the crawl and the key."""


@dataclass
class Crawl:
    """One ``[crawls.<name>]`` table of crawls.toml."""

    name: str
    spider: str = "article"
    #: Spider arguments, passed as ``-a key=value`` (url, urls, depth, sitemap, feed, ...).
    args: dict[str, Any] = field(default_factory=dict)
    #: Scrapy settings for this crawl, passed as ``-s NAME=value`` (caps, NEWSCRAWL_DATABASE_URL, ...).
    settings: dict[str, Any] = field(default_factory=dict)
    #: Seconds between the starts of two runs, or None when ``cron`` says when.
    every: float | None = None
    #: A five-field cron expression, in UTC, or None when ``every`` says when.
    cron: str | None = None
    #: Keep a JOBDIR per crawl, so that a run stopped with SIGTERM is resumed by the next one (see README).
    resume: bool = False

    def next_run(self, last_start: datetime | None) -> datetime | None:
        """When the crawl is next due after a run that started at ``last_start``; None: due now (never ran)."""
        if last_start is None:
            return None
        if self.every is not None:
            return last_start + timedelta(seconds=self.every)
        return croniter(self.cron, last_start).get_next(datetime)

    def is_due(self, last_start: datetime | None, now: datetime) -> bool:
        when = self.next_run(last_start)
        return when is None or when <= now

    def effective_settings(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The settings a run gets on its command line: this crawl's, then ``overrides`` (the scheduler's own -s)."""
        return {**self.settings, **(overrides or {}), "NEWSCRAWL_CRAWL_NAME": self.name}

    def command(self, overrides: dict[str, Any] | None = None) -> list[str]:
        """The ``scrapy crawl`` command line of one run of this crawl."""
        command = [sys.executable, "-m", "scrapy", "crawl", self.spider]
        for key, value in self.args.items():
            command += ["-a", f"{key}={setting_text(value)}"]
        for key, value in self.effective_settings(overrides).items():
            command += ["-s", f"{key}={setting_text(value)}"]
        return command


def setting_text(value: Any) -> str:
    """A TOML value as Scrapy reads it from the command line: dicts as JSON, lists comma-separated."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def parse_interval(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = INTERVAL.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise ScheduleError(f"{where}: every must be a positive interval like 90, \"90s\", \"15m\", \"2h\" or \"1d\", got {value!r}")
    return float(int(match.group(1)) * UNIT_SECONDS[match.group(2)])


def load_crawls(path: str | Path) -> list[Crawl]:
    """The crawls of a crawls.toml, ``[defaults]`` merged under each; raises ScheduleError on anything unusable."""
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScheduleError(f"cannot read {path}: {exc}") from exc
    unknown = set(data) - {"defaults", "crawls"}
    if unknown:
        raise ScheduleError(f"{path}: unknown top-level keys {sorted(unknown)} (expected [defaults] and [crawls.<name>])")
    defaults = data.get("defaults", {})
    tables = data.get("crawls", {})
    if not tables:
        raise ScheduleError(f"{path}: no [crawls.<name>] table")
    crawls = []
    for name, table in tables.items():
        where = f"{path}: [crawls.{name}]"
        if not NAME.match(name):
            raise ScheduleError(f"{where}: a crawl name is letters, digits, '.', '_' and '-'")
        merged = {**defaults, **table,
                  "args": {**defaults.get("args", {}), **table.get("args", {})},
                  "settings": {**defaults.get("settings", {}), **table.get("settings", {})}}
        extra = set(merged) - {"spider", "args", "settings", "every", "cron", "resume"}
        if extra:
            raise ScheduleError(f"{where}: unknown keys {sorted(extra)}")
        if ("every" in merged) == ("cron" in merged):
            raise ScheduleError(f"{where}: give exactly one of every = \"15m\" or cron = \"*/15 * * * *\"")
        cron = merged.get("cron")
        if cron is not None and not (isinstance(cron, str) and croniter.is_valid(cron)):
            raise ScheduleError(f"{where}: cron is not a valid cron expression: {cron!r}")
        resume = merged.get("resume", False)
        if not isinstance(resume, bool):
            raise ScheduleError(f"{where}: resume is true or false, got {resume!r}")
        if resume and "JOBDIR" in merged["settings"]:
            raise ScheduleError(f"{where}: resume = true keeps its own JOBDIR; drop JOBDIR from settings")
        crawls.append(Crawl(
            name=name, spider=str(merged.get("spider", "article")), args=dict(merged["args"]),
            settings=dict(merged["settings"]),
            every=parse_interval(merged["every"], where) if "every" in merged else None, cron=cron, resume=resume,
        ))
    return crawls


class CrawlLock:
    """An exclusive ``flock`` on ``<lock_dir>/<crawl>.lock``, held by the scheduler and inherited by its crawl.

    The kernel drops the lock when the last process holding it ends, however it ends (SIGKILL included), so a
    crashed run never leaves it stuck. The file holds the pid of the last holder, for the "already running" line.
    It serialises runs on one host; crawls of one database from several hosts need one scheduler host.
    """

    def __init__(self, lock_dir: str | Path, crawl: str):
        self.path = Path(lock_dir) / f"{crawl}.lock"
        self.file: IO[str] | None = None

    def acquire(self) -> bool:
        """True when this process now holds the lock; False when another run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self.file = file
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text("utf-8").strip() or "?"
        except OSError:
            return "?"

    def fileno(self) -> int:
        assert self.file is not None
        return self.file.fileno()

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing our descriptor releases the lock once the crawl's copy is closed too
            self.file = None


def start_crawl(crawl: Crawl, lock: CrawlLock, cwd: str | Path, overrides: dict[str, Any] | None = None) -> subprocess.Popen:
    """Start one run as a child process that inherits the crawl's lock, so the lock lives as long as the run.

    The run logs to our stderr: cron mails it, journald keeps it. It gets its own process group, so a Ctrl-C
    at the terminal reaches only the scheduler, which then asks each run once to close (a second signal would
    make Scrapy stop without closing the spider).
    """
    return subprocess.Popen(crawl.command(overrides), cwd=cwd, pass_fds=(lock.fileno(),), process_group=0)


def utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
