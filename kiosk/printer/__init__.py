"""Printers behind one narrow seam: open, send bytes, ask status, close.

A backend only moves bytes; what a ticket looks like is decided in
:mod:`kiosk.layout`. Backends are chosen by name and imported lazily so a
laptop never needs pyusb or a serial port to run the kiosk. A new backend is
one module whose class declares its [printer] keys (``OPTIONS``), plus its
line in ``BACKENDS`` (docs/printers.md, "Adding a printer backend or a button source").
"""

from common.backends import Configurable, Registry
from kiosk.printer.errors import PrinterError, UnknownBackend
from kiosk.seam.states import PrinterStatus  # a state readers see too: defined at the seam

# In the order printer.backend's choices are listed to the technician.
BACKENDS = Registry("printer", UnknownBackend, {
    "file": "kiosk.printer.file:FilePrinter",
    "serial": "kiosk.printer.serialport:SerialPrinter",
    "tcp": "kiosk.printer.tcp:TcpPrinter",
    "usb": "kiosk.printer.usb:UsbPrinter",
    "sim": "kiosk.printer.sim:SimPrinter",
    "dummy": "kiosk.printer.dummy:DummyPrinter",
})


class Printer(Configurable):
    """The seam. Subclasses implement ``_open``, ``_send``, ``_close`` and may override ``status``."""

    WRITE_MAY_STALL = False  # True: a send may block up to write_timeout_ms (a link, not a file or memory)

    def __init__(self):
        self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> None:
        """Open the link now; raise :class:`PrinterError` naming the device if it cannot."""
        if not self._is_open:
            self._open()
            self._is_open = True

    def send(self, data: bytes) -> None:
        """Hand all of ``data`` to the printer or raise :class:`PrinterError`."""
        if not self._is_open:
            raise PrinterError(f"{type(self).__name__} is not open; call open() first")
        self._send(bytes(data))

    def status(self) -> PrinterStatus:
        """Ask the printer how it is. Never raises; UNKNOWN when it cannot tell."""
        return PrinterStatus.OK if self._is_open else PrinterStatus.OFFLINE

    def close(self) -> None:
        """Close the link. Safe to call twice."""
        if self._is_open:
            self._is_open = False
            self._close()

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def _open(self) -> None:
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


def make_printer(backend: str, **options) -> Printer:
    """Build (but do not open) the printer backend called ``backend``."""
    return BACKENDS.load(backend)(**options)


__all__ = ["Printer", "PrinterError", "PrinterStatus", "make_printer", "BACKENDS"]
