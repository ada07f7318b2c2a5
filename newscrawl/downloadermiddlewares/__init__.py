"""Downloader middlewares that keep a crawl safe and reliable against hostile sites (issue 5)."""
