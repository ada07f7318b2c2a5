"""A spider for `scrapy runspider` that follows every link and redirect it sees, whatever the scheme or host.

It has no allowed_domains, so nothing but the SSRF guard stands between a hostile page and the network.
"""

from __future__ import annotations

from collections.abc import Iterator

import scrapy
from scrapy.http import Response


class FollowAllSpider(scrapy.Spider):
    name = "follow_all"
    # Items would only be the pages themselves; what the test reads is the stats and the server's log.
    custom_settings = {"ITEM_PIPELINES": {}}

    def __init__(self, url: str, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.start_urls = [url]

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        if not hasattr(response, "css"):
            return
        for href in response.css("a::attr(href)").getall():
            # Request() itself accepts file:, data: and ftp: URLs, so only the guard stops them; it refuses
            # javascript: and other URLs that name no resource at all.
            try:
                request = scrapy.Request(response.urljoin(href), callback=self.parse)
            except ValueError:
                continue
            yield request
