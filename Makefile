# Every target installs what it needs into .venv first (pinned: pyproject.toml + constraints.txt).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install node-deps demo test test-slow check lint typecheck bench docs lock clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The real AI SDK (npm `ai`, pinned with its lockfile) the ai-sdk-ui contract is tested against.
# Optional: without npm, or offline, its tests skip and say why.
NODE_STAMP := tests/node/node_modules/.installed
node-deps: $(NODE_STAMP)

$(NODE_STAMP): tests/node/package.json tests/node/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error >/dev/null 2>&1 \
	    && touch $(NODE_STAMP) \
	    || echo "note: npm ci in tests/node failed; the ai-sdk-ui Node tests will skip"; \
	else echo "note: npm not found; the ai-sdk-ui Node tests will skip"; fi

demo: $(STAMP)
	$(BIN)/stream-harness demo

test: $(STAMP) node-deps check
	$(BIN)/python -m pytest -q -m "not slow" --durations=20

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check harness tests bench examples loadtests suites

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

docs: $(STAMP)
	$(BIN)/stream-harness rules --format markdown > docs/rules.md

lock:
	{ echo "# Transitive pins (constraints) so a fresh install resolves exactly what CI tested."; echo "# Regenerate with: make lock"; $(BIN)/python -m pip freeze --exclude-editable | sort -f; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build
