"""The quality benchmark's metric on hand-made cases, and a smoke run of the command."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from lxml import html as lxml_html

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "quality.py"


def _load() -> ModuleType:
    # benchmarks/ is a folder of scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("newscrawl_benchmarks_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


quality = _load()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Counter()),
        ("—  ,.", Counter()),
        ("one", Counter({("one",): 1})),
        ("one two", Counter({("one", "two"): 1})),
        ("one, two; three!", Counter({("one", "two", "three"): 1})),
        ("a b c d", Counter({("a", "b", "c", "d"): 1})),
        ("a b c d e", Counter({("a", "b", "c", "d"): 1, ("b", "c", "d", "e"): 1})),
        ("x x x x x x", Counter({("x", "x", "x", "x"): 3})),
        ("Case case", Counter({("Case", "case"): 1})),
        ("Ålesund: 3,5 grader", Counter({("Ålesund", "3", "5", "grader"): 1})),
    ],
)
def test_shingles(text: str, expected: Counter) -> None:
    assert quality.shingles(text) == expected


def test_identical_texts_score_one() -> None:
    text = "The council voted on Tuesday to rebuild the lifeboat station on higher ground."
    score = quality.score_page(text, text)
    assert (score.precision, score.recall, score.f1, score.exact) == (1.0, 1.0, 1.0, True)


def test_whitespace_and_punctuation_do_not_matter_for_exactness() -> None:
    score = quality.score_page("One two.\n\nthree four five", "One  two three, four five")
    assert score.exact and score.f1 == 1.0


def test_disjoint_texts_score_zero() -> None:
    score = quality.score_page("alpha beta gamma delta epsilon", "one two three four five")
    assert (score.precision, score.recall, score.f1, score.exact) == (0.0, 0.0, 0.0, False)


def test_short_texts_give_one_shingle() -> None:
    assert quality.score_page("Breaking news", "Breaking news").f1 == 1.0
    # One short shingle each, and they differ: nothing is shared.
    assert quality.score_page("Breaking news", "Breaking news today").f1 == 0.0


def test_extra_text_lowers_precision_only() -> None:
    truth = "a b c d e"  # 2 shingles
    score = quality.score_page("a b c d e f", truth)  # 3 shingles, 2 shared
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == 1.0


def test_shingles_are_counted_as_multisets() -> None:
    # Truth repeats "x x x x" three times; a prediction holding it once shares one of the three.
    score = quality.score_page("x x x x", "x x x x x x")
    assert score.precision == 1.0
    assert score.recall == pytest.approx(1 / 3)
    # And the other way round: predicting it three times against one is two false positives.
    score = quality.score_page("x x x x x x", "x x x x")
    assert score.precision == pytest.approx(1 / 3)
    assert score.recall == 1.0


def test_empty_prediction() -> None:
    score = quality.score_page("", "some article text here today")
    assert not score.predicted
    assert (score.precision, score.recall) == (0.0, 0.0)
    both_empty = quality.score_page("", "")
    assert (both_empty.precision, both_empty.recall, both_empty.exact) == (1.0, 1.0, True)


def test_aggregate_excludes_empty_predictions_from_precision_only() -> None:
    scores = [
        quality.score_page("a b c d e f", "a b c d e"),  # P 2/3, R 1
        quality.score_page("", "one two three four"),  # no prediction: R 0, P not counted
        quality.score_page("p q r s", "p q r s"),  # P 1, R 1, exact
    ]
    summary = quality.aggregate(scores)
    assert summary.pages == 3 and summary.predicted == 2
    assert summary.precision == pytest.approx((2 / 3 + 1) / 2)
    assert summary.recall == pytest.approx(2 / 3)
    # Harmonic mean of the two means, not the mean of per-page F1.
    expected_f1 = 2 * summary.precision * summary.recall / (summary.precision + summary.recall)
    assert summary.f1 == pytest.approx(expected_f1)
    assert summary.f1 != pytest.approx(sum(s.f1 for s in scores) / 3)
    assert summary.accuracy == pytest.approx(1 / 3)


def test_aggregate_of_nothing() -> None:
    assert quality.aggregate([]).f1 == 0.0


@pytest.mark.parametrize(
    ("precision", "recall", "is_article", "predicted", "guess"),
    [
        (0.0, 0.0, False, False, "not_article"),
        (0.0, 0.0, True, False, "empty"),
        (0.9, 0.3, True, True, "missed_body"),
        (0.3, 0.9, True, True, "extra_text"),
    ],
)
def test_failure_guess(precision: float, recall: float, is_article: bool, predicted: bool, guess: str) -> None:
    score = quality.PageScore(precision=precision, recall=recall, exact=False, predicted=predicted)
    assert quality.failure_guess(score, is_article) == guess


def test_caption_texts_and_leaks() -> None:
    root = lxml_html.fromstring(
        "<html><body><article><p>The harbour wall gave way at dawn on Sunday.</p>"
        "<figure><img src='a.jpg'><figcaption>The harbour wall after the storm, seen from the pier."
        "<span class='photo-Credit'>Photo: Anna Berg / Nyheter Agency</span></figcaption></figure>"
        "<div class='caption'>Short one</div>"
        "<div class='wp-caption-text'>Repairs began the same week.<script>var x = 1;</script></div>"
        "</article></body></html>"
    )
    captions = quality.caption_texts(root)
    assert captions == [
        "The harbour wall after the storm, seen from the pier. Photo: Anna Berg / Nyheter Agency",
        "Photo: Anna Berg / Nyheter Agency",
        "Repairs began the same week.",
    ]
    truth = "The harbour wall gave way at dawn on Sunday.\n\nRepairs began the same week."
    body = "The harbour wall gave way at dawn on Sunday.\n\nPhoto: Anna Berg /\nNyheter Agency\n\nRepairs began the same week."
    # The credit leaked; the last "caption" is text the annotators kept, so it is no leak.
    assert quality.leaked_captions(captions, body, truth) == ["Photo: Anna Berg / Nyheter Agency"]


def test_command_runs_on_a_few_pages(tmp_path: Path) -> None:
    if not any((d / "ground-truth.json").is_file() for d in quality.DEFAULT_EVAL_DIRS):
        pytest.skip("article-extraction-benchmark data not present")
    out = tmp_path / "quality.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--limit", "3", "--worst", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"extractor\s+precision\s+recall\s+F1", completed.stdout)
    assert re.search(r"^newscrawl\s+[01]\.\d{3}\s+[01]\.\d{3}\s+[01]\.\d{3}", completed.stdout, re.M)
    assert re.search(r"^trafilatura_precision\s+[01]\.\d{3}", completed.stdout, re.M)
    assert "captions leaked into body" in completed.stdout
    assert "elapsed" in completed.stdout
    assert out.is_file()
