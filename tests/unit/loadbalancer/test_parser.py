"""The haproxy lines CloudStack sends, read into the model and rendered again:
stickiness, keep-alive, timeouts, binds, SSL offload, and what the firewall opens.

Upstream: core/src/main/java/com/cloud/network/HAProxyConfigurator.java builds
the lines; systemvm/debian/opt/cloud/bin/cs/CsLoadBalancer.py writes them and
opens add_rules and stat_rules.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from vragent.feature import Opening
from vragent.features.loadbalancer import feature, subsystem
from vragent.features.loadbalancer.daemon import CONF
from vragent_lab import loadbalancer as lb

from tests.unit.builders import lb_bag, settings, tls_pair

from .helpers import (
    PUBLIC,
    bag,
    command,
    desired,
    listen_block,
    refused,
    rendered,
    rule_of,
)

BACKENDS = [("10.10.1.10", 80), ("10.10.2.10", 80)]


def cfg_of(raw: dict[str, Any]) -> str:
    return subsystem.render(desired(raw))[CONF.name]


def one_rule(**kw: Any) -> dict[str, Any]:
    port = kw.pop("port", 80)
    return bag(command(lb.Rule(PUBLIC, port, kw.pop("backends", BACKENDS), **kw),
                       keepalive=kw.pop("keepalive", False)))


# -- stickiness ------------------------------------------------------------------------


def test_lb_cookie_with_a_name() -> None:
    text = cfg_of(one_rule(sticky=("LbCookie", {"cookie-name": "SRVID", "indirect": "",
                                                "nocache": "", "domain": "vpc.lab"})))
    block = listen_block(text, "100_64_10_11-80")
    assert "cookie SRVID insert indirect nocache domain vpc.lab" in block
    assert "mode http" in block
    assert "server 10_10_1_10-80 10.10.1.10:80 check cookie 10_10_1_10-80" in block
    assert "server 10_10_2_10-80 10.10.2.10:80 check cookie 10_10_2_10-80" in block


def test_lb_cookie_without_a_name_takes_upstreams_hash_name() -> None:
    rule = rule_of(one_rule(sticky=("LbCookie", {})))
    sticky = rule.config.listens[0].sticky
    assert sticky is not None and sticky.kind == "cookie"
    # lbcooki_<String.hashCode() of the public IP>_<port>
    assert sticky.name == f"lbcooki_{lb._java_hash(PUBLIC)}_80"
    text = cfg_of(one_rule(sticky=("LbCookie", {})))
    assert f"cookie {sticky.name} insert" in listen_block(text, "100_64_10_11-80")


def test_source_based() -> None:
    text = cfg_of(one_rule(port=2200, backends=[("10.10.1.10", 22)], algorithm="source",
                           sticky=("SourceBased", {"tablesize": "100k", "expire": "15m"})))
    assert listen_block(text, "100_64_10_11-2200") == [
        "bind 100.64.10.11:2200 transparent", "mode tcp", "balance source",
        "stick-table type ip size 100k expire 15m", "stick on src",
        "server 10_10_1_10-22 10.10.1.10:22 check"]


def test_app_cookie_request_learn_query_string() -> None:
    text = cfg_of(one_rule(port=8080, backends=[("10.10.1.10", 8080)], sticky=(
        "AppCookie", {"cookie-name": "JSESSIONID", "length": "64", "holdtime": "2h",
                      "request-learn": "", "mode": "query-string"})))
    block = listen_block(text, "100_64_10_11-8080")
    assert "mode http" in block  # an application cookie is HTTP
    i = block.index("stick-table type string len 64 size 200k expire 2h")
    assert block[i:i + 4] == [
        "stick-table type string len 64 size 200k expire 2h",
        "stick on url_param(JSESSIONID)",
        "stick store-response res.cook(JSESSIONID)",
        "stick store-request url_param(JSESSIONID)"]
    assert not any(line.startswith("appsession") for line in block)


def test_app_cookie_without_request_learn_sticks_on_the_cookie() -> None:
    block = listen_block(cfg_of(one_rule(port=8080, sticky=("AppCookie", {}))),
                         "100_64_10_11-8080")
    name = f"appcookie_{lb._java_hash(PUBLIC)}_8080"
    assert f"stick on req.cook({name})" in block
    assert f"stick store-response res.cook({name})" in block
    assert not any(line.startswith("stick store-request") for line in block)


# -- keep-alive and timeouts -------------------------------------------------------------


def test_keepalive_gives_no_httpclose() -> None:
    raw = bag(command(lb.Rule(PUBLIC, 80, BACKENDS), keepalive=True,
                      stats=lb.Stats("10.10.1.1", keepalive=True)))
    assert "\tno option forceclose" in raw["rules"][0]["configuration"]
    text = cfg_of(raw)
    assert "httpclose" not in text and "forceclose" not in text
    assert "mode http" in listen_block(text, "100_64_10_11-80")


def test_without_keepalive_http_listens_close() -> None:
    text = cfg_of(one_rule())
    assert "option httpclose" in listen_block(text, "100_64_10_11-80")


def test_timeouts_come_from_defaults() -> None:
    raw = one_rule()
    lines = raw["rules"][0]["configuration"]
    lines[lines.index("\ttimeout connect    5000")] = "\ttimeout connect    7s"
    lines[lines.index("\ttimeout server     50000")] = "\ttimeout server     2m"
    text = cfg_of(raw)
    defaults = text[text.index("\ndefaults\n"):text.index("\nlisten ")]
    assert "\ttimeout connect 7s\n\ttimeout client 50000\n\ttimeout server 2m\n" in defaults


def test_missing_timeouts_take_upstreams_defaults() -> None:
    raw = one_rule()
    raw["rules"][0]["configuration"] = [line for line in raw["rules"][0]["configuration"]
                                        if "timeout" not in line]
    assert "\ttimeout connect 5000\n\ttimeout client 50000\n\ttimeout server 50000\n" in (
        cfg_of(raw))


@pytest.mark.parametrize("line", ["\ttimeout queue 5000", "\ttimeout connect", "\ttimeout "
                                  "connect 5 s", "\ttimeout connect 5000y"])
def test_bad_timeouts_are_refused(line: str) -> None:
    raw = one_rule()
    lines = raw["rules"][0]["configuration"]
    n = lines.index("\ttimeout connect    5000")
    lines[n] = line
    assert f"configuration[{n}]" in str(refused(raw))


# -- binds -----------------------------------------------------------------------------


def test_rules_on_the_same_port_of_two_public_ips_are_both_kept() -> None:
    # upstream #5553: a rule of one public IP replaced another's on the same port.
    raw = bag(command(lb.Rule(PUBLIC, 80, BACKENDS),
                      lb.Rule("100.64.10.12", 80, [("10.10.2.11", 8080)])))
    d = desired(raw)
    assert [(lst.ip, lst.port) for lst in d.listens] == [(PUBLIC, 80), ("100.64.10.12", 80)]
    assert d.frontends == ((PUBLIC, 80), ("100.64.10.12", 80))
    text = subsystem.render(d)[CONF.name]
    assert listen_block(text, "100_64_10_12-80")[0] == "bind 100.64.10.12:80 transparent"
    assert listen_block(text, "100_64_10_11-80")[0] == "bind 100.64.10.11:80 transparent"


def test_a_bind_twice_is_refused() -> None:
    raw = bag(command(lb.Rule(PUBLIC, 80, BACKENDS), lb.Rule(PUBLIC, 80, BACKENDS)))
    assert "a second listen 100_64_10_11-80" in str(refused(raw))
    lines = raw["rules"][0]["configuration"]
    second = max(i for i, line in enumerate(lines) if line == "listen 100_64_10_11-80")
    lines[second] = "listen other"
    text = str(refused(raw))
    assert "bound twice: 100.64.10.11:80 by listen 100_64_10_11-80 (configuration[" in text
    assert f"listen other (configuration[{second}])" in text


def test_a_second_bind_in_a_listen_is_refused() -> None:
    raw = one_rule()
    lines = raw["rules"][0]["configuration"]
    n = lines.index("\tbind 100.64.10.11:80")
    lines.insert(n + 1, "\tbind 100.64.10.11:81")
    raw["rules"][0]["add_rules"].append("100.64.10.11:81:")
    assert f"configuration[{n + 1}] 'bind 100.64.10.11:81': listen 100_64_10_11-80: " \
        "a second bind" in str(refused(raw))


def test_a_bind_not_in_add_rules_is_refused() -> None:
    raw = one_rule()
    raw["rules"][0]["add_rules"] = []
    text = str(refused(raw))
    assert "bind 100.64.10.11:80 is not named in add_rules or stat_rules" in text


def test_a_listen_without_server_is_refused() -> None:
    text = str(refused(one_rule(backends=[])))
    assert "listen 100_64_10_11-80 (configuration[" in text and "has no server" in text


def test_the_dummy_listen_alone_disables_the_feature() -> None:
    raw = bag(command())
    lines = raw["rules"][0]["configuration"]
    assert lines[-3:] == ["listen  vmops", "\tbind 0.0.0.0:9", "\toption transparent"]
    assert raw["rules"][0]["add_rules"] == []
    assert rule_of(raw).config.listens[0].dummy
    d = desired(raw)
    assert not d.enabled
    assert subsystem.render(d).files == ((CONF.name, ""),)
    assert rendered(raw) == ""
    assert feature.traffic(None, settings(), d).accept == ()


def test_the_dummy_listen_is_left_out_beside_rules() -> None:
    raw = one_rule()
    raw["rules"][0]["configuration"] += ["listen  vmops", "\tbind 0.0.0.0:9",
                                         "\toption transparent"]
    d = desired(raw)
    assert [lst.name for lst in d.listens] == ["100_64_10_11-80"]
    assert "vmops" not in subsystem.render(d)[CONF.name]


def test_no_rule_object_disables() -> None:
    raw = {"type": "loadbalancer", "rules": [], "delete_from_processed_cache": False}
    d = desired(raw)
    assert not d.enabled and rendered(raw) == ""


def test_more_than_one_rule_object_is_refused() -> None:
    raw = one_rule()
    raw["rules"].append(raw["rules"][0])
    assert "rules:" in str(refused(raw))


def test_transparent_mode_is_refused_clearly() -> None:
    raw = one_rule()
    raw["rules"][0]["is_transparent"] = True
    text = str(refused(raw))
    assert "rules.0.is_transparent: transparent mode" in text
    assert "not supported by this router" in text


def test_transparent_lines_are_refused() -> None:
    raw = one_rule()
    lines = raw["rules"][0]["configuration"]
    lines.insert(lines.index("\tbalance roundrobin"), "\tsource 0.0.0.0 usesrc clientip")
    assert "transparent mode ('source 0.0.0.0 usesrc clientip', 'user root') is not " \
        "supported" in str(refused(raw))


# -- SSL offload -----------------------------------------------------------------------


def _ssl(chain: bool = False) -> dict[str, Any]:
    raw = bag(command(lb.Rule(PUBLIC, 443, BACKENDS, algorithm="leastconn", tls=tls_pair())))
    if chain:
        raw["rules"][0]["ssl_certs"][0]["chain"] = tls_pair()[0]
    return raw


@pytest.mark.parametrize("chain", [False, True])
def test_the_422_ssl_bind_is_rendered_with_our_certificate(chain: bool) -> None:
    raw = _ssl(chain)
    assert "\tbind 100.64.10.11:443 ssl crt /etc/cloudstack/ssl/100_64_10_11-443.pem " \
        f"{lb.SSL_OPTIONS}" in raw["rules"][0]["configuration"]
    cert, key = tls_pair()
    pem = cert.strip() + "\n" + (cert.strip() + "\n" if chain else "") + key.strip() + "\n"
    file = f"100_64_10_11-443.{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    d = desired(raw)
    assert d.certs == {file: pem}
    assert d.cert_files == {"100_64_10_11-443": file}
    block = listen_block(subsystem.render(d)[CONF.name], "100_64_10_11-443")
    assert block[0] == f"bind 100.64.10.11:443 transparent ssl crt {d.cert_dir}/{file} " \
        f"{lb.SSL_OPTIONS}"
    assert "http-request set-header X-Forwarded-Proto https" in block
    assert "ssl-default-bind-options ssl-min-ver TLSv1.2" in subsystem.render(d)[CONF.name]
    # The index shows the file name, never the key.
    assert "PRIVATE KEY" not in rendered(raw) and file in rendered(raw)


def test_a_new_certificate_is_a_new_file_name() -> None:
    first = desired(_ssl()).cert_files
    second = desired(_ssl(chain=True)).cert_files
    assert first.keys() == second.keys() and first != second


def test_an_ssl_bind_without_its_certificate_is_refused() -> None:
    raw = _ssl()
    del raw["rules"][0]["ssl_certs"]
    assert "certificate 100_64_10_11-443.pem is not in ssl_certs" in str(refused(raw))


@pytest.mark.parametrize("path", ["/etc/shadow", "/etc/cloudstack/ssl/../../shadow.pem",
                                  "/tmp/100_64_10_11-443.pem"])
def test_an_ssl_bind_elsewhere_is_refused(path: str) -> None:
    raw = _ssl()
    lines = raw["rules"][0]["configuration"]
    n = next(i for i, line in enumerate(lines) if "ssl crt" in line)
    lines[n] = lines[n].replace("/etc/cloudstack/ssl/100_64_10_11-443.pem", path)
    assert f"configuration[{n}]" in str(refused(raw))


def test_an_encrypted_key_is_refused() -> None:
    raw = _ssl()
    raw["rules"][0]["ssl_certs"][0]["password"] = "s3cret-pass"
    text = str(refused(raw))
    assert "rules.0.ssl_certs.0.password: encrypted keys are not supported" in text
    assert "s3cret-pass" not in text
    raw["rules"][0]["ssl_certs"][0]["password"] = ""
    assert rule_of(raw).certs()["100_64_10_11-443"].password == ""


# -- what the firewall opens -----------------------------------------------------------------


def _traffic(raw: dict[str, Any]) -> tuple[Opening, ...]:
    return feature.traffic(None, settings(), desired(raw)).accept


def test_frontends_open_to_the_public() -> None:
    assert _traffic(one_rule()) == (Opening("public", "tcp", (80,), daddr=PUBLIC),)


def test_an_add_rules_entry_without_a_listener_is_not_opened() -> None:
    raw = one_rule()
    raw["rules"][0]["add_rules"].append("100.64.10.11:9999:")
    assert rule_of(raw).openings() == [(PUBLIC, 80), (PUBLIC, 9999)]
    assert _traffic(raw) == (Opening("public", "tcp", (80,), daddr=PUBLIC),)


def test_stats_visible_to_all() -> None:
    raw = bag(command(lb.Rule(PUBLIC, 80, BACKENDS),
                      stats=lb.Stats(PUBLIC, visibility="global", cidrs="0/0")))
    raw["rules"][0]["stat_rules"] = ["0.0.0.0/0:8081:0/0:,"]
    assert _traffic(raw) == (Opening("public", "tcp", (80,), daddr=PUBLIC),
                             Opening("any", "tcp", (8081,), daddr="", saddr=""))


def test_stats_open_only_to_their_sources() -> None:
    raw = bag(command(lb.Rule(PUBLIC, 80, BACKENDS), stats=lb.Stats(
        "10.10.1.1", cidrs="198.51.100.0/24,100.64.77.7/32")))
    assert raw["rules"][0]["stat_rules"] == ["10.10.1.1:8081:198.51.100.0/24,100.64.77.7/32:,"]
    assert _traffic(raw) == (
        Opening("public", "tcp", (80,), daddr=PUBLIC),
        Opening("any", "tcp", (8081,), daddr="10.10.1.1",
                saddr="198.51.100.0/24,100.64.77.7/32"))


def test_a_stat_rule_without_its_stats_listener_is_not_opened() -> None:
    raw = one_rule()
    raw["rules"][0]["stat_rules"] = ["10.10.1.1:8081:0/0:,"]
    assert _traffic(raw) == (Opening("public", "tcp", (80,), daddr=PUBLIC),)


def test_the_sample_bag_opens_its_three_frontends_and_stats() -> None:
    assert _traffic(lb_bag()) == (
        Opening("public", "tcp", (80,), daddr=PUBLIC),
        Opening("public", "tcp", (443,), daddr=PUBLIC),
        Opening("public", "tcp", (2200,), daddr=PUBLIC),
        Opening("any", "tcp", (8081,), daddr="10.10.1.1", saddr=""))
