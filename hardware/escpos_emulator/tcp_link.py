"""A network printer: raw ESC/POS on a TCP port (9100 on a real one), loopback only.

One client at a time, as a real printer serves one job connection: a second
client's connect completes in the listen backlog and waits there until the
first hangs up. Unplugging resets the connection (RST) and closes the
listener, so the kiosk's send fails and new connects are refused until
:meth:`TcpLink.replug` listens again on the same port.
"""

import ipaddress
import socket
import struct

from .link import Endpoint, Link, LinkError


class _TcpEndpoint(Endpoint):
    def __init__(self, host: str, port: int):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # replug onto the same port
            self.listener.bind((host, port))
            self.listener.listen(1)
            self.listener.setblocking(False)
        except OSError as exc:
            self.listener.close()
            raise LinkError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}; "
                                       "pick a free port (0 picks one)") from None
        self.port = self.listener.getsockname()[1]
        self.client: socket.socket | None = None
        self.hung_up = False  # the client closed; deliver what it sent first

    def watch(self, room: bool) -> list:
        if self.client is None:
            return [self.listener]
        return [self.client] if room and not self.hung_up else []

    def ready(self, obj) -> bytes:
        if obj is self.listener:
            self._accept()
            return b""
        try:
            data = self.client.recv(4096)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""  # reset by the client: same as hanging up
        if not data:
            self.hung_up = True
        return data

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return  # the client gave up between select and accept
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a status byte goes out at once
        self.client, self.hung_up = client, False

    def send(self, data: bytes) -> None:
        if self.client is not None:
            try:
                self.client.send(data)
            except OSError:
                pass  # the client is gone or not reading: the answer is lost, as on a real link

    def settle(self, rx_empty: bool) -> str | None:
        if self.client is not None and self.hung_up and rx_empty:
            self.client.close()
            self.client = None
            return "connection closed"
        return None

    def close(self) -> None:
        if self.client is not None:
            # Linger 0: close sends RST, so the kiosk's next send or recv fails at once.
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.client.close()
        self.listener.close()


def check_loopback(host: str) -> str:
    """``host`` if it is an IPv4 loopback address; ValueError otherwise."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if not (address and address.version == 4 and address.is_loopback):
        raise ValueError(f"TcpLink host {host!r} is not an IPv4 loopback address; the emulator only "
                         "listens on 127.0.0.1 so tests and demos never reach a real network")
    return host


class TcpLink(Link):
    """The emulator listening on ``host``:``port`` (port 0: an ephemeral one, see ``.port``).

    ``bytes_per_s`` paces both directions like a slow link; None is unpaced.
    Plugged in on creation.
    """

    kind = "tcp"

    def __init__(self, emulator, host: str = "127.0.0.1", port: int = 0, bytes_per_s: float | None = None):
        if bytes_per_s is not None and not bytes_per_s > 0:
            raise ValueError(f"bytes_per_s {bytes_per_s!r} must be positive, or None for no pacing")
        self.host = check_loopback(host)  # before the base class opens its wake-up pipe
        super().__init__(emulator, 1.0 / bytes_per_s if bytes_per_s else 0.0)
        self.port = port
        try:
            self.replug()
        except BaseException:
            self.close()
            raise

    def _open(self) -> Endpoint:
        endpoint = _TcpEndpoint(self.host, self.port)
        self.port = endpoint.port  # an ephemeral port is kept: replug listens on the same one
        return endpoint

    def __repr__(self) -> str:
        return f"TcpLink({self.host}:{self.port}, {'plugged' if self.plugged else 'unplugged'})"
