"""``loadbalancer`` bags exactly as a CloudStack management server builds them.

A port of what the bag carries, line for line:
core/src/main/java/com/cloud/network/HAProxyConfigurator.java
(``generateConfiguration``, ``getRulesForPool``, ``getLbSubRuleForStickiness``,
``generateStatsRule``, ``generateFwRules``), with 4.22's SSL offload bind
(apache/cloudstack#11468, as #12591 quotes it) and the facade's
LoadBalancerConfigItem / model/LoadBalancerRule.java field names. Lab and
test tooling: the router never builds these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BLANK = "\t "
GLOBAL = ["global", "\tlog 127.0.0.1:3914   local0 warning", "\tmaxconn 4096", "\tmaxpipes 1024",
          "\tchroot /var/lib/haproxy", "\tuser haproxy", "\tgroup haproxy", "\tdaemon"]
DEFAULTS = ["defaults", "\tlog     global", "\tmode    tcp", "\toption  dontlognull",
            "\tretries 3", "\toption redispatch", "\toption forwardfor", "\toption forceclose",
            "\ttimeout connect    5000", "\ttimeout client     50000",
            "\ttimeout server     50000"]
DUMMY = ["listen  vmops", "\tbind 0.0.0.0:9", "\toption transparent"]
# 4.22's SSL bind options (issue #12591's quote of a 4.22 router's haproxy.cfg).
SSL_OPTIONS = ("alpn h2,http/1.1 ssl-min-ver TLSv1.2 no-tls-tickets ciphers "
               "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"
               "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:AES256-GCM-SHA384:"
               "AES128-GCM-SHA256 ciphersuites "
               "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")
CERT_DIR = "/etc/cloudstack/ssl/"


@dataclass
class Rule:
    """A LoadBalancerTO: public ip:port, the algorithm, destinations, stickiness."""

    ip: str
    port: int
    backends: list[tuple[str, int]]
    algorithm: str = "roundrobin"
    # ("LbCookie" | "AppCookie" | "SourceBased", {param: value})
    sticky: tuple[str, dict[str, str]] | None = None
    # (cert PEM, key PEM): SSL offload, lbProtocol "ssl"
    tls: tuple[str, str] | None = None
    revoked: bool = False

    @property
    def pool(self) -> str:
        return f"{self.ip.replace('.', '_')}-{self.port}"


@dataclass
class Stats:
    """LoadBalancerConfigCommand's stats settings (lbStats*)."""

    ip: str
    visibility: str = "guest-network"
    port: int = 8081
    uri: str = "/admin?stats"
    auth: str = "admin1:AdMiN123"
    cidrs: str = "0/0"
    keepalive: bool = False


@dataclass
class Command:
    rules: list[Rule]
    stats: Stats | None = None
    maxconn: str = "4096"
    keepalive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _java_hash(text: str) -> int:
    """String.hashCode(), which names a cookie when the policy names none."""
    h = 0
    for c in text:
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _sticky(rule: Rule) -> str | None:
    if rule.sticky is None:
        return None
    method, params = rule.sticky
    if method == "LbCookie":
        name = params.get("cookie-name") or f"lbcooki_{_java_hash(rule.ip)}_{rule.port}"
        out = f"\tcookie {name} {params.get('mode', 'insert ')} "
        for flag in ("indirect", "nocache", "postonly"):
            if flag in params:
                out += f"{flag} "
        if "domain" in params:
            out += f"domain {params['domain']}  "
        return out
    if method == "SourceBased":
        return (f"\tstick-table type ip size {params.get('tablesize', '200k')} expire "
                f"{params.get('expire', '30m')}\n\tstick on src")
    if method == "AppCookie":
        name = params.get("cookie-name") or f"appcookie_{_java_hash(rule.ip)}_{rule.port}"
        out = (f"\tappsession {name} len {params.get('length', '52')} timeout "
               f"{params.get('holdtime', '3h')} ")
        if "prefix" in params:
            out += "prefix "
        if "request-learn" in params:
            out += "request-learn "
        if "mode" in params:
            out += f"mode {params['mode']} "
        return out
    raise ValueError(f"unknown stickiness method {method!r}")


def _pool(rule: Rule, keepalive: bool) -> list[str]:
    bind = f"\tbind {rule.ip}:{rule.port}"
    if rule.tls is not None:
        bind += f" ssl crt {CERT_DIR}{rule.pool}.pem {SSL_OPTIONS}"
    out = [f"listen {rule.pool}", bind, f"\tbalance {rule.algorithm}"]
    sticky = _sticky(rule)
    http_sticky = rule.sticky is not None and rule.sticky[0] in ("LbCookie", "AppCookie")
    for i, (ip, port) in enumerate(rule.backends):
        line = f"\tserver {rule.pool}_{i} {ip}:{port} check"
        if http_sticky:
            line += f" cookie {ip.replace('.', '_')}-{port}"
        out.append(line)
    if sticky is not None and rule.backends:
        out.append(sticky)
    if rule.port == 80 or http_sticky or rule.tls is not None:
        out.append("\tmode http")
        out.append("\tno option forceclose" if keepalive else "\toption httpclose")
    out.append(BLANK)
    return out


def _stats_rule(name: str, ip: str, s: Stats) -> str:
    rule = f"\nlisten {name}\n\tbind {ip}:{s.port}\n\tmode http"
    if not s.keepalive:
        rule += "\n\toption httpclose"
    rule += (f"\n\tstats enable\n\tstats uri     {s.uri}\n\tstats realm   Haproxy\\ Statistics"
             f"\n\tstats auth    {s.auth}\n")
    return rule


def configuration(cmd: Command) -> list[str]:
    """generateConfiguration(LoadBalancerConfigCommand)."""
    glob = list(GLOBAL)
    glob[2] = f"\tmaxconn {cmd.maxconn}"
    glob[3] = f"\tmaxpipes {int(cmd.maxconn) // 4}"
    out = [*glob, BLANK]
    defaults = list(DEFAULTS)
    if cmd.keepalive:
        defaults[7] = "\tno option forceclose"
    out += defaults
    s = cmd.stats
    if s is not None and s.visibility != "disabled":
        out.append(_stats_rule({"global": "stats_on_public", "guest-network": "stats_on_guest",
                                "link-local": "stats_on_private"}[s.visibility], s.ip, s))
    out.append(BLANK)
    live = [r for r in cmd.rules if not r.revoked]
    for rule in live:
        out += _pool(rule, cmd.keepalive)
    out.append(BLANK)
    if not live:
        out += DUMMY
    return out


def bag(cmd: Command, router_ip: str) -> dict[str, Any]:
    """The ``loadbalancer`` bag (LoadBalancerConfigItem, generateFwRules)."""
    add = sorted({f"{r.ip}:{r.port}:" for r in cmd.rules if not r.revoked})
    remove = sorted({f"{r.ip}:{r.port}:" for r in cmd.rules if r.revoked} - set(add))
    stats = [f"{cmd.stats.ip}:{cmd.stats.port}:{cmd.stats.cidrs}:,"] if cmd.stats else [""]
    certs = [{"name": r.pool, "cert": r.tls[0], "key": r.tls[1]}
             for r in cmd.rules if r.tls is not None and not r.revoked]
    rule: dict[str, Any] = {
        "configuration": configuration(cmd),
        "tmp_cfg_file_path": "/etc/haproxy/",
        "tmp_cfg_file_name": "haproxy.cfg.new.1700000000000",
        "is_transparent": False,
        "add_rules": add,
        "remove_rules": remove,
        "stat_rules": stats,
        "router_ip": router_ip,
        **cmd.extra,
    }
    if certs:
        rule["ssl_certs"] = certs
    return {"type": "loadbalancer", "rules": [rule], "delete_from_processed_cache": False}
