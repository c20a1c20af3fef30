"""A DNS server on loopback in a thread, for the resolver tests and the agent benchmark's DNS target."""

import socket
import struct
import threading


class FakeNameserver:
    """A DNS server on a loopback address in a thread: A records from ``records``, NXDOMAIN otherwise.

    ``drop`` swallows that many queries first (lost replies); ``silent`` swallows all.
    """

    def __init__(self, records: dict, address: str = "127.0.0.1", port: int = 0, ttl_s: int = 60):
        self.records, self.ttl_s = records, ttl_s
        self.drop, self.silent, self.queries, self.rcode = 0, False, 0, None
        self.sizes: tuple[int, int] | None = None  # UDP payload bytes of the last query and its answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return  # closed
            self.queries += 1
            if self.silent or self.drop > 0:
                self.drop -= 1
                continue
            end = data.index(b"\0", 12) + 5
            name = wire_name(data[12:end - 4])
            address = self.records.get(name)
            answer = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, self.ttl_s, 4) + socket.inet_aton(address)
                      if address else b"")
            if self.rcode is not None:  # e.g. SERVFAIL: the resolver's own upstream is unreachable
                address, answer = None, b""
            flags = 0x8180 | (self.rcode if self.rcode is not None else 0 if address else 3)
            reply = data[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0) + data[12:end] + answer
            self.sizes = (len(data), len(reply))
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                return

    def close(self):
        self.sock.close()


def wire_name(raw: bytes) -> str:
    """A name in DNS wire form (length-prefixed labels, ending in 0), lower case and dotted."""
    labels, i = [], 0
    while raw[i]:
        labels.append(raw[i + 1:i + 1 + raw[i]].decode("ascii").lower())
        i += 1 + raw[i]
    return ".".join(labels)
