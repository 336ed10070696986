"""The compose lab, against the real router image (pytest-docker brings it up and down).

One ``redundant-vpc`` lab (sync-link mode) serves the whole session: every test
leaves it with exactly one master. pytest-docker removes its containers,
networks and volumes even when a test fails; the lab driver removes what it
added around them (namespace handles, DOCKER-USER rules, the receiver, tiers
added at run time).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent_lab.lab import COMPOSE_DIR, Lab
from vragent_lab.scenario import configure

PROJECT = "vrlabtest"
PROJECT_LAB = "vrlab"  # what `make lab` brings up


def _lab(tmp: Path) -> Lab:
    return Lab(project=PROJECT, workdir=tmp, advert_int=1.0)


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE_DIR / "redundant-vpc.yml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return ["up -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down --volumes --remove-orphans --timeout 5"]


@pytest.fixture(scope="session")
def lab_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The compose file's variables, set before pytest-docker renders it."""
    lab = _lab(tmp_path_factory.mktemp("lab"))
    lab.down(quiet=True)  # an earlier, interrupted run of this same project
    label = f"com.docker.compose.project={PROJECT_LAB}"
    if lab.client().networks.list(filters={"label": label}):
        pytest.fail(f"the compose lab ({PROJECT_LAB}) is up and holds the lab's subnets: "
                    "`make lab-down` first", pytrace=False)
    saved = dict(os.environ)
    os.environ.update(lab.compose_env())
    try:
        yield lab
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def lab(lab_env: Lab, docker_services: object) -> Iterator[Lab]:
    lab_env.adopt()
    try:
        configure(lab_env)
        yield lab_env
    finally:
        lab_env.release(quiet=True)
        lab_env.remove_extra_tiers()
