# Two commands do everything from a clean clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,reports]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default: ~2,000 customers and ~70,000 events over two years into
# ./crm.db (replaced each time), the read models, a summary on stdout and ./crm-report.html.
demo: $(STAMP)
	$(BIN)/crm-es demo --reset

test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check src tests scripts
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) crm.db crm-report.html
