"""A serial printer on a pseudo-terminal, reachable at a stable symlink such as /tmp/printer.

The kiosk opens ``link_path`` with pyserial exactly as it would open the
udev-named /dev/antrean-printer of a real USB-serial printer. Unplugging closes both
ends of the pty: the kiosk's open port then fails (EIO on write, EOF on
read) and the path is gone until :meth:`PtyLink.replug` makes a new pty.
"""

import errno
import os
import tty

from .link import Endpoint, Link, LinkError
from .wire import byte_time


class _PtyEndpoint(Endpoint):
    def __init__(self, link_path: str):
        self.link_path = link_path
        self.master, self.slave = os.openpty()
        try:
            # A fresh pty is a cooked terminal: it would echo our answers back to
            # us, turn the kiosk's LF into CR LF and our CR into LF. Raw passes
            # bytes untouched (pyserial sets raw too, but only once it opens).
            tty.setraw(self.slave)
            os.set_blocking(self.master, False)
            self.device = os.ttyname(self.slave)
            _point(link_path, self.device)
        except BaseException:
            self._close_fds()
            raise

    def watch(self, room: bool) -> list:
        return [self.master] if room else []

    def ready(self, obj) -> bytes:
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        # Any other OSError (EIO: every slave fd closed, which our own slave fd
        # prevents) ends the thread: the link is then unplugged.

    def send(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except BlockingIOError:
            pass  # nobody reads the port and its input queue is full: a UART overruns too

    def close(self) -> None:
        self._close_fds()
        try:
            if os.readlink(self.link_path) == self.device:  # never remove a link re-pointed by someone else
                os.unlink(self.link_path)
        except OSError:
            pass

    def _close_fds(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def _point(link_path: str, device: str) -> None:
    """Make ``link_path`` a symlink to ``device``, replacing an old symlink but never a real file."""
    if os.path.lexists(link_path) and not os.path.islink(link_path):
        raise LinkError(errno.EEXIST, f"link_path {link_path!r} exists and is not a symlink; "
                                      "remove it or choose another path such as /tmp/printer")
    temporary = f"{link_path}.{os.getpid()}.tmp"
    try:
        os.symlink(device, temporary)
        os.replace(temporary, link_path)  # atomic: the kiosk never sees the path missing mid-replug
    except OSError as exc:
        if os.path.islink(temporary):
            os.unlink(temporary)
        raise LinkError(exc.errno, f"cannot create symlink {link_path!r} -> {device}: {exc.strerror}; "
                                   "choose a path in a writable directory, such as /tmp/printer") from None


class PtyLink(Link):
    """The emulator behind a pty whose slave is symlinked at ``link_path``.

    ``baud`` paces both directions at 10 bits per byte; None moves bytes as
    fast as the pty does. Plugged in on creation.
    """

    kind = "pty"

    def __init__(self, emulator, link_path: str, baud: int | None = None):
        super().__init__(emulator, byte_time(baud))
        self.link_path = os.path.abspath(link_path)
        self.baud = baud
        self.device: str | None = None  # the /dev/pts/N currently behind link_path
        try:
            self.replug()
        except BaseException:
            self.close()
            raise

    def _open(self) -> Endpoint:
        endpoint = _PtyEndpoint(self.link_path)
        self.device = endpoint.device
        return endpoint

    def __repr__(self) -> str:
        speed = f"{self.baud} baud" if self.baud else "unpaced"
        return f"PtyLink({self.link_path} -> {self.device}, {speed}, {'plugged' if self.plugged else 'unplugged'})"
