# The two commands a newcomer needs: `make serve` and `make test`.
# Both build their own virtual environment in .venv from pyproject.toml.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: serve test bench clean

$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11) on PATH; or run: make PYTHON=/path/to/python3.11 ..."; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: $(BIN)/.installed
	$(BIN)/hemoptysis-cds serve

test: $(BIN)/.installed
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/hemoptysis-cds bench

clean:
	rm -rf $(VENV) var .pytest_cache
