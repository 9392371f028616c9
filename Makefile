# `make train` and `make test` create .venv on first use, install mirror into it and run.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/babyai/mirror.yaml
ARGS ?=

.PHONY: train test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

train: $(STAMP)
	$(BIN)/mirror train $(CONFIG) resume=auto $(ARGS)

# pytest exits 5 when it collects no tests; that is not a failure.
test: $(STAMP)
	$(BIN)/pytest -q $(ARGS) || [ $$? -eq 5 ]

bench: $(STAMP)
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check mirror tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
