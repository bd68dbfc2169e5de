# One command each. The first run bootstraps uv into .tools/ and the locked environment into .venv/;
# a fresh machine needs nothing but Python 3.11+.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run test check bench bench-peers mutate fmt lock env clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

# --compile-bytecode: imports read .pyc files even where PYTHONDONTWRITEBYTECODE is set (every server start in the
# e2e tests would otherwise compile the vendor SDKs again: ~10 s of CPU each).
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-groups --compile-bytecode
	@touch $@

env: $(VENV)/.synced

run: env
	$(VENV)/bin/switchyard serve

test: env
	$(VENV)/bin/pytest $(PYTEST_ARGS)

check: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: env
	$(VENV)/bin/python -m benchmarks $(BENCH_ARGS)

# Switchyard beside LiteLLM's proxy in one run (not in CI: ~5 min on 2 cores). Installs litellm[proxy] (pinned) into
# .tools/peers/litellm, outside the lock, and wrk from Debian's packages if missing. Writes benchmarks/results/peers.md.
# BENCH_PEERS_ARGS: --quick, --duration S, --connections N, --streams N, --no-workers.
bench-peers: env
	$(VENV)/bin/python -m benchmarks.peers $(BENCH_PEERS_ARGS)

# Mutation testing of the stream core (not in CI: ~30 min on 2 idle cores); resumes an interrupted run.
# Writes benchmarks/results/mutation.md. MUTATE_ARGS: --only KEY (or lua), --fresh, --budget-min N, --jobs N,
# --report-only (rewrite the report from the last verdicts). Needs Redis for the Lua pass.
mutate: env
	$(VENV)/bin/python -m benchmarks.mutation $(MUTATE_ARGS)

fmt: env
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lock: $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
