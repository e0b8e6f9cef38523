# The two commands a newcomer needs: `make serve` and `make test`.
# Both build their own virtual environment in .venv from pyproject.toml.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: serve test bench clean chromium nginx cql lint

$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11) on PATH; or run: make PYTHON=/path/to/python3.11 ..."; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The reference CQL toolchain (package-lock.json: translator, cql-execution, cql-exec-fhir, UCUM), installed
# once from the npm registry; the suite translates and runs the CQL offline afterwards (tests/test_cql_agreement.py).
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "need Node 20 (node, npm) on PATH to run the CQL part of the suite"; exit 2; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# `make serve` must work with no setup, so it turns client authentication off unless told otherwise
# (HEMOPTYSIS_CDS_AUTH_MODE=required make serve, with HEMOPTYSIS_CDS_CLIENTS_FILE). deploy/ always uses 'required'.
HEMOPTYSIS_CDS_AUTH_MODE ?= development

serve: $(BIN)/.installed
	@if [ "$(HEMOPTYSIS_CDS_AUTH_MODE)" = development ]; then \
	  echo "make serve: HEMOPTYSIS_CDS_AUTH_MODE=development - no client JWT is checked, so you can curl it as is;"; \
	  echo "            every response carries X-Hemoptysis-CDS-Auth: development-unauthenticated. Production uses 'required' (README, Security)."; fi
	HEMOPTYSIS_CDS_AUTH_MODE=$(HEMOPTYSIS_CDS_AUTH_MODE) $(BIN)/hemoptysis-cds serve

test: $(BIN)/.installed node_modules/.installed chromium nginx lint
	$(BIN)/pytest -q

# Lint and types before the suite: ruff must be clean; mypy may not add a finding to .ci/mypy-baseline.txt.
lint: $(BIN)/.installed
	$(BIN)/ruff check --quiet .
	$(BIN)/python .ci/mypy_baseline.py

# The browser tests (tests/test_browser.py) drive Debian's chromium through Playwright, never a browser Playwright
# downloads. Installed here when missing and run as root; otherwise those tests skip and say why.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing Debian's chromium for the browser tests"; \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; } || \
	    echo "make test: chromium could not be installed; the browser tests will skip, saying so"; \
	  else echo "make test: no chromium and not root; the browser tests will skip (apt-get install chromium)"; fi; \
	fi

# The reverse-proxy tests (tests/test_reverse_proxy.py) run deploy/nginx.conf with Debian's nginx binary in their own
# process, prefix and port; the system nginx service is never started (a policy-rc.d refuses it during the install,
# removed afterwards unless it was there before).
# Installed here when missing and run as root; otherwise those tests skip and say why.
nginx:
	@if ! command -v nginx >/dev/null 2>&1 && ! [ -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing Debian's nginx for the reverse-proxy tests"; \
	    made_policy=; if ! [ -e /usr/sbin/policy-rc.d ]; then \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1; fi; \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null 2>&1; }; } || \
	    echo "make test: nginx could not be installed; the reverse-proxy tests will skip, saying so"; \
	    [ -z "$$made_policy" ] || rm -f /usr/sbin/policy-rc.d; \
	  else echo "make test: no nginx and not root; the reverse-proxy tests will skip (apt-get install nginx)"; fi; \
	fi

# After a change to cql_equivalents/data/*.toml, a Python constant the CQL reads, or a .cql file: regenerate the
# generated libraries, translate, and repackage cql/fhir (the suite checks all three).
cql: $(BIN)/.installed node_modules/.installed
	$(BIN)/python cql/generate.py
	node cql/node/translate.mjs
	$(BIN)/python cql/package_libraries.py

bench: $(BIN)/.installed
	$(BIN)/hemoptysis-cds bench

clean:
	rm -rf $(VENV) var .pytest_cache node_modules cql/build
