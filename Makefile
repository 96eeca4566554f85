# Two commands do all set-up: `make demo` (the main job on the embedded default) and
# `make test` (the suite; .ci/run calls exactly this).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEMO_WORKDIR ?= runs/demo

.PHONY: setup system-deps demo test peers clean

setup: system-deps $(VENV)/.installed

# ngspice's shared library (RLC simulator). Installed when we are root; otherwise say how.
system-deps:
	@if ldconfig -p 2>/dev/null | grep -q 'libngspice\.so'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing libngspice0 (ngspice shared library for the RLC simulator)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libngspice0 >/dev/null; \
	else echo "ngspice shared library missing (needed by --sim=rlc only): sudo apt-get install libngspice0"; fi

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: setup
	$(PY) -m simvae_tf.main --sim=box --workdir=$(DEMO_WORKDIR)

# Two worker processes, one test file each at a time (module fixtures are built once): the
# suite is mostly subprocesses and TensorFlow start-up, so two workers nearly halve it
# (399 tests: 9.8 min on 2 cores, a clean clone, 2026-12-03; 11.7 min in a working tree).
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

# benchmarks/peers/: simvae_tf beside BayesFlow. BayesFlow 2.1 needs Python >= 3.12, so the peer
# gets its own environment (Python 3.12/3.13 where found, pyenv's too; else $(PYTHON) and
# BayesFlow 2.0.x); `make test` never needs it.
PEERS_VENV := benchmarks/peers/.venv
# PEERS_FLAGS=--record appends the table to benchmarks/RESULTS.md
PEERS_FLAGS ?=
PEERS_PYTHON ?= $(shell for p in python3.13 python3.12 $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.1[23]*/bin/python 2>/dev/null); do \
	$$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { command -v $$p; break; }; done)

$(PEERS_VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PEERS_VENV)/bin/python || $(or $(PEERS_PYTHON),$(PYTHON)) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q -e ".[peers]"
	touch $@

peers: setup $(PEERS_VENV)/.installed
	$(PY) benchmarks/peers/compare.py --peer_python=$(PEERS_VENV)/bin/python $(PEERS_FLAGS)

clean:
	rm -rf $(VENV) $(PEERS_VENV) runs *.egg-info
