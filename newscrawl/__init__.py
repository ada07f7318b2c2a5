"""newscrawl: a Scrapy crawler for AI-written news that separates article text, captions and boilerplate."""
