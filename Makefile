# Everything a fresh machine needs: `make demo` to try Aurora, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := app schema sync tui node

.PHONY: demo test check bench setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on local disk; anything looser downloads a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,node,local-llm]'
	touch $(STAMP)

setup: $(STAMP)

## Open the TUI on a demo workspace (a realistic week; never your own data).
demo: setup
	$(BIN)/aurora demo

## Lint, type-check, import contracts, then the whole test suite.
test: setup check
	$(BIN)/pytest

# mypy cannot see through setuptools' editable-install finder, so it reads the packages through a
# link tree that mirrors their `aurora.*` import names.
check: setup
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests
	mkdir -p build/typecheck/aurora
	for p in $(PACKAGES); do ln -sfn ../../../$$p build/typecheck/aurora/$$p; done
	MYPYPATH=build/typecheck $(BIN)/mypy $(addprefix -p aurora.,$(PACKAGES))
	$(BIN)/lint-imports

## Benchmarks, each beside a baseline measured in the same run.
bench: setup
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
