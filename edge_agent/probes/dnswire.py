"""DNS messages on the wire (RFC 1035): an A query, and a response's id, rcode and A records.

Ours, not a library's: the dns probe and the host-name resolver
(:mod:`edge_agent.probes.resolve`) need only this much.
"""

import socket
import struct
from dataclasses import dataclass

TYPE_A, CLASS_IN = 1, 1
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsFormatError(ValueError):
    """A DNS message that cannot be read, or a name that cannot be asked for."""


@dataclass(frozen=True)
class DnsAnswer:
    qid: int
    rcode: int
    addresses: tuple[str, ...]
    ttl_s: int | None = None  # the smallest TTL of the A records, None without any

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
    addresses, ttls = [], []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        if pos + 10 > len(data):
            raise DnsFormatError(f"DNS response {qid}: answer record cut short at byte {pos}")
        rtype, rclass, ttl, rdlength = struct.unpack("!HHIH", data[pos:pos + 10])
        rdata = data[pos + 10:pos + 10 + rdlength]
        if len(rdata) != rdlength:
            raise DnsFormatError(f"DNS response {qid}: record data cut short at byte {pos + 10}")
        if rtype == TYPE_A and rclass == CLASS_IN and rdlength == 4:
            addresses.append(socket.inet_ntoa(rdata))
            ttls.append(ttl)
        pos += 10 + rdlength
    return DnsAnswer(qid, flags & 0x000F, tuple(addresses), min(ttls, default=None))


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
