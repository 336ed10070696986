# vragent: the redundant VPC router appliance.
#   make demo   the sample two-tier VPC on one router, then on a redundant pair with a failover
#   make test   lint, type checks, unit and integration tests
# Both install what they need (Debian packages, the Python environment).

SHELL := /bin/bash
VENV  := $(CURDIR)/.venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS  := nftables iproute2 iputils-ping conntrack procps keepalived conntrackd
PYTEST_ARGS ?=

.PHONY: setup demo test lint typecheck unit integration bench-apply bench-failover stress clean

setup: $(STAMP)

# RUNLEVEL=1: installing keepalived or conntrackd must not start host-wide daemons;
# each router runs its own under its supervisord.
$(STAMP): config-agent/pyproject.toml
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e 'config-agent[test]'
	touch $@

demo: setup
	$(PY) -m vragent.lab.demo
	$(PY) -m vragent.lab.demo_pair

lint: setup
	$(VENV)/bin/ruff check config-agent tests bench

typecheck: setup
	cd config-agent && $(VENV)/bin/mypy src/vragent

unit: setup
	cd tests && $(PY) -m pytest -q unit $(PYTEST_ARGS)

integration: setup
	cd tests && $(PY) -m pytest -q integration $(PYTEST_ARGS)

test: lint typecheck
	cd tests && $(PY) -m pytest -q unit integration $(PYTEST_ARGS)

bench-apply: setup
	$(PY) bench/bench_apply.py

# 20 hard-kill failovers at advert_int 1.0 and 0.2 (BENCH_ARGS=--quick for a smoke run).
bench-failover: setup
	$(PY) bench/bench_failover.py $(BENCH_ARGS)

stress: setup
	cd tests && VRAGENT_STRESS_KILLS=$${VRAGENT_STRESS_KILLS:-1000} $(PY) -m pytest -q integration/test_crash.py -s

clean:
	rm -rf $(VENV)
