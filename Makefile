# `make train` and `make test` create .venv on first use, install mirror into it and run.
#   make train  installs mirror with the extras `probe` and `video` (the BabyAI default films rollouts and ends
#               with the language probe against MiniLM); EXTRAS=metaworld,probe,video (any extras) for others.
#   make test   installs `.[dev]`: every extra, pytest and ruff. CI runs it (.ci/run).
# A machine without an NVIDIA GPU: TORCH_INDEX=https://download.pytorch.org/whl/cpu installs torch and
# torchvision from PyTorch's CPU wheel index first (no CUDA libraries: ~3 GB less); empty, the default: PyPI.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
EXTRAS ?= probe,video
TORCH_INDEX ?=
CONFIG ?= configs/babyai/mirror.yaml
ARGS ?=
# pytest-xdist workers for `make test`: the suite's tests use one thread each
TEST_JOBS ?= 2
# torch and torchvision with pyproject.toml's bounds, e.g. "torch>=2.5,<3" "torchvision>=0.20,<1"
TORCH_REQS = $(shell grep -oE '"torch(vision)?[<>=!~][^"]*"' pyproject.toml)

.PHONY: train test bench lint clean

# One stamp per set of extras, made again when pyproject.toml changes. `dev` holds every extra, so a venv that
# `make test` installed serves `make train` as it is.
$(VENV)/.installed-%: pyproject.toml
	if [ "$*" != dev ] && [ $(VENV)/.installed-dev -nt pyproject.toml ]; then \
	    echo "$(VENV) has every extra (.[dev])"; \
	else \
	    { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } \
	    && $(BIN)/python -m pip install --upgrade pip \
	    $(if $(TORCH_INDEX),&& $(BIN)/python -m pip install --index-url $(TORCH_INDEX) $(TORCH_REQS)) \
	    && $(BIN)/python -m pip install -e ".[$*]"; \
	fi
	touch $@

train: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/mirror train $(CONFIG) resume=auto $(ARGS)

# pytest exits 5 when it collects no tests; that is not a failure.
test: $(VENV)/.installed-dev
	$(BIN)/pytest -q -n $(TEST_JOBS) $(ARGS) || [ $$? -eq 5 ]

bench: $(VENV)/.installed-dev
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check mirror tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
