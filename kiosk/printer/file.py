"""A printer reached through a file or device path, e.g. the kernel's ``/dev/usb/lp0``."""

import os

from common.tables import Key
from kiosk.printer import Printer, PrinterStatus
from kiosk.printer.errors import PrinterError


class FilePrinter(Printer):
    """Writes bytes to ``path``.

    ``create`` is off by default: if a USB printer is unplugged we must fail,
    not quietly create a regular file named ``/dev/usb/lp0``.
    """

    OPTIONS = {"path": Key("str", "/dev/usb/lp0", needed='"/dev/usb/lp0"'), "create": Key("bool", False)}

    def __init__(self, path: str, create: bool = False):
        super().__init__()
        if not path:
            raise PrinterError("printer.path is empty; set it to the device, e.g. /dev/usb/lp0")
        self.path = path
        self.create = create
        self._fd = None

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if self.create else 0)
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise PrinterError(f"cannot open printer at {self.path!r}: {exc.strerror}; "
                               "check the cable and printer.path") from None

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise PrinterError(f"writing to printer {self.path!r} failed: {exc.strerror}") from None

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def status(self) -> PrinterStatus:
        if not self.is_open or not os.path.exists(self.path):
            return PrinterStatus.OFFLINE
        # A plain file always takes bytes; a device gives no status through write().
        return PrinterStatus.OK if os.path.isfile(self.path) else PrinterStatus.UNKNOWN
