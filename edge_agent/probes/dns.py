"""A DNS A query over UDP to one resolver, with a packet builder and parser of our own (RFC 1035).

The system resolver (getaddrinfo) cannot be pointed at one server, has no
timeout of its own and caches; this probe asks exactly the configured
resolver. Several queries per round (each with its own id) make random
loss harmless; the round is ok when an answer says NOERROR with an A record.
"""

import secrets
import socket
import struct
from dataclasses import dataclass

from edge_agent.probes import ProbeResult, Target
from edge_agent.probes._common import exchange, figures, ipv4_of, reason, seconds

TYPE_A, CLASS_IN = 1, 1
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsFormatError(ValueError):
    """A DNS message that cannot be read, or a name that cannot be asked for."""


@dataclass(frozen=True)
class DnsAnswer:
    qid: int
    rcode: int
    addresses: tuple[str, ...]

    @property
    def rcode_name(self) -> str:
        return RCODES.get(self.rcode, f"RCODE {self.rcode}")


def encode_name(name: str) -> bytes:
    """``name`` in DNS wire form: length-prefixed labels, then a zero byte."""
    labels = name.rstrip(".").split(".") if name.strip(".") else []
    out = bytearray()
    for label in labels:
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 1 <= len(raw) <= 63:
            raise DnsFormatError(f"DNS name {name!r}: label {label!r} must be 1 to 63 bytes long")
        out += bytes([len(raw)]) + raw
    if len(out) + 1 > 255:
        raise DnsFormatError(f"DNS name {name!r} is longer than 255 bytes")
    return bytes(out + b"\0")


def build_query(qid: int, name: str) -> bytes:
    """A standard query for ``name``'s A record, recursion desired."""
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", TYPE_A, CLASS_IN)


def parse_response(data: bytes) -> DnsAnswer:
    """The id, response code and A-record addresses of a DNS response."""
    if len(data) < 12:
        raise DnsFormatError(f"DNS message of {len(data)} bytes is shorter than its 12-byte header")
    qid, flags, qdcount, ancount, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if not flags & 0x8000:
        raise DnsFormatError(f"DNS message {qid} is a query, not a response")
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(data, pos) + 4
    addresses = []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        if pos + 10 > len(data):
            raise DnsFormatError(f"DNS response {qid}: answer record cut short at byte {pos}")
        rtype, rclass, _ttl, rdlength = struct.unpack("!HHIH", data[pos:pos + 10])
        rdata = data[pos + 10:pos + 10 + rdlength]
        if len(rdata) != rdlength:
            raise DnsFormatError(f"DNS response {qid}: record data cut short at byte {pos + 10}")
        if rtype == TYPE_A and rclass == CLASS_IN and rdlength == 4:
            addresses.append(socket.inet_ntoa(rdata))
        pos += 10 + rdlength
    return DnsAnswer(qid, flags & 0x000F, tuple(addresses))


def _skip_name(data: bytes, pos: int) -> int:
    """The offset after the name at ``pos``; a compression pointer ends a name (we need no names)."""
    while True:
        if pos >= len(data):
            raise DnsFormatError(f"DNS name runs past the end of the {len(data)}-byte message")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise DnsFormatError(f"DNS label type {length:#04x} at byte {pos} is not supported")
        if length == 0:
            return pos + 1
        pos += 1 + length


def probe(target: Target, at: float) -> ProbeResult:
    try:
        address = ipv4_of(target.host)
        queries = _queries(target)
    except OSError as exc:
        return ProbeResult(ok=False, at=at, detail=f"{target.host}: {reason(exc)}", loss=1.0)
    except DnsFormatError as exc:
        return ProbeResult(ok=False, at=at, detail=f"{exc}; fix the target's query_name", inconclusive=True)
    answers: dict[int, DnsAnswer] = {}
    by_id = {qid: i for i, (qid, _) in enumerate(queries)}

    def parse(data, _addr):
        try:
            answer = parse_response(data)
        except DnsFormatError:
            return None  # garbage is a stray packet, not an answer
        i = by_id.get(answer.qid)
        if i is not None:
            answers.setdefault(i, answer)
        return i

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, target.port))  # replies from anyone else are dropped by the kernel
            rtts, errors = exchange(sock, lambda i: sock.send(queries[i][1]), parse,
                                    target.count, target.spacing_s, target.timeout_s)
        except OSError as exc:
            return ProbeResult(ok=False, at=at, detail=reason(exc), loss=1.0)
    return _result(target, at, rtts, answers, errors)


def _queries(target: Target) -> list[tuple[int, bytes]]:
    ids = set()
    while len(ids) < target.count:
        ids.add(secrets.randbelow(0x10000))
    return [(qid, build_query(qid, target.query_name)) for qid in ids]


def _result(target, at, rtts, answers, errors) -> ProbeResult:
    fig = figures(rtts)
    got = [answers[i] for i in sorted(answers) if rtts[i] is not None]
    good = [a for a in got if a.rcode == 0 and a.addresses]
    n = len(rtts)
    if good:
        ok = fig["loss"] < target.fail_loss
        detail = f"NOERROR {good[0].addresses[0]}, {len(got)}/{n} answers"
    elif got:
        ok = False
        worst = got[-1]
        what = "NOERROR without an A record" if worst.rcode == 0 else worst.rcode_name
        detail = f"{what} for {target.query_name}, {len(got)}/{n} answers"
    else:
        ok = False
        detail = f"no answer to {n} queries within {seconds(target.timeout_s)} s"
        detail += f" ({', '.join(errors)})" if errors else " (timeout)"
    return ProbeResult(ok=ok, at=at, detail=detail, **fig)
