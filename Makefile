# Everything a fresh machine needs: `make demo` and `make test`.
export UV_PYTHON_DOWNLOADS := never
PYTHON_FOR_UV ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo "$(PYTHON_FOR_UV) -m uv")

.PHONY: setup demo demo-optimize test test-fast test-deep lint bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON_FOR_UV) -m pip install --quiet uv
	$(UV) sync --frozen
	$(UV) run --frozen --no-sync python -m compileall -q src/facetopt

demo: setup
	$(UV) run --frozen facetopt demo

# The demo, then `facetopt optimize` on its weakest facet (offline, simulated proposer).
demo-optimize: setup
	$(UV) run --frozen facetopt demo --optimize

# Everything; what CI runs (.ci/run). Two workers: the machines have two cores and most tests
# wait on subprocesses and loopback servers.
PYTEST_WORKERS ?= 2
test: setup
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadfile

# The inner loop: no slow or end-to-end test.
test-fast: setup
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow and not e2e"

# The stateful test of the whole loop (tests/stateful), long: fresh seeds, more and longer command
# sequences, every invariant including those whose fixes are pending (docs/development.md).
STATEFUL_EXAMPLES ?= 20
STATEFUL_STEPS ?= 25
test-deep: setup
	FACETOPT_STATEFUL_ALL=1 FACETOPT_STATEFUL_EXAMPLES=$(STATEFUL_EXAMPLES) FACETOPT_STATEFUL_STEPS=$(STATEFUL_STEPS) \
		$(UV) run --frozen pytest -p no:xdist --timeout 0 tests/stateful

lint: setup
	$(UV) run --frozen ruff check src tests bench evals
	$(UV) run --frozen ruff format --check src tests bench evals
	$(UV) run --frozen mypy

bench: setup
	$(UV) run --frozen python bench/run_all.py

clean:
	rm -rf .venv .local .pytest_cache .hypothesis
