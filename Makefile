# newscrawl: `make demo` crawls the bundled test site into SQLite and prints what was stored; `make test` runs the tests.
# Both set up .venv on first use (python3.11, else python3) and reinstall only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.newscrawl-installed
DEMO_DB := sqlite:///data/demo.sqlite3
ENTRY := /sv/artikel/sydkoreansk-sandebud-lovar-narmare-samarbete

.PHONY: demo test clean-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test,bench,distributed]'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Each demo starts from an empty database: the server's port, and so every URL, differs from run to run.
# The server is local, so the crawl drops the politeness delays meant for real sites.
demo: $(STAMP)
	@set -eu; \
	port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(BIN)/python -m tests.support.site_server fixtures/site/www --port $$port --quiet & server=$$!; \
	trap 'kill $$server 2>/dev/null || true' EXIT; \
	for i in $$(seq 50); do \
		$(BIN)/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$$port/robots.txt')" 2>/dev/null && break; sleep 0.1; done; \
	rm -f data/demo.sqlite3 data/demo.sqlite3-wal data/demo.sqlite3-shm; \
	echo "Crawling http://127.0.0.1:$$port$(ENTRY) (depth 2) into $(DEMO_DB) ..."; \
	$(BIN)/scrapy crawl article -a url=http://127.0.0.1:$$port$(ENTRY) -a depth=2 \
		-s NEWSCRAWL_DATABASE_URL=$(DEMO_DB) -s AUTOTHROTTLE_ENABLED=False -s DOWNLOAD_DELAY=0 -s LOG_LEVEL=WARNING; \
	kill $$server; wait $$server 2>/dev/null || true; trap - EXIT; \
	echo; $(BIN)/scrapy stored -s NEWSCRAWL_DATABASE_URL=$(DEMO_DB)

clean-demo:
	rm -f data/demo.sqlite3 data/demo.sqlite3-wal data/demo.sqlite3-shm
