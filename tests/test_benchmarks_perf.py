"""The performance benchmarks run end to end at tiny sizes and print their ratio line; how fast is never checked."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"


def _missing(*modules: str) -> str | None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def run_benchmark(script: str, *args: str, timeout: float = 240) -> str:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, f"{script} failed:\n{completed.stdout}\n{completed.stderr[-4000:]}"
    return completed.stdout


NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def test_extraction_benchmark_prints_its_ratios():
    if _missing("trafilatura"):
        pytest.skip("trafilatura is not installed (pip install -e '.[bench]')")
    out = run_benchmark("extraction.py", "--rounds", "1", "--limit", "2")
    assert re.search(
        rf"^RATIO fixtures: newscrawl/trafilatura speedup = {NUMBER}x .* newscrawl/bare-parse slowdown = {NUMBER}x",
        out,
        re.M,
    ), out


def test_extraction_benchmark_profiles_newscrawl():
    if _missing("trafilatura"):
        pytest.skip("trafilatura is not installed (pip install -e '.[bench]')")
    out = run_benchmark("extraction.py", "--rounds", "1", "--limit", "2", "--profile", "--top", "5")
    assert "newscrawl/page/article.py" in out, out


def test_sitegen_serves_the_generated_site():
    out = run_benchmark("sitegen.py", "--pages", "20", "--seconds", "0.3")
    assert re.search(rf"^server alone: {NUMBER} requests/s", out, re.M), out


def test_sitegen_is_deterministic_and_connected(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import sitegen
    finally:
        sys.path.remove(str(BENCHMARKS))
    first = sitegen.generate_site(tmp_path / "a", 30, seed=1)
    second = sitegen.generate_site(tmp_path / "b", 30, seed=1)
    names = sorted(p.relative_to(first.root) for p in first.root.rglob("*.html"))
    assert names == sorted(p.relative_to(second.root) for p in second.root.rglob("*.html"))
    assert all((first.root / n).read_bytes() == (second.root / n).read_bytes() for n in names)
    # Every article is reachable from page 0 through related links alone.
    links = re.compile(r'<li class="teaser"><a href="([^"]+)"')
    seen, frontier = {sitegen.article_path(0)}, [sitegen.article_path(0)]
    while frontier:
        page = (first.root / frontier.pop().lstrip("/")).read_text("utf-8")
        for href in links.findall(page):
            if href not in seen:
                seen.add(href)
                frontier.append(href)
    assert seen == {sitegen.article_path(i) for i in range(30)}


def _skip_without_spider_and_storage() -> None:
    missing = _missing("newscrawl.spiders.article", "newscrawl.storage", "newscrawl.pipelines")
    if missing:
        pytest.skip(f"{missing} is not importable yet: the crawl benchmarks need the spider and storage")


def test_crawl_benchmark_prints_its_ratio():
    _skip_without_spider_and_storage()
    out = run_benchmark("crawl.py", "--pages", "30", "--rounds", "1")
    assert re.search(rf"^RATIO crawl: newscrawl/null pages per second = {NUMBER}", out, re.M), out
    assert re.search(r"newscrawl .* items 30, stored 30,", out), out


def test_memory_benchmark_prints_its_ratio():
    _skip_without_spider_and_storage()
    out = run_benchmark("memory.py", "--pages", "20", "40", "--no-null")
    assert re.search(rf"^RATIO memory: newscrawl peak RSS 40 pages / 20 pages = {NUMBER}", out, re.M), out


def test_storage_benchmark_prints_its_ratio():
    _skip_without_spider_and_storage()
    out = run_benchmark("storage.py", "--items", "60", "--batch", "25", "--rounds", "1")
    assert re.search(rf"^RATIO storage \(SQLite\): newscrawl/raw write time = {NUMBER}x", out, re.M), out


def test_storage_benchmark_on_postgresql_prints_its_ratio():
    _skip_without_spider_and_storage()
    url = os.environ.get("NEWSCRAWL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("NEWSCRAWL_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL and sets it)")
    out = run_benchmark("storage.py", "--items", "60", "--batch", "25", "--rounds", "1", "--database", url)
    assert re.search(rf"^RATIO storage \(PostgreSQL\): newscrawl/raw write time = {NUMBER}x", out, re.M), out
