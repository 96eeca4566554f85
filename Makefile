# Two commands do all set-up: `make demo` (the main job on the embedded default) and
# `make test` (the suite; .ci/run calls exactly this).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEMO_WORKDIR ?= runs/demo

.PHONY: setup system-deps demo test clean

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
# suite is mostly subprocesses and TensorFlow start-up, so it takes ~9 min instead of ~15 on
# 2 cores.
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs *.egg-info
