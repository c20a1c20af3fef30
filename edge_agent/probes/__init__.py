"""Network probes: ICMP, TCP connect, DNS, HTTP(S). Each returns a ProbeResult, never raises.

One module per kind, chosen by name from :data:`PROBES` and imported only
when a target of that kind is probed (gpiozero's pattern, as the printer
and button backends do). Every module has ``probe(target, at) ->
ProbeResult``. A probe reports an operating condition (timeout, refused,
loss, wrong status, certificate not trusted) in the result; it raises only
for a programming error.

One round of a probe sends several requests (``Target.count``), because one
lost packet must never look like an outage: the round fails only when the
loss reaches ``Target.fail_loss`` (default 1.0, no reply at all).
"""

import enum
import ipaddress
import math
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from edge_agent.errors import AgentConfigError, AgentError
from edge_agent.schema import TargetRole


class ProbeKind(enum.StrEnum):
    """A target's ``kind``: which probe runs it."""

    ICMP = "icmp"
    TCP = "tcp"
    DNS = "dns"
    HTTP = "http"


ICMP, TCP, DNS, HTTP = ProbeKind
PROBES = {
    ICMP: "edge_agent.probes.icmp:probe",
    TCP: "edge_agent.probes.tcp:probe",
    DNS: "edge_agent.probes.dns:probe",
    HTTP: "edge_agent.probes.http:probe",
}
ROLES = tuple(TargetRole)
# Requests per round, their spacing and per-request timeout when the target
# does not say. ICMP and DNS have no retransmission of their own, so several
# tries make a round robust against random loss (30 % loss: all five DNS
# queries lost once in 400 rounds, all twenty pings practically never).
# Twenty pings 50 ms apart also give the loss test in edge_agent.network
# enough packets to call 30 % loss degraded within a minute and not 15 %
# (about 10 bytes/s more than five pings). A TCP connect retransmits its
# SYN after 1 s inside a 2 s timeout, so three staggered connects are as
# robust. An HTTP GET is heavier: a second one is sent only if the first
# has no answer after 0.5 s (a hedged request). Every failing round then
# ends within 3 s (plus RESOLVE_BUDGET_S for a host given by name), which
# keeps outage confirmation under 20 s (see edge_agent.network).
DEFAULT_COUNT = {ICMP: 20, DNS: 5, TCP: 3, HTTP: 2}
DEFAULT_SPACING_S = {ICMP: 0.05, DNS: 0.2, TCP: 0.2, HTTP: 0.5}
DEFAULT_TIMEOUT_S = {ICMP: 1.0, DNS: 1.0, TCP: 2.0, HTTP: 2.5}
DEFAULT_PORT = {TCP: None, DNS: 53}
# A host given by name is resolved by edge_agent.probes.resolve within this
# long (four queries 0.3 s apart), on top of the round's own budget.
RESOLVE_BUDGET_S = 1.5


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """What one round of one probe saw.

    ``inconclusive`` is true when the probe could not run at all (ICMP not
    permitted, CA file missing): the round says nothing about the target and
    the state machine neither counts it as a failure nor as a success.
    """

    ok: bool
    at: float  # when the round started, epoch seconds from the caller's clock
    detail: str
    rtt_ms: float | None = None
    loss: float | None = None  # 0..1, the share of this round's requests left unanswered
    jitter_ms: float | None = None
    cert_days_left: int | None = None
    inconclusive: bool = False

    def to_dict(self) -> dict:
        """JSON-ready; times in ms rounded to 0.01 ms, loss to 0.1 %."""
        out = asdict(self)
        for key in ("rtt_ms", "jitter_ms"):
            if out[key] is not None:
                out[key] = round(out[key], 2)
        if out["loss"] is not None:
            out["loss"] = round(out["loss"], 3)
        return out


@dataclass(frozen=True, kw_only=True)
class Target:
    """One thing to probe. Zero or None fields take the kind's default (see ``DEFAULT_*``)."""

    name: str
    kind: ProbeKind | str  # icmp | tcp | dns | http (a config string works)
    role: str = "other"  # gateway | dns | central | internet | other
    host: str = ""  # icmp/tcp: the host; dns: the resolver's address
    port: int | None = None  # tcp (required); dns (53)
    url: str = ""  # http: http://... or https://...
    query_name: str = ""  # dns: the name whose A record is asked for
    expect_status: int = 200  # http
    timeout_s: float | None = None  # per request
    count: int | None = None  # requests per round
    spacing_s: float | None = None  # between the starts of a round's requests
    ca_file: str | None = None  # https: verify against this CA bundle instead of the system's
    fail_loss: float = 1.0  # a round fails at this loss or more; 1.0: only when nothing answers
    degraded_loss: float = 0.2
    degraded_rtt_ms: float = 500.0

    def __post_init__(self):
        kind_ok = self.kind in PROBES
        if kind_ok:
            if self.count is None:
                object.__setattr__(self, "count", DEFAULT_COUNT[self.kind])
            if self.timeout_s is None:
                object.__setattr__(self, "timeout_s", DEFAULT_TIMEOUT_S[self.kind])
            if self.spacing_s is None:
                object.__setattr__(self, "spacing_s", DEFAULT_SPACING_S[self.kind])
            if self.port is None:
                object.__setattr__(self, "port", DEFAULT_PORT.get(self.kind))
        problems = _problems(self, kind_ok)
        if problems:
            raise AgentConfigError(problems)

    @property
    def host_name(self) -> str:
        """The host the probe sends to: ``host``, or the URL's host for http."""
        if self.kind == HTTP:
            return urlsplit(self.url).hostname or ""
        return self.host

    @property
    def budget_s(self) -> float:
        """The longest one round of this target may take: the monitor's bound for it."""
        own = (self.count - 1) * self.spacing_s + self.timeout_s
        return own + (0.0 if is_address(self.host_name) else RESOLVE_BUDGET_S)


def _problems(t: Target, kind_ok: bool) -> list[str]:
    where = f"target {t.name!r}"
    if not kind_ok:
        return [f"{where}: kind {t.kind!r} is unknown; use one of: {', '.join(sorted(PROBES))}"]
    problems = []
    if t.role not in ROLES:
        problems.append(f"{where}: role {t.role!r} is unknown; use one of: {', '.join(ROLES)}")
    if t.kind in (ICMP, TCP, DNS) and not t.host:
        problems.append(f"{where}: a {t.kind} target needs host, e.g. host = \"10.0.0.1\"")
    if t.kind == TCP and not t.port:
        problems.append(f"{where}: a tcp target needs port, e.g. port = 443")
    if t.kind == DNS and not t.query_name:
        problems.append(f"{where}: a dns target needs query_name, e.g. query_name = \"siak.example.go.id\"")
    if t.kind == HTTP and not t.url.startswith(("http://", "https://")):
        problems.append(f"{where}: url {t.url!r} must start with http:// or https://")
    if not (isinstance(t.count, int) and 1 <= t.count <= 50):
        problems.append(f"{where}: count {t.count!r} must be a whole number from 1 to 50")
    for field in ("timeout_s", "degraded_rtt_ms"):
        value = getattr(t, field)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            problems.append(f"{where}: {field} {value!r} must be a number above 0")
    if not (isinstance(t.spacing_s, (int, float)) and 0 <= t.spacing_s <= 10):
        problems.append(f"{where}: spacing_s {t.spacing_s!r} must be from 0 to 10 seconds")
    for field in ("fail_loss", "degraded_loss"):
        value = getattr(t, field)
        if not (isinstance(value, (int, float)) and 0 < value <= 1):
            problems.append(f"{where}: {field} {value!r} must be above 0 and at most 1, e.g. 0.2")
    return problems


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def run_probe(target: Target, at: float) -> ProbeResult:
    """One round of ``target``'s probe, started at ``at`` (epoch seconds)."""
    return load_probe(target.kind)(target, at)


def load_probe(kind: str):
    """The ``probe`` function of ``kind``, imported on first use."""
    from common.backends import load_backend

    return load_backend(PROBES, kind, "probe", AgentError)
