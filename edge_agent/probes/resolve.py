"""Host names to IPv4 addresses for the probes: a budget and retries of our own, and the last answer kept.

glibc's resolver waits ``timeout:5`` seconds before it asks again after a
lost reply, longer than a whole probe round may take, and cannot be told
otherwise per call: under 30 % loss an ``http`` target named by host name
failed whole rounds on the name alone and went "down" while the server
answered every GET. So the probes resolve names themselves, as the system
would but on our clock:

1. an address literal is used as it is;
2. ``/etc/hosts`` (nsswitch's usual ``files`` before ``dns``);
3. A queries to the ``nameserver`` lines of ``/etc/resolv.conf`` (127.0.0.1
   without any): ``TRIES`` queries ``SPACING_S`` apart, spread over the
   servers in turn, the first answer wins, nothing waited for after
   ``BUDGET_S``. A name without a dot is tried with each ``search``
   domain first, as glibc does with ``ndots:1``.

A good answer is kept for its TTL (at most ``MAX_TTL_S``). When the
resolver gives no usable answer (silence, SERVFAIL) the last good address
is used for up to ``STALE_S`` and the result's note says so: whether the
resolver works is the ``dns`` target's to judge, not the web server's. Only
a definite "no such name" (NXDOMAIN, or no A record) or no address ever
known fails the round on the name.
"""

import ipaddress
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass

from edge_agent.probes import RESOLVE_BUDGET_S, is_address
from edge_agent.probes._common import note, reason, seconds
from edge_agent.probes.dnswire import DnsFormatError, build_query, parse_response

RESOLV_CONF = "/etc/resolv.conf"  # read at every lookup, as glibc notices a changed file
HOSTS = "/etc/hosts"
NAMESERVER_PORT = 53  # resolv.conf cannot name another; tests point these three elsewhere
TRIES = 4  # 30 % loss each way: all four exchanges lost once in 15 resolutions; the last answer covers those
SPACING_S = 0.3
BUDGET_S = RESOLVE_BUDGET_S
MAX_TTL_S = 3600
STALE_S = 3600.0
NO_SUCH_NAME = 3  # NXDOMAIN

_cache: dict[str, tuple[str, float, float]] = {}  # name -> (address, good until, resolved at); monotonic
_lock = threading.Lock()


@dataclass(frozen=True)
class Resolution:
    """An address to probe, or None; ``note`` says what a probe's detail should add ("" for a fresh answer)."""

    address: str | None
    note: str = ""


def resolve(host: str, clock=time.monotonic) -> Resolution:
    """``host`` as an IPv4 address (an IPv6 literal is passed through), within ``BUDGET_S``."""
    if is_address(host):
        return Resolution(host)
    name = host.rstrip(".").lower()
    listed = _from_hosts(name, HOSTS)
    if listed:
        return Resolution(listed)
    now = clock()
    with _lock:
        cached = _cache.get(name)
    if cached and now < cached[1]:
        return Resolution(cached[0])
    servers, search = _resolv_conf(RESOLV_CONF)
    answer, trouble = _ask_all(_candidates(name, search), (servers, NAMESERVER_PORT), clock)
    if answer is not None and answer.rcode == 0 and answer.addresses:
        ttl = min(answer.ttl_s or 0, MAX_TTL_S)
        with _lock:
            _cache[name] = (answer.addresses[0], now + ttl, now)
        return Resolution(answer.addresses[0])
    if answer is not None and answer.rcode in (0, NO_SUCH_NAME):
        with _lock:
            _cache.pop(name, None)
        what = "has no A record" if answer.rcode == 0 else "does not exist (NXDOMAIN)"
        return Resolution(None, f"name {host} {what} at {', '.join(servers)}")
    if cached and now - cached[2] <= STALE_S:
        return Resolution(cached[0], f"{trouble}; used {cached[0]}, resolved {now - cached[2]:.0f} s ago")
    return Resolution(None, f"cannot resolve {host}: {trouble}")


def forget() -> None:
    """Drop every kept answer (tests, and a changed configuration)."""
    with _lock:
        _cache.clear()


def _from_hosts(name: str, path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and name in (f.lower().rstrip(".") for f in fields[1:]):
            try:
                return str(ipaddress.IPv4Address(fields[0]))
            except ValueError:
                continue  # an IPv6 line for the name; the probes are IPv4
    return None


def _resolv_conf(path: str) -> tuple[list[str], list[str]]:
    servers, search = [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                servers.append(str(ipaddress.IPv4Address(fields[1])))
            except ValueError:
                continue  # an IPv6 resolver; our queries go over IPv4
        elif fields and fields[0] in ("search", "domain"):
            search = [d.rstrip(".").lower() for d in fields[1:]]
    return servers or ["127.0.0.1"], search


def _candidates(name: str, search: list[str]) -> list[str]:
    if "." in name or not search:
        return [name]
    return [f"{name}.{domain}" for domain in search] + [name]


def _ask_all(names: list[str], where: tuple[list[str], int], clock):
    """The first good answer for the first of ``names`` that has one, sharing one budget."""
    deadline = clock() + BUDGET_S
    answer, troubles = None, []
    for name in names:
        got, trouble = _ask(name, where, deadline, clock)
        if got is not None and got.rcode == 0 and got.addresses:
            return got, ""
        if got is not None and (answer is None or got.rcode in (0, NO_SUCH_NAME)):
            answer = got
        note(troubles, trouble)
        if clock() >= deadline:
            break
    return answer, "; ".join(troubles)


def _ask(name: str, where: tuple[list[str], int], deadline: float, clock):
    """Staggered A queries for ``name``: (final answer or the last SERVFAIL-like one or None, trouble text)."""
    servers, port = where
    ids = _ids(TRIES)
    queries = {qid: build_query(qid, name) for qid in ids}
    errors: list[str] = []
    last = None
    start, sent, answered = clock(), 0, 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while True:
            now = clock()
            while sent < TRIES and now >= start + sent * SPACING_S and now < deadline:
                try:
                    sock.sendto(queries[ids[sent]], (servers[sent % len(servers)], port))
                except OSError as exc:  # no route while the line is down: this query is lost
                    note(errors, reason(exc))
                    answered += 1  # nothing will come back for it
                sent += 1
            if now >= deadline or (sent == TRIES and answered >= sent):
                break  # out of time, or every query answered (SERVFAIL-like) or unsendable
            wake = deadline if sent == TRIES else min(deadline, start + sent * SPACING_S)
            answer = _receive(sock, queries, servers, max(0.0, wake - now))
            if answer is None:
                continue
            answered += 1
            if answer.rcode in (0, NO_SUCH_NAME):
                return answer, ""
            last = answer
    if last is not None:
        trouble = f"{last.rcode_name} from {', '.join(servers)}"
    else:
        trouble = f"no answer from {', '.join(servers)} within {seconds(BUDGET_S)} s"
    return last, trouble + (f" ({', '.join(errors)})" if errors else "")


def _receive(sock, queries: dict, servers: list[str], wait_s: float):
    try:
        readable, _, _ = select.select([sock], [], [], wait_s)
        if not readable:
            return None
        data, addr = sock.recvfrom(4096)
    except (InterruptedError, OSError):
        return None
    if addr[0] not in servers:
        return None
    try:
        answer = parse_response(data)
    except DnsFormatError:
        return None  # garbage is a stray packet, not an answer
    return answer if answer.qid in queries else None


def _ids(count: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < count:
        qid = secrets.randbelow(0x10000)
        if qid not in ids:
            ids.append(qid)
    return ids
