"""The language of a page's content, told from its text (py3langid) and checked against what the page declares."""

from __future__ import annotations

from functools import cache

# Languages close enough that a short text is easily mistaken for a neighbour: when the page declares one
# of the group and detection says another, the declaration wins.
_NEIGHBOURS = [
    {"da", "no", "nb", "nn", "sv"},
    {"es", "pt", "gl", "ca"},
    {"nl", "af"},
    {"hr", "sr", "bs", "sl"},
    {"id", "ms"},
    {"cs", "sk"},
]
# py3langid speaks ISO 639-1 with the old code for Norwegian; Bokmål is what "no" text nearly always is.
_LANGID_TO_BCP47 = {"no": "nb"}


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def primary_subtag(tag: str | None) -> str | None:
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def detect_language(text: str, declared: list[str | None] = ()) -> str | None:
    """BCP-47 primary language of ``text``; declared tags (article, html, JSON-LD) break near-ties."""
    declared_tags = [tag for tag in (primary_subtag(d) for d in declared) if tag]
    sample = text[:500]  # enough for a confident guess; the model's cost grows with the text
    if len(sample.strip()) < 40:
        return declared_tags[0] if declared_tags else None
    lang, probability = _identifier().classify(sample)
    lang = _LANGID_TO_BCP47.get(lang, lang)
    for tag in declared_tags:
        if tag == lang or (tag == "no" and lang == "nb"):
            return tag if tag != "no" else "nb"
        if any({tag, lang} <= group for group in _NEIGHBOURS):
            return tag
    if probability < 0.5 and declared_tags:
        return declared_tags[0]
    return lang
