# Two commands for a fresh machine: `make run` (the demo) and `make test` (the whole suite).
# Everything is installed from this repository's own files: pinned versions in pyproject.toml.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Nothing waits on the network, nothing is reported home.
export DAGSTER_DISABLE_TELEMETRY := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export STREAMLIT_BROWSER_GATHER_USAGE_STATS := false

.PHONY: setup lock run run-external test soak lint audit bench chromium clean

setup: $(STAMP)

# requirements.lock pins every transitive package; `make lock` refreshes it after pyproject changes.
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)" >&2; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

lock:
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libpango-1.0-0 libpangoft2-1.0-0 >/dev/null; }

run: setup
	$(BIN)/backoffice demo

# The same app on an external PostgreSQL, laid out as past one machine (docs/scaling.md): migrates
# DATABASE_URL, installs deploy/dagster-postgres.yaml as the Dagster instance, then serves dagster-daemon,
# dagster-webserver and REPLICAS Streamlit processes (ports 8501...) until Ctrl-C.
# make run-external DATABASE_URL=postgresql://user:password@host:5432/backoffice [REPLICAS=2]
REPLICAS ?= 2
run-external: setup
	@test -n "$(DATABASE_URL)" || { echo "error: give DATABASE_URL=postgresql://user:password@host:port/db" >&2; exit 2; }
	@# not echoed: the URL holds the password; make passes a command-line DATABASE_URL in the environment
	@$(BIN)/python deploy/run_external.py --replicas $(REPLICAS)

# Known vulnerabilities in the pinned dependencies (PyPI's advisory data, through pip-audit) fail the
# build. --strict stops at the first package pip-audit could not look up (PyPI unreachable, or a
# mirror without its JSON API): the audit is then INCOMPLETE, said on stderr, and that fails the build
# only with AUDIT=required (a CI that reaches pypi.org should set it); AUDIT=skip does not try. The
# default warns: this project's own CI reaches PyPI through a mirror that has no vulnerability data.
AUDIT ?= auto
audit: setup
	@if [ "$(AUDIT)" = skip ]; then echo "pip-audit: skipped (AUDIT=skip)" >&2; exit 0; fi; \
	out=$$($(BIN)/pip-audit --strict --requirement requirements.lock --no-deps --disable-pip \
		--progress-spinner off 2>&1); status=$$?; \
	echo "$$out" | grep -v "encouraged to fully hash\|pip-compile"; \
	if [ $$status -ne 0 ] && echo "$$out" | grep -q "could not be audited\|ConnectionError\|Max retries"; then \
		echo "pip-audit: INCOMPLETE, PyPI's vulnerability data could not be reached: dependencies NOT audited" >&2; \
		[ "$(AUDIT)" != required ]; \
	else \
		exit $$status; \
	fi

# Two workers on CI's 2 cores (tests wait on PostgreSQL, dbt and browsers as much as they compute);
# a file's tests stay on one worker (tests/conftest.py). WORKERS=0 runs them in this one process.
WORKERS ?= 2
test: setup chromium audit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(WORKERS) --dist loadfile --durations=25

# Long runs kept out of `make test`: kill -9 of the pipeline at random points, 20 sessions for 2 minutes,
# an external PostgreSQL with two app processes, and the fuzzing at 20 times its `make test` counts.
soak: setup
	$(BIN)/pytest -m soak
	BACKOFFICE_FUZZ_SCALE=20 $(BIN)/pytest tests/integration/test_fuzz_parsers.py tests/integration/test_fuzz_forms.py \
		tests/integration/test_invariants.py

# Speed and memory targets (not part of `make test`); SCALE=small runs in minutes.
SCALE ?= full
bench: setup chromium
	$(BIN)/python -m bench --scale $(SCALE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dbt_project/target
