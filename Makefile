VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo demo-ledger install clean chromium

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# tests/browser drives Debian's chromium (Playwright's own browser download is not
# used): install it when missing and we are root; otherwise those tests fail saying so.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

install: $(STAMP) chromium

test: $(STAMP) chromium
	$(PY) -m pytest -q

# A local network: 4 validators, 8 households with simulated meters, clock x60.
# It prints each node's URL and the dashboard's; Ctrl-C stops every process.
demo: $(STAMP)
	$(VENV)/bin/voisinage localnet up

# One simulated day of a 20-household commune through the ledger alone.
demo-ledger: $(STAMP)
	$(VENV)/bin/voisinage demo ledger

clean:
	rm -rf $(VENV) build *.egg-info
