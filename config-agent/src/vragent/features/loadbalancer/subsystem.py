"""Load balancing: haproxy from the ``loadbalancer`` bag.

The bag's lines were read into a model when it came in (``haproxy.read``);
here the router renders its own haproxy.cfg from that model: its own global
section (the admin socket, the server-state file, logging through
supervisord, no daemon mode), then each listener with only what the model
holds. Servers are named by their address (``10_1_1_4-80``) rather than by
their index in the pool as HAProxyConfigurator names them: the server-state
file is matched by name, and a pool that lost its first server would
otherwise hand that server's state to the next one. Certificates of SSL
offload go into root-only files named by digest, so a new certificate is a
new file name, a changed configuration and a hitless reload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ... import templates
from ...config import RouterConfig
from ...feature import Files
from ...settings import Settings
from ...topology import Topology
from . import daemon
from .daemon import CERTS, CONF, HOLD, SERVER_STATE, SOCKET
from .haproxy import CHROOT, Config, Listen, Server
from .model import LoadBalancerRule, StatOpening

NAME = "loadbalancer"
USER = "haproxy"


@dataclass(frozen=True)
class Desired:
    enabled: bool
    router: str = ""
    config: Config = field(default_factory=Config)
    listens: tuple[Listen, ...] = ()
    # file name in CERTS -> PEM (certificate, chain, key)
    certs: dict[str, str] = field(default_factory=dict, repr=False)
    cert_files: dict[str, str] = field(default_factory=dict)  # certificate name -> file name
    frontends: tuple[tuple[str, int], ...] = ()  # what the firewall opens to the public
    stats_openings: tuple[StatOpening, ...] = ()
    socket: str = ""
    hold: str = ""
    server_state: str = ""
    cert_dir: str = ""
    chroot: str = CHROOT
    user: str = USER
    problems: tuple[str, ...] = ()

    # What the template asks (pure).

    @property
    def tls(self) -> bool:
        return any(lst.tls is not None for lst in self.listens)

    @staticmethod
    def timeouts(have: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        # HAProxyConfigurator's defaults when a bag carries none.
        given = dict(have)
        return [(k, given.get(k, v)) for k, v in
                (("connect", "5000"), ("client", "50000"), ("server", "50000"))]

    def http(self, lst: Listen) -> bool:
        return lst.http or lst.stats is not None

    def close(self, lst: Listen) -> str:
        return lst.close or self.config.defaults.close

    def tls_options(self, lst: Listen) -> str:
        t = lst.tls
        if t is None:
            return ""
        out = f" ssl crt {self.cert_dir}/{self.cert_files[t.cert]}"
        if t.alpn:
            out += f" alpn {','.join(t.alpn)}"
        if t.min_version:
            out += f" ssl-min-ver {t.min_version}"
        out += "".join(f" {flag}" for flag in t.flags)
        if t.ciphers:
            out += f" ciphers {t.ciphers}"
        if t.ciphersuites:
            out += f" ciphersuites {t.ciphersuites}"
        return out

    @staticmethod
    def server_name(s: Server) -> str:
        return f"{s.ip.replace('.', '_')}-{s.port}"

    def server_options(self, lst: Listen, s: Server) -> str:
        out = ""
        if lst.sticky is not None and lst.sticky.kind == "cookie":
            out += f" cookie {s.cookie or self.server_name(s)}"
        for name in ("maxconn", "minconn", "maxqueue"):
            if getattr(s, name):
                out += f" {name} {getattr(s, name)}"
        if s.send_proxy:
            out += " send-proxy"
        if s.tls:
            out += " ssl verify none"
        return out

    @staticmethod
    def sticky(lst: Listen) -> list[str]:
        s = lst.sticky
        if s is None:
            return []
        if s.kind == "source":
            return [f"stick-table type ip size {s.size} expire {s.expire}", "stick on src"]
        if s.kind == "cookie":
            flags = [f for f in ("indirect", "nocache", "postonly") if getattr(s, f)]
            domains = [f"domain {d}" for d in s.domains]
            return [" ".join(["cookie", s.name, s.mode, *flags, *domains])]
        # AppCookie (appsession, removed in haproxy 1.6): the server's cookie
        # is learned from its responses (and, with request-learn, from
        # requests) into a stick table, and a request carrying it sticks.
        where = f"url_param({s.name})" if s.query_string else f"req.cook({s.name})"
        lines = [f"stick-table type string len {s.length} size 200k expire {s.expire}",
                 f"stick on {where}",
                 f"stick store-response res.cook({s.name})"]
        if s.request_learn:
            lines.append(f"stick store-request {where}")
        return lines

    def stats(self, lst: Listen) -> list[str]:
        st = lst.stats or (self.config.defaults.stats if self.http(lst) else None)
        if st is None:
            return []
        realm = st.realm.replace(" ", "\\ ")
        # Single quotes: nothing inside is special to haproxy's parser (the
        # password's characters were checked, and a quote is not among them).
        return ["stats enable", f"stats uri {st.uri}", f"stats realm {realm}",
                f"stats auth {st.user}:'{st.password}'"]


def desired(cfg: RouterConfig, topo: Topology, settings: Settings) -> Desired:
    rule: LoadBalancerRule | None = cfg.part(NAME)
    if rule is None:
        return Desired(enabled=False)
    config = rule.config
    listens = tuple(lst for lst in config.listens if not lst.dummy)
    if not listens:
        return Desired(enabled=False)
    certs: dict[str, str] = {}
    cert_files: dict[str, str] = {}
    for name, cert in sorted(rule.certs().items()):
        if not any(lst.tls is not None and lst.tls.cert == name for lst in listens):
            continue
        pem = cert.pem()
        file = f"{name}.{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
        certs[file] = pem
        cert_files[name] = file
    served = {(lst.ip, lst.port) for lst in listens}
    frontends = tuple(e for e in rule.openings() if e in served)
    stats_openings = tuple(s for s in rule.stat_openings()
                           if any(lst.stats is not None and lst.port == s.port
                                  and s.ip in ("", lst.ip) for lst in listens))
    return Desired(
        enabled=True,
        router=cfg.cmdline.get("name", "router"),
        config=config,
        listens=listens,
        certs=certs,
        cert_files=cert_files,
        frontends=frontends,
        stats_openings=stats_openings,
        socket=str(SOCKET.of(settings)),
        hold=str(HOLD.of(settings)),
        server_state=str(SERVER_STATE.of(settings)),
        cert_dir=str(CERTS.of(settings)),
    )


def verify(d: Desired) -> list[str]:
    return list(d.problems)


def render(d: Desired) -> Files:
    if not d.enabled:
        return Files(((CONF.name, ""),))
    # The golden text shows each certificate file by name (its digest), never the key.
    index = "".join(f"{name}\n" for name in sorted(d.certs))
    return Files(((CONF.name, templates.render("loadbalancer/haproxy.cfg.j2", d=d,
                                               c=d.config)),),
                 index=(("certificates", index),) if index else ())


def apply(d: Desired, rendered: Files, settings: Settings, dry_run: bool = False) -> list[str]:
    from ...system import daemons, haproxy

    directory = CERTS.of(settings)
    # Certificates first: the checker loads them with the file that names them.
    changes = [f"{NAME}: {c}" for c in haproxy.sync_certs(directory, d.certs, dry_run)]
    changes += daemons.sync_rendered(daemon.daemons(settings)[0], rendered, settings, dry_run)
    changes += [f"{NAME}: {c}" for c in haproxy.prune_certs(directory, set(d.certs), dry_run)]
    return changes
