# vragent: the redundant VPC router appliance.
#   make lab       the main job: router image, compose lab, sample VPC, failover under load, report
#   make test      lint, type checks, unit, integration (namespaces) and e2e (containers) tests
#   make lab-down  remove everything the lab created
# Each installs what it needs (Debian packages, Docker, the Python environment).

SHELL := /bin/bash
VENV  := $(CURDIR)/.venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS  := nftables iproute2 iputils-ping conntrack procps keepalived conntrackd \
         dnsmasq-base dnsmasq-utils busybox bind9-dnsutils curl cloud-init \
         docker.io docker-compose mmdebstrap iptables haproxy openssl \
         charon-systemd strongswan-swanctl libcharon-extra-plugins libcharon-extauth-plugins \
         libstrongswan-standard-plugins traceroute iputils-arping xl2tpd \
         qemu-system-x86 qemu-utils grub-pc-bin radvd frr frr-pythontools \
         isc-dhcp-client ndisc6 rdnssd fdisk e2fsprogs openssh-client
PYTEST_ARGS ?=

.PHONY: setup docker image vm-image lab lab-down demo test test-vm lint typecheck unit integration e2e \
        bench-apply bench-failover bench-lab bench-services bench-density bench-diagnostics \
        bench-families \
        stress clean

setup: $(STAMP)

# RUNLEVEL=1: installing keepalived or conntrackd must not start host-wide daemons;
# each router runs its own under its supervisord.
$(STAMP): config-agent/pyproject.toml compose/pyproject.toml
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e 'config-agent[test]' -e compose pytest-docker
	touch $@

# A Docker daemon: CI starts with none, so start one when none answers.
docker: setup
	@docker info >/dev/null 2>&1 || { echo "starting dockerd"; \
		(setsid dockerd >/var/log/vragent-dockerd.log 2>&1 &); \
		for i in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
		docker info >/dev/null 2>&1 || { echo "dockerd did not start: see /var/log/vragent-dockerd.log"; exit 1; }; }

# The router image (root filesystem + agent layer), rebuilt only where something changed.
image: docker
	$(PY) image/build.py

# The system-VM disk (qcow2 for KVM, VHD for XenServer and Hyper-V) from the
# same packages and agent as the router image, in .build/vm/; rebuilt only
# where something changed.
vm-image: setup
	$(PY) image/vm.py

lab: image
	$(VENV)/bin/vragent-lab run

lab-down: setup
	$(VENV)/bin/vragent-lab down

demo: setup
	$(PY) -m vragent_lab.demo
	$(PY) -m vragent_lab.demo_pair

lint: setup
	$(VENV)/bin/ruff check config-agent compose image tests bench

typecheck: setup
	cd config-agent && $(VENV)/bin/mypy src/vragent
	cd compose && $(VENV)/bin/mypy --strict --ignore-missing-imports vragent_lab

unit: setup
	cd tests && $(PY) -m pytest -q unit $(PYTEST_ARGS)

integration: setup
	cd tests && $(PY) -m pytest -q integration $(PYTEST_ARGS)

e2e: image
	cd tests && $(PY) -m pytest -q e2e $(PYTEST_ARGS)

# tests/vm: system VMs under QEMU (TCG). Measured on this shared 2-core machine
# (load about 3): the disk cold in 2 min, the VM tests in 11 min (one router
# 3.2, the pair 4.5, kernel ESP and L2TP/IPsec 2.9): about 13 of CI's 90
# minutes, so they are part of the suite (README, "The system-VM image").
test: lint typecheck image vm-image
	cd tests && $(PY) -m pytest -q unit integration e2e vm $(PYTEST_ARGS)

# The system VM under QEMU (TCG) alone: one router (boot, guest-agent
# parameters, ssh on 3922, bags by scp, reboot), a CloudStack-mode pair (power
# pulled), and kernel ESP and L2TP/IPsec between two VMs.
test-vm: vm-image
	cd tests && $(PY) -m pytest -q vm $(PYTEST_ARGS)

# One process per command against raw nft (bench_apply), then commands through the
# resident agent's API: one change among 12,000 rules, a cold load, a burst on a pair.
bench-apply: setup
	$(PY) bench/bench_apply.py $(BENCH_ARGS)
	cd bench && $(PY) bench_api.py $(BENCH_ARGS)

# 10,000 ACL rules of mixed families against as many IPv4-only ones, cold and one
# changed, each against raw nft -f, in the same run (--quick: 1,000).
bench-families: setup
	$(PY) bench/bench_families.py $(BENCH_ARGS)

# 2,000 DHCP entries at once, then one more, against dnsmasq's own reload.
bench-services: setup
	$(PY) bench/bench_services.py $(BENCH_ARGS)

# diagnostics.py against ping itself, the zip against upstream's way (no checks, no redaction).
bench-diagnostics: setup
	$(PY) bench/bench_diagnostics.py $(BENCH_ARGS)

# 20 hard-kill failovers at advert_int 1.0 and 0.2 (BENCH_ARGS=--quick for a smoke run).
# Hard kills, planned switchovers and a 10-minute soak under load, per detection setting.
bench-failover: setup
	$(PY) bench/bench_failover.py $(BENCH_ARGS)

# 50 pairs on this host: idle CPU and memory per router, elections while idle and configured.
bench-density: setup
	$(PY) bench/bench_density.py $(BENCH_ARGS)

# Failover in containers at advert_int 1.0 and 0.2 (BENCH_ARGS=--quick for 2 rounds).
bench-lab: image
	$(PY) bench/bench_lab.py $(BENCH_ARGS)

stress: setup
	cd tests && VRAGENT_STRESS_KILLS=$${VRAGENT_STRESS_KILLS:-1000} $(PY) -m pytest -q integration/test_crash.py -s

clean:
	rm -rf $(VENV)
