"""systemd's notify protocol: READY once, then WATCHDOG from the loop that does the work.

The unit's WatchdogSec restarts the process when the pings stop, so they
are sent only from the loop that must keep running (the kiosk's worker, the
agent's main loop), never from a timer thread that would outlive a hang.
Without $NOTIFY_SOCKET (not under systemd) every call does nothing.
"""

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address = ("\0" + address[1:]) if address and address.startswith("@") else address
        self._sock = None

    def send(self, state: str) -> bool:
        if not self._address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(state.encode(), self._address)
            return True
        except OSError:
            return False  # systemd gone or restarting us: nothing useful to do about it here

    @staticmethod
    def watchdog_s(environ=os.environ) -> float | None:
        """The unit's WatchdogSec as systemd tells this process ($WATCHDOG_USEC), None without one."""
        pid = environ.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            return None  # meant for another process (we were started by it)
        try:
            usec = int(environ.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        return usec / 1e6 if usec > 0 else None

    def ready(self) -> bool:
        return self.send("READY=1")

    def alive(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")
