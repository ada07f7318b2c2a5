"""Saved pages: a folder holding the raw bytes of a page as served, its meta.json and its golden item."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy.http import HtmlResponse


@dataclass(frozen=True)
class SavedPage:
    """One fixture folder: ``page.html`` (bytes as served), ``meta.json`` and ``expected.json``."""

    folder: Path
    url: str
    content_type: str
    body: bytes
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, folder: str | Path) -> SavedPage:
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text("utf-8"))
        return cls(
            folder=folder,
            url=meta["url"],
            content_type=meta.get("content_type") or "text/html",
            body=(folder / "page.html").read_bytes(),
            meta=meta,
        )

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def expected_path(self) -> Path:
        return self.folder / "expected.json"

    def expected(self) -> dict[str, Any]:
        return json.loads(self.expected_path.read_text("utf-8"))

    def write_expected(self, item: dict[str, Any]) -> None:
        text = json.dumps(item, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        self.expected_path.write_text(text, "utf-8")

    def response(self, url: str | None = None) -> HtmlResponse:
        """The page as Scrapy would have received it: same bytes, same Content-Type header."""
        return HtmlResponse(url or self.url, body=self.body, headers={"Content-Type": self.content_type})


def iter_saved_pages(root: str | Path) -> Iterator[SavedPage]:
    for meta in sorted(Path(root).glob("*/meta.json")):
        if (meta.parent / "page.html").exists():
            yield SavedPage.from_folder(meta.parent)
