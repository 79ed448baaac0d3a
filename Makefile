# Two commands do everything from a clean clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck clean install

$(STAMP): pyproject.toml
	@echo "==> creating the virtual environment $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "==> installing crm-es and its dependencies (a minute or two the first time)"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet -e '.[dev,reports]'
	@touch $(STAMP)
	@echo "==> installed: .venv/bin/crm-es"

install: $(STAMP)

# The main job on the embedded default: ~2,000 customers and ~70,000 events over two years into
# ./crm.db (replaced each time), the read models, a summary on stdout and ./crm-report.html.
demo: $(STAMP)
	@echo "==> building the demo store ./crm.db (progress below), then ./crm-report.html"
	$(BIN)/crm-es demo --reset
	@echo "==> next: the five-minute tour in README.md (.venv/bin/crm-es --help)"

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
