#!/bin/sh
# The agent's layer of the router, one recipe for both images: the container
# image's Dockerfile runs it, and so does the system-VM build (vm.py) in a
# chroot of the VM's root filesystem. Offline: the wheels were fetched on the
# build host (build.py agent_context put them beside this script, with
# supervisord's configuration and the manifest); nothing is fetched here.
#   sh agent-layer.sh <agent version>
set -eu
here=$(dirname "$0")
python3 -m venv /opt/vragent
/opt/vragent/bin/pip install --quiet --no-index --no-cache-dir --find-links "$here/wheelhouse" vragent
# What the router is built from, where CloudStack's router_version_check.py
# and get_template_version.sh read it: the release line
# (configure_systemvm_services.sh's "Cloudstack Release <version> <date>") and
# the signature of the scripts it runs, here the agent (vragent signature: an
# md5, as a 4.20 management server records it).
/opt/vragent/bin/vragent --root / signature --write >/dev/null
echo "Cloudstack Release vragent-$1 $(date -u)" > /etc/cloudstack-release
# /opt/cloud/bin: CloudStack's entry points, where its management server calls
# them: the agent's console scripts but its own (cloud-bin.txt, written by
# build.py from pyproject.toml), so a new one needs no change here.
mkdir -p /opt/cloud/bin /usr/share/vragent
while read -r s; do
    ln -sfn "/opt/vragent/bin/$s" "/opt/cloud/bin/$s"
done < "$here/cloud-bin.txt"
install -m 0644 "$here/supervisord.conf" "$here/manifest.json" /usr/share/vragent/
