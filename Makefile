# Two commands do everything from a clean clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Until the full demo lands: a scripted scenario through `crm-es exec` on the SQLite default.
# It starts from an empty ./crm.db each time (the line that breaks a rule makes exec exit 1, which
# is expected here: the scenario shows a rejected command).
demo: $(STAMP)
	rm -f crm.db crm.db-wal crm.db-shm
	$(BIN)/crm-es init
	-$(BIN)/crm-es exec scripts/demo-commands.jsonl
	$(BIN)/crm-es show C-1
	$(BIN)/crm-es history C-1 | head -n 3

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
