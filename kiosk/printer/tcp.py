"""A network printer on raw TCP, usually port 9100 (JetDirect / "RAW")."""

import socket
import time

from common.tables import Key
from kiosk.printer.errors import PrinterError
from kiosk.printer.link import LinkLost, LinkPrinter


class TcpPrinter(LinkPrinter):
    OPTIONS = {"host": Key("str", "", needed='"192.168.1.50"'), "tcp_port": Key("int", 9100, limits=(1, 65535)),
               "connect_timeout_ms": Key("int", 3000, limits=(1, 60_000)), **LinkPrinter.OPTIONS}
    ARGUMENTS = {"tcp_port": "port"}

    def __init__(self, host: str, port: int = 9100, connect_timeout_ms: int = 3000,
                 write_timeout_ms: int = 5000, status_timeout_ms: int = 300):
        super().__init__(status_timeout_ms)
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout_ms / 1000
        self.write_timeout = write_timeout_ms / 1000
        self._sock: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _open(self) -> None:
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise PrinterError(f"cannot connect to printer at {self.address}: {exc}; "
                               "check its power, cable and printer.host / printer.tcp_port") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a status query is 3 bytes

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _write(self, data: bytes) -> None:
        try:
            self._sock.settimeout(self.write_timeout)
            self._sock.sendall(data)
        except TimeoutError:
            raise PrinterError(f"printer at {self.address} took no data for {self.write_timeout:.1f} s") from None
        except OSError as exc:
            raise LinkLost(f"printer at {self.address} went away: {exc}") from None

    def _read(self, n: int, deadline: float) -> bytes:
        try:
            self._sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = self._sock.recv(n)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise LinkLost(f"printer at {self.address} went away: {exc}") from None
        if not data:
            raise LinkLost(f"printer at {self.address} closed the connection")
        return data

    def _discard_input(self) -> None:
        try:
            self._sock.setblocking(False)
            while self._sock.recv(64):
                pass
            raise LinkLost(f"printer at {self.address} closed the connection")
        except BlockingIOError:
            pass  # nothing stale waiting: the usual case
        except OSError as exc:
            raise LinkLost(f"printer at {self.address} went away: {exc}") from None
