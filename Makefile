# maxlake developer commands. Every target sets itself up: `make test` on a fresh clone creates
# .venv, installs the package with its dev tools and fetches the Kafka jars with Maven.
PYTHON ?= python3
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA_JARS := infra/.kafka/libs/.fetched
export GX_ANALYTICS_ENABLED := false
# rustup installs cargo here; a shell that has not sourced ~/.cargo/env still finds it.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help install native own-bytecode broker-jars test test-native test-unit test-integration lint typecheck broker-up broker-down demo bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# uv resolves and installs in parallel (about 1 min on a fresh machine, pip took over 3).
$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing maxlake with its dev tools (uv; 1-3 min the first time, longer on a busy machine)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

# Bytecode of everything installed, compiled once. uv does not compile it (pip does), and where
# PYTHONDONTWRITEBYTECODE is set (as on the 2-core CI machine) no process ever writes it: every
# worker and CLI process the tests start then compiled Great Expectations, pandas, Faust and the
# rest from source, ~16 CPU-s instead of ~6 for a worker's imports and GX context. compileall
# skips files whose bytecode is current, so this is cheap on an up-to-date .venv.
BYTECODE := $(VENV)/.bytecode
$(BYTECODE): $(STAMP)
	@echo "==> compiling the bytecode of $(VENV) (once, about 30 s)"
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null
	touch $(BYTECODE)

# maxlake's own packages (an editable install): recompiled only where a source changed.
OWN_PACKAGES := bench infra lake maxlake quality schemas streams tests
own-bytecode: $(BYTECODE)
	$(BIN)/python -m compileall -q -j 0 $(OWN_PACKAGES) >/dev/null

# The compiled JSON parser of the decoder's fast path (native/, Rust + pyo3, built by maturin):
# about 1 min the first time. Without a Rust toolchain maxlake still works: the decoder parses
# with pyarrow's JSON reader instead (slower) and the worker's log says so.
NATIVE := $(VENV)/.native
NATIVE_SOURCES := $(wildcard native/src/*.rs) native/Cargo.toml native/Cargo.lock native/pyproject.toml native/maxlake_native.pyi
$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	@if command -v cargo >/dev/null; then \
		echo "==> building the native JSON parser (native/, Rust; 1-4 min the first time: 40 s idle, 4 min at load 11-18; silent while it compiles)"; \
		$(BIN)/uv pip install --python $(BIN)/python --reinstall-package maxlake-native ./native \
			&& touch $(NATIVE); \
	else \
		echo "==> WARNING: no Rust toolchain (cargo): maxlake_native is not built and telemetry is parsed"; \
		echo "    by pyarrow's JSON reader (slower; tests/unit/schemas/test_native_parse.py fails)."; \
		echo "    Install Rust (https://rustup.rs) and run make install again: it then builds it."; \
	fi

native: $(NATIVE) ## build and install the native JSON parser (needs Rust; part of install, which retries it once cargo is found)

install: $(STAMP) $(NATIVE) $(BYTECODE) ## create .venv, install maxlake with the dev tools, build the native parser (when cargo is found)

$(KAFKA_JARS): infra/pom.xml
	@echo "==> fetching the pinned Apache Kafka broker jars from Maven Central (once, about 30 s)"
	cd infra && mvn -B -Dstyle.color=never dependency:copy-dependencies 2>&1 | { grep --line-buffered -E '(Downloaded from .*\.jar|\[ERROR\])' || true; } | sed -u -E 's#.*/([^/]+\.jar) \(([^ ]+ [kM]?B).*#    downloaded \1 (\2)#'
	touch $(KAFKA_JARS)

broker-jars: $(KAFKA_JARS) ## fetch the pinned Apache Kafka broker jars from Maven Central

lint: $(STAMP) ## ruff, the import contracts (layers, no cycles; pyproject [tool.importlinter]), rustfmt and clippy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@if cargo clippy --version >/dev/null 2>&1; then \
		echo "cargo fmt --check && cargo clippy -D warnings (native/)"; \
		cd native && cargo fmt --check && cargo clippy --quiet --release -- -D warnings; \
	else echo "==> no cargo clippy: the Rust lint of native/ is skipped"; fi

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

# Tests run in PYTEST_WORKERS processes, one test file per process at a time (module fixtures
# such as a broker or a server are built once): most integration time is spent waiting on brokers.
# Files start in collection order, longest first (tests/conftest.py).
PYTEST_WORKERS ?= 3
test: $(STAMP) $(NATIVE) own-bytecode $(KAFKA_JARS) browser lint typecheck test-native ## lint, typecheck, native, unit and integration tests
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The native parser against its previous implementation (native/src/parse_tests.rs; ~1 min to
# build the test binary, ~20 s to run).
test-native: ## the Rust tests of native/ (cargo test; skipped without cargo)
	@if command -v cargo >/dev/null; then cd native && cargo test --quiet; \
	else echo "==> no cargo: the Rust tests of native/ are skipped"; fi

test-unit: $(STAMP) $(NATIVE) own-bytecode ## unit tests only (no broker)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder tests/unit

test-integration: $(STAMP) $(NATIVE) own-bytecode $(KAFKA_JARS) browser ## integration tests against a throwaway real broker
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder tests/integration

# --- headless Chromium for tests/integration/test_status_page.py (Debian's chromium package) ---
# Installs only when `chromium` is missing; as root (CI) or through `sudo -n` (never prompts).
.PHONY: browser
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
browser: ## install Debian's chromium (apt-get) for the status page browser test, if missing
	command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
# --- end headless Chromium ---

broker-up: $(STAMP) $(KAFKA_JARS) ## start the local broker (MAXLAKE_BROKER_* settings)
	$(BIN)/maxlake broker start || test $$? -eq 3

broker-down: $(STAMP) ## stop the local broker
	$(BIN)/maxlake broker stop || test $$? -eq 3

demo: $(STAMP) $(NATIVE) $(KAFKA_JARS) ## end to end: local broker, simulated plants, worker, Delta lake, report
	$(BIN)/maxlake demo

bench: $(STAMP) $(NATIVE) $(KAFKA_JARS) ## ingest throughput benchmark (1,000,000 events; minutes)
	$(BIN)/python bench/bench_ingest.py

clean: ## remove the local lake, broker data and spool (keeps .venv and jars)
	rm -rf .lake .maxlake
