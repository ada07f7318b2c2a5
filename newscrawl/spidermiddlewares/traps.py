"""Spider middleware refusing links into URL spaces that grow forever: calendars, session ids, repeating segments."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from scrapy.exceptions import NotConfigured
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

#: Session ids as path parameters (``;jsessionid=``), query parameters (``?sid=``) or ASP.NET cookieless ``/(S(id))/``.
SESSION_PARAMS = ("jsessionid", "phpsessid", "aspsessionid", "sessionid", "session_id", "sessid", "sid", "cfid",
                  "cftoken", "zenid", "oscsid")
SESSION_IN_PATH = re.compile(r";\s*(?:%s|aspsessionid\w+)=" % "|".join(SESSION_PARAMS), re.IGNORECASE)
ASPNET_SESSION = re.compile(r"/\([A-Z]\([A-Za-z0-9]{12,}\)\)/")
YEAR = re.compile(r"^(?:19|20)\d\d$")
MONTH_OR_DAY = re.compile(r"^\d{1,2}$")
ISO_DATE = re.compile(r"^(?:19|20)\d\d-\d{1,2}(?:-\d{1,2})?$")
#: Meta key: how many date-stepping pages of one template led to this request.
CALENDAR_RUN = "newscrawl_calendar_run"


def date_template(url: str) -> str | None:
    """The URL with its dates replaced by ``{date}`` (``/kalender/2025/11`` -> ``/kalender/{date}``); None if dateless.

    Query values that are years, months or ISO dates count too (``?year=2025&month=11``): calendars use both.
    """
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    out: list[str] = []
    dated = False
    index = 0
    while index < len(segments):
        segment = segments[index]
        if ISO_DATE.match(segment):
            out.append("{date}")
            dated = True
        elif YEAR.match(segment):
            # A year and the month/day numbers right after it are one date.
            while index + 1 < len(segments) and MONTH_OR_DAY.match(segments[index + 1]):
                index += 1
            out.append("{date}")
            dated = True
        else:
            out.append(segment)
        index += 1
    query: list[str] = []
    for name, value in sorted(parse_qsl(parts.query, keep_blank_values=True)):
        month_or_day = MONTH_OR_DAY.match(value) and name.lower() in ("month", "day", "m", "d")
        if YEAR.match(value) or ISO_DATE.match(value) or month_or_day:
            query.append(f"{name}={{date}}")
            dated = True
        else:
            query.append(f"{name}={value}")
    if not dated:
        return None
    return f"{parts.hostname}/{'/'.join(out)}?{'&'.join(query)}"


def repeats_segments(path: str, max_repeats: int) -> bool:
    """``/sv/sv/artikel`` or ``/a/b/a/b/a/b``: a word segment twice in a row, or more than ``max_repeats`` times.

    Number segments are left out: ``/2025/11/11/`` is a date, not a loop.
    """
    words = [s.lower() for s in path.split("/") if s and not s.isdigit()]
    if any(a == b for a, b in zip(words, words[1:])):
        return True
    return any(words.count(word) > max_repeats for word in set(words))


def has_session_id(url: str) -> bool:
    parts = urlsplit(url)
    if SESSION_IN_PATH.search(parts.path) or ASPNET_SESSION.search(parts.path + "/"):
        return True
    names = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    # ASP classic appends random letters to its cookie name: ASPSESSIONIDQASDTBCA.
    return any(name in SESSION_PARAMS or name.startswith("aspsessionid") for name in names)


class TrapMiddleware(BaseSpiderMiddleware):
    """Refuses followed links that look like crawler traps; start requests (the user's choice) are never refused.

    Each refusal counts ``newscrawl/links/refused/trap`` and ``.../trap/<kind>``; the first of each kind is logged
    at INFO with its URL, later ones at DEBUG, so a trap shows once in the log and fully in the stats.
    Settings: ``NEWSCRAWL_TRAPS_ENABLED``, ``NEWSCRAWL_TRAPS_CALENDAR_MAX_STEPS`` (date-stepping pages of one
    template followed in a row from a first one), ``NEWSCRAWL_TRAPS_MAX_SEGMENT_REPEATS``.
    """

    def __init__(self, crawler: Crawler, calendar_max_steps: int, max_segment_repeats: int):
        super().__init__(crawler)
        self.calendar_max_steps = calendar_max_steps
        self.max_segment_repeats = max_segment_repeats
        self.logged_kinds: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("NEWSCRAWL_TRAPS_ENABLED", True):
            raise NotConfigured("NEWSCRAWL_TRAPS_ENABLED is off")
        return cls(crawler, settings.getint("NEWSCRAWL_TRAPS_CALENDAR_MAX_STEPS", 2),
                   settings.getint("NEWSCRAWL_TRAPS_MAX_SEGMENT_REPEATS", 2))

    def trap_kind(self, request: Request, response: Response) -> str | None:
        """The kind of trap the request walks into, or None; sets the calendar run on dated requests."""
        if has_session_id(request.url):
            return "session_id"
        if repeats_segments(urlsplit(request.url).path, self.max_segment_repeats):
            return "repeating_segments"
        template = date_template(request.url)
        if template is None:
            return None
        # A dated page reached from a page of the same template is one step further along a calendar.
        run = response.meta.get(CALENDAR_RUN, 0) + 1 if date_template(response.url) == template else 0
        request.meta[CALENDAR_RUN] = run
        return "calendar" if run > self.calendar_max_steps else None

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        if response is None:
            return request
        kind = self.trap_kind(request, response)
        if kind is None:
            return request
        stats = self.crawler.stats
        stats.inc_value("newscrawl/links/refused/trap")
        stats.inc_value(f"newscrawl/links/refused/trap/{kind}")
        level = logging.DEBUG if kind in self.logged_kinds else logging.INFO
        self.logged_kinds.add(kind)
        logger.log(level, "Refused a link into a crawler trap (%s): %s (linked from %s)",
                   kind, request.url, response.url)
        return None
