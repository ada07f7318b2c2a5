"""A small Scrapyd JSON API client for `scrapy schedule --scrapyd`: schedule a crawl, list the jobs of a project."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from newscrawl.schedule import Crawl, setting_text

#: Form fields schedule.json reads itself; a spider argument of one of these names cannot be passed.
RESERVED_FIELDS = {"project", "spider", "setting", "jobid", "_version", "priority"}


class ScrapydError(RuntimeError):
    """Scrapyd could not be reached or refused the call; the message is Scrapyd's."""


def job_id(crawl: str, now: datetime) -> str:
    """A job id that names its crawl: ``<crawl>@<UTC time>``, so the crawl's jobs are found in listjobs.json."""
    return f"{crawl}@{now.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S')}"


def crawl_of_job(job: str) -> str:
    return job.rpartition("@")[0]


class ScrapydClient:
    def __init__(self, url: str, project: str, timeout: float = 30.0):
        # scrapyd-client trips over a trailing slash in [deploy] url; here it is simply dropped.
        self.url = url.rstrip("/")
        self.project = project
        self.timeout = timeout

    def _call(self, endpoint: str, fields: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        if fields is None:  # GET with the project as query
            request = urllib.request.Request(f"{self.url}/{endpoint}?{urlencode({'project': self.project})}")
        else:
            request = urllib.request.Request(f"{self.url}/{endpoint}", data=urlencode(fields).encode("ascii"))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise ScrapydError(f"{endpoint}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ScrapydError(f"{endpoint}: {exc}") from exc
        if answer.get("status") != "ok":
            raise ScrapydError(f"{endpoint}: {answer.get('message') or answer}")
        return answer

    def active_crawls(self) -> set[str]:
        """Crawl names of this project's pending and running jobs (those scheduled by `scrapy schedule`)."""
        jobs = self._call("listjobs.json")
        return {crawl_of_job(job["id"]) for job in [*jobs.get("pending", []), *jobs.get("running", [])]}

    def finished_jobs(self) -> set[str]:
        return {job["id"] for job in self._call("listjobs.json").get("finished", [])}

    def schedule(self, crawl: Crawl, overrides: dict[str, Any], now: datetime) -> str:
        """Queue one run of the crawl; returns its job id."""
        clash = RESERVED_FIELDS & set(crawl.args)
        if clash:
            raise ScrapydError(f"crawl {crawl.name}: Scrapyd cannot pass spider arguments named {sorted(clash)}")
        job = job_id(crawl.name, now)
        fields = [("project", self.project), ("spider", crawl.spider), ("jobid", job)]
        fields += [(key, setting_text(value)) for key, value in crawl.args.items()]
        fields += [("setting", f"{key}={setting_text(value)}") for key, value in crawl.effective_settings(overrides).items()]
        return self._call("schedule.json", fields)["jobid"]
