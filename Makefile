# One-command set-up and runs on a fresh machine (needs python3 >= 3.11, node >= 20, npm, git).
# The tests also need PostgreSQL's server programs: `make test` installs Debian's
# `postgresql` package when they are missing (as root, or through sudo).
# `make test-contended` runs the same suite beside two CPU-burning processes
# (Debian's `stress-ng`, installed the same way), as on a busy machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup postgres stress-ng demo test test-contended lint bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	node_modules/.bin/opencode --version
	touch $@

demo: setup
	$(BIN)/langgraph-opencode demo

# PostgreSQL server programs for the checkpoint tests (each test run starts its own cluster).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql package (server programs for the tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	}

test: setup postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The CPU burner of `make test-contended`.
stress-ng:
	@command -v stress-ng >/dev/null 2>&1 || { \
	  echo "installing Debian's stress-ng package (CPU load for make test-contended)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends stress-ng >/dev/null; \
	}

# `make test` with two processes burning CPU beside it for as long as it runs; they are
# stopped when the suite ends, fails or is interrupted (and give up after 4 h in any case).
test-contended: setup postgres stress-ng
	@stress-ng --cpu 2 --timeout 4h --quiet & burner=$$!; \
	trap 'kill $$burner 2>/dev/null; wait $$burner 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "stress-ng --cpu 2 (pid $$burner) runs beside the suite"; \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
