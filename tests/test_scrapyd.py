"""`scrapy schedule --scrapyd`: the project deployed with scrapyd-deploy to a real Scrapyd on 127.0.0.1, crawls handed to it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from newscrawl.schedule import Crawl
from newscrawl.scrapyd import ScrapydClient, ScrapydError, crawl_of_job, job_id
from newscrawl.storage import open_storage
from tests.support.conditional_server import serve_conditional

from .conftest import FIXTURE_SITE, ROOT

MANIFEST = json.loads((FIXTURE_SITE / "MANIFEST.json").read_text("utf-8"))
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def scrapyd(tmp_path: Path):
    """A Scrapyd on 127.0.0.1 with its eggs, logs and queues under tmp_path."""
    home = tmp_path / "scrapyd"
    home.mkdir()
    port = free_port()
    (home / "scrapyd.conf").write_text(
        f"[scrapyd]\nbind_address = 127.0.0.1\nhttp_port = {port}\npoll_interval = 0.5\n"
        f"eggs_dir = {home / 'eggs'}\nlogs_dir = {home / 'logs'}\ndbs_dir = {home / 'dbs'}\n", "utf-8")
    log = (home / "scrapyd.log").open("wb")
    process = subprocess.Popen([str(BIN / "scrapyd"), "--nodaemon"], cwd=home, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if get_json(f"{url}/daemonstatus.json")["status"] == "ok":
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"scrapyd did not start: {(home / 'scrapyd.log').read_text('utf-8', 'replace')[-2000:]}")
        yield url, home
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def deploy(tmp_path: Path, url: str) -> None:
    """scrapyd-deploy from a copy of the project (it writes a setup.py and build files next to scrapy.cfg)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "newscrawl", project / "newscrawl", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    # A trailing slash in [deploy] url breaks scrapyd-client; the README's example has none.
    (project / "scrapy.cfg").write_text(
        f"[settings]\ndefault = newscrawl.settings\n\n[deploy]\nurl = {url}\nproject = newscrawl\n", "utf-8")
    done = subprocess.run([str(BIN / "scrapyd-deploy")], cwd=project, capture_output=True, text=True, timeout=180,
                          env={"PATH": f"{BIN}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert '"spiders": 1' in done.stdout + done.stderr


def test_job_ids_name_their_crawl() -> None:
    job = job_id("nyheter-morgon.v2", datetime(2025, 11, 20, 10, 0, 5, tzinfo=timezone.utc))
    assert job == "nyheter-morgon.v2@20251120T100005"
    assert crawl_of_job(job) == "nyheter-morgon.v2"


def test_a_spider_argument_scrapyd_would_read_itself_is_refused() -> None:
    client = ScrapydClient("http://127.0.0.1:1/", "newscrawl")
    assert client.url == "http://127.0.0.1:1"
    with pytest.raises(ScrapydError, match="project"):
        client.schedule(Crawl("a", args={"project": "x"}, every=60), {}, datetime.now(timezone.utc))
    with pytest.raises(ScrapydError, match="listjobs.json"):
        client.active_crawls()  # nothing listens on port 1


def test_schedule_hands_due_crawls_to_scrapyd_and_their_items_are_stored(scrapyd, tmp_path: Path) -> None:
    url, home = scrapyd
    deploy(tmp_path, url)
    database_url = f"sqlite:///{tmp_path / 'news.sqlite3'}"
    with serve_conditional(FIXTURE_SITE / "www") as site:
        toml = tmp_path / "crawls.toml"
        toml.write_text(f"""
[crawls.nyheter]
args = {{ url = "{site.url}{MANIFEST['entry']}", depth = 1 }}
settings = {{ AUTOTHROTTLE_ENABLED = false, DOWNLOAD_DELAY = 0 }}
every = "1h"
""", "utf-8")
        command = [sys.executable, "-m", "scrapy", "schedule", str(toml), "--once", "--scrapyd", url,
                   "-s", f"NEWSCRAWL_DATABASE_URL={database_url}", "-s", f"NEWSCRAWL_SPOOL_DIR={tmp_path / 'spool'}"]
        handed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert handed.returncode == 0, handed.stderr[-3000:]
        assert "Handed crawl nyheter to Scrapyd" in handed.stderr

        # Scrapyd runs it in its own process; wait until it is finished there.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            jobs = get_json(f"{url}/listjobs.json?project=newscrawl")
            if jobs["finished"] and not jobs["pending"] and not jobs["running"]:
                break
            time.sleep(0.5)
        [job] = jobs["finished"]
        assert crawl_of_job(job["id"]) == "nyheter"
        fetched = site.paths()

    storage = open_storage(database_url)
    try:
        [run] = storage.runs(crawl="nyheter")
        summary = storage.summary()
    finally:
        storage.close()
    expected = set(MANIFEST["reachable_from_entry_by_depth"]["0"]) | set(MANIFEST["reachable_from_entry_by_depth"]["1"])
    log = next((home / "logs").rglob("*.log")).read_text("utf-8")
    assert (run.status, run.new_articles) == ("finished", len(expected)), log[-3000:]
    assert summary.articles == len(expected)
    assert MANIFEST["entry"] in fetched

    # Just handed over and run: not due again for an hour.
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "Crawl nyheter is not due until" in again.stderr
    assert len(get_json(f"{url}/listjobs.json?project=newscrawl")["finished"]) == 1
