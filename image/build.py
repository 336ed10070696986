"""Build the router's container image: ``make image``.

Two layers, each rebuilt only when its inputs change:

* the root filesystem, built with mmdebstrap from the Debian packages in
  ``packages.txt`` (the machine's own apt sources) and imported with
  ``docker import`` as ``vragent-base:<digest of the package list>``;
* the agent, installed offline from wheels built from this repository, with
  supervisord's configuration and a manifest of every package version, as
  ``vragent-router:<digest of everything that goes in>`` (also tagged ``latest``).

A second run with nothing changed finds both tags and does nothing.

The system-VM disk (``vm.py``) is made from the same package list and the
same agent layer: ``agent_context`` and ``agent-layer.sh`` serve both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AGENT = REPO / "config-agent"
SUPERVISORD_CONF = REPO / "services/supervisord.conf"
# The agent's layer, one recipe for the container image and the system-VM disk.
AGENT_LAYER = HERE / "agent-layer.sh"
BUILD = REPO / ".build/image"
BASE_REPO = "vragent-base"
IMAGE_REPO = "vragent-router"
# What keeps the root filesystem small: no manuals, docs or translations.
MMDEBSTRAP_OPTS = [
    "--variant=minbase",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
]
SUITE = "bookworm"


def log(message: str) -> None:
    print(f"image: {message}", flush=True)


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, **kw)  # type: ignore[call-overload]


def has_image(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True,
                          check=False).returncode == 0


def packages(path: Path = HERE / "packages.txt") -> list[str]:
    lines = path.read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def tree_digest(root: Path) -> bytes:
    """Content of the agent's sources, in a stable order (build outputs excluded)."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() or "__pycache__" in rel or ".egg-info" in rel or rel.startswith(
                "build/"):
            continue
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.digest()


def build_base() -> str:
    pkgs = packages()
    tag = f"{BASE_REPO}:{digest(' '.join(pkgs).encode(), ' '.join(MMDEBSTRAP_OPTS).encode())}"
    if has_image(tag):
        log(f"root filesystem {tag}: up to date")
        return tag
    BUILD.mkdir(parents=True, exist_ok=True)
    tar = BUILD / "rootfs.tar"
    started = time.monotonic()
    log(f"root filesystem: mmdebstrap {SUITE} with {len(pkgs)} packages")
    run(["mmdebstrap", *MMDEBSTRAP_OPTS, f"--include={','.join(pkgs)}", SUITE, str(tar)],
        stdout=subprocess.DEVNULL)
    run(["docker", "import", "--message", "vragent router root filesystem", str(tar), tag],
        stdout=subprocess.DEVNULL)
    tar.unlink()
    log(f"root filesystem {tag}: built in {time.monotonic() - started:.0f} s")
    return tag


def wheelhouse(out: Path) -> list[str]:
    """The agent's wheel and its dependencies' wheels, fetched on this host."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # setuptools copies the package into build/lib and never removes what is
    # gone from the source since: a module moved or deleted would ship too.
    shutil.rmtree(AGENT / "build", ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(out), str(AGENT)],
        stdout=subprocess.DEVNULL)
    return sorted(p.name for p in out.glob("*.whl"))


def scripts_signature(package: Path) -> str:
    sys.path.insert(0, str(package.parent))
    from vragent.version import scripts_signature as signature

    return signature(package)


def agent_version() -> str:
    for line in (AGENT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    return "unknown"


# dpkg-query's format for the manifest's package list.
DPKG_FORMAT = "${Package} ${Version}\n"


def agent_inputs() -> tuple[bytes, ...]:
    """What the agent's layer is made of, for the digests of both images."""
    return (tree_digest(AGENT), SUPERVISORD_CONF.read_bytes(), AGENT_LAYER.read_bytes(),
            Path(__file__).read_bytes())


def agent_context(out: Path, base: str, debs: str) -> str:
    """The agent's layer, ready to install: ``out`` gets the wheels, supervisord's
    configuration, the manifest and ``agent-layer.sh``, which installs them
    (``sh out/agent-layer.sh <agent version>`` as root in the target root
    filesystem). ``debs`` is dpkg-query's listing of that root filesystem.
    Returns the manifest's text."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    wheels = wheelhouse(out / "wheelhouse")
    manifest = {
        "agent_version": agent_version(),
        # What the image records as the scripts it runs (version.py),
        # computed here from the same files the wheel carries.
        "scripts_signature": scripts_signature(AGENT / "src/vragent"),
        "base_image": base,
        "debian_packages": dict(line.split(" ", 1) for line in debs.splitlines() if line),
        "wheels": wheels,
    }
    text = json.dumps(manifest, indent=1, sort_keys=True)
    (out / "manifest.json").write_text(text)
    shutil.copy(SUPERVISORD_CONF, out / "supervisord.conf")
    shutil.copy(AGENT_LAYER, out / "agent-layer.sh")
    (out / "cloud-bin.txt").write_text("".join(f"{n}\n" for n in cloudstack_entry_points()))
    return text


def cloudstack_entry_points() -> list[str]:
    """The agent's scripts that are CloudStack's entry points (update_config.py,
    checkrouter.sh ...), linked into /opt/cloud/bin: every console script of
    pyproject.toml but the agent's own (vragent, vragent-*)."""
    scripts = tomllib.loads((AGENT / "pyproject.toml").read_text())["project"]["scripts"]
    return sorted(n for n in scripts if n != "vragent" and not n.startswith("vragent-"))


def build_image(base: str, tag_latest: bool = True) -> str:
    # The recipe is an input too: this script, the Dockerfile and agent-layer.sh.
    inputs = digest(base.encode(), *agent_inputs(), (HERE / "Dockerfile").read_bytes())
    tag = f"{IMAGE_REPO}:{inputs}"
    if has_image(tag):
        log(f"router image {tag}: up to date")
    else:
        started = time.monotonic()
        ctx = BUILD / "context"
        shutil.rmtree(ctx, ignore_errors=True)
        ctx.mkdir(parents=True)
        debs = run(["docker", "run", "--rm", "--network", "none", base, "dpkg-query", "-W",
                    "-f", DPKG_FORMAT], capture_output=True).stdout
        text = agent_context(ctx / "agent", base, debs)
        shutil.copy(HERE / "Dockerfile", ctx / "Dockerfile")
        run(["docker", "build", "--quiet", "--network", "none", "--tag", tag,
             "--build-arg", f"BASE={base}",
             "--build-arg", f"AGENT_VERSION={json.loads(text)['agent_version']}",
             "--build-arg", f"MANIFEST_DIGEST={hashlib.sha256(text.encode()).hexdigest()}",
             str(ctx)], stdout=subprocess.DEVNULL)
        log(f"router image {tag}: built in {time.monotonic() - started:.0f} s")
    if tag_latest:
        run(["docker", "tag", tag, f"{IMAGE_REPO}:latest"])
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image/build.py", description=__doc__)
    parser.parse_args(argv)
    started = time.monotonic()
    try:
        tag = build_image(build_base())
    except subprocess.CalledProcessError as exc:
        print(f"image: {' '.join(exc.cmd)} failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    size = run(["docker", "image", "inspect", "--format", "{{.Size}}", tag],
               capture_output=True).stdout.strip()
    log(f"{tag} ({int(size) / 1e6:.0f} MB) ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
