"""ICMP echo ("ping") over a socket of our own: no ping(8) process per round, replies matched exactly.

An unprivileged ICMP socket (``SOCK_DGRAM``/``IPPROTO_ICMP``, allowed for
the groups in ``net.ipv4.ping_group_range``) is tried first, then a raw
socket (needs CAP_NET_RAW). If neither is allowed the result is
*inconclusive* and says how to allow it: a missing permission is not an
outage of the gateway.

IPv4 only. Give an address as host: a name is resolved first
(:mod:`edge_agent.probes.resolve`, which falls back on the last answer
while the resolver is silent).
"""

import secrets
import socket
import struct

from edge_agent.probes import ProbeResult, Target
from edge_agent.probes._common import checksum, exchange, figures, seconds, with_note
from edge_agent.probes.resolve import resolve

ECHO_REPLY, DEST_UNREACHABLE, ECHO_REQUEST = 0, 3, 8
PAYLOAD_SIZE = 32
NOT_PERMITTED = (
    "ICMP is not permitted for this process: allow unprivileged ping with "
    "sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" (or a range holding the agent's group), "
    "or give the agent CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW)")


class IcmpNotPermitted(PermissionError):
    """Neither an unprivileged nor a raw ICMP socket may be opened."""


def open_socket() -> tuple[socket.socket, str]:
    """An ICMP socket and its kind, "dgram" (unprivileged ping) or "raw"."""
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), "dgram"
    except OSError as exc:  # EACCES: our group is outside ping_group_range
        first = exc
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), "raw"
    except PermissionError:
        raise IcmpNotPermitted(NOT_PERMITTED) from first


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request with its checksum (the kernel fills it for dgram sockets, not for raw)."""
    bare = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq) + payload
    return bare[:2] + checksum(bare).to_bytes(2, "big") + bare[4:]


def parse_icmp(data: bytes, has_ip_header: bool) -> tuple[int, int, int, bytes] | None:
    """(type, ident, seq, rest) of an ICMP message; a raw socket's data starts with the IP header."""
    if has_ip_header:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4:]
    if len(data) < 8:
        return None
    kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", data[:8])
    return kind, ident, seq, data[8:]


def probe(target: Target, at: float) -> ProbeResult:
    where = resolve(target.host)
    if where.address is None:
        return ProbeResult(ok=False, at=at, detail=where.note, loss=1.0)
    address = where.address
    try:
        sock, kind = open_socket()
    except IcmpNotPermitted as exc:
        return ProbeResult(ok=False, at=at, detail=str(exc), inconclusive=True)
    with sock:
        rtts, errors = _ping(sock, kind == "raw", address, target)
    got = sum(r is not None for r in rtts)
    fig = figures(rtts)
    detail = f"{got}/{len(rtts)} replies"
    if got < len(rtts):
        detail += f" within {seconds(target.timeout_s)} s" + (f" ({', '.join(errors)})" if errors else "")
    return ProbeResult(ok=fig["loss"] < target.fail_loss, at=at, detail=with_note(detail, where.note), **fig)


def _ping(sock, raw: bool, address: str, target: Target):
    ident = secrets.randbelow(0x10000)  # a dgram socket's kernel replaces it with its own
    base = secrets.randbelow(0x10000)
    token = secrets.token_bytes(8)  # proves a reply answers this round, not an older one
    payload = token + bytes(PAYLOAD_SIZE - len(token))
    unreachable = []

    def send(i):
        sock.sendto(echo_request(ident, (base + i) & 0xFFFF, payload), (address, 0))

    def parse(data, addr):
        msg = parse_icmp(data, raw)
        if msg is None:
            return None
        kind, their_ident, seq, rest = msg
        if kind == DEST_UNREACHABLE and raw and _quotes_us(rest, ident):
            unreachable.append(addr[0])
        if kind != ECHO_REPLY or addr[0] != address or not rest.startswith(token):
            return None
        if raw and their_ident != ident:
            return None
        i = (seq - base) & 0xFFFF
        return i if i < target.count else None

    rtts, errors = exchange(sock, send, parse, target.count, target.spacing_s, target.timeout_s)
    if unreachable:
        errors.append(f"destination unreachable, said {unreachable[0]}")
    return rtts, errors


def _quotes_us(rest: bytes, ident: int) -> bool:
    """Whether an ICMP error quotes one of our echo requests (its IP header, then our 8 bytes)."""
    if len(rest) < 28:
        return False
    inner = rest[(rest[0] & 0x0F) * 4:]
    return len(inner) >= 8 and inner[0] == ECHO_REQUEST and int.from_bytes(inner[4:6], "big") == ident
