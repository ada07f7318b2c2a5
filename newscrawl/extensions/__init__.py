"""Scrapy extensions of newscrawl."""
