"""The metadata and password service against its own files, over loopback."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent.features.vmdata.daemon import CONF as METADATA_CONF
from vragent.features.vmdata.daemon import PASSWORDS as PASSWORDS_FILE
from vragent.features.vmdata.daemon import SERVED as PASSWORDS_SERVED
from vragent.features.vmdata.daemon import VMDATA as VMDATA_DIR
from vragent.features.vmdata.service import Service
from vragent.settings import Settings

CLIENT = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((CLIENT, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = Settings(root=tmp_path)
    s.conf_dir.mkdir(parents=True)
    VMDATA_DIR.of(s).mkdir(parents=True)
    METADATA_CONF.of(s).write_text(json.dumps({
        "listen": [{"address": CLIENT, "interface": "lo"}],
        "metadata_port": _free_port(), "password_port": _free_port(),
        "vmdata_dir": str(VMDATA_DIR.of(s)), "passwords_file": str(PASSWORDS_FILE.of(s)),
        "served_file": str(PASSWORDS_SERVED.of(s))}))
    (VMDATA_DIR.of(s) / f"{CLIENT}.json").write_text(json.dumps({
        "userdata": {"user-data": base64.b64encode(b"\x00\xffraw").decode()},
        "metadata": {"instance-id": "i-1", "availability-zone": "z"}}))
    PASSWORDS_FILE.of(s).write_text(json.dumps({CLIENT: "pw-1"}))
    svc = Service(s)
    svc.listen()
    try:
        yield svc
    finally:
        svc.close()


def get(svc: Service, path: str, port: str = "metadata", **headers: str) -> tuple[int, bytes]:
    number = svc.config.metadata_port if port == "metadata" else svc.config.password_port
    conn = http.client.HTTPConnection(CLIENT, number, timeout=5)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_paths(service: Service) -> None:
    assert get(service, "/latest/user-data") == (200, b"\x00\xffraw")
    assert get(service, "/latest/meta-data/") == (200, b"instance-id\navailability-zone\n")
    assert get(service, "/latest/meta-data/instance-id") == (200, b"i-1")
    assert get(service, "/latest/instance-id") == (200, b"i-1")
    assert get(service, "/2009-04-04/meta-data/instance-id") == (200, b"i-1")
    for bad in ("/", "/latest/meta-data/nope", "/other/instance-id", "/latest/../x",
                "/latest/meta-data/instance-id/x"):
        assert get(service, bad)[0] == 404, bad


def test_password_protocol(service: Service) -> None:
    pw = {"port": "password"}
    assert get(service, "/", **pw, DomU_Request="send_my_password") == (200, b"pw-1")
    assert get(service, "/", **pw, DomU_Request="send_my_password") == (200, b"pw-1")
    assert get(service, "/", **pw, DomU_Request="saved_password") == (200, b"saved_password")
    assert get(service, "/", **pw, DomU_Request="send_my_password") == (200, b"saved_password")
    assert get(service, "/", **pw)[1] == b"bad_request"
    # A new password for the same VM is served again.
    PASSWORDS_FILE.of(service.settings).write_text(json.dumps({CLIENT: "pw-2"}))
    assert get(service, "/", **pw, DomU_Request="send_my_password") == (200, b"pw-2")


def test_unknown_client_gets_nothing(service: Service) -> None:
    (service.config.vmdata_dir / f"{CLIENT}.json").unlink()
    PASSWORDS_FILE.of(service.settings).write_text("{}")
    assert get(service, "/latest/user-data")[0] == 404
    assert get(service, "/latest/meta-data/") == (200, b"")
    assert get(service, "/", "password", DomU_Request="send_my_password") == \
        (200, b"saved_password")


def test_reload_follows_the_listen_list(service: Service) -> None:
    conf = json.loads(METADATA_CONF.of(service.settings).read_text())
    old = conf["metadata_port"]
    conf["metadata_port"] = _free_port()
    METADATA_CONF.of(service.settings).write_text(json.dumps(conf))
    service.reload()
    assert get(service, "/latest/instance-id") == (200, b"i-1")
    with pytest.raises(OSError):
        http.client.HTTPConnection(CLIENT, old, timeout=1).request("GET", "/")
    # A broken file keeps the previous configuration.
    METADATA_CONF.of(service.settings).write_text("{")
    service.reload()
    assert get(service, "/latest/instance-id") == (200, b"i-1")


def test_binding_never_asks_dns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """http.server looks its address up (getfqdn): with no resolver answering,
    that held every listener for seconds."""
    def no_dns(*args: object) -> str:
        raise AssertionError("DNS lookup while binding")

    monkeypatch.setattr(socket, "getfqdn", no_dns)
    s = Settings(root=tmp_path)
    s.conf_dir.mkdir(parents=True)
    METADATA_CONF.of(s).write_text(json.dumps({
        "listen": [{"address": CLIENT, "interface": "lo"}], "metadata_port": _free_port(),
        "password_port": _free_port(), "vmdata_dir": str(VMDATA_DIR.of(s)),
        "passwords_file": str(PASSWORDS_FILE.of(s)), "served_file": str(PASSWORDS_SERVED.of(s))}))
    svc = Service(s)
    svc.listen()
    try:
        assert len(svc.servers) == 2
    finally:
        svc.close()
    assert svc.servers == {}
