"""load_balancer.json (``type: loadbalancer``): haproxy's configuration as
CloudStack builds it.

The Java side (core/.../virtualnetwork/facade/LoadBalancerConfigItem.java,
model/LoadBalancerRule.java) sends one rule object: the configuration's
lines (HAProxyConfigurator.generateConfiguration), the firewall entries
(generateFwRules: ``add_rules``/``remove_rules`` as ``"<ip>:<port>:"``,
``stat_rules`` as ``"<ip>:<port>:<source cidrs>:,"``), and since 4.22 the
certificates of SSL offload (``ssl_certs``: name, cert, key, chain,
password; PR #11468). The lines are read into a model here (``haproxy.read``),
so a bag whose lines do not parse, or bind anything the firewall entries do
not name, is refused whole.

* ``is_transparent: true`` is refused: transparent proxying (the backends
  seeing clients' addresses; CsLoadBalancer's DIVERT chain and fwmark 99
  table) is not realised by this router. ``network_cidr`` only feeds that
  mode on the Java side (HAProxyConfigurator's ``acl local_subnet``): it is
  kept and otherwise unused.
* ``tmp_cfg_file_path``/``tmp_cfg_file_name`` are paths on upstream's router:
  ignored (nothing is written where a bag says).
* Encrypted keys (``password``) are refused: haproxy loads only clear keys,
  and the router keeps no passphrase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PrivateAttr, StrictStr, field_validator, model_validator

from ...models.common import _IPV4_RE as _IPV4
from ...models.common import Bag, Bool, IPv4
from . import haproxy

_ENTRY = re.compile(r"(?P<ip>[0-9.]+):(?P<port>[0-9]{1,5}):", re.ASCII)
_STAT = re.compile(r"(?P<ip>[0-9./]*):(?P<port>[0-9]{1,5}):(?P<cidrs>[0-9./,]*):,?", re.ASCII)
_PEM_BLOCK = re.compile(r"-----BEGIN (?P<kind>[A-Z ]{1,40})-----\r?\n"
                        r"(?:[A-Za-z0-9+/=]{1,128}\r?\n){1,200}"
                        r"-----END (?P=kind)-----\r?\n?", re.ASCII)
CERT_KINDS = ("CERTIFICATE",)
KEY_KINDS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
MAX_PEM = 64 * 1024


def _pem(value: str, kinds: tuple[str, ...], what: str) -> str:
    text = value.strip() + "\n"
    if len(text) > MAX_PEM:
        raise ValueError(f"{what} is longer than {MAX_PEM} bytes")
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks or "".join(b.group(0) for b in blocks).replace("\r", "") != text.replace(
            "\r", "") or any(b.group("kind") not in kinds for b in blocks):
        raise ValueError(f"not PEM ({' or '.join(kinds)} blocks only)")
    return value


def _cert_name(value: str) -> str:
    if not haproxy._CERT_NAME.fullmatch(value):
        raise ValueError("not a certificate name ('<ip with _>-<port>', as "
                         "HAProxyConfigurator names a rule's pool)")
    return value


CertName = Annotated[StrictStr, AfterValidator(_cert_name)]


class SslCert(Bag):
    name: CertName
    cert: StrictStr
    key: StrictStr = Field(repr=False)
    chain: StrictStr | None = None
    password: StrictStr | None = Field(default=None, repr=False)

    @field_validator("cert")
    @classmethod
    def _cert(cls, value: str) -> str:
        return _pem(value, CERT_KINDS, "cert")

    @field_validator("chain")
    @classmethod
    def _chain(cls, value: str | None) -> str | None:
        return None if not value else _pem(value, CERT_KINDS, "chain")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        # Never echoed: the error says what is wrong, not what was sent.
        _pem(value, KEY_KINDS, "key")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value:
            raise ValueError("encrypted keys are not supported: haproxy loads clear keys "
                             "only, and the router keeps no passphrase")
        return value

    def pem(self) -> str:
        """haproxy's crt file: the certificate, its chain, then the key
        (CsLoadBalancer._create_pem_for_sslcert's order)."""
        parts = [self.cert, self.chain or "", self.key]
        return "".join(p.strip().replace("\r\n", "\n") + "\n" for p in parts if p)


@dataclass(frozen=True)
class StatOpening:
    ip: str  # "" for any address (visibility "all")
    port: int
    sources: tuple[str, ...]  # () for any


def _entry(value: str) -> tuple[str, int]:
    m = _ENTRY.fullmatch(value)
    if m is None or not _IPV4.fullmatch(m["ip"]) or not 1 <= int(m["port"]) <= 65535:
        raise ValueError(f"{value!r} is not '<ipv4>:<port>:'")
    return m["ip"], int(m["port"])


def _stat(value: str) -> StatOpening | None:
    if value == "":
        return None  # visibility neither of the four: stats inline, no port (generateFwRules)
    m = _STAT.fullmatch(value)
    if m is None or not 1 <= int(m["port"]) <= 65535:
        raise ValueError(f"{value!r} is not '<ip>:<port>:<source cidrs>:,'")
    ip = m["ip"]
    if ip == "0.0.0.0/0":
        ip = ""
    elif not _IPV4.fullmatch(ip):
        raise ValueError(f"{value!r}: {ip!r} is not an IPv4 address")
    sources: list[str] = []
    for cidr in filter(None, m["cidrs"].split(",")):
        if cidr in ("0/0", "0.0.0.0/0"):
            return StatOpening(ip, int(m["port"]), ())
        net, _, plen = cidr.partition("/")
        if not _IPV4.fullmatch(net) or not (plen == "" or (
                plen.isdigit() and int(plen) <= 32)):
            raise ValueError(f"{value!r}: {cidr!r} is not an IPv4 CIDR")
        sources.append(cidr)
    return StatOpening(ip, int(m["port"]), tuple(sources))


class LoadBalancerRule(Bag):
    configuration: list[StrictStr] = Field(max_length=100_000)
    tmp_cfg_file_path: StrictStr | None = None
    tmp_cfg_file_name: StrictStr | None = None
    is_transparent: Bool = False
    network_cidr: StrictStr | None = None
    ssl_certs: list[SslCert] | None = None
    add_rules: list[StrictStr] = []
    remove_rules: list[StrictStr] = []
    stat_rules: list[StrictStr] = []
    router_ip: IPv4 | None = None

    _config: haproxy.Config = PrivateAttr(default_factory=haproxy.Config)

    @field_validator("add_rules", "remove_rules")
    @classmethod
    def _entries(cls, values: list[str]) -> list[str]:
        for v in values:
            _entry(v)
        return values

    @field_validator("stat_rules")
    @classmethod
    def _stats(cls, values: list[str]) -> list[str]:
        for v in values:
            _stat(v)
        return values

    @field_validator("is_transparent")
    @classmethod
    def _transparent(cls, value: bool) -> bool:
        if value:
            raise ValueError("transparent mode (backends seeing the clients' addresses) is "
                             "not supported by this router: turn it off for the network")
        return value

    @field_validator("network_cidr")
    @classmethod
    def _network(cls, value: str | None) -> str | None:
        if value:
            _stat(f"0.0.0.0/0:1:{value}:,")  # a CIDR list, or refused
        return value

    @model_validator(mode="after")
    def _read(self) -> LoadBalancerRule:
        cfg, problems = haproxy.read(self.configuration)
        opened = {_entry(v) for v in self.add_rules}
        stats = [s for s in (_stat(v) for v in self.stat_rules) if s is not None]
        certs = {c.name for c in self.ssl_certs or ()}
        for lst in cfg.listens:
            if lst.dummy or not lst.ip:
                continue
            if lst.stats is not None and any(s.port == lst.port and s.ip in ("", lst.ip)
                                             for s in stats):
                pass
            elif (lst.ip, lst.port) not in opened:
                problems.append(f"{lst.where}: bind {lst.endpoint} is not named in "
                                f"add_rules or stat_rules")
            if lst.tls is not None and lst.tls.cert not in certs:
                problems.append(f"{lst.where}: certificate {lst.tls.cert}.pem is not "
                                f"in ssl_certs")
            if lst.transparent or cfg.root_user:
                problems.append(f"{lst.where}: transparent mode ('source 0.0.0.0 "
                                f"usesrc clientip', 'user root') is not supported")
        endpoints = [lst.endpoint for lst in cfg.listens if lst.ip and not lst.dummy]
        for twice in sorted({e for e in endpoints if endpoints.count(e) > 1}):
            problems.append(f"bound twice: {twice} by " + ", ".join(
                lst.where for lst in cfg.listens if lst.endpoint == twice and not lst.dummy))
        if problems:
            shown = problems[:20]
            more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise ValueError("; ".join(shown) + more)
        self._config = cfg
        return self

    @property
    def config(self) -> haproxy.Config:
        return self._config

    def certs(self) -> dict[str, SslCert]:
        return {c.name: c for c in self.ssl_certs or ()}

    def stat_openings(self) -> list[StatOpening]:
        return [s for s in (_stat(v) for v in self.stat_rules) if s is not None]

    def openings(self) -> list[tuple[str, int]]:
        return sorted({_entry(v) for v in self.add_rules})


class LoadBalancer(Bag):
    type: Literal["loadbalancer"]
    # One rule object (CsLoadBalancer reads config[0]); none: no load balancing.
    rules: list[LoadBalancerRule] = Field(max_length=1)
    delete_from_processed_cache: Bool = False
